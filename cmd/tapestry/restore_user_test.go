package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// userEnt is one inode of userImage.
type userEnt struct {
	name string
	in   dump.Inode
	data string
}

// userImage writes an image with a block and a character device, set-ID
// files owned by root with any modes, and files of ids the user is not.
func userImage(t *testing.T, p string) map[string]userEnt {
	t.Helper()
	mt := time.Unix(1700000000, 0)
	ents := []userEnt{
		{"sda", dump.Inode{Mode: dump.ModeBlk | 0o666, Rdev: uint32(unix.Mkdev(8, 0))}, ""},
		{"mem", dump.Inode{Mode: dump.ModeChr | 0o666, Rdev: uint32(unix.Mkdev(1, 1))}, ""},
		{"suid-root", dump.Inode{Mode: dump.ModeReg | 0o4755}, "#!/bin/sh\nid\n"},
		{"sgid-any", dump.Inode{Mode: dump.ModeReg | 0o6777, UID: 70000, GID: 70001}, "any"},
		{"mine", dump.Inode{Mode: dump.ModeReg | 0o640, UID: 4242, GID: 4242}, "the user's own"},
		{"root-file", dump.Inode{Mode: dump.ModeReg | 0o644}, "root's"},
	}
	var buf bytes.Buffer
	w, err := dump.NewWriter(&buf, dump.Options{Date: mt})
	if err != nil {
		t.Fatal(err)
	}
	used := dump.NewBitmap(32)
	root := []dump.DirEntry{{Ino: 2, Type: dump.DTDir, Name: "."}, {Ino: 2, Type: dump.DTDir, Name: ".."}}
	used.Set(2)
	out := map[string]userEnt{}
	for i := range ents {
		e := &ents[i]
		e.in.Ino, e.in.Nlink, e.in.Size = uint32(10+i), 1, int64(len(e.data))
		e.in.Mtime, e.in.Atime, e.in.Ctime = mt, mt, mt
		used.Set(e.in.Ino)
		root = append(root, dump.DirEntry{Ino: e.in.Ino, Type: dump.DTFromMode(e.in.Mode), Name: e.name})
		out[e.name] = *e
	}
	if err := w.WriteMaps(used, used); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteDir(&dump.Inode{Ino: 2, Mode: dump.ModeDir | 0o755, Nlink: 2, Mtime: mt, Atime: mt, Ctime: mt}, nil, root); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		in := e.in
		var err error
		if in.Mode&dump.ModeFmt == dump.ModeReg {
			_, err = w.WriteFile(&in, nil, strings.NewReader(e.data))
		} else {
			_, err = w.WriteFile(&in, nil, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// Issue 10 item 6: tapestry restore run by a non-root user (uid 4242, the
// real binary under syscall credentials) creates no device nodes (an error
// naming each, the rest restored), clears the set-ID bits, and gives every
// file to the user, with the data, permission bits and times of the image.
func TestRestoreAsNonRootUser(t *testing.T) {
	testutil.Require(t, os.Geteuid() == 0, "needs root to run the binary as another user")
	bin := buildAll(t)
	work, err := os.MkdirTemp("", "tapestry-user-restore-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	dst := filepath.Join(work, "dst")
	for _, d := range []string{work, dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dst, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(work, "tapestry")
	b, err := os.ReadFile(filepath.Join(bin, "tapestry"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(work, "img.dump")
	want := userImage(t, img)

	cmd := exec.Command(exe, "restore", "-r", "-f", img)
	cmd.Dir = dst
	cmd.Env = []string{"HOME=" + dst}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4242, Gid: 4242, Groups: []uint32{}}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if runErr == nil || !strings.Contains(stderr.String(), "2 names could not be restored") {
		t.Errorf("restore: %v, stderr:\n%s", runErr, stderr.String())
	}
	for name, e := range want {
		in := e.in
		p := filepath.Join(dst, name)
		if typ := in.Mode & dump.ModeFmt; typ == dump.ModeBlk || typ == dump.ModeChr {
			if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("device %s created (%v)", name, err)
			}
			if !strings.Contains(stderr.String(), "restore: "+name+": ") || !strings.Contains(stderr.String(), "not created for user 4242") {
				t.Errorf("no error names device %s:\n%s", name, stderr.String())
			}
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if st.Mode != in.Mode&^0o6000 || st.Uid != 4242 || st.Gid != 4242 {
			t.Errorf("%s: mode %#o owner %d:%d, want %#o 4242:4242", name, st.Mode, st.Uid, st.Gid, in.Mode&^0o6000)
		}
		if got := time.Unix(st.Mtim.Unix()); !got.Equal(in.Mtime) {
			t.Errorf("%s: mtime %v, want %v", name, got, in.Mtime)
		}
		if data, err := os.ReadFile(p); err != nil || string(data) != e.data {
			t.Errorf("%s: data %q, want %q (%v)", name, data, e.data, err)
		}
	}
}
