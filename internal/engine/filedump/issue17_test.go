package filedump

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
)

// snapshotWatch is a backup's event log that records how many snapshots
// the volume had when Start and Snapshot were written.
type snapshotWatch struct {
	*eventlog.DumpLog
	t                *testing.T
	f                *storageFixture
	atStart, atSnap  int
	started, snapped bool
}

func (w *snapshotWatch) Start(level int, kind string) error {
	w.started, w.atStart = true, len(w.f.snapshots(w.t))
	return w.DumpLog.Start(level, kind)
}

func (w *snapshotWatch) Snapshot(name string, created time.Time) error {
	w.snapped, w.atSnap = true, len(w.f.snapshots(w.t))
	return w.DumpLog.Snapshot(name, created)
}

// TestStartBeforeSnapshot (M1, issue 17 item 5): the event log's Start is
// written before the backup's snapshot is made, Snapshot after.
func TestStartBeforeSnapshot(t *testing.T) {
	f := newStorage(t)
	lg, err := eventlog.Open(t.TempDir(), eventlog.Options{})
	must(t, err)
	defer lg.Close()
	w := &snapshotWatch{DumpLog: lg.Dump("/vs1/vol1", 1), t: t, f: f}
	var img bytes.Buffer
	_, err = Backup(context.Background(), BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Output: &img, Log: w})
	must(t, err)
	if !w.started || !w.snapped || w.atStart != 0 || w.atSnap != 1 {
		t.Fatalf("snapshots at Start %d (written %v), at Snapshot %d (written %v); want 0 and 1", w.atStart, w.started, w.atSnap, w.snapped)
	}
}

// TestBackupSingleFile (issue 17 item 5, C1): a backup path that names a
// file backs up that file alone, under its directory as the image's root.
func TestBackupSingleFile(t *testing.T) {
	f := newStorage(t)
	var img bytes.Buffer
	_, err := Backup(context.Background(), BackupRequest{Storage: f.svc, Path: "/vs1/vol1/plain/keep.txt", Output: &img})
	must(t, err)
	dest := t.TempDir()
	_, err = Restore(context.Background(), RestoreRequest{Input: &img, Dest: dest, Env: Env{"FORCE": "Y"}})
	must(t, err)
	b, err := os.ReadFile(filepath.Join(dest, "keep.txt"))
	if err != nil || string(b) != "keep" {
		t.Fatalf("restored keep.txt: %q %v", b, err)
	}
	ents, err := os.ReadDir(dest)
	must(t, err)
	for _, e := range ents {
		if e.Name() != "keep.txt" && e.Name() != "restore_symboltable" {
			t.Errorf("restored %s, which the backup path did not name", e.Name())
		}
	}
}
