package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
)

// V1: snapshot copies through the volume's provider: create, list, lock,
// refuse deleting a locked one, delete.
func TestSnapshots(t *testing.T) {
	clk := fixedClock()
	e := newEnv(t, Options{MaxSnapshots: 3, Now: clk.now})
	e.svm("vs1")
	v := e.volume("vs1", "vol1")
	writeFile(t, filepath.Join(v.HostPath, "a", "f.txt"), "before")

	s1, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "snap1")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(v.HostPath, snapshot.Dir, "snap1")
	if s1.HostPath != want || s1.Provider != "testcopy" || s1.Files != 1 || s1.Bytes != 6 || s1.Locked() {
		t.Errorf("snapshot %+v", s1)
	}
	writeFile(t, filepath.Join(v.HostPath, "a", "f.txt"), "after")
	if b, _ := os.ReadFile(filepath.Join(want, "a", "f.txt")); string(b) != "before" {
		t.Errorf("snapshot content %q", b)
	}
	clk.advance()
	if _, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "snap0"); err != nil {
		t.Fatal(err)
	}

	bad := []struct {
		name, svm, vol, snap string
		kind                 error
		msg                  string
	}{
		{"duplicate", "vs1", "vol1", "snap1", ErrExists, `Snapshot copy "snap1" of volume "vol1" in Vserver "vs1" already exists`},
		{"unknown volume", "vs1", "vol9", "s", ErrNotFound, `volume "vol9" in Vserver "vs1" does not exist`},
		{"unknown SVM", "vs9", "vol1", "s", ErrNotFound, `Vserver "vs9" does not exist`},
		{"slash", "vs1", "vol1", "a/b", ErrInvalidArgument, ""},
		{"dot", "vs1", "vol1", ".hidden", ErrInvalidArgument, ""},
		{"dotdot", "vs1", "vol1", "..", ErrInvalidArgument, ""},
		{"space", "vs1", "vol1", "a b", ErrInvalidArgument, ""},
		{"empty", "vs1", "vol1", "", ErrInvalidArgument, ""},
		{"newline", "vs1", "vol1", "a\nb", ErrInvalidArgument, ""},
		{"too long", "vs1", "vol1", strings.Repeat("s", 241), ErrInvalidArgument, ""},
	}
	for _, c := range bad {
		e.unchanged(c.name, c.kind, c.msg, func() error {
			_, err := e.svc.CreateSnapshot(e.ctx, c.svm, c.vol, c.snap)
			return err
		})
	}
	// Provider failure: nothing recorded.
	e.prov.fail = errors.New("disk on fire")
	e.unchanged("provider fails", nil, "disk on fire", func() error {
		_, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "snap2")
		return err
	})
	e.prov.fail = nil
	if _, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "snap2"); err != nil {
		t.Fatal(err)
	}
	e.unchanged("limit", ErrLimit, "maximum of 3", func() error {
		_, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "snap3")
		return err
	})
	if _, err := os.Stat(filepath.Join(v.HostPath, snapshot.Dir, "snap3")); !os.IsNotExist(err) {
		t.Errorf("refused snapshot exists on the host: %v", err)
	}
	list, err := e.svc.ListSnapshots(e.ctx, "vs1", "vol1")
	if err != nil || len(list) != 3 || list[0].Name != "snap1" || list[1].Name != "snap0" || list[2].Name != "snap2" {
		t.Errorf("list (oldest first) = %+v, %v", list, err)
	}

	// Locks.
	if _, err := e.svc.LockSnapshot(e.ctx, "vs1", "vol1", "snap1", "rbe:ctx1"); err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.LockSnapshot(e.ctx, "vs1", "vol1", "snap1", "rbe:ctx1")
	if err != nil || len(p.Owners) != 1 {
		t.Errorf("second lock by the same owner: %+v %v", p, err)
	}
	if _, err := e.svc.LockSnapshot(e.ctx, "vs1", "vol1", "snap1", "backup:7"); err != nil {
		t.Fatal(err)
	}
	e.unchanged("delete locked", ErrLocked, "locked", func() error { return e.svc.DeleteSnapshot(e.ctx, "vs1", "vol1", "snap1") })
	if _, err := os.Stat(want); err != nil {
		t.Errorf("refused delete removed the copy: %v", err)
	}
	e.unchanged("unlock by stranger", ErrNotFound, "not locked by", func() error {
		_, err := e.svc.UnlockSnapshot(e.ctx, "vs1", "vol1", "snap1", "someone")
		return err
	})
	e.unchanged("lock without owner", ErrInvalidArgument, "", func() error {
		_, err := e.svc.LockSnapshot(e.ctx, "vs1", "vol1", "snap1", "")
		return err
	})
	e.unchanged("lock unknown", ErrNotFound, `Snapshot copy "nope"`, func() error {
		_, err := e.svc.LockSnapshot(e.ctx, "vs1", "vol1", "nope", "x")
		return err
	})
	e.reopen()
	p, err = e.svc.GetSnapshot(e.ctx, "vs1", "vol1", "snap1")
	if err != nil || !p.Locked() || len(p.Owners) != 2 {
		t.Fatalf("locks after reopen: %+v %v", p, err)
	}
	// A volume with snapshots cannot be deleted.
	if _, err := e.svc.SetVolumeState(e.ctx, "vs1", "vol1", StateOffline); err != nil {
		t.Fatal(err)
	}
	e.unchanged("delete volume with snapshots", ErrInUse, "Snapshot copies", func() error { return e.svc.DeleteVolume(e.ctx, "vs1", "vol1") })
	e.unchanged("delete on offline volume", ErrInvalidState, "offline", func() error { return e.svc.DeleteSnapshot(e.ctx, "vs1", "vol1", "snap0") })
	if _, err := e.svc.SetVolumeState(e.ctx, "vs1", "vol1", StateOnline); err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"rbe:ctx1", "backup:7"} {
		if _, err := e.svc.UnlockSnapshot(e.ctx, "vs1", "vol1", "snap1", o); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.DeleteSnapshot(e.ctx, "vs1", "vol1", "snap1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(want); !os.IsNotExist(err) {
		t.Errorf("deleted snapshot still on the host: %v", err)
	}
	// A copy that vanished from the host only loses its record.
	if err := os.RemoveAll(filepath.Join(v.HostPath, snapshot.Dir, "snap0")); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteSnapshot(e.ctx, "vs1", "vol1", "snap0"); err != nil {
		t.Fatalf("delete of a vanished copy: %v", err)
	}
	e.unchanged("delete again", ErrNotFound, "does not exist", func() error { return e.svc.DeleteSnapshot(e.ctx, "vs1", "vol1", "snap0") })
	// DP volumes take no new snapshots.
	if _, err := e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{Type: ptr(TypeDP)}); err != nil {
		t.Fatal(err)
	}
	e.unchanged("create on DP", ErrReadOnly, "", func() error {
		_, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "snap5")
		return err
	})
}

