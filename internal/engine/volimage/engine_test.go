package volimage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

type engineEnv struct {
	ctx      context.Context
	st       *storage.Service
	e        *Engine
	src, dst string
	stateDir string
}

// newEngineEnv makes an RW volume vol1 and a restricted DP volume dp1 on
// two btrfs loop file systems, and the engine over them.
func newEngineEnv(t *testing.T) *engineEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // hang guard
	t.Cleanup(cancel)
	st := storage.New(testutil.OpenCatalog(t, filepath.Join(t.TempDir(), "c.db")), storage.Options{})
	_, err := st.Init(ctx, storage.InitOptions{})
	must(t, err)
	_, err = st.CreateSVM(ctx, storage.SVMSpec{Name: "vs1"})
	must(t, err)
	ev := &engineEnv{ctx: ctx, st: st, e: New(Config{Storage: st, Node: "smt-n1"}), stateDir: t.TempDir()}
	ev.src, ev.dst = testutil.LoopFS(t, "btrfs", 400), testutil.LoopFS(t, "btrfs", 400)
	_, err = st.CreateVolume(ctx, storage.VolumeSpec{Name: "vol1", SVM: "vs1", HostPath: ev.src, SnapshotProvider: "auto"})
	must(t, err)
	_, err = st.CreateVolume(ctx, storage.VolumeSpec{Name: "dp1", SVM: "vs1", HostPath: ev.dst, SnapshotProvider: "auto", Type: storage.TypeDP, State: storage.StateRestricted})
	must(t, err)
	return ev
}

func (ev *engineEnv) backup(t *testing.T, env map[string]string) ([]byte, engine.Result, error) {
	var img bytes.Buffer
	res, err := ev.e.Backup(ev.ctx, &engine.BackupJob{Path: "/vs1/vol1", Env: env, Output: &img, RecordSize: 64 << 10})
	return img.Bytes(), res, err
}

func (ev *engineEnv) restore(t *testing.T, img []byte, env map[string]string) (engine.Result, error) {
	return ev.e.Recover(ev.ctx, &engine.RecoverJob{Path: "/vs1/dp1", Env: env, Input: bytes.NewReader(img), StateDir: ev.stateDir})
}

// TestEngineBaselineAndIncremental (S1-S4, S7): a baseline with a named
// snapshot carries it and the older ones; the restored DP volume comes
// online with the same snapshots and content; an incremental from the
// next named snapshot brings it there; out-of-order restores and the
// wrong kind of destination get the spec's messages.
func TestEngineBaselineAndIncremental(t *testing.T) {
	ev := newEngineEnv(t)
	fillTree(t, ev.src)
	_, err := ev.st.CreateSnapshot(ev.ctx, "vs1", "vol1", "hourly.1")
	must(t, err)
	changeTree(t, ev.src)
	_, err = ev.st.CreateSnapshot(ev.ctx, "vs1", "vol1", "base")
	must(t, err)
	img, res, err := ev.backup(t, map[string]string{"SMTAPE_SNAPSHOT_NAME": "base"})
	must(t, err)
	if h, _ := smtape.ReadHeader(bytes.NewReader(img)); h == nil || len(h.Snapshots) != 2 || h.Snapshots[0].Name != "hourly.1" || h.BlockSize != 64<<10 {
		t.Fatalf("header %+v", h)
	}
	if _, err := ev.restore(t, img, nil); err != nil {
		t.Fatal(err)
	}
	v, _ := ev.st.GetVolume(ev.ctx, "vs1", "dp1")
	if v.State != storage.StateOnline || v.Type != storage.TypeDP {
		t.Fatalf("restored volume %s %s", v.State, v.Type)
	}
	sameSnapshots(t, ev, "base")
	testutil.CompareManifests(t, testutil.TreeManifest(t, ev.dst), snapManifest(t, ev, "vol1", "base"))

	writeFile(t, filepath.Join(ev.src, "after"), random(t, 5000))
	_, err = ev.st.CreateSnapshot(ev.ctx, "vs1", "vol1", "next")
	must(t, err)
	inc, _, err := ev.backup(t, map[string]string{"SMTAPE_SNAPSHOT_NAME": "next", "BASE_DATE": res.Env["DUMP_DATE"], "SMTAPE_BACKUP_SET_ID": res.Env["SMTAPE_BACKUP_SET_ID"]})
	must(t, err)
	if _, err := ev.restore(t, inc, nil); smtape.Message(err) != "Volume not restricted" {
		t.Fatalf("restore into an online volume: %v", err)
	}
	_, err = ev.st.SetVolumeState(ev.ctx, "vs1", "dp1", storage.StateRestricted)
	must(t, err)
	if _, err := ev.restore(t, inc, map[string]string{"SMTAPE_BREAK_MIRROR": "Y"}); err != nil {
		t.Fatal(err)
	}
	testutil.CompareManifests(t, testutil.TreeManifest(t, ev.dst), snapManifest(t, ev, "vol1", "next"))
	sameSnapshots(t, ev, "next")
	if v, _ := ev.st.GetVolume(ev.ctx, "vs1", "dp1"); v.Type != storage.TypeRW || v.State != storage.StateOnline {
		t.Fatalf("after SMTAPE_BREAK_MIRROR=Y: %s %s", v.Type, v.State)
	}
	_, err = ev.st.SetVolumeState(ev.ctx, "vs1", "dp1", storage.StateRestricted)
	must(t, err)
	if _, err := ev.restore(t, inc, nil); smtape.Message(err) != "Volume not restricted" {
		t.Fatalf("restore into an RW volume: %v", err)
	}
}

