package filedump

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// capabilityValue is a security.capability value (VFS_CAP_REVISION_2,
// effective) that grants CAP_NET_BIND_SERVICE.
func capabilityValue() []byte {
	var b bytes.Buffer
	for _, w := range []uint32{0x02000001, 1 << unix.CAP_NET_BIND_SERVICE, 0, 0, 0} {
		_ = binary.Write(&b, binary.LittleEndian, w)
	}
	return b.Bytes()
}

// D4, D8: file capabilities survive a trusted restore. The kernel removes
// security.capability when a file changes owner, so a restore that set the
// attributes before the owner lost the capability of every file not owned
// by the restoring user: here a small file (restored by the file workers),
// a large one, and a root-owned one, each compared with the source.
func TestCapabilitiesSurviveRestore(t *testing.T) {
	testutil.RequireRoot(t)
	src, dst := t.TempDir(), t.TempDir()
	capv := capabilityValue()
	files := []struct {
		name     string
		size     int
		uid, gid int
	}{
		{"small-user", 100, 1234, 1235},
		{"large-user", 300 << 10, 1234, 1235},
		{"small-root", 100, 0, 0},
	}
	for i, f := range files {
		p := filepath.Join(src, f.name)
		writeFile(t, p, bytes.Repeat([]byte{byte('a' + i)}, f.size), 0o755)
		must(t, os.Chown(p, f.uid, f.gid))
		if err := unix.Setxattr(p, xattrCapability, capv, 0); err != nil {
			t.Fatalf("setting %s on %s: %v", xattrCapability, f.name, err)
		}
	}
	svc := newCopyVolume(t, src)
	img := filepath.Join(t.TempDir(), "img")
	must(t, backupVolume(t, svc, img))
	restoreImage(t, img, dst, nil)
	for _, f := range files {
		want, got := allXattrs(t, filepath.Join(src, f.name)), allXattrs(t, filepath.Join(dst, f.name))
		if got[xattrCapability] != string(capv) || len(got) != len(want) {
			t.Errorf("%s: restored xattrs %q, want %q", f.name, got, want)
		}
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(dst, f.name), &st))
		if int(st.Uid) != f.uid || int(st.Gid) != f.gid || st.Mode&0o7777 != 0o755 || int(st.Size) != f.size {
			t.Errorf("%s: restored uid %d gid %d mode %o size %d", f.name, st.Uid, st.Gid, st.Mode&0o7777, st.Size)
		}
	}
	compareTrees(t, snapshotTree(t, src, ".snapshot"), snapshotTree(t, dst, "restore_symboltable"))
}

// newCopyVolume registers dir as /vs1/vol1 of a new storage service, with
// copy snapshots.
func newCopyVolume(t testing.TB, dir string) *storage.Service {
	t.Helper()
	ctx := t.Context()
	svc := storage.New(tempCatalog(t), storage.Options{})
	_, err := svc.Init(ctx, storage.InitOptions{})
	must(t, err)
	_, err = svc.CreateSVM(ctx, storage.SVMSpec{Name: "vs1"})
	must(t, err)
	_, err = svc.CreateVolume(ctx, storage.VolumeSpec{Name: "vol1", SVM: "vs1", HostPath: dir, SnapshotProvider: "copy"})
	must(t, err)
	return svc
}
