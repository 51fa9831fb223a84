package storage

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"golang.org/x/sys/unix"
)

// V1 on real file systems: "auto" picks btrfs on a btrfs subvolume, reflink
// on XFS with reflink, copy on ext4; snapshots made through the Service
// are frozen copies, reachable by Resolve and removed by delete; the LUN
// flag is stored as an xattr.
func TestRealFileSystems(t *testing.T) {
	cases := []struct {
		fstype string
		sizeMB int
		mkfs   []string
		want   string
	}{
		{"btrfs", 300, nil, "btrfs"},
		{"xfs", 512, []string{"-m", "reflink=1"}, "reflink"},
		{"ext4", 64, nil, "copy"},
	}
	for _, c := range cases {
		t.Run(c.fstype, func(t *testing.T) {
			mnt := testutil.LoopFS(t, c.fstype, c.sizeMB, c.mkfs...)
			e := &env{t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), "c.db")}
			e.open() // DefaultProviders
			if _, err := e.svc.Init(e.ctx, InitOptions{}); err != nil {
				t.Fatal(err)
			}
			e.svm("vs1")
			writeFile(t, filepath.Join(mnt, "dir", "file"), "version 1")
			v, err := e.svc.CreateVolume(e.ctx, VolumeSpec{Name: "vol1", SVM: "vs1", HostPath: mnt, SnapshotProvider: "auto"})
			if err != nil {
				t.Fatal(err)
			}
			if v.SnapshotProvider != c.want {
				t.Fatalf("auto picked %q, want %q", v.SnapshotProvider, c.want)
			}
			p, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "snap1")
			if err != nil {
				t.Fatal(err)
			}
			if p.Provider != c.want {
				t.Errorf("snapshot provider %q", p.Provider)
			}
			writeFile(t, filepath.Join(mnt, "dir", "file"), "version 2")
			loc, err := e.svc.Resolve(e.ctx, "/vs1/vol1/.snapshot/snap1/dir/file")
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(loc.HostPath); err != nil || string(b) != "version 1" {
				t.Errorf("snapshot file %q %v", b, err)
			}
			im, err := e.svc.SnapshotIdentity(e.ctx, "vs1", "vol1", "snap1")
			if err != nil {
				t.Fatal(err)
			}
			var snapSt, liveSt unix.Stat_t
			if err := unix.Lstat(loc.HostPath, &snapSt); err != nil {
				t.Fatal(err)
			}
			if err := unix.Lstat(filepath.Join(mnt, "dir", "file"), &liveSt); err != nil {
				t.Fatal(err)
			}
			if live, ok := im.Live(snapSt.Ino); !ok || live != liveSt.Ino {
				t.Errorf("identity of snapshot inode %d: %d %v, want %d", snapSt.Ino, live, ok, liveSt.Ino)
			}
			if err := e.svc.SetVolumeLUN(e.ctx, "vs1", "vol1", "dir/file", true); err != nil {
				t.Fatal(err)
			}
			if on, err := IsLUN(filepath.Join(mnt, "dir", "file")); err != nil || !on {
				t.Errorf("LUN flag %v %v", on, err)
			}
			if _, err := e.svc.LockSnapshot(e.ctx, "vs1", "vol1", "snap1", "test"); err != nil {
				t.Fatal(err)
			}
			if err := e.svc.DeleteSnapshot(e.ctx, "vs1", "vol1", "snap1"); !isKind(err, ErrLocked) {
				t.Errorf("delete locked: %v", err)
			}
			if _, err := e.svc.UnlockSnapshot(e.ctx, "vs1", "vol1", "snap1", "test"); err != nil {
				t.Fatal(err)
			}
			if err := e.svc.DeleteSnapshot(e.ctx, "vs1", "vol1", "snap1"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(p.HostPath); !os.IsNotExist(err) {
				t.Errorf("snapshot still on disk: %v", err)
			}
			sp, err := e.svc.VolumeSpace(e.ctx, "vs1", "vol1")
			if err != nil || sp.Total < 32<<20 || sp.Total > uint64(c.sizeMB)<<20 {
				t.Errorf("space %+v %v", sp, err)
			}
		})
	}
}
