package smtapesvc

import (
	"context"
	"fmt"
	"io"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/engine/volimage"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// DefaultBlockKB is the tape block size of a session that names none.
const DefaultBlockKB = 240

// Request names the volume, tape and block size of a session.
type Request struct {
	SVM, Volume string
	Snapshot    string // the snapshot a backup sends (-backup-snapshot)
	Tape        string // the device name (-tape)
	BlockKB     int    // -tape-block-size, in KB; 0: DefaultBlockKB
}

func (r *Request) blockKB() (int, error) {
	if r.BlockKB == 0 {
		return DefaultBlockKB, nil
	}
	if r.BlockKB < 4 || r.BlockKB > 256 || r.BlockKB%4 != 0 {
		return 0, fmt.Errorf("invalid -tape-block-size %d: a multiple of 4 from 4 to 256 (KB)", r.BlockKB)
	}
	return r.BlockKB, nil
}

func (r *Request) path() string { return "/" + r.SVM + "/" + r.Volume }

// Backup starts a backup session (system smtape backup).
func (m *Manager) Backup(ctx context.Context, req Request) (*Session, error) {
	kb, err := req.blockKB()
	if err != nil {
		return nil, err
	}
	if req.Snapshot == "" {
		return nil, fmt.Errorf("missing -backup-snapshot: SMTape seeds from a named Snapshot copy")
	}
	if _, err := m.cfg.Storage.GetSnapshot(ctx, req.SVM, req.Volume, req.Snapshot); err != nil {
		return nil, &smtape.Error{Message: "Failed to find snapshot", Detail: err.Error()}
	}
	id := m.reserveID()
	dh, err := m.cfg.Tapes.OpenDrive(ctx, tapeSession(id), req.Tape, tape.ReadWriteMode)
	if err != nil {
		return nil, err
	}
	work := func(ctx context.Context, s *session) error {
		k := &sink{ctx: ctx, s: s, tape: m.cfg.Tapes, dh: dh, size: kb << 10, rec: make([]byte, 0, kb<<10)}
		job := &engine.BackupJob{Path: req.path(), Output: k, RecordSize: kb << 10,
			Env: map[string]string{"SMTAPE_SNAPSHOT_NAME": req.Snapshot}}
		_, err := m.cfg.Engine.Backup(ctx, job)
		if cerr := k.close(); err == nil {
			err = cerr
		}
		return err
	}
	return m.start(id, "backup", req.path(), req.Tape, req.Snapshot, kb, work), nil
}

// Restore starts a restore session (system smtape restore).
func (m *Manager) Restore(ctx context.Context, req Request) (*Session, error) {
	kb, err := req.blockKB()
	if err != nil {
		return nil, err
	}
	v, err := m.cfg.Storage.GetVolume(ctx, req.SVM, req.Volume)
	if err != nil {
		return nil, err
	}
	if err := volimage.CheckDestination(v); err != nil {
		return nil, err
	}
	id := m.reserveID()
	dh, err := m.cfg.Tapes.OpenDrive(ctx, tapeSession(id), req.Tape, tape.ReadMode)
	if err != nil {
		return nil, err
	}
	work := func(ctx context.Context, s *session) error {
		src := &source{ctx: ctx, s: s, tape: m.cfg.Tapes, dh: dh, buf: make([]byte, maxRecord)}
		job := &engine.RecoverJob{Path: req.path(), Input: src, StateDir: m.cfg.StateDir}
		_, err := m.cfg.Engine.Recover(ctx, job)
		if cerr := src.dh.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return m.start(id, "restore", req.path(), req.Tape, "", kb, work), nil
}

// ShowHeader reads the image header at the start of the tape in device
// (system smtape showheader); the tape is rewound before and after.
func (m *Manager) ShowHeader(ctx context.Context, device string) (*smtape.Header, error) {
	dh, err := m.cfg.Tapes.OpenDrive(ctx, "smtape-showheader", device, tape.ReadMode)
	if err != nil {
		return nil, err
	}
	defer dh.Close()
	defer func() { _ = dh.Rewind() }()
	if err := dh.Rewind(); err != nil {
		return nil, err
	}
	buf := make([]byte, maxRecord)
	rd := &recordReader{dh: dh, buf: buf}
	return smtape.ReadHeader(rd)
}

// recordReader reads the records of a tape as one stream.
type recordReader struct {
	dh   *tape.DriveHandle
	buf  []byte
	rest []byte
}

func (r *recordReader) Read(p []byte) (int, error) {
	if len(r.rest) == 0 {
		n, err := r.dh.Read(r.buf)
		if err != nil {
			return 0, io.EOF
		}
		r.rest = r.buf[:n]
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// Break makes a DP volume that SMTape restored read/write (system smtape
// break, vserver smtape break).
func (m *Manager) Break(ctx context.Context, svm, vol string) error {
	v, err := m.cfg.Storage.GetVolume(ctx, svm, vol)
	if err != nil {
		return err
	}
	if !v.ReadOnly() {
		return fmt.Errorf("volume %q in Vserver %q is not a data protection volume", vol, svm)
	}
	if v.State != storage.StateOnline {
		return fmt.Errorf("volume %q in Vserver %q is %s: only a restored, online volume can be broken off", vol, svm, v.State)
	}
	rw := storage.TypeRW
	_, err = m.cfg.Storage.ModifyVolume(ctx, svm, vol, storage.VolumeChange{Type: &rw})
	return err
}
