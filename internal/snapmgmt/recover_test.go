package snapmgmt

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
	"golang.org/x/sys/unix"
)

// fill makes a tree of every kind of entry with owners, modes, extended
// attributes, hard links and old times.
func fill(t *testing.T, root string) {
	t.Helper()
	old := time.Date(2024, 3, 4, 5, 6, 7, 891011, time.UTC)
	write(t, filepath.Join(root, "dir", "file"), "version 1")
	write(t, filepath.Join(root, "dir", "sub", "deep"), "deep file")
	write(t, filepath.Join(root, "big"), string(bytes.Repeat([]byte("0123456789abcdef"), 1<<16)))
	write(t, filepath.Join(root, "untouched"), string(bytes.Repeat([]byte("fedcba9876543210"), 1<<16)))
	write(t, filepath.Join(root, "setuid"), "#!/bin/sh\n")
	write(t, filepath.Join(root, "becomes-dir"), "a file first")
	must(t, os.Mkdir(filepath.Join(root, "becomes-file"), 0o750))
	must(t, os.Link(filepath.Join(root, "dir", "file"), filepath.Join(root, "hardlink")))
	must(t, os.Symlink("dir/file", filepath.Join(root, "symlink")))
	must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o640))
	must(t, unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, os.Chown(filepath.Join(root, "setuid"), 1234, 5678))
	must(t, os.Chmod(filepath.Join(root, "setuid"), 0o4755|os.ModeSetuid))
	must(t, unix.Setxattr(filepath.Join(root, "dir", "file"), "user.note", []byte("kept"), 0))
	must(t, unix.Lchown(filepath.Join(root, "symlink"), 42, 43))
	for _, p := range []string{"dir/file", "big", "dir/sub/deep", "setuid", "dir/sub", "dir"} {
		must(t, os.Chtimes(filepath.Join(root, p), old, old))
	}
}