// Concurrent creates of one name: exactly one wins, and the host holds
// exactly one copy.
func TestSnapshotConcurrentCreate(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	v := e.volume("vs1", "vol1")
	writeFile(t, filepath.Join(v.HostPath, "f"), "x")
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "same")
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrExists):
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d creates succeeded", ok)
	}
	// Distinct names in parallel all succeed.
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", fmt.Sprintf("s%d", i))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	list, _ := e.svc.ListSnapshots(e.ctx, "vs1", "vol1")
	if len(list) != 7 {
		t.Errorf("%d snapshots recorded", len(list))
	}
}

// The real copy provider of package snapshot, chosen by name.
func TestSnapshotRealCopyProvider(t *testing.T) {
	e := &env{t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), "c.db")}
	e.open() // Options{}: DefaultProviders
	if _, err := e.svc.Init(e.ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	e.svm("vs1")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "d", "f"), "hello")
	v, err := e.svc.CreateVolume(e.ctx, VolumeSpec{Name: "vol1", SVM: "vs1", HostPath: dir, SnapshotProvider: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	if v.SnapshotProvider != "copy" {
		t.Errorf("provider %q", v.SnapshotProvider)
	}
	p, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(p.HostPath, "d", "f")); err != nil || string(b) != "hello" {
		t.Errorf("copy content %q %v", b, err)
	}
	if err := e.svc.DeleteSnapshot(e.ctx, "vs1", "vol1", "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.HostPath); !os.IsNotExist(err) {
		t.Errorf("copy still there: %v", err)
	}
	// "auto" resolves to a concrete provider name at create time.
	dir2 := t.TempDir()
	v2, err := e.svc.CreateVolume(e.ctx, VolumeSpec{Name: "vol2", SVM: "vs1", HostPath: dir2})
	if err != nil {
		t.Fatal(err)
	}
	if v2.SnapshotProvider == "auto" || v2.SnapshotProvider == "" {
		t.Errorf("auto not resolved: %q", v2.SnapshotProvider)
	}
}

