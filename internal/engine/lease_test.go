package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// leaseFixture is a catalog file with SVM vs1 and volume vol1 (a directory
// with a file, snapshots by the copy provider).
type leaseFixture struct {
	t    *testing.T
	ctx  context.Context
	path string // the catalog file
	data string // the volume's directory
	st   *catalog.BoltStore
	svc  *storage.Service
}

func newLeaseFixture(t *testing.T) *leaseFixture {
	t.Helper()
	f := &leaseFixture{t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), "cat.db"), data: filepath.Join(t.TempDir(), "vol1")}
	if err := os.MkdirAll(f.data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.data, "file"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.open()
	_, err := f.svc.Init(f.ctx, storage.InitOptions{})
	f.must(err)
	_, err = f.svc.CreateSVM(f.ctx, storage.SVMSpec{Name: "vs1"})
	f.must(err)
	_, err = f.svc.CreateVolume(f.ctx, storage.VolumeSpec{Name: "vol1", SVM: "vs1", HostPath: f.data, SnapshotProvider: "copy"})
	f.must(err)
	t.Cleanup(func() {
		if f.st != nil {
			f.st.Close()
		}
	})
	return f
}

func (f *leaseFixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// open opens the catalog and a storage service over it.
func (f *leaseFixture) open() {
	f.t.Helper()
	st, err := catalog.OpenBolt(f.path)
	f.must(err)
	f.st, f.svc = st, storage.New(st, storage.Options{})
}

// close closes the catalog (as a daemon that ends does).
func (f *leaseFixture) close() {
	f.t.Helper()
	f.must(f.st.Close())
	f.st, f.svc = nil, nil
}

// restart opens the catalog as the next start of the daemon does: a new
// incarnation, then the release of stale locks.
func (f *leaseFixture) restart() storage.Released {
	f.t.Helper()
	f.open()
	_, err := f.svc.StartIncarnation(f.ctx)
	f.must(err)
	r, err := f.svc.ReleaseStaleLocks(f.ctx, nil)
	f.must(err)
	return r
}

func (f *leaseFixture) volume() storage.Volume {
	f.t.Helper()
	v, err := f.svc.GetVolume(f.ctx, "vs1", "vol1")
	f.must(err)
	return v
}

// snapshot returns the record of snapshot name, or false when there is
// none.
func (f *leaseFixture) snapshot(name string) (storage.Snapshot, bool) {
	f.t.Helper()
	p, err := f.svc.GetSnapshot(f.ctx, "vs1", "vol1", name)
	if errors.Is(err, storage.ErrNotFound) {
		return p, false
	}
	f.must(err)
	return p, true
}

// TestLeaseAcquireRelease (D1; issue 12 item 3): Acquire makes
// snapshot_for_backup.<n> by the name rule (distinct for concurrent jobs,
// a taken name skipped) locked for its owner, which no one can delete;
// Release unlocks and deletes it, once.
func TestLeaseAcquireRelease(t *testing.T) {
	f := newLeaseFixture(t)
	var namer SnapshotNamer
	a, err := Acquire(f.ctx, f.svc, f.volume(), &namer, "dump:/vs1/vol1")
	f.must(err)
	b, err := Acquire(f.ctx, f.svc, f.volume(), &namer, "dump:/vs1/vol1/dir")
	f.must(err)
	if a.Snapshot().Name != "snapshot_for_backup.0" || b.Snapshot().Name != "snapshot_for_backup.1" || !a.Made() {
		t.Fatalf("names %q %q, made %v", a.Snapshot().Name, b.Snapshot().Name, a.Made())
	}
	p, ok := f.snapshot("snapshot_for_backup.0")
	if !ok || !slices.Equal(p.Owners, []string{"dump:/vs1/vol1"}) || p.CreatedFor != "dump:/vs1/vol1" {
		t.Fatalf("record of the leased snapshot: %+v", p)
	}
	if b, err := os.ReadFile(filepath.Join(a.Snapshot().HostPath, "file")); err != nil || string(b) != "data" {
		t.Fatalf("the snapshot copy: %q, %v", b, err)
	}
	if err := f.svc.DeleteSnapshot(f.ctx, "vs1", "vol1", "snapshot_for_backup.0"); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("delete of a leased snapshot: %v, want ErrLocked", err)
	}
	// A name someone else took is skipped.
	_, err = f.svc.CreateSnapshot(f.ctx, "vs1", "vol1", "snapshot_for_backup.2")
	f.must(err)
	c, err := Acquire(f.ctx, f.svc, f.volume(), &namer, "dump:/vs1/vol1")
	f.must(err)
	if c.Snapshot().Name != "snapshot_for_backup.3" {
		t.Fatalf("after a taken name: %q", c.Snapshot().Name)
	}
	cancelled, cancel := context.WithCancel(f.ctx)
	cancel()
	for _, l := range []*Lease{a, b, c} {
		f.must(l.Release(cancelled)) // an aborted job's context
		if _, ok := f.snapshot(l.Snapshot().Name); ok {
			t.Errorf("%s left after Release", l.Snapshot().Name)
		}
		if _, err := os.Lstat(l.Snapshot().HostPath); !os.IsNotExist(err) {
			t.Errorf("%s: copy left on the host: %v", l.Snapshot().Name, err)
		}
		f.must(l.Release(f.ctx)) // a second Release does nothing
		f.must(l.Keep(f.ctx))    // nor Keep after the end
	}
	if _, ok := f.snapshot("snapshot_for_backup.2"); !ok {
		t.Error("the administrator's snapshot went with the leases")
	}
}

