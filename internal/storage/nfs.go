package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// NFSService is the NFS configuration of an SVM (vserver nfs show). Only
// the settings Tapestry acts on are kept; an SVM without a record has the
// defaults.
type NFSService struct {
	SVM string `json:"vserver"`
	// V42SecLabel is -v4.2-seclabel: NFSv4.2 security labels are served
	// (off by default). With it on, the dump engine refuses files that
	// carry a security label ("dump encountered NFS security labels"), as
	// ONTAP's does; with it off a label is an ordinary extended attribute.
	V42SecLabel bool `json:"v4.2-seclabel"`
}

// NFSChange is a modification of an SVM's NFS configuration (vserver nfs
// modify); nil fields are left alone.
type NFSChange struct {
	V42SecLabel *bool
}

func nfsKey(svm string) string { return catalog.Key(ns, prefixNFS, svm) }

// getNFS returns the NFS configuration of svm, which must exist.
func getNFS(tx catalog.Tx, svm string) (NFSService, error) {
	if _, err := getSVM(tx, svm); err != nil {
		return NFSService{}, err
	}
	n, err := catalog.GetJSON[NFSService](tx, nfsKey(svm))
	if errors.Is(err, catalog.ErrNotFound) {
		return NFSService{SVM: svm}, nil
	}
	return n, err
}

// GetNFS returns the NFS configuration of an SVM.
func (s *Service) GetNFS(ctx context.Context, svm string) (NFSService, error) {
	return catalog.Read(ctx, s.store, func(tx catalog.Tx) (NFSService, error) {
		return getNFS(tx, svm)
	})
}

// ListNFS returns the NFS configuration of svm, or of every SVM when svm
// is "".
func (s *Service) ListNFS(ctx context.Context, svm string) ([]NFSService, error) {
	return catalog.Read(ctx, s.store, func(tx catalog.Tx) ([]NFSService, error) {
		if svm != "" {
			n, err := getNFS(tx, svm)
			return []NFSService{n}, err
		}
		svms, err := listInSVM[SVM](tx, prefixSVM, "")
		if err != nil {
			return nil, err
		}
		var out []NFSService
		for _, v := range svms {
			n, err := getNFS(tx, v.Name)
			if err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		return out, nil
	})
}

// ModifyNFS changes the NFS configuration of an SVM (vserver nfs modify).
func (s *Service) ModifyNFS(ctx context.Context, svm string, ch NFSChange) (NFSService, error) {
	var n NFSService
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		var err error
		if n, err = getNFS(tx, svm); err != nil {
			return err
		}
		if ch.V42SecLabel != nil {
			n.V42SecLabel = *ch.V42SecLabel
		}
		return catalog.PutJSON(tx, nfsKey(svm), n)
	})
	if err != nil {
		return NFSService{}, fmt.Errorf("modify NFS of Vserver %q: %w", svm, err)
	}
	return n, nil
}
