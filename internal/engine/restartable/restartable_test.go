package restartable_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/engine/restartable"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

const backupOwner = "dump:/vs1/vol1"

type fixture struct {
	st   catalog.Store
	svc  *storage.Service
	m    *restartable.Manager
	snap string
}

// newFixture registers volume vol1 of SVM vs1 (copy snapshots) and a
// snapshot locked by the backup, as a dump backup makes it.
func newFixture(t *testing.T, max int) *fixture {
	t.Helper()
	ctx := context.Background()
	st := testutil.OpenCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	svc := storage.New(st, storage.Options{})
	_, err := svc.Init(ctx, storage.InitOptions{})
	must(t, err)
	_, err = svc.StartIncarnation(ctx)
	must(t, err)
	_, err = svc.CreateSVM(ctx, storage.SVMSpec{Name: "vs1"})
	must(t, err)
	data := filepath.Join(t.TempDir(), "vol1")
	must(t, os.MkdirAll(data, 0o755))
	must(t, os.WriteFile(filepath.Join(data, "f"), []byte("data"), 0o644))
	_, err = svc.CreateVolume(ctx, storage.VolumeSpec{Name: "vol1", SVM: "vs1", HostPath: data, SnapshotProvider: "copy"})
	must(t, err)
	f := &fixture{st: st, svc: svc, snap: "snapshot_for_backup.1"}
	f.m = restartable.New(restartable.Config{Store: st, Snapshots: svc, Max: func(context.Context) int { return max }})
	f.newSnapshot(t, f.snap)
	return f
}

func (f *fixture) newSnapshot(t *testing.T, name string) {
	t.Helper()
	_, err := f.svc.CreateSnapshotWith(context.Background(), "vs1", "vol1", name, storage.SnapshotOptions{Owner: backupOwner})
	must(t, err)
}

// begin starts the context of a backup of vol1 reading snapshot name.
func (f *fixture) begin(t *testing.T, name string) restartable.Context {
	t.Helper()
	c, err := f.m.Begin(context.Background(), restartable.Context{
		SVM: "vs1", Volume: "/vs1/vol1", VolumeName: "vol1", SnapshotAutoCreated: true,
		DumpPath: "/vs1/vol1", DumpName: "/vs1/vol1", Snapshot: name, HasOffsetMap: true,
		Env: map[string]string{"HIST": "Y", "LEVEL": "0"},
	})
	must(t, err)
	return c
}

// endBackup is what the backup does with its own lock and snapshot when
// it ends: unlock, then delete the snapshot it made (which fails while a
// context holds it).
func (f *fixture) endBackup(t *testing.T, name string) error {
	t.Helper()
	ctx := context.Background()
	_, err := f.svc.UnlockSnapshot(ctx, "vs1", "vol1", name, backupOwner)
	must(t, err)
	return f.svc.DeleteSnapshot(ctx, "vs1", "vol1", name)
}

func (f *fixture) owners(t *testing.T, name string) []string {
	t.Helper()
	p, err := f.svc.GetSnapshot(context.Background(), "vs1", "vol1", name)
	must(t, err)
	return p.Owners
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, kind error, msg string) {
	t.Helper()
	if !errors.Is(err, kind) || !strings.Contains(fmtErr(err), msg) {
		t.Fatalf("error %v, want %v containing %q", err, kind, msg)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestStoppedInPhaseIVStaysRestartable (D12, issue 14 item 1): a HIST=Y
// backup stopped in phase IV keeps its context, restartable, with ONTAP's
// fields, and its snapshot under a persistent lock that survives the
// backup's own cleanup and a restart of the daemon; delete releases it.
func TestStoppedInPhaseIVStaysRestartable(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 8)
	c := f.begin(t, f.snap)
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(c.ID) {
		t.Fatalf("context id %q is not a UUID", c.ID)
	}
	if !c.Busy || c.Restartable || c.Pass != 1 || c.State != restartable.StateActive || c.Engine != "dump" {
		t.Fatalf("new context %+v", c)
	}
	for pass := 2; pass <= 4; pass++ {
		must(t, f.m.Advance(ctx, "vs1", c.ID, pass))
	}
	if o := f.owners(t, f.snap); !slices.Contains(o, c.LockOwner()) {
		t.Fatalf("snapshot owners %v lack the context's lock", o)
	}
	must(t, f.m.Checkpoint(ctx, "vs1", c.ID, restartable.Checkpoint{Offset: 1 << 20, File: 10}))
	kept, err := f.m.Stop(ctx, "vs1", c.ID)
	must(t, err)
	if !kept {
		t.Fatal("a backup stopped in phase IV lost its context")
	}
	wantErr(t, f.endBackup(t, f.snap), storage.ErrLocked, "")
	// A new daemon: stale locks released, the context's kept.
	_, err = f.svc.StartIncarnation(ctx)
	must(t, err)
	_, err = f.svc.ReleaseStaleLocks(ctx, nil)
	must(t, err)
	got, err := f.m.Get(ctx, "vs1", c.ID)
	must(t, err)
	if got.Busy || !got.Restartable || got.Pass != 4 || got.State != restartable.StateRestartable ||
		got.Status != restartable.StatusAborted || got.Synced() != 1<<20 || got.Volume != "/vs1/vol1" {
		t.Fatalf("stopped context %+v", got)
	}
	if o := f.owners(t, f.snap); !slices.Equal(o, []string{c.LockOwner()}) {
		t.Fatalf("after a daemon restart the snapshot's owners are %v", o)
	}
	must(t, f.m.Delete(ctx, "vs1", c.ID))
	wantErr(t, func() error { _, err := f.m.Get(ctx, "vs1", c.ID); return err }(), restartable.ErrNotFound, c.ID)
	if _, err := f.svc.GetSnapshot(ctx, "vs1", "vol1", f.snap); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("delete left the auto-created snapshot: %v", err)
	}
}