// change damages the tree in every way a recovery must undo.
func change(t *testing.T, root string) {
	t.Helper()
	p := func(s string) string { return filepath.Join(root, s) }
	write(t, p("dir/file.tmp"), "VERSION 2") // same size, new content
	must(t, os.Rename(p("dir/file.tmp"), p("dir/new-name")))
	must(t, os.Remove(p("dir/file")))
	must(t, os.Link(p("dir/new-name"), p("dir/file"))) // hard link broken from "hardlink"
	must(t, os.Chmod(p("setuid"), 0o600))
	must(t, os.Chown(p("dir/sub/deep"), 7, 7))
	must(t, os.RemoveAll(p("dir/sub")))
	must(t, os.Remove(p("becomes-dir")))
	must(t, os.Mkdir(p("becomes-dir"), 0o700))
	write(t, p("becomes-dir/inner"), "x")
	must(t, os.RemoveAll(p("becomes-file")))
	write(t, p("becomes-file"), "now a file")
	must(t, os.Remove(p("symlink")))
	must(t, os.Symlink("/etc/passwd", p("symlink")))
	must(t, os.Remove(p("fifo")))
	write(t, p("fifo"), "not a fifo")
	must(t, unix.Removexattr(p("hardlink"), "user.note"))
	must(t, os.Chtimes(p("big"), time.Now(), time.Unix(1, 0)))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// realVolume makes a volume on a loop file system of the given kind.
func realVolume(t *testing.T, e *env, fstype string) string {
	t.Helper()
	var mnt string
	if fstype == "xfs" {
		mnt = testutil.LoopFS(t, "xfs", 512, "-m", "reflink=1")
	} else {
		mnt = testutil.LoopFS(t, "btrfs", 300)
	}
	e.volume("vol1", mnt, "auto", storage.TypeRW)
	return mnt
}

// TestRecoverVolume (N9, 0x2050 SNAP_RECOVER of a volume): after every
// kind of change, the volume equals its snapshot again (content, types,
// owners, modes, set-id bits, xattrs, times, hard links), on btrfs and
// XFS; a file unchanged since the snapshot is not copied again.
func TestRecoverVolume(t *testing.T) {
	for _, fstype := range []string{"btrfs", "xfs"} {
		t.Run(fstype, func(t *testing.T) {
			e := newEnv(t)
			mnt := realVolume(t, e, fstype)
			fill(t, mnt)
			must(t, e.m.Create(e.ctx, "vs1", "vol1", "s1"))
			snap, err := e.st.GetSnapshot(e.ctx, "vs1", "vol1", "s1")
			must(t, err)
			want := testutil.TreeManifest(t, snap.HostPath)
			change(t, mnt)
			res, err := e.m.Recover(e.ctx, RecoverRequest{SVM: "vs1", Volume: "vol1", Snapshot: "s1", Owner: "test-recover"})
			must(t, err)
			testutil.CompareManifests(t, testutil.TreeManifest(t, mnt), want)
			if res.Files == 0 || res.Bytes < 1<<20 || res.Bytes >= 2<<20 {
				t.Errorf("recovered %d files, %d bytes: the 1 MiB file whose times changed must be copied, the unchanged one not", res.Files, res.Bytes)
			}
			if p, _ := e.st.GetSnapshot(e.ctx, "vs1", "vol1", "s1"); p.Locked() {
				t.Errorf("snapshot still locked by %v", p.Owners)
			}
		})
	}
}

// TestRecoverFiles (0x2050 SNAP_RECOVER of files): a regular file comes
// back into a directory that did not exist, under a new name, with its
// content and attributes; directories, escapes and read-only targets are
// refused and create nothing.
func TestRecoverFiles(t *testing.T) {
	e := newEnv(t)
	mnt := realVolume(t, e, "btrfs")
	fill(t, mnt)
	must(t, e.m.Create(e.ctx, "vs1", "vol1", "s1"))
	snap, _ := e.st.GetSnapshot(e.ctx, "vs1", "vol1", "s1")
	change(t, mnt)
	req := func(f FileRecover) RecoverRequest {
		f.DestSVM, f.DestVolume = "vs1", "vol1"
		return RecoverRequest{SVM: "vs1", Volume: "vol1", Snapshot: "s1", Owner: "t", Files: []FileRecover{f}}
	}
	res, err := e.m.Recover(e.ctx, req(FileRecover{Original: "/setuid", DestDir: "/restored/here", Name: "copy"}))
	must(t, err)
	if res.Files != 1 || res.Bytes != uint64(len("#!/bin/sh\n")) {
		t.Errorf("result %+v", res)
	}
	got := testutil.TreeManifest(t, filepath.Join(mnt, "restored", "here"))["copy"]
	if w := testutil.TreeManifest(t, snap.HostPath)["setuid"]; got != w {
		t.Errorf("recovered file\n got %s\nwant %s", got, w)
	}
	must(t, os.Symlink("/tmp", filepath.Join(mnt, "escape")))
	outside := t.TempDir()
	must(t, os.Symlink(outside, filepath.Join(mnt, "escape2")))
	for _, c := range []struct {
		name string
		f    FileRecover
		code ndmp.Error
	}{
		{"directory", FileRecover{Original: "dir", DestDir: "r", Name: "d"}, ndmp.ErrIllegalArgs},
		{"symlink", FileRecover{Original: "symlink", DestDir: "r", Name: "s"}, ndmp.ErrIllegalArgs},
		{"missing", FileRecover{Original: "nope", DestDir: "r", Name: "n"}, ndmp.ErrSnapNotFound},
		{"dotdot", FileRecover{Original: "../etc/passwd", DestDir: "r", Name: "p"}, ndmp.ErrIllegalArgs},
		{"into .snapshot", FileRecover{Original: "big", DestDir: ".snapshot/s1", Name: "b"}, ndmp.ErrSnapReadOnlyFS},
		{"through a symlink", FileRecover{Original: "big", DestDir: "escape2/x", Name: "b"}, ndmp.ErrSnapInvalidPath},
		{"bad name", FileRecover{Original: "big", DestDir: "r", Name: "a/b"}, ndmp.ErrIllegalArgs},
		{"onto a directory", FileRecover{Original: "big", DestDir: ".", Name: "dir"}, ndmp.ErrIllegalArgs},
	} {
		_, err := e.m.Recover(e.ctx, req(c.f))
		wantCode(t, c.name, err, c.code)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("a recovery wrote outside the volume: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(mnt, "r")); err == nil {
		t.Errorf("a refused recovery made its directory")
	}
	_, err = e.m.Recover(e.ctx, RecoverRequest{SVM: "vs1", Volume: "vol1", Snapshot: "s1", Owner: "t", Flags: ndmp.SnapRecoverDirOnly})
	wantCode(t, "DIR_ONLY", err, ndmp.ErrIllegalArgs)
	_, err = e.m.Recover(e.ctx, RecoverRequest{SVM: "vs1", Volume: "vol1", Snapshot: "gone", Owner: "t"})
	wantCode(t, "missing snapshot", err, ndmp.ErrSnapNotFound)
}
