package admin

import (
	"context"
	"net/http"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// NFSService is an SVM's NFS configuration as the API shows it (vserver
// nfs show): settings are "enabled" or "disabled", as in ONTAP's CLI.
type NFSService struct {
	SVM         string `json:"vserver"`
	V42SecLabel string `json:"v4.2-seclabel"`
}

func enabledText(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}

func nfsView(n storage.NFSService) NFSService {
	return NFSService{SVM: n.SVM, V42SecLabel: enabledText(n.V42SecLabel)}
}

// listNFS serves vserver nfs show: the NFS configuration of the SVM named
// by svm.name, or of every SVM the caller may see.
func (s *Server) listNFS(ctx context.Context, r *request) (int, any, error) {
	svm, err := s.listScope(r, r.URL.Query().Get("svm.name"))
	if err != nil {
		return 0, nil, err
	}
	all, err := s.cfg.Storage.ListNFS(ctx, svm)
	if err != nil {
		return 0, nil, err
	}
	out := make([]NFSService, 0, len(all))
	for _, n := range all {
		if s.scope(r, n.SVM) == nil {
			out = append(out, nfsView(n))
		}
	}
	return http.StatusOK, records(out), nil
}

// modifyNFS serves vserver nfs modify.
func (s *Server) modifyNFS(ctx context.Context, r *request, in NFSModify) (int, any, error) {
	svm := r.PathValue("svm")
	if err := s.scope(r, svm); err != nil {
		return 0, nil, err
	}
	if in.V42SecLabel == nil {
		return 0, nil, badf("command failed: nothing to modify")
	}
	var ch storage.NFSChange
	switch *in.V42SecLabel {
	case "enabled", "disabled":
		on := *in.V42SecLabel == "enabled"
		ch.V42SecLabel = &on
	default:
		return 0, nil, badf("%q is an invalid value for field \"-v4.2-seclabel\" (<enabled|disabled>)", *in.V42SecLabel)
	}
	n, err := s.cfg.Storage.ModifyNFS(ctx, svm, ch)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, nfsView(n), nil
}