// TestNotRestartableBeforePhaseIV (D12, issue 14 item 1): stopped in
// phases I-III the context goes and the snapshot is released; a backup
// that ends well removes its context and lock.
func TestNotRestartableBeforePhaseIV(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 8)
	c := f.begin(t, f.snap)
	must(t, f.m.Advance(ctx, "vs1", c.ID, 3))
	kept, err := f.m.Stop(ctx, "vs1", c.ID)
	must(t, err)
	if kept {
		t.Fatal("a backup stopped in phase III kept a restartable context")
	}
	if cs, _ := f.m.List(ctx, ""); len(cs) != 0 {
		t.Fatalf("contexts left: %+v", cs)
	}
	must(t, f.endBackup(t, f.snap))

	f.newSnapshot(t, "s2")
	c = f.begin(t, "s2")
	must(t, f.m.Advance(ctx, "vs1", c.ID, 4))
	must(t, f.m.Advance(ctx, "vs1", c.ID, 5))
	must(t, f.m.End(ctx, "vs1", c.ID))
	if cs, _ := f.m.List(ctx, ""); len(cs) != 0 {
		t.Fatalf("contexts left after a good end: %+v", cs)
	}
	must(t, f.endBackup(t, "s2"))
}

// TestRecoverAfterKill (D12, issue 14 item 1): the contexts a killed
// daemon left busy become restartable (phase IV) or go (earlier).
func TestRecoverAfterKill(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 8)
	c4 := f.begin(t, f.snap)
	must(t, f.m.Advance(ctx, "vs1", c4.ID, 4))
	f.newSnapshot(t, "s2")
	c2 := f.begin(t, "s2")
	must(t, f.m.Advance(ctx, "vs1", c2.ID, 2))

	_, err := f.svc.StartIncarnation(ctx)
	must(t, err)
	m := restartable.New(restartable.Config{Store: f.st, Snapshots: f.svc})
	kept, err := m.Recover(ctx)
	must(t, err)
	if len(kept) != 1 || kept[0].ID != c4.ID || !kept[0].Restartable || kept[0].Busy {
		t.Fatalf("recovered %+v, want only %s restartable", kept, c4.ID)
	}
	if _, err := m.Get(ctx, "vs1", c2.ID); !errors.Is(err, restartable.ErrNotFound) {
		t.Fatalf("the phase II context is still there: %v", err)
	}
	rel, err := f.svc.ReleaseStaleLocks(ctx, nil)
	must(t, err)
	if _, err := f.svc.GetSnapshot(ctx, "vs1", "vol1", "s2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the phase II backup's snapshot survived (released %+v): %v", rel, err)
	}
	if o := f.owners(t, f.snap); !slices.Equal(o, []string{c4.LockOwner()}) {
		t.Fatalf("the phase IV snapshot's owners are %v", o)
	}
}

