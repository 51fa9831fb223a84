package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"golang.org/x/sys/unix"
)

// oddNames are file names a snapshot must carry unchanged.
var oddNames = []string{"with space", "new\nline", "\xff\xfe-not-utf8", "-dash", "é日本", strings.Repeat("L", 255)}

// capV2 is a valid security.capability value (VFS_CAP_REVISION_2, effective,
// CAP_NET_BIND_SERVICE permitted).
var capV2 = []byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// buildTree makes, under root, every kind of file a snapshot must keep.
// bigXattr adds a 10,000-byte extended attribute (not on ext4, whose
// attributes must fit in one block).
func buildTree(t *testing.T, root string, bigXattr bool) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := func(rel string) string { return filepath.Join(root, rel) }
	write := func(rel string, data []byte, mode os.FileMode) {
		t.Helper()
		must(os.WriteFile(p(rel), data, 0o600))
		must(os.Chmod(p(rel), mode))
	}
	for _, d := range []string{"dir/sub/deeper", "sticky", "ro", "many", "nested/.snapshot"} {
		must(os.MkdirAll(p(d), 0o755))
	}
	write("file.txt", []byte("hello, tape\n"), 0o644)
	write("empty", nil, 0o600)
	write("dir/sub/deeper/leaf", []byte("leaf"), 0o640)
	write("nested/.snapshot/not-special", []byte("a deeper .snapshot is ordinary"), 0o644)
	write("ro/inside", []byte("in a read-only directory"), 0o444)
	big := make([]byte, 3<<20+123)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	write("big", big, 0o644)
	// A sparse file: 8 MiB with two 4 KiB data blocks.
	f, err := os.Create(p("sparse"))
	must(err)
	_, err = f.WriteAt(bytes.Repeat([]byte("S"), 4096), 1<<20)
	must(err)
	_, err = f.WriteAt(bytes.Repeat([]byte("T"), 4096), 5<<20)
	must(err)
	must(f.Truncate(8 << 20))
	must(f.Close())
	write("setuid", []byte("#!/bin/sh\n"), 0o4755)
	write("setgid", []byte("#!/bin/sh\n"), 0o2711)
	write("owned", []byte("someone else's"), 0o640)
	must(os.Lchown(p("owned"), 1234, 5678))
	write("capfile", []byte("cap"), 0o755)
	must(unix.Lsetxattr(p("capfile"), "security.capability", capV2, 0))
	// A hard link pair across directories, and one inside a large directory.
	write("link-a", []byte("linked"), 0o644)
	must(os.Link(p("link-a"), p("dir/link-b")))
	for i := 0; i < 600; i++ {
		write(fmt.Sprintf("many/f%03d", i), []byte(fmt.Sprint(i)), 0o644)
	}
	must(os.Link(p("many/f000"), p("many/f599-link")))
	must(os.Symlink("file.txt", p("symlink")))
	must(os.Symlink("does/not/exist", p("dangling")))
	must(os.Lchown(p("symlink"), 1234, 5678))
	must(unix.Lsetxattr(p("symlink"), "trusted.sym", []byte("s"), 0))
	must(unix.Mkfifo(p("fifo"), 0o640))
	must(unix.Mknod(p("chardev"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(p("blockdev"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 200))))
	must(os.Link(p("fifo"), p("fifo-link")))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p("socket"), Net: "unix"})
	must(err)
	l.SetUnlinkOnClose(false)
	must(l.Close())
	for i, n := range oddNames {
		write(n, []byte(fmt.Sprint("odd ", i)), 0o644)
	}
	must(unix.Lsetxattr(p("file.txt"), "user.tapestry", []byte("v1"), 0))
	must(unix.Lsetxattr(p("file.txt"), "user.empty", nil, 0))
	must(unix.Lsetxattr(p("file.txt"), "trusted.tp", []byte("t"), 0))
	must(unix.Lsetxattr(p("dir"), "user.dir", []byte("d"), 0))
	must(unix.Lsetxattr(p("fifo"), "trusted.fifo", []byte("f"), 0))
	if bigXattr {
		must(unix.Lsetxattr(p("big"), "user.big", bytes.Repeat([]byte("x"), 10000), 0))
	}
	setfacl := testutil.RequireTool(t, "setfacl")
	testutil.Run(t, setfacl, "-m", "u:1234:rw,g:5678:r", p("owned"))
	testutil.Run(t, setfacl, "-d", "-m", "u:1234:rwx", p("dir"))
	must(os.Chmod(p("sticky"), 0o1777))
	must(os.Chmod(p("ro"), 0o555))
	// Distinct times with nanoseconds, children before their directories.
	var paths []string
	must(filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == snapshot.Dir && filepath.Dir(path) == root {
			return fs.SkipDir
		}
		paths = append(paths, path)
		return nil
	}))
	for i := len(paths) - 1; i >= 0; i-- {
		ts := []unix.Timespec{
			{Sec: 1600000000 + int64(i), Nsec: int64(i*7919) % 1e9},
			{Sec: 1500000000 + int64(i), Nsec: int64(i*104729+1) % 1e9},
		}
		must(unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// entry is what a test knows of one file.
type entry struct {
	mode         uint32
	uid, gid     uint32
	size, blocks int64
	rdev         uint64
	nlink        uint64
	ino          uint64
	atime, mtime unix.Timespec
	ctime        unix.Timespec
	target, sum  string
	xattrs       map[string]string
}

// manifest describes the tree at root, as seen by snapshot.Walk, keyed by
// path relative to root.
func manifest(t *testing.T, root string) map[string]entry {
	t.Helper()
	m := map[string]entry{}
	err := snapshot.Walk(context.Background(), root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		e := entry{mode: st.Mode, uid: st.Uid, gid: st.Gid, size: st.Size, blocks: st.Blocks,
			rdev: st.Rdev, nlink: uint64(st.Nlink), ino: st.Ino, atime: st.Atim, mtime: st.Mtim,
			ctime: st.Ctim, xattrs: map[string]string{}}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			if e.target, err = os.Readlink(path); err != nil {
				return err
			}
		case unix.S_IFREG:
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			e.sum = fmt.Sprintf("%x", h.Sum(nil))
		}
		buf := make([]byte, 1<<16)
		n, err := unix.Llistxattr(path, buf)
		if err != nil {
			return fmt.Errorf("listxattr %s: %w", path, err)
		}
		for _, name := range strings.Split(string(buf[:n]), "\x00") {
			if name == "" {
				continue
			}
			val := make([]byte, 1<<16)
			k, err := unix.Lgetxattr(path, name, val)
			if err != nil {
				return fmt.Errorf("getxattr %s %s: %w", path, name, err)
			}
			e.xattrs[name] = string(val[:k])
		}
		m[rel] = e
		return nil
	})
	if err != nil {
		t.Fatalf("manifest of %s: %v", root, err)
	}
	return m
}

