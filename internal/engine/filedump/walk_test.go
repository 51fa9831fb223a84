package filedump

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestQuickWalkSameImage checks that the quick walk (level 0 without a
// catalog: non-directories are not statx'ed, their type and inode number
// come from the directory entries) writes exactly the image of the full
// walk (D3/D4: same inode numbers, same hard-link groups, same attributes).
func TestQuickWalkSameImage(t *testing.T) {
	src := t.TempDir()
	makeTree(t, src)
	// More hard links: a group of three names in three directories, one
	// of them sorted before the original, and links in a directory with
	// more entries than a statx batch.
	wide := filepath.Join(src, "wide")
	for i := 0; i < statBatch+50; i++ {
		writeFile(t, filepath.Join(wide, fmt.Sprintf("w%04d", i)), []byte(fmt.Sprint("wide ", i)), 0o644)
	}
	must(t, os.Link(filepath.Join(wide, "w0007"), filepath.Join(src, "dir1", "dir2", "link-to-w7")))
	must(t, os.Link(filepath.Join(wide, "w0007"), filepath.Join(src, "a-first-link-to-w7")))
	must(t, os.Link(filepath.Join(wide, "w0300"), filepath.Join(wide, "w0001-link")))
	must(t, os.Mkdir(filepath.Join(wide, "sub"), 0o755))
	must(t, os.Link(filepath.Join(wide, "w0002"), filepath.Join(wide, "sub", "x")))

	date := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	backup := func(catalogued bool) []byte {
		t.Helper()
		var img bytes.Buffer
		req := BackupRequest{Dir: src, Output: &img, Now: func() time.Time { return date }}
		if catalogued {
			req.Catalog = tempCatalog(t) // a fresh catalog: a full walk
		}
		if _, err := Backup(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		return img.Bytes()
	}
	backup(true) // reading symbolic links may set their access times once
	full := backup(true)
	quick := backup(false)
	if len(full) != len(quick) {
		t.Fatalf("quick walk image is %d bytes, full walk image %d", len(quick), len(full))
	}
	if i := firstDiff(full, quick); i >= 0 {
		t.Fatalf("quick walk image differs from the full walk's at byte %d (record %d)", i, i/1024)
	}

	// And a restore of the quick image gives the tree back,
	// hard links included.
	dst := t.TempDir()
	if _, err := Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(quick), Dest: dst, Env: Env{"FORCE": "Y"}}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, snapshotTree(t, src), snapshotTree(t, dst, SymtabName))
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// TestReadDirents reads a directory with a getdents buffer that holds only
// a few entries at a time and checks it finds every name, with inode
// numbers and types, and no "." or "..".
func TestReadDirents(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf("entry-%03d-%s", i, bytes.Repeat([]byte("n"), i%40))
		want = append(want, name)
		if i%10 == 0 {
			must(t, os.Mkdir(filepath.Join(dir, name), 0o755))
		} else {
			writeFile(t, filepath.Join(dir, name), nil, 0o644)
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(fd)
	ents, err := readDirents(fd, make([]byte, 512), "sub/")
	must(t, err)
	var got []string
	for _, e := range ents {
		got = append(got, e.name())
		if e.path != "sub/"+e.name() {
			t.Errorf("path %q of %q", e.path, e.name())
		}
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(dir, e.name()), &st))
		if e.ino != st.Ino {
			t.Errorf("%s: inode %d, want %d", e.name(), e.ino, st.Ino)
		}
		if m, ok := dtMode(e.typ); ok && m != st.Mode&unix.S_IFMT {
			t.Errorf("%s: type %o, want %o", e.name(), m, st.Mode&unix.S_IFMT)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("readDirents found %d names, want %d:\n%q", len(got), len(want), got)
	}
}

// TestReadDirentsError checks that a descriptor that is not a directory
// gives an error, not a panic or an empty list.
func TestReadDirentsError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "file")
	writeFile(t, p, []byte("x"), 0o644)
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(fd)
	if _, err := readDirents(fd, make([]byte, 4096), ""); err == nil {
		t.Fatal("readDirents of a regular file: no error")
	}
}

// TestQuickWalkInodeCollision: in the quick walk, two names whose directory
// entries give the same inode number (as on overlayfs, where the number of
// a directory entry may come from another layer) are one file only when
// both are links of one inode; otherwise the second gets a dump inode of
// its own and is dumped too.
func TestQuickWalkInodeCollision(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a"), []byte("a"), 0o644)
	writeFile(t, filepath.Join(root, "b"), []byte("b"), 0o644)
	must(t, os.Link(filepath.Join(root, "a"), filepath.Join(root, "c")))
	must(t, os.Link(filepath.Join(root, "a"), filepath.Join(root, "d")))
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(root, "a"), &st))
	w := &walker{ctx: context.Background(), src: &source{root: root}, opt: &backupOpts{}, im: NewInodeMap(), quick: true}
	// add walks one name whose directory entry gives a's inode number.
	add := func(name string) node {
		sx := &unix.Statx_t{Mode: unix.S_IFREG, Ino: st.Ino}
		sx.Dev_major, sx.Dev_minor = unix.Major(st.Dev), unix.Minor(st.Dev)
		var n node
		must(t, w.fillNode(&n, sx, name, 0))
		if !n.dup {
			w.addFile(fileRef{path: name, ino: n.ino, typ: unix.S_IFREG, dump: true})
		}
		return n
	}
	a, b, c, d := add("a"), add("b"), add("c"), add("d")
	if b.dup || b.ino == a.ino {
		t.Errorf("b taken for a link of a: dup %v, inode %d (a %d)", b.dup, b.ino, a.ino)
	}
	// c is a link of a, but the number now belongs to b: c must not be
	// taken for b; a dump inode of its own is the safe side.
	if c.ino == b.ino || c.ino == a.ino && !c.dup {
		t.Errorf("c (a link of a): dup %v, inode %d (a %d, b %d)", c.dup, c.ino, a.ino, b.ino)
	}
	// d is a link of c's file, found under the number c holds now.
	if !d.dup || d.ino != c.ino {
		t.Errorf("d (a link of c): dup %v, inode %d (c %d)", d.dup, d.ino, c.ino)
	}
}

// TestFoundFiles: the files a walk finds, kept in chunks, are found by
// dump inode across chunk boundaries and joined in order at the end.
func TestFoundFiles(t *testing.T) {
	w := &walker{}
	const n = 3*foundChunk + 5
	for i := 0; i < n; i++ {
		w.addFile(fileRef{path: fmt.Sprint(i), ino: uint32(10 + 2*i)})
	}
	for _, i := range []int{0, 1, foundChunk - 1, foundChunk, 2*foundChunk + 1, n - 1} {
		f, ok := w.foundFile(uint32(10 + 2*i))
		if !ok || f.path != fmt.Sprint(i) {
			t.Errorf("file %d: %+v %v", i, f, ok)
		}
	}
	for _, d := range []uint32{0, 9, 11, uint32(10 + 2*foundChunk - 1), uint32(10 + 2*n)} {
		if f, ok := w.foundFile(d); ok {
			t.Errorf("dump inode %d found: %+v", d, f)
		}
	}
}