// TestEngineRefusals (S1, S6, S7): a subtree, a missing snapshot, file
// history and odd record sizes are refused with the spec's messages, and
// an engine-made snapshot is deleted after the backup.
func TestEngineRefusals(t *testing.T) {
	ev := newEngineEnv(t)
	writeFile(t, filepath.Join(ev.src, "d", "f"), []byte("x"))
	var img bytes.Buffer
	for _, c := range []struct {
		job  engine.BackupJob
		want string
	}{
		{engine.BackupJob{Path: "/vs1/vol1/d", RecordSize: 65536}, "Invalid volume path"},
		{engine.BackupJob{Path: "/vs1/nope", RecordSize: 65536}, "Invalid volume path"},
		{engine.BackupJob{Path: "/vs1/vol1", RecordSize: 65536, Env: map[string]string{"SMTAPE_SNAPSHOT_NAME": "gone"}}, "Failed to find snapshot"},
		{engine.BackupJob{Path: "/vs1/vol1", RecordSize: 1000}, "Failed to initialize tape"},
		{engine.BackupJob{Path: "/vs1/vol1", RecordSize: 512 << 10}, "Failed to initialize tape"},
		{engine.BackupJob{Path: "/vs1/vol1", RecordSize: 65536, Env: map[string]string{"HIST": "Y"}}, "SMTape keeps no file history (HIST=Y)"},
		{engine.BackupJob{Path: "/vs1/vol1", RecordSize: 65536, Env: map[string]string{"BASE_DATE": "12345"}}, "Failed to find snapshot"},
	} {
		c.job.Output = &img
		if _, err := ev.e.Backup(ev.ctx, &c.job); ev.e.Failure(err).Message != c.want {
			t.Errorf("%+v: got %v, want %q", c.job, err, c.want)
		}
	}
	if img.Len() != 0 {
		t.Errorf("refused backups wrote %d bytes", img.Len())
	}
	if _, _, err := ev.backup(t, nil); err != nil {
		t.Fatal(err)
	}
	if snaps, _ := ev.st.ListSnapshots(ev.ctx, "vs1", "vol1"); len(snaps) != 0 {
		t.Errorf("the engine's snapshot is left: %+v", snaps)
	}
	_, err := ev.st.SetVolumeState(ev.ctx, "vs1", "dp1", storage.StateOffline)
	must(t, err)
	if _, err := ev.restore(t, []byte("x"), nil); smtape.Message(err) != "Volume offline" {
		t.Errorf("restore into an offline volume: %v", err)
	}
}

// sameSnapshots checks that the destination has the source's snapshots up
// to last, with their names and times, each equal to the source's.
func sameSnapshots(t *testing.T, ev *engineEnv, last string) {
	t.Helper()
	src, _ := ev.st.ListSnapshots(ev.ctx, "vs1", "vol1")
	dst, _ := ev.st.ListSnapshots(ev.ctx, "vs1", "dp1")
	var want []storage.Snapshot
	for _, s := range src {
		want = append(want, s)
		if s.Name == last {
			break
		}
	}
	if len(dst) != len(want) {
		t.Fatalf("destination snapshots %d, want %d", len(dst), len(want))
	}
	for i := range want {
		if dst[i].Name != want[i].Name || !dst[i].CreatedAt.Equal(want[i].CreatedAt) {
			t.Errorf("snapshot %d: %s %v, want %s %v", i, dst[i].Name, dst[i].CreatedAt, want[i].Name, want[i].CreatedAt)
		}
		testutil.CompareManifests(t, testutil.TreeManifest(t, dst[i].HostPath), testutil.TreeManifest(t, want[i].HostPath))
	}
}

func snapManifest(t *testing.T, ev *engineEnv, vol, name string) map[string]string {
	p, err := ev.st.GetSnapshot(ev.ctx, "vs1", vol, name)
	must(t, err)
	if _, err := os.Stat(p.HostPath); err != nil {
		t.Fatal(err)
	}
	return testutil.TreeManifest(t, p.HostPath)
}

// TestEngineLimit (S8): with the node's SMTape slots taken, a backup and a
// restore are refused with the limit's message and write nothing.
func TestEngineLimit(t *testing.T) {
	ev := newEngineEnv(t)
	lim := NewLimiter(1)
	ev.e = New(Config{Storage: ev.st, Node: "smt-n1", Limiter: lim})
	release, err := lim.Acquire()
	must(t, err)
	defer release()
	img, _, err := ev.backup(t, nil)
	want := "Maximum number of allowed SMTape backups or restores (1) in progress"
	if err == nil || ev.e.Failure(err).Message != want || len(img) != 0 {
		t.Fatalf("backup over the limit: %v (%d bytes)", err, len(img))
	}
	if _, err := ev.restore(t, []byte("x"), nil); err == nil || ev.e.Failure(err).Message != want {
		t.Fatalf("restore over the limit: %v", err)
	}
}