// compareTrees checks that the snapshot (got) holds exactly the live tree
// (want) as it was, sockets left out (btrfs snapshots keep them), and that idm maps every snapshot
// inode to the live inode of the same path.
func compareTrees(t *testing.T, want, got map[string]entry, idm snapshot.IdentityMap, keepsSockets bool) {
	t.Helper()
	for rel, w := range want {
		g, ok := got[rel]
		if w.mode&unix.S_IFMT == unix.S_IFSOCK && !keepsSockets {
			if ok {
				t.Errorf("%q: socket copied into the snapshot", rel)
			}
			continue
		}
		if !ok {
			t.Errorf("%q missing from the snapshot", rel)
			continue
		}
		isDir := w.mode&unix.S_IFMT == unix.S_IFDIR
		if g.mode != w.mode || g.uid != w.uid || g.gid != w.gid || g.rdev != w.rdev || g.target != w.target || g.sum != w.sum {
			t.Errorf("%q: got mode %o %d:%d rdev %d target %q sum %.8s, want mode %o %d:%d rdev %d target %q sum %.8s",
				rel, g.mode, g.uid, g.gid, g.rdev, g.target, g.sum, w.mode, w.uid, w.gid, w.rdev, w.target, w.sum)
		}
		if !isDir && (g.size != w.size || g.nlink != w.nlink) {
			t.Errorf("%q: got size %d nlink %d, want %d, %d", rel, g.size, g.nlink, w.size, w.nlink)
		}
		if g.atime != w.atime || g.mtime != w.mtime {
			t.Errorf("%q: got atime %v mtime %v, want %v %v", rel, g.atime, g.mtime, w.atime, w.mtime)
		}
		if fmt.Sprint(g.xattrs) != fmt.Sprint(w.xattrs) {
			t.Errorf("%q: got xattrs %q, want %q", rel, g.xattrs, w.xattrs)
		}
		if live, ok := idm.Live(g.ino); !ok || live != w.ino {
			t.Errorf("%q: identity map gives %d (known %v) for snapshot inode %d, want live inode %d", rel, live, ok, g.ino, w.ino)
		}
		// reflink and copy record the live change time (the snapshot's
		// files all have new ones); btrfs keeps it in the file itself.
		if lc, ok := idm.(snapshot.LiveCtimer); ok {
			if c, known := lc.LiveCtime(g.ino); !known || c.UnixNano() != w.ctime.Nano() {
				t.Errorf("%q: identity map gives ctime %v (known %v), want the live %v", rel, c, known, time.Unix(0, w.ctime.Nano()))
			}
		} else if rel != "." && g.ctime != w.ctime { // a btrfs snapshot's root is new
			t.Errorf("%q: snapshot ctime %v, live %v, and the identity map records none", rel, g.ctime, w.ctime)
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			t.Errorf("%q is in the snapshot but not in the volume", rel)
		}
	}
	if got["link-a"].ino != got["dir/link-b"].ino || got["many/f000"].ino != got["many/f599-link"].ino ||
		got["fifo"].ino != got["fifo-link"].ino {
		t.Errorf("hard links were not kept as hard links")
	}
	if s := got["sparse"]; s.blocks*512 >= s.size/2 {
		t.Errorf("sparse file takes %d bytes for its %d, holes were filled", s.blocks*512, s.size)
	}
}

