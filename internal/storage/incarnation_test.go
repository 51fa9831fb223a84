package storage

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// Issue 11 item 9: the locks a daemon's backups hold carry its incarnation;
// the next start releases them, deletes the snapshots the backups made for
// themselves and leaves persistent (administrator) locks, locks the keep
// seam keeps and locks of the running incarnation alone.
func TestReleaseStaleLocks(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	e.volume("vs1", "vol1")
	first, err := e.svc.StartIncarnation(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	auto, err := e.svc.CreateSnapshotWith(e.ctx, "vs1", "vol1", "snapshot_for_backup.0", SnapshotOptions{Owner: "dump:/vs1/vol1"})
	if err != nil {
		t.Fatal(err)
	}
	if auto.LockIncarnations["dump:/vs1/vol1"] != first.ID || auto.CreatedFor != "dump:/vs1/vol1" {
		t.Fatalf("auto snapshot record %+v", auto)
	}
	for _, n := range []string{"nightly", "ctx"} {
		if _, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", n); err != nil {
			t.Fatal(err)
		}
	}
	lock := func(name, owner string, persistent bool) {
		t.Helper()
		if _, err := e.svc.LockSnapshotWith(e.ctx, "vs1", "vol1", name, owner, LockOptions{Persistent: persistent}); err != nil {
			t.Fatal(err)
		}
	}
	lock("nightly", "dump:/vs1/vol1/.snapshot/nightly", false)
	lock("nightly", "admin-hold", true)
	lock("ctx", "restartable:1", false)

	// The daemon is killed; the next one starts.
	e.reopen()
	second, err := e.svc.StartIncarnation(e.ctx)
	if err != nil || second.ID == first.ID || second.Boot != first.Boot+1 {
		t.Fatalf("second incarnation %+v after %+v: %v", second, first, err)
	}
	lock("ctx", "dump:now", false) // taken by the running incarnation
	keep := func(p Snapshot, owner string) bool { return strings.HasPrefix(owner, "restartable:") }
	r, err := e.svc.ReleaseStaleLocks(e.ctx, keep)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Unlocked) != 2 || !slices.Equal(r.Deleted, []string{"vs1/vol1/snapshot_for_backup.0"}) || len(r.Failed) != 0 {
		t.Fatalf("released %+v", r)
	}
	if _, err := os.Lstat(auto.HostPath); !os.IsNotExist(err) {
		t.Errorf("the auto snapshot's copy is still on the host: %v", err)
	}
	snaps, err := e.svc.ListSnapshots(e.ctx, "vs1", "vol1")
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string][]string{}
	for _, p := range snaps {
		owners[p.Name] = p.Owners
	}
	if len(snaps) != 2 || !slices.Equal(owners["nightly"], []string{"admin-hold"}) || !slices.Equal(owners["ctx"], []string{"restartable:1", "dump:now"}) {
		t.Fatalf("snapshots after the release: %+v", owners)
	}
	// Released again by the same incarnation: nothing more.
	if r, err := e.svc.ReleaseStaleLocks(e.ctx, keep); err != nil || len(r.Unlocked)+len(r.Deleted) != 0 {
		t.Fatalf("second release %+v %v", r, err)
	}
}

// Issue 12 item 3 (D12): PersistLock turns a lock of the running daemon
// into a persistent one, which the next start keeps; it refuses an owner
// that holds no lock.
func TestPersistLock(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	e.volume("vs1", "vol1")
	if _, err := e.svc.StartIncarnation(e.ctx); err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.CreateSnapshotWith(e.ctx, "vs1", "vol1", "snapshot_for_backup.0", SnapshotOptions{Owner: "restartable:1"})
	if err != nil || p.LockIncarnations["restartable:1"] == "" {
		t.Fatalf("create: %+v %v", p, err)
	}
	e.unchanged("an exclusive lock the owner holds", ErrExists, "already locked by", func() error {
		_, err := e.svc.LockSnapshotWith(e.ctx, "vs1", "vol1", "snapshot_for_backup.0", "restartable:1", LockOptions{Exclusive: true})
		return err
	})
	e.unchanged("persist by a non-owner", ErrNotFound, "is not locked by", func() error {
		_, err := e.svc.PersistLock(e.ctx, "vs1", "vol1", "snapshot_for_backup.0", "other")
		return err
	})
	if p, err = e.svc.PersistLock(e.ctx, "vs1", "vol1", "snapshot_for_backup.0", "restartable:1"); err != nil || p.LockIncarnations != nil {
		t.Fatalf("persist: %+v %v", p, err)
	}
	e.reopen()
	if _, err := e.svc.StartIncarnation(e.ctx); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.ReleaseStaleLocks(e.ctx, nil)
	if err != nil || len(r.Unlocked)+len(r.Deleted) != 0 {
		t.Fatalf("release after the restart: %+v %v", r, err)
	}
	if p, err := e.svc.GetSnapshot(e.ctx, "vs1", "vol1", "snapshot_for_backup.0"); err != nil || !slices.Equal(p.Owners, []string{"restartable:1"}) {
		t.Fatalf("after the restart: %+v %v", p, err)
	}
}
