package dump

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"golang.org/x/sys/unix"
)

// makeTree builds a tree with every file type and the awkward cases.
func makeTree(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel string, b []byte) {
		t.Helper()
		must(os.WriteFile(filepath.Join(root, rel), b, 0o644))
	}
	rnd := rand.New(rand.NewSource(42))
	big := make([]byte, 150000)
	rnd.Read(big)
	write("hello.txt", []byte("hello world\n"))
	must(os.Link(filepath.Join(root, "hello.txt"), filepath.Join(root, "link_to_hello")))
	write("empty", nil)
	write("random.bin", big)
	write("exact1k", bytes.Repeat([]byte{'k'}, 1024))
	// Sparse: data at 0 and at 2 MiB, a trailing hole up to 4 MiB + 100.
	f, err := os.Create(filepath.Join(root, "sparse.bin"))
	must(err)
	_, err = f.WriteAt(big[:5000], 0)
	must(err)
	_, err = f.WriteAt(big[:3000], 2<<20)
	must(err)
	must(f.Truncate(4<<20 + 100))
	must(f.Close())
	write("owned", []byte("owned by 70000\n"))
	must(os.Lchown(filepath.Join(root, "owned"), 70000, 70001))
	write("xattr_file", []byte("x"))
	xf := filepath.Join(root, "xattr_file")
	must(unix.Lsetxattr(xf, "user.comment", []byte("a comment"), 0))
	must(unix.Lsetxattr(xf, "user.binary", []byte{0, 1, 2, 0xff, 0}, 0))
	must(unix.Lsetxattr(xf, "trusted.secret", []byte("only root"), 0))
	acl := []byte{2, 0, 0, 0, // version 2
		1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, // USER_OBJ rw
		2, 0, 4, 0, 0xe8, 0x03, 0, 0, // USER 1000 r
		4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, // GROUP_OBJ r
		0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, // MASK r
		0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff} // OTHER r
	must(unix.Lsetxattr(xf, "system.posix_acl_access", acl, 0))
	must(os.Symlink("hello.txt", filepath.Join(root, "short")))
	must(os.Symlink(strings.Repeat("t/", 500)+"target", filepath.Join(root, "long")))
	must(unix.Mkfifo(filepath.Join(root, "fifo"), 0o640))
	must(unix.Mknod(filepath.Join(root, "chardev"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(filepath.Join(root, "blockdev"), unix.S_IFBLK|0o660, int(unix.Mkdev(259, 300))))
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	must(err)
	must(unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(root, "socket")}))
	unix.Close(fd)
	write(strings.Repeat("N", 254), []byte("254-byte name\n"))
	write("bad\xff\xfe-name", []byte("not UTF-8\n"))
	deep := root
	for i := 0; i < 16; i++ {
		deep = filepath.Join(deep, fmt.Sprintf("%02d%s", i, strings.Repeat("d", 198)))
	}
	must(os.MkdirAll(deep, 0o755))
	write(strings.TrimPrefix(filepath.Join(deep, "leaf.txt"), root+"/"), []byte("deep leaf\n"))
	must(os.Mkdir(filepath.Join(root, "dir_xattr"), 0o750))
	must(unix.Lsetxattr(filepath.Join(root, "dir_xattr"), "user.dirattr", []byte("on a directory"), 0))
	must(os.Mkdir(filepath.Join(root, "qtree1"), 0o755))
	write("qtree1/lun.img", bytes.Repeat([]byte{0x55}, 8192))
	// Times with nanoseconds, one old and one setuid mode.
	must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, "hello.txt"), []unix.Timespec{
		unix.NsecToTimespec(1000000000123456789), unix.NsecToTimespec(1234567890987654321)}, unix.AT_SYMLINK_NOFOLLOW))
	must(os.Chmod(filepath.Join(root, "owned"), 0o4755))
	must(os.Chtimes(filepath.Join(root, "random.bin"), time.Unix(1e9, 0), time.Unix(3e8, 5000)))
}

