package filedump

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

type storageFixture struct {
	svc  *storage.Service
	data string
}

// newStorage registers volume vol1 of SVM vs1 over a directory with files,
// a qtree q1 and a plain directory plain.
func newStorage(t *testing.T) *storageFixture {
	t.Helper()
	st := tempCatalog(t)
	ctx := context.Background()
	svc := storage.New(st, storage.Options{})
	_, err := svc.Init(ctx, storage.InitOptions{})
	must(t, err)
	_, err = svc.CreateSVM(ctx, storage.SVMSpec{Name: "vs1"})
	must(t, err)
	data := filepath.Join(t.TempDir(), "vol1")
	writeFile(t, filepath.Join(data, "plain", "keep.txt"), []byte("keep"), 0o644)
	writeFile(t, filepath.Join(data, "plain", "scratch.tmp"), []byte("tmp"), 0o644)
	writeFile(t, filepath.Join(data, "skipme", "x"), []byte("x"), 0o644)
	writeFile(t, filepath.Join(data, "top.txt"), []byte("top"), 0o644)
	_, err = svc.CreateVolume(ctx, storage.VolumeSpec{Name: "vol1", SVM: "vs1", HostPath: data, SnapshotProvider: "copy"})
	must(t, err)
	_, err = svc.CreateQtree(ctx, storage.QtreeSpec{Name: "q1", SVM: "vs1", Volume: "vol1"})
	must(t, err)
	writeFile(t, filepath.Join(data, "q1", "inq.txt"), []byte("in qtree"), 0o644)
	return &storageFixture{svc: svc, data: data}
}

func (f *storageFixture) snapshots(t *testing.T) []string {
	t.Helper()
	ss, err := f.svc.ListSnapshots(context.Background(), "vs1", "vol1")
	must(t, err)
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

// eventRecorder implements DumpEvents.
type eventRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (e *eventRecorder) add(s string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lines = append(e.lines, s)
	return nil
}
func (e *eventRecorder) Start(level int, kind string) error { return e.add("Start " + kind) }
func (e *eventRecorder) Snapshot(name string, _ time.Time) error {
	return e.add("Snapshot " + name)
}
func (e *eventRecorder) BaseDump(level int, _ time.Time) error { return e.add("Base_dump") }
func (e *eventRecorder) PhaseChange(p string) error            { return e.add("Phase " + p) }
func (e *eventRecorder) End(int64) error                       { return e.add("End") }
func (e *eventRecorder) Abort(int64) error                     { return e.add("Abort") }
func (e *eventRecorder) Error(msg string) error                { return e.add("Error " + msg) }

// TestStorageBackupSnapshots (D1, D2, D3): a backup creates, locks and deletes
// snapshot_for_backup.<n>; a named snapshot is used and kept; a failing
// output still deletes the snapshot; phases I-V are logged.
func TestStorageBackupSnapshots(t *testing.T) {
	f := newStorage(t)
	ctx := context.Background()
	namer := &SnapshotNamer{}
	ev := &eventRecorder{}
	var buf bytes.Buffer
	var phases []Phase
	res, err := Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Output: &buf, Snapshots: namer, Log: ev,
		Progress: func(p Progress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
		}})
	must(t, err)
	if res.Snapshot != "snapshot_for_backup.0" || len(f.snapshots(t)) != 0 {
		t.Fatalf("snapshot %q, left %v", res.Snapshot, f.snapshots(t))
	}
	if got := strings.Join(ev.lines, ","); got != "Start NDMP,Snapshot snapshot_for_backup.0,Phase II,Phase III,Phase IV,Phase V,End" {
		t.Errorf("events %s", got)
	}
	if len(phases) < 4 || phases[0] != PhaseIdentify || phases[len(phases)-1] != PhaseACLs {
		t.Errorf("progress phases %v", phases)
	}
	// A subtree backup has phase I.
	ev.lines = nil
	res, err = Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1/plain", Output: io.Discard, Snapshots: namer, Log: ev})
	must(t, err)
	if res.Snapshot != "snapshot_for_backup.1" || !strings.Contains(strings.Join(ev.lines, ","), "Phase I,Phase II") {
		t.Errorf("subtree: %q %v", res.Snapshot, ev.lines)
	}
	// A failing output: error, snapshot deleted, Abort logged.
	ev.lines = nil
	_, err = Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Output: failWriter{}, Snapshots: namer, Log: ev})
	if err == nil || len(f.snapshots(t)) != 0 || ev.lines[len(ev.lines)-1] != "Abort" {
		t.Fatalf("failing output: %v, snapshots %v, events %v", err, f.snapshots(t), ev.lines)
	}
	// A cancelled backup deletes its snapshot too.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Backup(cctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Output: io.Discard, Snapshots: namer}); err == nil || len(f.snapshots(t)) != 0 {
		t.Fatalf("cancelled: %v %v", err, f.snapshots(t))
	}

	// A named snapshot: used as it was, kept, unlocked afterwards.
	_, err = f.svc.CreateSnapshot(ctx, "vs1", "vol1", "nightly")
	must(t, err)
	writeFile(t, filepath.Join(f.data, "top.txt"), []byte("changed after the snapshot"), 0o644)
	buf.Reset()
	res, err = Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1/.snapshot/nightly", Output: &buf, Snapshots: namer})
	must(t, err)
	snap, err := f.svc.GetSnapshot(ctx, "vs1", "vol1", "nightly")
	must(t, err)
	if res.Snapshot != "nightly" || snap.Locked() || strings.Join(f.snapshots(t), ",") != "nightly" {
		t.Errorf("named snapshot: %q locked=%v %v", res.Snapshot, snap.Locked(), f.snapshots(t))
	}
	if !bytes.Contains(buf.Bytes(), []byte("top")) || bytes.Contains(buf.Bytes(), []byte("changed after the snapshot")) {
		t.Error("the image of the named snapshot does not hold the snapshot's data")
	}
	// A missing named snapshot: the documented message.
	_, err = Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1/.snapshot/nope", Output: io.Discard})
	if err == nil {
		t.Error("missing named snapshot accepted")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errTest }

