package daemon

import (
	"context"
	"encoding/hex"
	"path/filepath"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/engine/volimage"
	"github.com/tapestry-ndmp/tapestry/internal/smtapesvc"
)

// SMTapeStateDir is where, below the data directory, the SMTape engine
// keeps the restore state of restored volumes.
const SMTapeStateDir = "smtape"

// openSMTape makes the node's system smtape session manager.
func (d *Daemon) openSMTape() {
	if d.tapes == nil {
		return
	}
	limits, _ := engine.SystemLimits() // unknown memory: the smallest limits
	eng := volimage.New(volimage.Config{Storage: d.storage, Node: d.node, Limiter: volimage.NewLimiter(limits.SMTape)})
	d.smtape = smtapesvc.New(smtapesvc.Config{Node: d.node, Engine: eng, Tapes: d.tapes, Storage: d.storage,
		StateDir: filepath.Join(d.opts.DataDir, SMTapeStateDir)})
}

// SMTape is the node's system smtape session manager (nil without tapes).
func (d *Daemon) SMTape() *smtapesvc.Manager { return d.smtape }

// smtapeAPI serves the admin API's SMTape endpoints with the manager.
type smtapeAPI struct{ m *smtapesvc.Manager }

func (a smtapeAPI) Backup(ctx context.Context, r admin.SMTapeRequest) (admin.SMTapeSession, error) {
	s, err := a.m.Backup(ctx, request(r))
	if err != nil {
		return admin.SMTapeSession{}, err
	}
	return sessionView(*s), nil
}

func (a smtapeAPI) Restore(ctx context.Context, r admin.SMTapeRequest) (admin.SMTapeSession, error) {
	s, err := a.m.Restore(ctx, request(r))
	if err != nil {
		return admin.SMTapeSession{}, err
	}
	return sessionView(*s), nil
}

func (a smtapeAPI) Continue(id int, tape string) error { return a.m.Continue(id, tape) }
func (a smtapeAPI) Abort(id int) error                 { return a.m.Abort(id) }

func (a smtapeAPI) Sessions() []admin.SMTapeSession {
	var out []admin.SMTapeSession
	for _, s := range a.m.Sessions() {
		out = append(out, sessionView(s))
	}
	return out
}

func (a smtapeAPI) Clear(match func(admin.SMTapeSession) bool) int {
	return a.m.Clear(func(s smtapesvc.Session) bool { return match(sessionView(s)) })
}

func (a smtapeAPI) ShowHeader(ctx context.Context, tape string) (admin.SMTapeHeader, error) {
	h, err := a.m.ShowHeader(ctx, tape)
	if err != nil {
		return admin.SMTapeHeader{}, err
	}
	out := admin.SMTapeHeader{
		BackupSetID: hex.EncodeToString(h.SetID[:]), Time: h.Time, BaseTime: h.BaseTime, Mode: h.Mode.String(),
		Sequence: h.Sequence, Node: h.Node, Vserver: h.SVM, Volume: h.Volume, FSType: h.FSType,
		VolumeType: h.VolumeType.String(), Capacity: h.Capacity, Used: h.Used, TapeBlockSize: h.BlockSize,
		BaseSnapshot: h.BaseSnapshot, Tape: h.Tape, FirstChunk: h.FirstChunk,
	}
	for _, s := range h.Snapshots {
		out.Snapshots = append(out.Snapshots, admin.SMTapeHeaderSnap{Name: s.Name, Created: s.Created})
	}
	return out, nil
}

func (a smtapeAPI) Break(ctx context.Context, svm, vol string) error { return a.m.Break(ctx, svm, vol) }

func request(r admin.SMTapeRequest) smtapesvc.Request {
	return smtapesvc.Request{SVM: r.Vserver, Volume: r.Volume, Snapshot: r.BackupSnapshot, Tape: r.Tape, BlockKB: r.TapeBlockSize}
}

func sessionView(s smtapesvc.Session) admin.SMTapeSession {
	return admin.SMTapeSession{
		Session: s.ID, Node: s.Node, Type: s.Type, Status: string(s.Status), Path: s.Path, Device: s.Device,
		Progress: s.Progress, StartTime: s.StartTime, EndTime: s.EndTime, UpdateTime: s.UpdateTime,
		BackupSnapshot: s.BackupSnapshot, TapeBlockSize: s.TapeBlockSize, Tape: s.Tape, Error: s.Error,
	}
}