// mutate changes the live volume in every way a snapshot must not see.
func mutate(t *testing.T, vol string) {
	t.Helper()
	p := func(rel string) string { return filepath.Join(vol, rel) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	appendTo := func(rel, s string) {
		f, err := os.OpenFile(p(rel), os.O_WRONLY|os.O_APPEND, 0)
		must(err)
		_, err = f.WriteString(s)
		must(err)
		must(f.Close())
	}
	appendTo("file.txt", "appended")
	appendTo("link-a", "through a hard link")
	f, err := os.OpenFile(p("big"), os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteAt([]byte("overwritten"), 100)
	must(err)
	must(f.Close())
	f, err = os.OpenFile(p("sparse"), os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteAt([]byte("into the hole"), 3<<20)
	must(err)
	must(f.Close())
	must(os.Truncate(p("many/f010"), 0))
	must(os.Truncate(p("dir/sub/deeper/leaf"), 1))
	must(os.Remove(p("empty")))
	must(os.Remove(p("many/f001")))
	must(os.Rename(p("dir/sub"), p("dir/sub2")))
	must(os.Rename(p("file.txt"), p("renamed.txt")))
	must(os.Chmod(p("setuid"), 0o700))
	must(unix.Lsetxattr(p("renamed.txt"), "user.tapestry", []byte("v2"), 0))
	must(os.WriteFile(p("newfile"), []byte("new"), 0o644))
}

// remountNoatime keeps reads from moving access times, so a manifest taken
// before a snapshot still describes the live tree after it.
func remountNoatime(t *testing.T, mnt string) {
	t.Helper()
	testutil.Run(t, "mount", "-o", "remount,noatime", mnt)
}

// snapshotDirClean fails when work files were left in .snapshot.
func snapshotDirClean(t *testing.T, vol string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(vol, snapshot.Dir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tapestry-") {
			t.Errorf("left over in .snapshot: %s", e.Name())
		}
	}
}

// exerciseProvider runs the whole life of snapshots on the volume vol.
func exerciseProvider(t *testing.T, p snapshot.Provider, vol string, bigXattr bool) {
	ctx := context.Background()
	// .snapshot exists before the tree's times are set: making it later
	// would move the root's mtime.
	if err := os.MkdirAll(filepath.Join(vol, snapshot.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	buildTree(t, vol, bigXattr)
	want := manifest(t, vol)
	if _, ok := want[snapshot.Dir]; ok {
		t.Fatal("Walk visited the volume's .snapshot")
	}
	if _, ok := want["nested/.snapshot/not-special"]; !ok {
		t.Fatal("Walk skipped a .snapshot directory below the root")
	}
	if err := p.Supported(vol); err != nil {
		t.Fatalf("Supported: %v", err)
	}
	info, err := p.Create(ctx, vol, "one")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if info.Name != "one" || info.Provider != p.Name() || info.Path != filepath.Join(vol, snapshot.Dir, "one") {
		t.Errorf("Create returned %+v", info)
	}
	if p.Name() != "btrfs" {
		// every file and directory but the socket, hard links once, the
		// root not counted
		var files, bytes int64
		seen := map[uint64]bool{}
		for rel, e := range want {
			if rel == "." || e.mode&unix.S_IFMT == unix.S_IFSOCK || seen[e.ino] {
				continue
			}
			seen[e.ino] = true
			files++
			if e.mode&unix.S_IFMT == unix.S_IFREG {
				bytes += e.size
			}
		}
		if info.Files != files || info.Bytes != bytes {
			t.Errorf("Create counted %d files, %d bytes; want %d, %d", info.Files, info.Bytes, files, bytes)
		}
	}
	idm, err := p.Identity(vol, "one")
	if err != nil {
		t.Fatalf("Identity: %v", err)
	}
	compareTrees(t, want, manifest(t, info.Path), idm, p.Name() == "btrfs")
	if _, err := os.Lstat(filepath.Join(info.Path, snapshot.Dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf(".snapshot inside the snapshot: %v", err)
	}

	// Point in time: nothing done to the volume now reaches the snapshot.
	mutate(t, vol)
	compareTrees(t, want, manifest(t, info.Path), idm, p.Name() == "btrfs")

	// A second snapshot sees the changes and not the first snapshot.
	want2 := manifest(t, vol)
	info2, err := p.Create(ctx, vol, "two")
	if err != nil {
		t.Fatalf("Create two: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(info2.Path, snapshot.Dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf(".snapshot inside the second snapshot: %v", err)
	}
	idm2, err := p.Identity(vol, "two")
	if err != nil {
		t.Fatal(err)
	}
	got2 := manifest(t, info2.Path)
	for rel, w := range want2 {
		if w.mode&unix.S_IFMT == unix.S_IFSOCK {
			continue
		}
		if g, ok := got2[rel]; !ok || g.sum != w.sum {
			t.Errorf("second snapshot: %q missing or different", rel)
		} else if live, _ := idm2.Live(g.ino); live != w.ino {
			t.Errorf("second snapshot: %q maps to live inode %d, want %d", rel, live, w.ino)
		}
	}
	if _, err := os.Lstat(filepath.Join(info2.Path, "renamed.txt")); err != nil {
		t.Errorf("second snapshot lacks a change: %v", err)
	}

	if _, err := p.Create(ctx, vol, "one"); !errors.Is(err, snapshot.ErrExists) {
		t.Errorf("Create of an existing name: %v, want ErrExists", err)
	}
	for _, bad := range []string{"", ".hidden", "a/b", "..", strings.Repeat("n", 241)} {
		if _, err := p.Create(ctx, vol, bad); err == nil {
			t.Errorf("Create accepted the name %q", bad)
		}
	}
	names, err := snapshot.List(vol)
	if err != nil || fmt.Sprint(names) != "[one two]" {
		t.Errorf("List = %v, %v; want [one two]", names, err)
	}
	for _, n := range []string{"one", "two"} {
		if err := p.Delete(ctx, vol, n); err != nil {
			t.Fatalf("Delete %s: %v", n, err)
		}
	}
	if err := p.Delete(ctx, vol, "one"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("Delete of a missing snapshot: %v, want ErrNotFound", err)
	}
	if _, err := p.Identity(vol, "one"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("Identity of a deleted snapshot: %v, want ErrNotFound", err)
	}
	names, err = snapshot.List(vol)
	if err != nil || len(names) != 0 {
		t.Errorf("List after Delete = %v, %v", names, err)
	}
	ents, _ := os.ReadDir(filepath.Join(vol, snapshot.Dir))
	for _, e := range ents {
		t.Errorf("left in .snapshot after deleting everything: %q", e.Name())
	}

	// A cancelled Create leaves nothing behind.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Create(cctx, vol, "cancelled"); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a cancelled context: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(vol, snapshot.Dir, "cancelled")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cancelled snapshot exists: %v", err)
	}
	snapshotDirClean(t, vol)
}

func TestBtrfsProvider(t *testing.T) {
	mnt := testutil.LoopFS(t, "btrfs", 300)
	remountNoatime(t, mnt)
	testutil.Run(t, testutil.RequireTool(t, "btrfs"), "subvolume", "create", filepath.Join(mnt, "vol"))
	vol := filepath.Join(mnt, "vol")
	p, err := snapshot.Auto(vol)
	if err != nil || p.Name() != "btrfs" {
		t.Fatalf("Auto on a btrfs subvolume = %v, %v; want btrfs", p, err)
	}
	exerciseProvider(t, p, vol, true)

	// The snapshot is read-only.
	if _, err := p.Create(context.Background(), vol, "ro"); err != nil {
		t.Fatal(err)
	}
	err = os.WriteFile(filepath.Join(vol, snapshot.Dir, "ro", "x"), nil, 0o644)
	if !errors.Is(err, unix.EROFS) {
		t.Errorf("writing into a btrfs snapshot: %v, want EROFS", err)
	}
	// Providers refuse what is not theirs.
	if err := (snapshot.Copy{}).Delete(context.Background(), vol, "ro"); err == nil {
		t.Error("copy provider deleted a btrfs subvolume snapshot")
	}
	auto, _ := snapshot.ByName("auto")
	if err := auto.Delete(context.Background(), vol, "ro"); err != nil {
		t.Errorf("auto Delete of a btrfs snapshot: %v", err)
	}

	// A plain directory on btrfs is no subvolume: reflink, with a clear reason.
	plain := filepath.Join(mnt, "plain")
	if err := os.Mkdir(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	err = (snapshot.Btrfs{}).Supported(plain)
	if err == nil || !strings.Contains(err.Error(), "not the root of a btrfs subvolume") {
		t.Errorf("btrfs Supported on a plain directory: %v", err)
	}
	if _, err := (snapshot.Btrfs{}).Create(context.Background(), plain, "x"); err == nil {
		t.Error("btrfs Create on a plain directory succeeded")
	}
	if p, err := snapshot.Auto(plain); err != nil || p.Name() != "reflink" {
		t.Errorf("Auto on a plain btrfs directory = %v, %v; want reflink", p, err)
	}
}

func TestReflinkProviderBtrfs(t *testing.T) {
	mnt := testutil.LoopFS(t, "btrfs", 300)
	remountNoatime(t, mnt)
	vol := filepath.Join(mnt, "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	exerciseProvider(t, snapshot.Reflink{}, vol, true)
}

func TestReflinkProviderXFS(t *testing.T) {
	mnt := testutil.LoopFS(t, "xfs", 512, "-m", "reflink=1")
	remountNoatime(t, mnt)
	vol := filepath.Join(mnt, "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := snapshot.Auto(vol)
	if err != nil || p.Name() != "reflink" {
		t.Fatalf("Auto on XFS = %v, %v; want reflink", p, err)
	}
	snapshotDirClean(t, vol)
	if err := (snapshot.Btrfs{}).Supported(vol); err == nil || !strings.Contains(err.Error(), "not on a btrfs") {
		t.Errorf("btrfs Supported on XFS: %v", err)
	}
	exerciseProvider(t, p, vol, true)
}

func TestCopyProviderExt4(t *testing.T) {
	mnt := testutil.LoopFS(t, "ext4", 128)
	remountNoatime(t, mnt)
	vol := filepath.Join(mnt, "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := snapshot.Auto(vol)
	if err != nil || p.Name() != "copy" {
		t.Fatalf("Auto on ext4 = %v, %v; want copy", p, err)
	}
	snapshotDirClean(t, vol)
	if err := (snapshot.Reflink{}).Supported(vol); err == nil {
		t.Error("reflink Supported on ext4")
	}
	exerciseProvider(t, p, vol, false)
}

func TestCopyProviderXFS(t *testing.T) {
	mnt := testutil.LoopFS(t, "xfs", 512)
	remountNoatime(t, mnt)
	exerciseProvider(t, snapshot.Copy{}, mnt, true)
}

// TestCreateCancelMidway cancels Create while it runs: it either finished
// or left nothing behind.
func TestCreateCancelMidway(t *testing.T) {
	mnt := testutil.LoopFS(t, "ext4", 128)
	for i := 0; i < 40; i++ {
		d := filepath.Join(mnt, fmt.Sprint("d", i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 100; j++ {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprint(j)), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, delay := range []time.Duration{0, 100 * time.Microsecond, time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond} {
		ctx, cancel := context.WithCancel(context.Background())
		timer := time.AfterFunc(delay, cancel)
		name := fmt.Sprint("c", i)
		_, err := (snapshot.Copy{}).Create(ctx, mnt, name)
		timer.Stop()
		cancel()
		if err == nil {
			if err := (snapshot.Copy{}).Delete(context.Background(), mnt, name); err != nil {
				t.Fatal(err)
			}
		} else if !errors.Is(err, context.Canceled) {
			t.Fatalf("Create cancelled: %v", err)
		}
		if _, err := os.Lstat(filepath.Join(mnt, snapshot.Dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("snapshot %s exists after cancel and delete: %v", name, err)
		}
		snapshotDirClean(t, mnt)
	}
}

func TestAutoCreateDelete(t *testing.T) {
	mnt := testutil.LoopFS(t, "ext4", 64)
	p, err := snapshot.ByName("auto")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := p.Create(context.Background(), mnt, "a")
	if err != nil || info.Provider != "copy" {
		t.Fatalf("auto Create on ext4 = %+v, %v", info, err)
	}
	if _, err := p.Identity(mnt, "a"); err != nil {
		t.Errorf("auto Identity: %v", err)
	}
	if err := p.Delete(context.Background(), mnt, "a"); err != nil {
		t.Errorf("auto Delete: %v", err)
	}
}

// TestConcurrentCreateSameName races Creates of one name: one wins, the
// others get ErrExists, and the winner's identity map is its own.
func TestConcurrentCreateSameName(t *testing.T) {
	mnt := testutil.LoopFS(t, "ext4", 64)
	for i := 0; i < 50; i++ {
		if err := os.WriteFile(filepath.Join(mnt, fmt.Sprint("f", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const racers = 4
	errs := make(chan error, racers)
	for i := 0; i < racers; i++ {
		go func() {
			_, err := (snapshot.Copy{}).Create(context.Background(), mnt, "same")
			errs <- err
		}()
	}
	won := 0
	for i := 0; i < racers; i++ {
		err := <-errs
		switch {
		case err == nil:
			won++
		case !errors.Is(err, snapshot.ErrExists):
			t.Errorf("racing Create: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d racing Creates succeeded, want 1", won)
	}
	idm, err := (snapshot.Copy{}).Identity(mnt, "same")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		var live, snap unix.Stat_t
		if err := unix.Lstat(filepath.Join(mnt, fmt.Sprint("f", i)), &live); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lstat(filepath.Join(mnt, snapshot.Dir, "same", fmt.Sprint("f", i)), &snap); err != nil {
			t.Fatal(err)
		}
		if l, ok := idm.Live(snap.Ino); !ok || l != live.Ino {
			t.Errorf("f%d: identity %d, %v; want %d", i, l, ok, live.Ino)
		}
	}
	snapshotDirClean(t, mnt)
}

// TestCreateLeavesAccessTimes checks that making a snapshot on a volume
// mounted with the default relatime does not move the access times of the
// live files and directories it reads (symbolic links aside: reading one
// always may).
func TestCreateLeavesAccessTimes(t *testing.T) {
	mnt := testutil.LoopFS(t, "ext4", 64)
	vol := filepath.Join(mnt, "vol")
	for _, d := range []string{"a/b", snapshot.Dir} {
		if err := os.MkdirAll(filepath.Join(vol, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"f", "a/g", "a/b/h"} {
		if err := os.WriteFile(filepath.Join(vol, f), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := []unix.Timespec{{Sec: 1000000000, Nsec: 5}, {Sec: 1000000000, Nsec: 5}}
	paths := []string{"f", "a/g", "a/b/h", "a/b", "a", "."}
	for _, p := range paths {
		if err := unix.UtimesNano(filepath.Join(vol, p), old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := (snapshot.Copy{}).Create(context.Background(), vol, "s"); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		for _, root := range []string{vol, filepath.Join(vol, snapshot.Dir, "s")} {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(root, p), &st); err != nil {
				t.Fatal(err)
			}
			if st.Atim != old[0] {
				t.Errorf("%s in %s: access time %v, want %v", p, root, st.Atim, old[0])
			}
		}
	}
}

// TestReflinkStaysOnOneFileSystem: a nested btrfs subvolume (another device
// number) is an empty directory in a reflink snapshot.
func TestReflinkStaysOnOneFileSystem(t *testing.T) {
	mnt := testutil.LoopFS(t, "btrfs", 300)
	vol := filepath.Join(mnt, "vol")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, testutil.RequireTool(t, "btrfs"), "subvolume", "create", filepath.Join(vol, "nested"))
	for _, f := range []string{"top", "nested/inner"} {
		if err := os.WriteFile(filepath.Join(vol, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	info, err := (snapshot.Reflink{}).Create(context.Background(), vol, "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(info.Path, "top")); err != nil {
		t.Error(err)
	}
	ents, err := os.ReadDir(filepath.Join(info.Path, "nested"))
	if err != nil || len(ents) != 0 {
		t.Errorf("nested subvolume in the snapshot: %v entries, %v; want an empty directory", len(ents), err)
	}
}