// TestContextLimit (D12, issue 14 item 1): past the limit a new context is
// refused, naming the oldest ones not busy, and nothing is dropped.
func TestContextLimit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	a := f.begin(t, f.snap)
	must(t, f.m.Advance(ctx, "vs1", a.ID, 4))
	_, err := f.m.Stop(ctx, "vs1", a.ID)
	must(t, err)
	f.newSnapshot(t, "s2")
	f.begin(t, "s2")
	testutil.RefusedUnchanged(t, f.st, "third context", restartable.ErrTooMany, "the oldest that are not busy: vs1 "+a.ID, func() error {
		_, err := f.m.Begin(ctx, restartable.Context{SVM: "vs1", Volume: "/vs1/vol1", VolumeName: "vol1", Snapshot: "s2"})
		return err
	})
	if !strings.Contains(fmtErr(func() error { _, err := f.m.Begin(ctx, restartable.Context{SVM: "vs1"}); return err }()), "(2)") {
		t.Error("the refusal does not give the limit")
	}
}

// TestClaimRefusals (D12, issue 14 items 1 and 3): a restart that cannot
// be honoured is refused with a clear message and leaves the context as it
// was; a good one returns the latest checkpoint at or before the offset.
func TestClaimRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 8)
	c := f.begin(t, f.snap)
	must(t, f.m.Advance(ctx, "vs1", c.ID, 4))
	for _, off := range []int64{1 << 20, 2 << 20, 3 << 20} {
		must(t, f.m.Checkpoint(ctx, "vs1", c.ID, restartable.Checkpoint{Offset: off, File: off >> 20}))
	}
	exists := func(c restartable.Context) (bool, error) {
		_, err := f.svc.GetSnapshot(ctx, c.SVM, c.VolumeName, c.Snapshot)
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	good := restartable.Restart{Volume: "/vs1/vol1", Env: map[string]string{"HIST": "Y", "LEVEL": "0"}, Offset: 2<<20 + 4096}
	claim := func(r restartable.Restart) error {
		_, _, err := f.m.Claim(ctx, "vs1", c.ID, r, exists)
		return err
	}
	testutil.RefusedUnchanged(t, f.st, "busy", restartable.ErrBusy, "in use", func() error { return claim(good) })
	_, err := f.m.Stop(ctx, "vs1", c.ID)
	must(t, err)
	bad := func(name string, kind error, msg string, edit func(r *restartable.Restart)) {
		r := good
		r.Env = map[string]string{"HIST": "Y", "LEVEL": "0"}
		edit(&r)
		testutil.RefusedUnchanged(t, f.st, name, kind, msg, func() error { return claim(r) })
	}
	bad("other volume", restartable.ErrMismatch, "not /vs1/vol2", func(r *restartable.Restart) { r.Volume = "/vs1/vol2" })
	bad("other level", restartable.ErrMismatch, `LEVEL was "0", now "1"`, func(r *restartable.Restart) { r.Env["LEVEL"] = "1" })
	bad("added option", restartable.ErrMismatch, `EXCLUDE was not set`, func(r *restartable.Restart) { r.Env["EXCLUDE"] = "*.o" })
	bad("offset beyond", restartable.ErrOffset, "from 1048576 to 3145728", func(r *restartable.Restart) { r.Offset = 3<<20 + 1 })
	bad("offset before", restartable.ErrOffset, "offset 4096 is outside", func(r *restartable.Restart) { r.Offset = 4096 })
	testutil.RefusedUnchanged(t, f.st, "unknown", restartable.ErrNotFound, "does not exist", func() error {
		_, _, err := f.m.Claim(ctx, "vs1", "00000000-0000-4000-8000-000000000000", good, exists)
		return err
	})
	if t.Failed() {
		return
	}

	got, cp, err := f.m.Claim(ctx, "vs1", c.ID, good, exists)
	must(t, err)
	if !got.Busy || cp.Offset != 2<<20 || cp.File != 2 {
		t.Fatalf("claim gave %+v from %+v, want busy from the checkpoint at 2 MiB", got, cp)
	}
	_, err = f.m.Stop(ctx, "vs1", c.ID)
	must(t, err)
	_, err = f.svc.UnlockSnapshot(ctx, "vs1", "vol1", f.snap, c.LockOwner())
	must(t, err)
	must(t, f.endBackup(t, f.snap))
	testutil.RefusedUnchanged(t, f.st, "snapshot gone", restartable.ErrSnapshotGone, restartable.MsgSnapshotGone, func() error { return claim(good) })
}