// blockWriter blocks every write until release is closed.
type blockWriter struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return len(p), nil
}

// TestConcurrentBackupsAndLimit (D1, D13): concurrent backups get distinct
// snapshots; the limiter refuses one too many with the documented message.
func TestConcurrentBackupsAndLimit(t *testing.T) {
	f := newStorage(t)
	ctx := context.Background()
	namer := &SnapshotNamer{}
	lim := engine.NewDumpLimiter(2)
	bw := &blockWriter{started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	var first BackupResult
	go func() {
		var err error
		first, err = Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Output: bw, Snapshots: namer, Limiter: lim})
		done <- err
	}()
	<-bw.started
	if got := f.snapshots(t); strings.Join(got, ",") != "snapshot_for_backup.0" {
		t.Fatalf("during the first backup: %v", got)
	}
	// The second runs while the first holds its snapshot and a slot.
	bw2 := &blockWriter{started: make(chan struct{}), release: make(chan struct{})}
	done2 := make(chan error, 1)
	go func() {
		_, err := Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Output: bw2, Snapshots: namer, Limiter: lim})
		done2 <- err
	}()
	<-bw2.started
	if got := f.snapshots(t); strings.Join(got, ",") != "snapshot_for_backup.0,snapshot_for_backup.1" {
		t.Errorf("two backups: %v", got)
	}
	_, err := Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Output: io.Discard, Snapshots: namer, Limiter: lim})
	var e *Error
	if !errors.As(err, &e) || e.Msg != "Maximum number of allowed dumps or restores (2) in progress" {
		t.Errorf("third backup: %v", err)
	}
	_, err = Restore(ctx, RestoreRequest{Input: bytes.NewReader(nil), Dest: t.TempDir(), Limiter: lim})
	if !errors.As(err, &e) || !strings.HasPrefix(e.Msg, "Maximum number of allowed dumps or restores") {
		t.Errorf("restore over the limit: %v", err)
	}
	close(bw.release)
	close(bw2.release)
	must(t, <-done)
	must(t, <-done2)
	if first.Snapshot != "snapshot_for_backup.0" || len(f.snapshots(t)) != 0 || lim.InUse() != 0 {
		t.Errorf("after: %q %v in use %d", first.Snapshot, f.snapshots(t), lim.InUse())
	}
}