// D1, S4, D12: the engines' snapshot options.
func TestCreateSnapshotWith(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	v := e.volume("vs1", "vol1")
	writeFile(t, filepath.Join(v.HostPath, "f"), "x")
	if _, err := e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{Type: ptr(TypeDP)}); err != nil {
		t.Fatal(err)
	}
	e.unchanged("DP without option", ErrReadOnly, "read-only", func() error {
		_, err := e.svc.CreateSnapshotWith(e.ctx, "vs1", "vol1", "snapshot_for_backup.0", SnapshotOptions{})
		return err
	})
	p, err := e.svc.CreateSnapshotWith(e.ctx, "vs1", "vol1", "snapshot_for_backup.0", SnapshotOptions{ReadOnlyOK: true, Owner: "dump:1"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Locked() || p.Owners[0] != "dump:1" {
		t.Errorf("not locked at creation: %+v", p)
	}
	e.unchanged("delete locked at creation", ErrLocked, "", func() error {
		return e.svc.DeleteSnapshot(e.ctx, "vs1", "vol1", "snapshot_for_backup.0")
	})
	if _, err := e.svc.SetVolumeState(e.ctx, "vs1", "vol1", StateRestricted); err != nil {
		t.Fatal(err)
	}
	e.unchanged("restricted without option", ErrInvalidState, "restricted", func() error {
		_, err := e.svc.CreateSnapshotWith(e.ctx, "vs1", "vol1", "s2", SnapshotOptions{ReadOnlyOK: true})
		return err
	})
	if _, err := e.svc.CreateSnapshotWith(e.ctx, "vs1", "vol1", "s2", SnapshotOptions{ReadOnlyOK: true, RestrictedOK: true}); err != nil {
		t.Errorf("restricted with option: %v", err)
	}
	if _, err := e.svc.SetVolumeState(e.ctx, "vs1", "vol1", StateOffline); err != nil {
		t.Fatal(err)
	}
	e.unchanged("offline", ErrInvalidState, "offline", func() error {
		_, err := e.svc.CreateSnapshotWith(e.ctx, "vs1", "vol1", "s3", SnapshotOptions{ReadOnlyOK: true, RestrictedOK: true})
		return err
	})
}

// A copy left on the host without a record (a crash between making and
// recording it) is removed; a record without a copy is reported.
func TestReconcileSnapshots(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	v := e.volume("vs1", "vol1")
	writeFile(t, filepath.Join(v.HostPath, "f"), "x")
	for _, orphan := range []string{"snapshot_for_backup.0", "snapshot_for_backup.1"} {
		if _, err := e.prov.Create(e.ctx, v.HostPath, orphan); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "snapshot_for_backup.0"); err == nil {
		t.Fatal("create over an orphan copy succeeded")
	}
	kept, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "kept")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "gone")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(gone.HostPath); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.ReconcileSnapshots(e.ctx, "vs1", "vol1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Removed, []string{"snapshot_for_backup.0", "snapshot_for_backup.1"}) || !slices.Equal(r.Missing, []string{"gone"}) {
		t.Errorf("reconciled %+v", r)
	}
	if _, err := os.Stat(kept.HostPath); err != nil {
		t.Errorf("recorded copy removed: %v", err)
	}
	if _, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "snapshot_for_backup.0"); err != nil {
		t.Errorf("create after reconcile: %v", err)
	}
	if _, err := e.svc.SnapshotIdentity(e.ctx, "vs1", "vol1", "kept"); err == nil || !strings.Contains(err.Error(), "keeps no identity map") {
		t.Errorf("identity through the provider: %v", err)
	}
	if _, err := e.svc.SnapshotIdentity(e.ctx, "vs1", "vol1", "nope"); !isKind(err, ErrNotFound) {
		t.Errorf("identity of unknown snapshot: %v", err)
	}
}
