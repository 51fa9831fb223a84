package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// TestResolveVolumeChecks (N15, D14; issue 12 item 3): Resolve maps a
// backup path onto the host and refuses, with the specification's
// messages, a backup of a restricted volume ("Dumps temporarily disabled
// on volume, try again"), of an offline volume or one whose directory is
// gone ("Volume is temporarily in a transitional state"), a restore into a
// snapshot or a DP volume ("Destination volume is read-only") or into an
// offline volume; paths that do not resolve give the storage errors.
func TestResolveVolumeChecks(t *testing.T) {
	f := newLeaseFixture(t)
	_, err := f.svc.CreateQtree(f.ctx, storage.QtreeSpec{Name: "q1", SVM: "vs1", Volume: "vol1"})
	f.must(err)
	_, err = f.svc.CreateSnapshot(f.ctx, "vs1", "vol1", "nightly")
	f.must(err)
	dp := filepath.Join(t.TempDir(), "dp1")
	f.must(os.Mkdir(dp, 0o755))
	_, err = f.svc.CreateVolume(f.ctx, storage.VolumeSpec{Name: "dp1", SVM: "vs1", HostPath: dp, Type: storage.TypeDP, SnapshotProvider: "copy"})
	f.must(err)

	loc, err := Resolve(f.ctx, f.svc, "/vs1/vol1/q1/sub", ReadFiles)
	f.must(err)
	if loc.Volume.Name != "vol1" || loc.Qtree == nil || loc.Qtree.Name != "q1" || loc.RelPath != "q1/sub" || loc.HostPath != filepath.Join(f.data, "q1", "sub") {
		t.Fatalf("resolved %+v", loc)
	}
	if loc, err = Resolve(f.ctx, f.svc, "/vs1/vol1/.snapshot/nightly", ReadFiles); err != nil || loc.Snapshot == nil || loc.Snapshot.Name != "nightly" {
		t.Fatalf("a snapshot to back up: %+v, %v", loc, err)
	}
	if _, err = Resolve(f.ctx, f.svc, "/vs1/dp1", ReadFiles); err != nil {
		t.Fatalf("a DP volume to back up: %v", err)
	}
	if loc, err = Resolve(f.ctx, f.svc, "/vs1/vol1/new/dir", WriteFiles); err != nil || loc.HostPath != filepath.Join(f.data, "new", "dir") {
		t.Fatalf("a restore destination: %+v, %v", loc, err)
	}

	refused := func(path string, a Access, want string) {
		t.Helper()
		_, err := Resolve(f.ctx, f.svc, path, a)
		var e *Error
		if !errors.As(err, &e) || e.Msg != want || Message(err) != want {
			t.Errorf("Resolve(%s, %d): %v, want %q", path, a, err, want)
		}
	}
	refused("/vs1/vol1/.snapshot/nightly", WriteFiles, "Destination volume is read-only")
	refused("/vs1/dp1/x", WriteFiles, "Destination volume is read-only")
	state := func(s storage.VolumeState) {
		t.Helper()
		_, err := f.svc.SetVolumeState(f.ctx, "vs1", "vol1", s)
		f.must(err)
	}
	state(storage.StateRestricted)
	refused("/vs1/vol1", ReadFiles, "Dumps temporarily disabled on volume, try again")
	refused("/vs1/vol1/q1", WriteFiles, "Volume is temporarily in a transitional state")
	state(storage.StateOffline)
	refused("/vs1/vol1", ReadFiles, "Volume is temporarily in a transitional state")
	refused("/vs1/vol1", WriteFiles, "Volume is temporarily in a transitional state")
	state(storage.StateOnline)
	f.must(os.Rename(f.data, f.data+".away"))
	refused("/vs1/vol1", ReadFiles, "Volume is temporarily in a transitional state")
	// A restore reports the path that does not resolve (as before).
	if _, err := Resolve(f.ctx, f.svc, "/vs1/vol1", WriteFiles); err == nil || Message(err) == MsgTransitional {
		t.Errorf("restore into a volume whose directory is gone: %v", err)
	}
	f.must(os.Rename(f.data+".away", f.data))

	for _, c := range []struct {
		path string
		want error
	}{
		{"vs1/vol1", storage.ErrInvalidArgument},
		{"/vs1", storage.ErrInvalidArgument},
		{"/vs1/vol1/../dp1", storage.ErrInvalidArgument},
		{"/vs1/nosuch", storage.ErrNotFound},
		{"/vs9/vol1", storage.ErrNotFound},
		{"/vs1/vol1/.snapshot/nosuch", storage.ErrNotFound},
	} {
		for _, a := range []Access{ReadFiles, WriteFiles} {
			if _, err := Resolve(f.ctx, f.svc, c.path, a); !errors.Is(err, c.want) {
				t.Errorf("Resolve(%q, %d): %v, want %v", c.path, a, err, c.want)
			}
		}
	}
	// A symbolic link out of the volume is not followed.
	f.must(os.Symlink(t.TempDir(), filepath.Join(f.data, "out")))
	if _, err := Resolve(f.ctx, f.svc, "/vs1/vol1/out/x", WriteFiles); !errors.Is(err, storage.ErrInvalidArgument) {
		t.Errorf("a path through a link out of the volume: %v", err)
	}
	if _, err := Resolve(f.ctx, f.svc, "/vs1/vol1", Access(99)); err == nil {
		t.Error("an unknown access was accepted")
	}
}