// TestStorageScopeAndEnv (D2, D4, D7, D8, D15): qtree information of a volume
// backup, NON_QUOTA_TREE, EXCLUDE, MULTI_SUBTREE_NAMES, LIST_QTREES, the
// baseline after a type change and a read-only restore destination.
func TestStorageScopeAndEnv(t *testing.T) {
	f := newStorage(t)
	ctx := context.Background()
	dir := t.TempDir()
	st := func(name string, env Env, path string) (string, error) {
		img := filepath.Join(dir, name)
		out, err := os.Create(img)
		must(t, err)
		defer out.Close()
		_, err = Backup(ctx, BackupRequest{Storage: f.svc, Path: path, Output: out, Env: env})
		return img, err
	}
	img, err := st("vol", nil, "/vs1/vol1")
	must(t, err)
	var qt []ListEntry
	in, _ := os.Open(img)
	res, err := Restore(ctx, RestoreRequest{Input: in, Dest: t.TempDir(), Env: Env{"LIST_QTREES": "Y"}})
	in.Close()
	must(t, err)
	qt = res.Qtrees
	if len(qt) != 1 || qt[0].Path != "q1" || qt[0].Qtree.Name != "q1" {
		t.Errorf("LIST_QTREES: %+v", qt)
	}
	if got := strings.Join(imageFiles(t, img), ","); got != "plain/keep.txt,plain/scratch.tmp,q1/inq.txt,skipme/x,top.txt" {
		t.Errorf("volume image: %s", got)
	}
	img, err = st("nqt", Env{"NON_QUOTA_TREE": "Y", "EXCLUDE": "top.txt"}, "/vs1/vol1")
	must(t, err)
	if got := strings.Join(imageFiles(t, img), ","); got != "plain/keep.txt,plain/scratch.tmp,skipme/x,top.txt" {
		t.Errorf("NON_QUOTA_TREE (EXCLUDE ignored): %s", got)
	}
	if _, err = st("nqt2", Env{"NON_QUOTA_TREE": "Y"}, "/vs1/vol1/plain"); err == nil {
		t.Error("NON_QUOTA_TREE on a subtree accepted")
	}
	img, err = st("excl", Env{"EXCLUDE": "*.tmp,skipme"}, "/vs1/vol1")
	must(t, err)
	if got := strings.Join(imageFiles(t, img), ","); got != "plain/keep.txt,q1/inq.txt,top.txt" {
		t.Errorf("EXCLUDE: %s", got)
	}
	img, err = st("multi", Env{"MULTI_SUBTREE_NAMES": "plain\nq1\n/vs1/vol1\x00", "DMP_NAME": "set1"}, "/vs1/vol1")
	must(t, err)
	if got := strings.Join(imageFiles(t, img), ","); got != "plain/keep.txt,plain/scratch.tmp,q1/inq.txt" {
		t.Errorf("MULTI_SUBTREE_NAMES: %s", got)
	}
	if _, err = st("multi2", Env{"MULTI_SUBTREE_NAMES": "plain\n/vs1/vol1"}, "/vs1/vol1"); err == nil {
		t.Error("MULTI_SUBTREE_NAMES without DMP_NAME accepted")
	}
	img, err = st("qtree", nil, "/vs1/vol1/q1")
	must(t, err)
	if got := strings.Join(imageFiles(t, img), ","); got != "inq.txt" {
		t.Errorf("qtree backup: %s", got)
	}

	// D15: a type change forces a baseline.
	cat := tempCatalog(t)
	_, err = Backup(ctx, BackupRequest{Storage: f.svc, Catalog: cat, Path: "/vs1/vol1", Output: io.Discard})
	must(t, err)
	dp, rw := storage.TypeDP, storage.TypeRW
	_, err = f.svc.ModifyVolume(ctx, "vs1", "vol1", storage.VolumeChange{Type: &dp})
	must(t, err)
	// D14: a read-only volume is no restore destination.
	in, _ = os.Open(img)
	_, err = Restore(ctx, RestoreRequest{Input: in, Storage: f.svc, Path: "/vs1/vol1/plain"})
	in.Close()
	var e *Error
	if !errors.As(err, &e) || e.Msg != MsgReadOnlyVolume {
		t.Errorf("restore to a DP volume: %v", err)
	}
	_, err = f.svc.ModifyVolume(ctx, "vs1", "vol1", storage.VolumeChange{Type: &rw})
	must(t, err)
	_, err = Backup(ctx, BackupRequest{Storage: f.svc, Catalog: cat, Path: "/vs1/vol1", Env: Env{"LEVEL": "1"}, Output: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "baseline") {
		t.Errorf("level 1 after a type change: %v", err)
	}
	_, err = Backup(ctx, BackupRequest{Storage: f.svc, Catalog: cat, Path: "/vs1/vol1", Output: io.Discard})
	must(t, err)
	_, err = Backup(ctx, BackupRequest{Storage: f.svc, Catalog: cat, Path: "/vs1/vol1", Env: Env{"LEVEL": "1"}, Output: io.Discard})
	must(t, err)
}

// TestRestoreQtreesAndLUNs (D8): restored to a volume root, qtrees become
// qtrees of the destination volume and LUNs at volume or qtree level stay
// LUNs; a LUN deeper down becomes a plain file.
func TestRestoreQtreesAndLUNs(t *testing.T) {
	f := newStorage(t)
	ctx := context.Background()
	writeFile(t, filepath.Join(f.data, "q1", "lun-q"), []byte("lun in a qtree"), 0o600)
	writeFile(t, filepath.Join(f.data, "lun-top"), []byte("lun at the root"), 0o600)
	writeFile(t, filepath.Join(f.data, "plain", "lun-deep"), []byte("lun in a directory"), 0o600)
	for _, p := range []string{"q1/lun-q", "lun-top", "plain/lun-deep"} {
		must(t, storage.SetLUN(filepath.Join(f.data, p), true))
	}
	var img bytes.Buffer
	_, err := Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Output: &img})
	must(t, err)
	data2 := filepath.Join(t.TempDir(), "vol2")
	must(t, os.MkdirAll(data2, 0o755))
	_, err = f.svc.CreateVolume(ctx, storage.VolumeSpec{Name: "vol2", SVM: "vs1", HostPath: data2, SnapshotProvider: "copy"})
	must(t, err)
	res, err := Restore(ctx, RestoreRequest{Input: bytes.NewReader(img.Bytes()), Storage: f.svc, Path: "/vs1/vol2", Env: Env{"FORCE": "Y"}})
	must(t, err)
	if res.Errors != 0 {
		t.Fatalf("%d errors", res.Errors)
	}
	if _, err := f.svc.GetQtree(ctx, "vs1", "vol2", "q1"); err != nil {
		t.Errorf("q1 is no qtree of vol2: %v", err)
	}
	for p, want := range map[string]bool{"q1/lun-q": true, "lun-top": true, "plain/lun-deep": false} {
		if got, err := storage.IsLUN(filepath.Join(data2, p)); err != nil || got != want {
			t.Errorf("%s: LUN %v, want %v (%v)", p, got, want, err)
		}
	}
	// IGNORE_QTREES=Y into a third volume: no qtree.
	data3 := filepath.Join(t.TempDir(), "vol3")
	must(t, os.MkdirAll(data3, 0o755))
	_, err = f.svc.CreateVolume(ctx, storage.VolumeSpec{Name: "vol3", SVM: "vs1", HostPath: data3, SnapshotProvider: "copy"})
	must(t, err)
	_, err = Restore(ctx, RestoreRequest{Input: bytes.NewReader(img.Bytes()), Storage: f.svc, Path: "/vs1/vol3", Env: Env{"FORCE": "Y", "IGNORE_QTREES": "Y"}})
	must(t, err)
	if _, err := f.svc.GetQtree(ctx, "vs1", "vol3", "q1"); err == nil {
		t.Error("IGNORE_QTREES=Y registered q1")
	}
}

