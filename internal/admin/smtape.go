package admin

import (
	"context"
	"net/http"
	"time"
)

// The SMTape tape seeding endpoints (S10), below /api/private/cli/ as
// ONTAP has them only as commands:
//
//	POST system/smtape/backup        system smtape backup
//	POST system/smtape/restore       system smtape restore
//	POST system/smtape/continue      system smtape continue
//	POST system/smtape/abort         system smtape abort
//	GET  system/smtape/showheader    system smtape showheader (?tape=)
//	GET  system/smtape/status        system smtape status show
//	POST system/smtape/status/clear  system smtape status clear
//	POST system/smtape/break         system smtape break, vserver smtape break
const smtapeAPI = "/api/private/cli/system/smtape"

// SMTapeService runs a node's SMTape sessions (package smtapesvc, through
// the daemon).
type SMTapeService interface {
	Backup(ctx context.Context, req SMTapeRequest) (SMTapeSession, error)
	Restore(ctx context.Context, req SMTapeRequest) (SMTapeSession, error)
	Continue(session int, tape string) error
	Abort(session int) error
	Sessions() []SMTapeSession
	// Clear removes the finished sessions that match and returns how many.
	Clear(match func(SMTapeSession) bool) int
	ShowHeader(ctx context.Context, tape string) (SMTapeHeader, error)
	Break(ctx context.Context, svm, volume string) error
}

// SMTapeRequest is the body of backup and restore.
type SMTapeRequest struct {
	Vserver        string `json:"vserver"`
	Volume         string `json:"volume"`
	BackupSnapshot string `json:"backup-snapshot,omitempty"`
	Tape           string `json:"tape"`
	TapeBlockSize  int    `json:"tape-block-size,omitempty"` // KB
}

// SMTapeSession is one session, as status show lists it.
type SMTapeSession struct {
	Session        int       `json:"session"`
	Node           string    `json:"node"`
	Type           string    `json:"type"`
	Status         string    `json:"status"`
	Path           string    `json:"path"`
	Device         string    `json:"device"`
	Progress       int64     `json:"progress"` // bytes
	StartTime      time.Time `json:"start-time"`
	EndTime        time.Time `json:"end-time,omitzero"`
	UpdateTime     time.Time `json:"update-time"`
	BackupSnapshot string    `json:"backup-snapshot,omitempty"`
	TapeBlockSize  int       `json:"tape-block-size"` // KB
	Tape           int       `json:"tape-number"`
	Error          string    `json:"error,omitempty"`
}

// SMTapeSessionRef names a session (continue, abort).
type SMTapeSessionRef struct {
	Session int    `json:"session"`
	Tape    string `json:"tape,omitempty"`
}

// SMTapeClear selects the sessions status clear removes (empty fields
// match any).
type SMTapeClear struct {
	Session int    `json:"session,omitempty"`
	Type    string `json:"type,omitempty"`
	Status  string `json:"status,omitempty"`
	Path    string `json:"path,omitempty"`
	Device  string `json:"device,omitempty"`
}

// SMTapeCleared is the reply of status clear.
type SMTapeCleared struct {
	Cleared int `json:"cleared"`
}

// SMTapeHeader is the image header at the start of a tape.
type SMTapeHeader struct {
	BackupSetID   string             `json:"backup-set-id"`
	Time          time.Time          `json:"time"`
	BaseTime      time.Time          `json:"base-time,omitzero"`
	Mode          string             `json:"mode"`
	Sequence      uint32             `json:"sequence"`
	Node          string             `json:"node"`
	Vserver       string             `json:"vserver"`
	Volume        string             `json:"volume"`
	FSType        string             `json:"fs-type"`
	VolumeType    string             `json:"volume-type"`
	Capacity      uint64             `json:"capacity"`
	Used          uint64             `json:"used"`
	TapeBlockSize uint32             `json:"tape-block-size"` // bytes
	BaseSnapshot  string             `json:"base-snapshot,omitempty"`
	Tape          uint16             `json:"tape-number"`
	FirstChunk    uint64             `json:"first-chunk"`
	Snapshots     []SMTapeHeaderSnap `json:"snapshots"`
}

// SMTapeHeaderSnap is one snapshot an image holds.
type SMTapeHeaderSnap struct {
	Name    string    `json:"name"`
	Created time.Time `json:"create-time"`
}

// SMTapeVolume names a volume (break).
type SMTapeVolume struct {
	Vserver string `json:"vserver"`
	Volume  string `json:"volume"`
}