// compareTrees checks that dst holds the same tree as src: types, modes,
// owners, mtimes (to the microsecond restore keeps), sizes, contents,
// holes, symlink targets, devices, xattrs and hard-link structure.
func compareTrees(t *testing.T, src, dst string) {
	t.Helper()
	srcLinks := map[uint64]string{}
	dstLinks := map[uint64]string{}
	n := 0
	err := filepath.Walk(src, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		s := lstatNode(t, p)
		if s.st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			return nil // restore skips sockets by design
		}
		q := filepath.Join(dst, rel)
		var dst0 unix.Stat_t
		if err := unix.Lstat(q, &dst0); err != nil {
			t.Errorf("%q not restored: %v", rel, err)
			return nil
		}
		d := lstatNode(t, q)
		n++
		if s.st.Mode != d.st.Mode || s.st.Uid != d.st.Uid || s.st.Gid != d.st.Gid {
			t.Errorf("%q: mode/owner %o %d:%d, restored %o %d:%d", rel, s.st.Mode, s.st.Uid, s.st.Gid, d.st.Mode, d.st.Uid, d.st.Gid)
		}
		// Symbolic links keep no restored mtime; lost+found in the
		// destination file system was made by its mkfs, and Linux restore
		// leaves a directory that already exists as it is, so its mtime is
		// the second of that mkfs, not the source's.
		noMtime := s.st.Mode&unix.S_IFMT == unix.S_IFLNK || rel == "lost+found"
		if rel != "." && !noMtime && s.st.Mtim.Sec != d.st.Mtim.Sec || s.st.Mtim.Nsec/1000 != d.st.Mtim.Nsec/1000 && rel != "." && !noMtime {
			t.Errorf("%q: mtime %v, restored %v", rel, statTime(s.st.Mtim), statTime(d.st.Mtim))
		}
		if s.st.Rdev != d.st.Rdev {
			t.Errorf("%q: rdev %x, restored %x", rel, s.st.Rdev, d.st.Rdev)
		}
		if s.target != d.target || !bytes.Equal(s.data, d.data) {
			t.Errorf("%q: data or link target differ", rel)
		}
		if s.st.Mode&unix.S_IFMT == unix.S_IFREG {
			if s.st.Size != d.st.Size || fmt.Sprint(s.holes) != fmt.Sprint(d.holes) {
				t.Errorf("%q: size %d holes %v, restored %d %v", rel, s.st.Size, summary(s.holes), d.st.Size, summary(d.holes))
			}
		}
		if fmt.Sprint(s.xattrs) != fmt.Sprint(d.xattrs) {
			t.Errorf("%q: xattrs %q, restored %q", rel, s.xattrs, d.xattrs)
		}
		if s.st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if first, ok := srcLinks[s.st.Ino]; ok {
				if dstLinks[d.st.Ino] != first {
					t.Errorf("%q: hard link to %q lost", rel, first)
				}
			} else {
				srcLinks[s.st.Ino] = rel
				if _, ok := dstLinks[d.st.Ino]; ok {
					t.Errorf("%q: restored as a hard link it is not", rel)
				}
				dstLinks[d.st.Ino] = rel
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 30 {
		t.Fatalf("only %d paths compared", n)
	}
}

func summary(h []bool) string {
	d := 0
	for _, x := range h {
		if !x {
			d++
		}
	}
	return fmt.Sprintf("%d/%d data", d, len(h))
}

// restoreComplaints are words Linux restore prints when something in an
// image is wrong.
var restoreComplaints = []string{"unexpected", "Checksum", "resync", "Missing", "expected next file",
	"not found on tape", "Mangled", "unknown", "panic", "abort", "EA ", "cannot", "error", "Error", "bad "}

func checkQuiet(t *testing.T, what string, out []byte) {
	t.Helper()
	for _, w := range restoreComplaints {
		if bytes.Contains(out, []byte(w)) {
			t.Errorf("%s complains (%q):\n%s", what, w, out)
			return
		}
	}
}

// extras adds Tapestry extension records to some inodes.
func extras(s *srcTree) func(ino uint32, w *Writer) {
	byPath := map[string]uint32{}
	for ino, ps := range s.paths {
		for _, p := range ps {
			byPath[p] = ino
		}
	}
	return func(ino uint32, w *Writer) {
		var err error
		switch ino {
		case byPath["hello.txt"]:
			err = w.WriteNTACL(testACL(10))
			if err == nil {
				err = w.WriteDOS(&DOSInfo{Attributes: 0x20, Created: time.Unix(1e9, 123), ShortName: "HELLO~1.TXT"})
			}
			if err == nil {
				err = w.WriteStream("Zone.Identifier", 3000, bytes.NewReader(bytes.Repeat([]byte("z"), 3000)))
			}
		case byPath["qtree1"]:
			err = w.WriteQtree(&QtreeInfo{ID: 1, Name: "qtree1", SecurityStyle: "ntfs", Oplocks: true})
		case byPath["qtree1/lun.img"]:
			err = w.WriteLUN(&LUNInfo{OSType: "linux", Serial: "abc123"})
		}
		if err != nil {
			panic(err)
		}
	}
}

func testACL(n int) *NTACL {
	a := &NTACL{Control: 0x8004, Owner: "S-1-5-21-1-2-3-500", Group: "S-1-5-21-1-2-3-513"}
	for i := 0; i < n; i++ {
		a.ACEs = append(a.ACEs, ACE{Type: uint8(i % 2), Flags: uint8(i % 4), Mask: uint32(0x1f01ff - i), SID: fmt.Sprintf("S-1-5-21-1-2-3-%d", 1000+i)})
	}
	return a
}

// TestWriterLinuxRestore writes an image of a real tree with our writer and
// has Linux restore list and restore it (D3, D4, D8).
func TestWriterLinuxRestore(t *testing.T) {
	restore := testutil.RequireTool(t, "restore")
	src := testutil.LoopFS(t, "ext4", 64)
	makeTree(t, src)
	s := walkTree(t, src)
	imgPath := filepath.Join(t.TempDir(), "img.dump")
	if p := os.Getenv("KEEP_IMAGE"); p != "" {
		imgPath = p
	}
	f, err := os.Create(imgPath)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(f, Options{Date: time.Unix(1795300000, 0), Level: 0, Label: "tapestry", Filesys: "/vol/vol1", Device: "vol1", Host: "host1", OffsetMap: true})
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, w, s, extras(s))
	if err := w.BeginACLSection(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteACL(s.files[0], testACL(MaxACEs)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// restore -t lists every name with its inode, silently.
	out := []byte(testutil.Run(t, restore, "-t", "-f", imgPath))
	checkQuiet(t, "restore -t", out)
	for ino, ps := range s.paths {
		for _, p := range ps {
			if p == "" {
				continue
			}
			line := fmt.Sprintf("%d\t./%s\n", ino, p)
			if !bytes.Contains(out, []byte(line)) {
				t.Errorf("restore -t does not list %q as inode %d", p, ino)
			}
		}
	}

	// restore -r in an empty file system gives the same tree.
	dst := testutil.LoopFS(t, "ext4", 64)
	cmd := exec.Command(restore, "-r", "-f", imgPath)
	cmd.Dir = dst
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("restore -r: %v\n%s", err, out)
	}
	checkQuiet(t, "restore -r", out)
	if err := os.Remove(filepath.Join(dst, "restoresymtable")); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, src, dst)

	// restore -x -a as well (it asks about '.', which stdin at EOF declines).
	dst2 := testutil.LoopFS(t, "ext4", 64)
	cmd = exec.Command(restore, "-x", "-a", "-f", imgPath)
	cmd.Dir = dst2
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("restore -x: %v\n%s", err, out)
	}
	checkQuiet(t, "restore -x", bytes.ReplaceAll(out, []byte("set owner/mode for '.'? [yn] "), nil))
	compareTrees(t, src, dst2)

	// Our reader reads the same image back, extensions included.
	img := openImage(t, imgPath)
	checkOwnImage(t, img, s, src)
}

