package filedump

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// TestSmallFilesOwnerModeAtCreate (issue 4, D8, D10): the file workers give
// a small file its mode at the create and leave its owner as created only
// when the kernel makes them exactly the image's. Into a destination whose
// directory is set-group-ID with another group, and into a kept directory
// with a default ACL that would narrow the mode, every file still ends with
// the image's owner, group, mode, xattrs, times and data, and hard links
// stay one inode.
func TestSmallFilesOwnerModeAtCreate(t *testing.T) {
	testutil.RequireRoot(t)
	setfacl := testutil.RequireTool(t, "setfacl")
	dst := testutil.LoopFS(t, "ext4", 64)
	must(t, os.Chown(dst, 0, 4321))
	must(t, unix.Chmod(dst, 0o2775))
	must(t, os.Mkdir(filepath.Join(dst, "acl"), 0o755))
	if out, err := exec.Command(setfacl, "-d", "-m", "u::rwx,g::---,o::---", filepath.Join(dst, "acl")).CombinedOutput(); err != nil {
		t.Fatalf("setfacl: %v: %s", err, out)
	}

	type file struct {
		name     string
		ino      uint32
		mode     uint32
		uid, gid uint32
		xattrs   []dump.Xattr
	}
	files := []file{
		{"plain", 10, 0o644, 0, 0, nil},
		{"private", 11, 0o600, 0, 0, nil},
		{"readonly", 12, 0o444, 0, 0, nil},
		{"setuid", 13, 0o4755, 0, 0, nil},
		{"owned", 14, 0o640, 1234, 5678, nil},
		{"wide", 15, 0o666, 0, 0, nil},
		{"xattr", 16, 0o644, 0, 0, []dump.Xattr{{Name: "user.k", Value: []byte("v")}}},
		{"acl/inner", 17, 0o644, 0, 0, nil},
		{"acl/owned", 18, 0o750, 99, 98, nil},
	}
	var buf bytes.Buffer
	w, err := dump.NewWriter(&buf, dump.Options{Date: time.Unix(1700000000, 0), NTREC: 1})
	must(t, err)
	used := dump.NewBitmap(32)
	for i := uint32(2); i < 20; i++ {
		used.Set(i)
	}
	must(t, w.WriteMaps(used, used))
	mtime := time.Unix(1600000000, 123456789)
	root := []dump.DirEntry{{Ino: 3, Type: dump.DTDir, Name: "acl"}, {Ino: 15, Type: dump.DTReg, Name: "wide-link"}}
	var inner []dump.DirEntry
	for _, f := range files {
		dir, base := filepath.Split(f.name)
		if dir == "" {
			root = append(root, dump.DirEntry{Ino: f.ino, Type: dump.DTReg, Name: base})
		} else {
			inner = append(inner, dump.DirEntry{Ino: f.ino, Type: dump.DTReg, Name: base})
		}
	}
	_, err = w.WriteDir(&dump.Inode{Ino: 2, Mode: dump.ModeDir | 0o2775, GID: 4321, Mtime: mtime}, nil, root)
	must(t, err)
	_, err = w.WriteDir(&dump.Inode{Ino: 3, Mode: dump.ModeDir | 0o755, Mtime: mtime}, nil, inner)
	must(t, err)
	for _, f := range files {
		data := strings.Repeat(f.name, 100)
		_, err = w.WriteFile(&dump.Inode{Ino: f.ino, Mode: dump.ModeReg | f.mode, Nlink: 1, UID: f.uid, GID: f.gid, Size: int64(len(data)), Mtime: mtime, Atime: mtime},
			f.xattrs, strings.NewReader(data))
		must(t, err)
	}
	must(t, w.Close())

	var bad []string
	_, err = Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(buf.Bytes()), Dest: dst, Env: Env{"FORCE": "Y"},
		OnName: func(n NameResult) {
			if n.Err != nil {
				bad = append(bad, n.Path+": "+n.Err.Error())
			}
		}})
	must(t, err)
	if len(bad) > 0 {
		t.Fatalf("names failed: %v", bad)
	}
	for _, f := range files {
		p := filepath.Join(dst, f.name)
		var st unix.Stat_t
		must(t, unix.Lstat(p, &st))
		if st.Mode&0o7777 != f.mode || st.Uid != f.uid || st.Gid != f.gid {
			t.Errorf("%s: mode %#o owner %d:%d, want %#o %d:%d", f.name, st.Mode&0o7777, st.Uid, st.Gid, f.mode, f.uid, f.gid)
		}
		if st.Mtim.Nano() != mtime.UnixNano() {
			t.Errorf("%s: mtime %v, want %v", f.name, time.Unix(st.Mtim.Unix()), mtime)
		}
		b, err := os.ReadFile(p)
		must(t, err)
		if string(b) != strings.Repeat(f.name, 100) {
			t.Errorf("%s: data differs", f.name)
		}
		for _, x := range f.xattrs {
			v := make([]byte, 64)
			n, err := unix.Lgetxattr(p, x.Name, v)
			if err != nil || string(v[:n]) != string(x.Value) {
				t.Errorf("%s: xattr %s = %q, %v", f.name, x.Name, v[:max(n, 0)], err)
			}
		}
	}
	var a, b unix.Stat_t
	must(t, unix.Lstat(filepath.Join(dst, "wide"), &a))
	must(t, unix.Lstat(filepath.Join(dst, "wide-link"), &b))
	if a.Ino != b.Ino {
		t.Errorf("wide and wide-link are inodes %d and %d, not one", a.Ino, b.Ino)
	}
}