// TestLeaseOwners (issue 12 item 3): a lease releases only its own owner's
// lock, and every lease has a lock of its own (a second lease under the
// same owner name locks as owner#2). A snapshot the lease made that another owner also locked is not
// deleted (Release says why); a held (existing) snapshot is unlocked and
// kept; Acquire refuses an empty owner.
func TestLeaseOwners(t *testing.T) {
	f := newLeaseFixture(t)
	var namer SnapshotNamer
	if _, err := Acquire(f.ctx, f.svc, f.volume(), &namer, ""); err == nil {
		t.Fatal("Acquire without an owner succeeded")
	}
	a, err := Acquire(f.ctx, f.svc, f.volume(), &namer, "job-a")
	f.must(err)
	name := a.Snapshot().Name
	_, err = f.svc.LockSnapshotWith(f.ctx, "vs1", "vol1", name, "admin", storage.LockOptions{Persistent: true})
	f.must(err)
	if err := a.Release(f.ctx); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("Release of a snapshot another owner holds: %v, want ErrLocked", err)
	}
	if p, ok := f.snapshot(name); !ok || !slices.Equal(p.Owners, []string{"admin"}) {
		t.Fatalf("after the release: %+v %v", p, ok)
	}

	nightly, err := f.svc.CreateSnapshot(f.ctx, "vs1", "vol1", "nightly")
	f.must(err)
	h1, err := Hold(f.ctx, f.svc, nightly, "job-b")
	f.must(err)
	h2, err := Hold(f.ctx, f.svc, nightly, "job-c")
	f.must(err)
	if h1.Made() || !slices.Equal(h2.Snapshot().Owners, []string{"job-b", "job-c"}) {
		t.Fatalf("held: made %v, owners %v", h1.Made(), h2.Snapshot().Owners)
	}
	// A second job under job-b's name gets a lock of its own.
	h3, err := Hold(f.ctx, f.svc, nightly, "job-b")
	f.must(err)
	if h3.Owner() != "job-b#2" || !slices.Equal(h3.Snapshot().Owners, []string{"job-b", "job-c", "job-b#2"}) {
		t.Fatalf("the second job-b: owner %q, owners %v", h3.Owner(), h3.Snapshot().Owners)
	}
	f.must(h1.Release(f.ctx))
	if p, ok := f.snapshot("nightly"); !ok || !slices.Equal(p.Owners, []string{"job-c", "job-b#2"}) {
		t.Fatalf("after job-b's release: %+v %v", p, ok)
	}
	f.must(h3.Release(f.ctx))
	f.must(h2.Release(f.ctx))
	if p, ok := f.snapshot("nightly"); !ok || p.Locked() {
		t.Fatalf("a held snapshot after its last release: %+v %v", p, ok)
	}
	if _, err := Hold(f.ctx, f.svc, storage.Snapshot{SVM: "vs1", Volume: "vol1", Name: "gone"}, "job-d"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Hold of a missing snapshot: %v", err)
	}
}

// TestLeaseKeepSurvivesRestart (D12; issue 12 item 3): a kept lease's
// snapshot and lock survive the stale-lock recovery of the next start,
// Resume takes it up again and its Release then deletes the snapshot; a
// lease that was neither kept nor released is recovered by that start.
func TestLeaseKeepSurvivesRestart(t *testing.T) {
	f := newLeaseFixture(t)
	_, err := f.svc.StartIncarnation(f.ctx)
	f.must(err)
	var namer SnapshotNamer
	kept, err := Acquire(f.ctx, f.svc, f.volume(), &namer, "restartable:1")
	f.must(err)
	lost, err := Acquire(f.ctx, f.svc, f.volume(), &namer, "dump:/vs1/vol1")
	f.must(err)
	f.must(kept.Keep(f.ctx))
	f.must(kept.Release(f.ctx)) // ended by Keep: nothing happens
	if p, ok := f.snapshot(kept.Snapshot().Name); !ok || !slices.Equal(p.Owners, []string{"restartable:1"}) || p.LockIncarnations != nil {
		t.Fatalf("kept snapshot: %+v %v", p, ok)
	}
	f.close()
	r := f.restart()
	if len(r.Unlocked) != 1 || r.Unlocked[0].Owner != "dump:/vs1/vol1" || !slices.Equal(r.Deleted, []string{"vs1/vol1/" + lost.Snapshot().Name}) {
		t.Fatalf("recovery at start: %+v", r)
	}
	if _, err := Resume(f.ctx, f.svc, "vs1", "vol1", kept.Snapshot().Name, "someone-else"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Resume by another owner: %v", err)
	}
	again, err := Resume(f.ctx, f.svc, "vs1", "vol1", kept.Snapshot().Name, "restartable:1")
	f.must(err)
	if !again.Made() || again.Snapshot().HostPath != kept.Snapshot().HostPath {
		t.Fatalf("resumed lease: made %v, %+v", again.Made(), again.Snapshot())
	}
	f.must(again.Release(f.ctx))
	if _, ok := f.snapshot(kept.Snapshot().Name); ok {
		t.Fatal("the kept snapshot is left after the resumed lease's Release")
	}
}