// checkOwnImage compares our reader's view of an image we wrote with the
// tree it came from.
func checkOwnImage(t *testing.T, img *image, s *srcTree, src string) {
	t.Helper()
	for ino, ps := range s.paths {
		for _, p := range ps {
			if img.paths[p] != ino {
				t.Errorf("%q: inode %d, want %d", p, img.paths[p], ino)
			}
		}
		n := img.nodes[ino]
		if n == nil {
			t.Errorf("inode %d missing", ino)
			continue
		}
		st := s.st[ino]
		if n.in.Mode != st.Mode || n.in.UID != st.Uid || n.in.GID != st.Gid || n.in.Nlink != int(st.Nlink) {
			t.Errorf("%q: inode %+v, stat %+v", ps[0], n.in, st)
		}
		// Exact nanosecond times come from the header's spare area.
		mt := n.in.Mtime
		if !mt.Equal(statTime(st.Mtim)) && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			t.Errorf("%q: mtime %v, want %v", ps[0], mt, statTime(st.Mtim))
		}
		want := lstatNode(t, filepath.Join(src, ps[0]))
		if fmt.Sprint(want.xattrs) != fmt.Sprint(n.xattrs) {
			t.Errorf("%q: xattrs %q, want %q", ps[0], n.xattrs, want.xattrs)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if !bytes.Equal(n.data, want.data) || fmt.Sprint(n.holes) != fmt.Sprint(want.holes) {
				t.Errorf("%q: data differs (holes %s, want %s)", ps[0], summary(n.holes), summary(want.holes))
			}
		case unix.S_IFLNK:
			if string(n.data) != want.target {
				t.Errorf("%q: target differs", ps[0])
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			if uint64(n.in.Rdev) != st.Rdev {
				t.Errorf("%q: rdev %x, want %x", ps[0], n.in.Rdev, st.Rdev)
			}
		}
	}
	// Extension records.
	hello := img.nodes[img.paths["hello.txt"]]
	var acl NTACL
	if b := hello.exts[ExtNTACL]; len(b) != 1 || acl.UnmarshalBinary(b[0]) != nil || fmt.Sprint(acl) != fmt.Sprint(*testACL(10)) {
		t.Errorf("NT ACL of hello.txt not read back")
	}
	var dos DOSInfo
	if b := hello.exts[ExtDOS]; len(b) != 1 || dos.UnmarshalBinary(b[0]) != nil || dos.ShortName != "HELLO~1.TXT" || !dos.Created.Equal(time.Unix(1e9, 123)) {
		t.Errorf("DOS info of hello.txt not read back: %+v", dos)
	}
	if b := hello.exts[ExtStream]; len(b) != 1 || !bytes.HasSuffix(b[0], bytes.Repeat([]byte("z"), 3000)) || !bytes.Contains(b[0], []byte("Zone.Identifier")) {
		t.Errorf("stream of hello.txt not read back")
	}
	var q QtreeInfo
	if b := img.nodes[img.paths["qtree1"]].exts[ExtQtree]; len(b) != 1 || q.UnmarshalBinary(b[0]) != nil || q != (QtreeInfo{ID: 1, Name: "qtree1", SecurityStyle: "ntfs", Oplocks: true}) {
		t.Errorf("qtree info not read back: %+v", q)
	}
	var l LUNInfo
	if b := img.nodes[img.paths["qtree1/lun.img"]].exts[ExtLUN]; len(b) != 1 || l.UnmarshalBinary(b[0]) != nil || l.Serial != "abc123" {
		t.Errorf("LUN info not read back: %+v", l)
	}
	var big NTACL
	if b, ok := img.aclSection[s.files[0]]; !ok || big.UnmarshalBinary(b) != nil || len(big.ACEs) != MaxACEs || fmt.Sprint(big) != fmt.Sprint(*testACL(MaxACEs)) {
		t.Errorf("1,024-ACE ACL of the ACL section not read back")
	}
	// The offset map matches the header offsets the reader saw.
	if len(img.offsetMap) != len(img.nodes) {
		t.Errorf("offset map has %d entries for %d inodes", len(img.offsetMap), len(img.nodes))
	}
	for _, e := range img.offsetMap {
		if n := img.nodes[e.Ino]; n == nil || n.off != e.Offset {
			t.Errorf("offset map: inode %d at %d, reader saw it elsewhere", e.Ino, e.Offset)
		}
	}
}
