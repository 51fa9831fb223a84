package volimage

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
)

// Recover restores an image into a restricted DP volume (S4): a baseline
// replaces the volume and its snapshots, an incremental continues the
// restores before it. The volume comes online after success, read-only
// unless SMTAPE_BREAK_MIRROR=Y.
func (e *Engine) Recover(ctx context.Context, job *engine.RecoverJob) (engine.Result, error) {
	if err := e.checkRecover(job); err != nil {
		return engine.Result{}, err
	}
	release, err := e.cfg.Limiter.Acquire()
	if err != nil {
		return engine.Result{}, err
	}
	defer release()
	loc, err := e.wholeVolume(ctx, job.Path)
	if err != nil {
		return engine.Result{}, err
	}
	v := loc.Volume
	if err := CheckDestination(v); err != nil {
		return engine.Result{}, err
	}
	statePath := stateFile(job.StateDir, v)
	prev, err := loadState(statePath)
	if err != nil {
		return engine.Result{}, err
	}
	if job.Events != nil {
		_ = job.Events.Start(0, "NDMP")
	}
	opts := RestoreOptions{
		State:        prev,
		Prepare:      func(h *smtape.Header) error { return e.prepare(ctx, v, h) },
		MakeSnapshot: func(name string, at time.Time) error { return e.makeSnapshot(ctx, v, name, at) },
	}
	if ts, ok := job.Input.(TapeSource); ok {
		opts.NextTape = ts.NextTape
	}
	hdr, st, stats, err := RestoreImage(ctx, job.Input, v.HostPath, opts)
	if err == nil {
		err = saveState(statePath, st)
	}
	if err == nil {
		err = e.online(ctx, v, yes(job.Env["SMTAPE_BREAK_MIRROR"]))
	}
	if err != nil {
		if job.Events != nil {
			_ = job.Events.Error(err.Error())
			_ = job.Events.Abort(stats.Inodes, stats.Bytes)
		}
		return engine.Result{}, err
	}
	if job.Events != nil {
		_ = job.Events.End(stats.Inodes, stats.Bytes)
	}
	return engine.Result{Env: resultEnv(hdr, lastSnapshot(hdr))}, nil
}

// TapeSource is an image input that changes tapes itself: where the data
// of one tape ends between chunks, the restore asks it for the next.
type TapeSource interface {
	io.Reader
	NextTape() (io.Reader, error)
}

// checkRecover refuses what an image restore does not do.
func (e *Engine) checkRecover(job *engine.RecoverJob) error {
	if err := refuseUnsupported(job.Env); err != nil {
		return err
	}
	if job.ListOnly {
		return refusal("an SMTape image holds no file history to list")
	}
	for _, n := range job.Names {
		if n.Original != "" || n.Dest != "" {
			return refusal("SMTape restores whole volumes, not %q", n.Original)
		}
	}
	if job.Input == nil {
		return refusal("SMTape reads its image from the start")
	}
	return nil
}

// CheckDestination requires a DP volume in the restricted state (S4).
func CheckDestination(v storage.Volume) error {
	switch {
	case v.State == storage.StateOffline:
		return fail(errVolumeOffline, "volume %s is offline", v.Name)
	case v.State != storage.StateRestricted:
		return fail(errNotRestricted, "volume %s is %s: restrict it first (volume restrict)", v.Name, v.State)
	case !v.ReadOnly():
		return fail(errNotRestricted, "volume %s is of type %s: SMTape restores into volumes of type DP", v.Name, v.Type)
	}
	return nil
}

// prepare empties the volume, snapshots included, before a baseline.
func (e *Engine) prepare(ctx context.Context, v storage.Volume, h *smtape.Header) error {
	if h.Mode != smtape.Baseline {
		return nil
	}
	snaps, err := e.cfg.Storage.ListSnapshots(ctx, v.SVM, v.Name)
	if err != nil {
		return err
	}
	for _, s := range snaps {
		if err := e.cfg.Storage.DeleteSnapshot(ctx, v.SVM, v.Name, s.Name); err != nil {
			return fail(errDeleteSnapshot, "%v", err)
		}
	}
	ents, err := os.ReadDir(v.HostPath)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(v.HostPath)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, en := range ents {
		if en.Name() == snapshot.Dir {
			continue
		}
		if err := root.RemoveAll(en.Name()); err != nil {
			return fmt.Errorf("empty volume %s: %w", v.Name, err)
		}
	}
	return nil
}

// makeSnapshot recreates one snapshot of the image on the volume.
func (e *Engine) makeSnapshot(ctx context.Context, v storage.Volume, name string, at time.Time) error {
	o := storage.SnapshotOptions{ReadOnlyOK: true, RestrictedOK: true, CreatedAt: at}
	if _, err := e.cfg.Storage.CreateSnapshotWith(ctx, v.SVM, v.Name, name, o); err != nil {
		return fail(errCreateSnapshot, "%v", err)
	}
	return nil
}

// online brings the restored volume online, read/write when the mirror is
// broken.
func (e *Engine) online(ctx context.Context, v storage.Volume, breakMirror bool) error {
	if _, err := e.cfg.Storage.SetVolumeState(ctx, v.SVM, v.Name, storage.StateOnline); err != nil {
		return err
	}
	if breakMirror {
		rw := storage.TypeRW
		if _, err := e.cfg.Storage.ModifyVolume(ctx, v.SVM, v.Name, storage.VolumeChange{Type: &rw}); err != nil {
			return err
		}
	}
	return nil
}

func lastSnapshot(h *smtape.Header) string {
	if len(h.Snapshots) == 0 {
		return ""
	}
	return h.Snapshots[len(h.Snapshots)-1].Name
}

// stateFile is where a volume's restore state is kept: the engine's state
// directory, or beside the volume's snapshots when there is none.
func stateFile(dir string, v storage.Volume) string {
	name := "smtape-" + v.UUID + ".state"
	if dir == "" {
		return filepath.Join(v.HostPath, snapshot.Dir, "."+name)
	}
	return filepath.Join(dir, name)
}

func loadState(p string) (*State, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st := newState()
	if err := gob.NewDecoder(f).Decode(st); err != nil {
		return nil, fmt.Errorf("read SMTape restore state %s: %w", p, err)
	}
	return st, nil
}

// saveState writes the state through a temporary file, synced.
func saveState(p string, st *State) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = gob.NewEncoder(f).Encode(st)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save SMTape restore state: %w", err)
	}
	return os.Rename(tmp, p)
}