// leaseHolderEnv names the catalog a helper process of
// TestLeaseKilledHolder takes its leases in.
const leaseHolderEnv = "TAPESTRY_TEST_LEASE_HOLDER"

// TestLeaseKilledHolder (D1, D12; issue 12 item 3): a process that holds
// leases is killed (SIGKILL: no Release runs). The next start over the
// same catalog deletes the snapshot its unkept lease made, unlocks the
// existing snapshot it held, and keeps the kept lease's snapshot and lock.
func TestLeaseKilledHolder(t *testing.T) {
	if p := os.Getenv(leaseHolderEnv); p != "" {
		holdLeases(p)
		return
	}
	f := newLeaseFixture(t)
	_, err := f.svc.CreateSnapshot(f.ctx, "vs1", "vol1", "nightly")
	f.must(err)
	f.close()

	ctx, cancel := context.WithTimeout(f.ctx, 2*time.Minute) // hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLeaseKilledHolder$")
	cmd.Env = append(os.Environ(), leaseHolderEnv+"="+f.path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	f.must(err)
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	f.must(err)
	f.must(cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("holder: %q, %v", line, err)
	}
	f.must(cmd.Process.Kill())
	_ = cmd.Wait()

	r := f.restart()
	owners := func(ls []storage.StaleLock) []string {
		var o []string
		for _, l := range ls {
			o = append(o, l.Snapshot+"="+l.Owner)
		}
		slices.Sort(o)
		return o
	}
	wantUnlocked := []string{"nightly=dump:/vs1/vol1/.snapshot/nightly", "snapshot_for_backup.0=dump:/vs1/vol1"}
	if got := owners(r.Unlocked); !slices.Equal(got, wantUnlocked) || !slices.Equal(r.Deleted, []string{"vs1/vol1/snapshot_for_backup.0"}) || len(r.Failed) != 0 {
		t.Fatalf("recovery after the kill: unlocked %v deleted %v failed %v", got, r.Deleted, r.Failed)
	}
	if _, err := os.Lstat(filepath.Join(f.data, ".snapshot", "snapshot_for_backup.0")); !os.IsNotExist(err) {
		t.Errorf("the killed job's snapshot copy is still on the host: %v", err)
	}
	if p, ok := f.snapshot("nightly"); !ok || p.Locked() {
		t.Errorf("nightly after the recovery: %+v %v", p, ok)
	}
	p, ok := f.snapshot("snapshot_for_backup.1")
	if !ok || !slices.Equal(p.Owners, []string{"restartable:7"}) {
		t.Fatalf("the kept lease's snapshot after the recovery: %+v %v", p, ok)
	}
	l, err := Resume(f.ctx, f.svc, "vs1", "vol1", p.Name, "restartable:7")
	f.must(err)
	f.must(l.Release(f.ctx))
	if _, ok := f.snapshot(p.Name); ok {
		t.Error("the kept snapshot is left after its resumed lease's Release")
	}
}

// holdLeases is the killed process of TestLeaseKilledHolder: it starts an
// incarnation over the catalog at path, takes three leases (one kept),
// says "ready" and waits to be killed.
func holdLeases(path string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "lease holder:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	st, err := catalog.OpenBolt(path)
	if err != nil {
		fail(err)
	}
	svc := storage.New(st, storage.Options{})
	if _, err := svc.StartIncarnation(ctx); err != nil {
		fail(err)
	}
	vol, err := svc.GetVolume(ctx, "vs1", "vol1")
	if err != nil {
		fail(err)
	}
	var namer SnapshotNamer
	if _, err := Acquire(ctx, svc, vol, &namer, "dump:/vs1/vol1"); err != nil {
		fail(err)
	}
	kept, err := Acquire(ctx, svc, vol, &namer, "restartable:7")
	if err != nil {
		fail(err)
	}
	if err := kept.Keep(ctx); err != nil {
		fail(err)
	}
	nightly, err := svc.GetSnapshot(ctx, "vs1", "vol1", "nightly")
	if err != nil {
		fail(err)
	}
	if _, err := Hold(ctx, svc, nightly, "dump:/vs1/vol1/.snapshot/nightly"); err != nil {
		fail(err)
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until killed
	fail(errors.New("not killed"))
}
