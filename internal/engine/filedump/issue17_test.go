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

// TestDAREndCountsBytes (D11, M1, issue 17 item 5): a direct access
// recovery reports the bytes it read and the files it restored, in its
// result and in the event log's End line (it said 0 KB).
func TestDAREndCountsBytes(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "big.bin"), bytes.Repeat([]byte("tapestry"), 40000), 0o644)
	writeFile(t, filepath.Join(src, "small.txt"), []byte("small"), 0o644)
	var img bytes.Buffer
	hist := newHistory()
	_, err := Backup(context.Background(), BackupRequest{Dir: src, Env: Env{"HIST": "Y"}, Output: &img, History: hist})
	must(t, err)
	ino, ok := hist.find("big.bin")
	if !ok {
		t.Fatal("file history lacks big.bin")
	}
	lg, err := eventlog.Open(t.TempDir(), eventlog.Options{})
	must(t, err)
	defer lg.Close()
	cr := &countingReaderAt{r: bytes.NewReader(img.Bytes())}
	dst := t.TempDir()
	rr, err := Restore(context.Background(), RestoreRequest{InputAt: cr, Dest: dst, Env: Env{"DIRECT": "Y"}, Log: lg.Restore(dst),
		Names: []RestoreName{{Original: "big.bin", Dest: "big.bin", FHInfo: hist.offsets[ino]}}})
	must(t, err)
	if rr.Files != 1 || rr.Bytes != cr.n || rr.Bytes < 320000 {
		t.Fatalf("DAR result: %d files, %d bytes; read %d", rr.Files, rr.Bytes, cr.n)
	}
	lines, err := lg.Tail(10)
	must(t, err)
	want := "End (1 files, " + eventlog.FormatAmount(rr.Bytes) + ")"
	found := false
	for _, l := range lines {
		found = found || bytes.HasSuffix([]byte(l), []byte(want))
	}
	if !found {
		t.Fatalf("no %q in the event log:\n%q", want, lines)
	}
}