// TestConcurrentBackupsOfANamedSnapshot (D1, D14; issue 12 item 3): two
// backups of the same named snapshot each hold their own lock, so the
// first to end does not unlock the snapshot the other still reads: it
// cannot be deleted until both have ended.
func TestConcurrentBackupsOfANamedSnapshot(t *testing.T) {
	f := newStorage(t)
	ctx := context.Background()
	_, err := f.svc.CreateSnapshot(ctx, "vs1", "vol1", "nightly")
	must(t, err)
	start := func() (*blockWriter, chan error) {
		bw := &blockWriter{started: make(chan struct{}), release: make(chan struct{})}
		done := make(chan error, 1)
		go func() {
			_, err := Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1/.snapshot/nightly", Output: bw})
			done <- err
		}()
		<-bw.started
		return bw, done
	}
	bw1, done1 := start()
	bw2, done2 := start()
	close(bw1.release)
	must(t, <-done1)
	if err := f.svc.DeleteSnapshot(ctx, "vs1", "vol1", "nightly"); !errors.Is(err, storage.ErrLocked) {
		t.Errorf("delete while the second backup reads the snapshot: %v, want ErrLocked", err)
	}
	close(bw2.release)
	must(t, <-done2)
	p, err := f.svc.GetSnapshot(ctx, "vs1", "vol1", "nightly")
	if err != nil || p.Locked() {
		t.Fatalf("after both backups: %+v, %v", p, err)
	}
	must(t, f.svc.DeleteSnapshot(ctx, "vs1", "vol1", "nightly"))
}