func (s *Server) smtapeRoutes() {
	w := route{cmd: "system smtape", write: true}
	s.handle("POST "+smtapeAPI+"/backup", w, withBody(s.smtapeStart(true)))
	s.handle("POST "+smtapeAPI+"/restore", w, withBody(s.smtapeStart(false)))
	s.handle("POST "+smtapeAPI+"/continue", w, withBody(s.smtapeContinue))
	s.handle("POST "+smtapeAPI+"/abort", w, withBody(s.smtapeAbort))
	s.handle("GET "+smtapeAPI+"/showheader", route{cmd: "system smtape showheader"}, s.smtapeShowHeader)
	s.handle("GET "+smtapeAPI+"/status", route{cmd: "system smtape status show"}, s.smtapeStatus)
	s.handle("POST "+smtapeAPI+"/status/clear", w, withBody(s.smtapeClear))
	s.handle("POST "+smtapeAPI+"/break", w, withBody(s.smtapeBreak))
	s.handle("POST /api/private/cli/vserver/smtape/break", route{cmd: "vserver smtape break", write: true}, withBody(s.smtapeBreak))
}

// smtape returns the node's SMTape service.
func (s *Server) smtape() (SMTapeService, error) {
	if s.cfg.SMTape == nil {
		return nil, invalid("SMTape is not available on node %s", s.cfg.Node)
	}
	return s.cfg.SMTape, nil
}

func (s *Server) smtapeStart(backup bool) func(context.Context, *request, SMTapeRequest) (int, any, error) {
	return func(ctx context.Context, r *request, in SMTapeRequest) (int, any, error) {
		svc, err := s.smtape()
		if err != nil {
			return 0, nil, err
		}
		for name, v := range map[string]string{"vserver": in.Vserver, "volume": in.Volume, "tape": in.Tape} {
			if v == "" {
				return 0, nil, badf("missing required parameter -%s", name)
			}
		}
		var sess SMTapeSession
		if backup {
			sess, err = svc.Backup(ctx, in)
		} else {
			sess, err = svc.Restore(ctx, in)
		}
		if err != nil {
			return 0, nil, err
		}
		return http.StatusCreated, sess, nil
	}
}

func (s *Server) smtapeContinue(_ context.Context, _ *request, in SMTapeSessionRef) (int, any, error) {
	svc, err := s.smtape()
	if err != nil {
		return 0, nil, err
	}
	if err := svc.Continue(in.Session, in.Tape); err != nil {
		return 0, nil, invalid("%v", err)
	}
	return http.StatusOK, in, nil
}

func (s *Server) smtapeAbort(_ context.Context, _ *request, in SMTapeSessionRef) (int, any, error) {
	svc, err := s.smtape()
	if err != nil {
		return 0, nil, err
	}
	if err := svc.Abort(in.Session); err != nil {
		return 0, nil, invalid("%v", err)
	}
	return http.StatusOK, in, nil
}

func (s *Server) smtapeShowHeader(ctx context.Context, r *request) (int, any, error) {
	svc, err := s.smtape()
	if err != nil {
		return 0, nil, err
	}
	tape := r.URL.Query().Get("tape")
	if tape == "" {
		return 0, nil, badf("missing required parameter -tape")
	}
	h, err := svc.ShowHeader(ctx, tape)
	if err != nil {
		return 0, nil, invalid("%v", err)
	}
	return http.StatusOK, h, nil
}

func (s *Server) smtapeStatus(context.Context, *request) (int, any, error) {
	svc, err := s.smtape()
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, svc.Sessions(), nil
}

func (s *Server) smtapeClear(_ context.Context, _ *request, in SMTapeClear) (int, any, error) {
	svc, err := s.smtape()
	if err != nil {
		return 0, nil, err
	}
	n := svc.Clear(func(x SMTapeSession) bool {
		return (in.Session == 0 || x.Session == in.Session) && (in.Type == "" || x.Type == in.Type) &&
			(in.Status == "" || x.Status == in.Status) && (in.Path == "" || x.Path == in.Path) &&
			(in.Device == "" || x.Device == in.Device)
	})
	return http.StatusOK, SMTapeCleared{Cleared: n}, nil
}

func (s *Server) smtapeBreak(ctx context.Context, _ *request, in SMTapeVolume) (int, any, error) {
	svc, err := s.smtape()
	if err != nil {
		return 0, nil, err
	}
	if in.Vserver == "" || in.Volume == "" {
		return 0, nil, badf("missing required parameter -vserver or -volume")
	}
	if err := svc.Break(ctx, in.Vserver, in.Volume); err != nil {
		return 0, nil, invalid("%v", err)
	}
	return http.StatusOK, in, nil
}
