package dump

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// synthFile is one inode of a synthetic image.
type synthFile struct {
	in      Inode
	name    string
	data    []byte
	extents []Extent // for sparse files
	xattrs  []Xattr
	acl     *NTACL
	dos     *DOSInfo
	streams map[string][]byte
	lun     *LUNInfo
}

// synthImage writes a synthetic image that uses every feature and returns
// it with the files it holds.
func synthImage(t testing.TB, opt Options) ([]byte, []*synthFile, *Writer) {
	t.Helper()
	rnd := rand.New(rand.NewSource(7))
	blob := func(n int) []byte {
		b := make([]byte, n)
		rnd.Read(b)
		return b
	}
	ns := time.Unix(1700000000, 123456789)
	big := blob(600 << 10) // needs TS_ADDR continuations
	sparse := make([]byte, 3<<20+77)
	copy(sparse[1<<20:], blob(5000))
	manyX := []Xattr{{Name: "user.big", Value: blob(MaxXattrValue)}, {Name: "user.small", Value: []byte("s")}, {Name: "system.other", Value: []byte("x")}}
	for i := 0; i < 20; i++ {
		manyX = append(manyX, Xattr{Name: fmt.Sprintf("user.a%02d", i), Value: blob(300)})
	}
	files := []*synthFile{
		{in: Inode{Ino: 5, Mode: ModeReg | 0o644, Nlink: 1, UID: 4000000000, GID: 70001, Size: int64(len(big)), Mtime: ns, Atime: time.Unix(-5, 0), Ctime: time.Unix(1<<33, 7), Birthtime: time.Unix(1e9, 1)},
			name: "big.bin", data: big, xattrs: manyX, acl: testACL(MaxACEs),
			dos:     &DOSInfo{Attributes: 0x21, Created: time.Unix(1e9, 999), ShortName: "BIG~1.BIN"},
			streams: map[string][]byte{"s1": blob(100), "Zone.Identifier": blob(2 << 20)}},
		{in: Inode{Ino: 6, Mode: ModeReg | 0o600, Nlink: 2, Size: int64(len(sparse)), Mtime: time.Unix(1e9, 0)}, name: "sparse.bin", data: sparse,
			extents: []Extent{{Offset: 1 << 20, Length: 5000}}},
		{in: Inode{Ino: 7, Mode: ModeLnk | 0o777, Nlink: 1, Size: 9, Mtime: time.Unix(1e9, 0)}, name: "link", data: []byte("big.bin\xff\x01")},
		{in: Inode{Ino: 8, Mode: ModeChr | 0o600, Nlink: 1, Rdev: 0x10300 | 5}, name: "dev"},
		{in: Inode{Ino: 9, Mode: ModeFifo | 0o600, Nlink: 1}, name: "fifo"},
		{in: Inode{Ino: 10, Mode: ModeReg | 0o644, Nlink: 1, Size: 3}, name: "lun.img", data: []byte("lun"), lun: &LUNInfo{Clone: true, OSType: "windows", Serial: "S/N"}},
		{in: Inode{Ino: 11, Mode: ModeReg | 0o644, Nlink: 1}, name: strings.Repeat("n", 255)},
		{in: Inode{Ino: 12, Mode: ModeReg | 0o644, Nlink: 1}, name: "caf\xe9"},
		// Symbolic link targets that fill whole records (no NUL after them).
		{in: Inode{Ino: 13, Mode: ModeLnk | 0o777, Nlink: 1, Size: 1024}, name: "link1k", data: bytes.Repeat([]byte("x/"), 512)},
		{in: Inode{Ino: 14, Mode: ModeLnk | 0o777, Nlink: 1, Size: 4095}, name: "link4095", data: append(bytes.Repeat([]byte("y/"), 2047), 'z')},
	}
	var buf bytes.Buffer
	if opt.Date.IsZero() {
		opt.Date = time.Unix(1795300000, 0)
	}
	opt.OffsetMap = true
	w, err := NewWriter(&buf, opt)
	if err != nil {
		t.Fatal(err)
	}
	used := NewBitmap(100)
	for _, i := range []uint32{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 40} {
		used.Set(i)
	}
	dumped := NewBitmap(100)
	for _, i := range []uint32{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14} {
		dumped.Set(i)
	}
	if err := w.WriteMaps(used, dumped); err != nil {
		t.Fatal(err)
	}
	root := []DirEntry{{2, DTDir, "."}, {2, DTDir, ".."}, {3, DTDir, "qtree"}, {4, DTDir, "bigdir"}}
	// A directory of more than 512 KB (TS_ADDR continuations): hard links
	// to one file.
	bigdir := []DirEntry{{4, DTDir, "."}, {2, DTDir, ".."}}
	for i := 0; i < 14000; i++ {
		bigdir = append(bigdir, DirEntry{12, DTReg, fmt.Sprintf("entry-with-a-longer-name-%05d", i)})
	}
	sub := []DirEntry{{3, DTDir, "."}, {2, DTDir, ".."}}
	for _, f := range files {
		sub = append(sub, DirEntry{f.in.Ino, DTFromMode(f.in.Mode), f.name})
	}
	sub = append(sub, DirEntry{6, DTReg, "hardlink"})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = w.WriteDir(&Inode{Ino: 2, Mode: ModeDir | 0o755, Nlink: 3, Mtime: ns}, []Xattr{{Name: "user.root", Value: []byte("r")}}, root)
	must(err)
	_, err = w.WriteDir(&Inode{Ino: 3, Mode: ModeDir | 0o750, Nlink: 2}, nil, sub)
	must(err)
	must(w.WriteQtree(&QtreeInfo{ID: 7, Name: "qtree", SecurityStyle: "mixed"}))
	_, err = w.WriteDir(&Inode{Ino: 4, Mode: ModeDir | 0o755, Nlink: 2}, nil, bigdir)
	must(err)
	for _, f := range files {
		if f.extents != nil {
			_, err = w.WriteSparseFile(&f.in, f.xattrs, bytes.NewReader(f.data), f.extents)
		} else {
			_, err = w.WriteFile(&f.in, f.xattrs, bytes.NewReader(f.data))
		}
		must(err)
		if f.dos != nil {
			must(w.WriteDOS(f.dos))
		}
		for _, name := range []string{"s1", "Zone.Identifier"} {
			if d, ok := f.streams[name]; ok {
				must(w.WriteStream(name, int64(len(d)), bytes.NewReader(d)))
			}
		}
		if f.lun != nil {
			must(w.WriteLUN(f.lun))
		}
	}
	must(w.BeginACLSection())
	must(w.WriteACL(5, files[0].acl))
	must(w.WriteACL(3, testACL(3)))
	must(w.Close())
	return buf.Bytes(), files, w
}

// TestRoundTrip writes every feature and reads it back with our reader, in
// both byte orders (D4: 1,024-ACE ACLs, DOS attributes, streams, qtree and
// LUN information, 64 KB xattrs, nanosecond times).
func TestRoundTrip(t *testing.T) {
	for _, big := range []bool{false, true} {
		t.Run(fmt.Sprintf("bigendian=%v", big), func(t *testing.T) {
			b, files, w := synthImage(t, Options{BigEndian: big, NTREC: 32, Label: "rt", Level: 3, BaseDate: time.Unix(1795200000, 0)})
			if len(b)%(32*RecordSize) != 0 {
				t.Errorf("image of %d bytes is not whole blocks", len(b))
			}
			img := readImage(t, NewReader(bytes.NewReader(b)))
			if img.vol.Swapped != big || img.vol.Level != 3 || img.vol.Label != "rt" || img.vol.NTREC != 32 || !img.vol.BaseDate.Equal(time.Unix(1795200000, 0)) {
				t.Errorf("volume %+v", img.vol)
			}
			if !img.used.Has(40) || img.dumped.Has(40) || !img.dumped.Has(12) {
				t.Errorf("maps not read back")
			}
			if d := img.nodes[4]; d == nil || len(d.entries) != 14002 || d.in.Size <= maxAddr*RecordSize || img.paths["bigdir/entry-with-a-longer-name-13999"] != 12 {
				t.Errorf("big directory not read back: %d entries, size %d, path %d", len(d.entries), d.in.Size, img.paths["bigdir/entry-with-a-longer-name-13999"])
			}
			if img.nodes[2].xattrs["user.root"] != "r" {
				t.Errorf("root xattr lost")
			}
			var q QtreeInfo
			if e := img.nodes[3].exts[ExtQtree]; len(e) != 1 || q.UnmarshalBinary(e[0]) != nil || q.ID != 7 || q.SecurityStyle != "mixed" {
				t.Errorf("qtree info %+v", q)
			}
			for _, f := range files {
				p := "qtree/" + f.name
				if len(f.name) == 255 {
					p = "qtree/" + f.name
				}
				if img.paths[p] != f.in.Ino {
					t.Errorf("%q: inode %d, want %d", p, img.paths[p], f.in.Ino)
					continue
				}
				n := img.nodes[f.in.Ino]
				got := n.in
				if got.Mode != f.in.Mode || got.UID != f.in.UID || got.GID != f.in.GID || got.Size != f.in.Size || got.Rdev != f.in.Rdev || got.Nlink != f.in.Nlink {
					t.Errorf("%q: inode %+v, want %+v", p, got, f.in)
				}
				if !bytes.Equal(n.data, f.data) && !(len(n.data) == 0 && len(f.data) == 0) {
					t.Errorf("%q: data differs", p)
				}
				if f.extents != nil {
					holes := 0
					for _, h := range n.holes {
						if h {
							holes++
						}
					}
					if holes != len(n.holes)-5 {
						t.Errorf("%q: %d of %d pieces are holes, want all but 5", p, holes, len(n.holes))
					}
				}
				for _, x := range f.xattrs {
					if n.xattrs[x.Name] != string(x.Value) {
						t.Errorf("%q: xattr %s lost (%d bytes)", p, x.Name, len(x.Value))
					}
				}
				if len(n.xattrs) != len(f.xattrs) {
					t.Errorf("%q: %d xattrs, want %d", p, len(n.xattrs), len(f.xattrs))
				}
				if needTimes(&f.in) {
					if !got.Mtime.Equal(f.in.Mtime) || !got.Atime.Equal(f.in.Atime) || !got.Ctime.Equal(f.in.Ctime) || !got.Birthtime.Equal(f.in.Birthtime) {
						t.Errorf("%q: exact times %v %v %v %v, want %v %v %v %v", p, got.Atime, got.Mtime, got.Ctime, got.Birthtime, f.in.Atime, f.in.Mtime, f.in.Ctime, f.in.Birthtime)
					}
				} else if got.Mtime.Unix() != f.in.Mtime.Unix() && !f.in.Mtime.IsZero() {
					t.Errorf("%q: mtime %v, want %v", p, got.Mtime, f.in.Mtime)
				}
				if f.dos != nil {
					var d DOSInfo
					if e := n.exts[ExtDOS]; len(e) != 1 || d.UnmarshalBinary(e[0]) != nil || d.Attributes != f.dos.Attributes || !d.Created.Equal(f.dos.Created) || d.ShortName != f.dos.ShortName {
						t.Errorf("%q: DOS info %+v", p, d)
					}
				}
				if f.lun != nil {
					var l LUNInfo
					if e := n.exts[ExtLUN]; len(e) != 1 || l.UnmarshalBinary(e[0]) != nil || l != *f.lun {
						t.Errorf("%q: LUN info %+v", p, l)
					}
				}
				if len(f.streams) > 0 {
					e := n.exts[ExtStream]
					if len(e) != len(f.streams) {
						t.Fatalf("%q: %d streams, want %d", p, len(e), len(f.streams))
					}
					for _, s := range e {
						nl := int(s[0]) | int(s[1])<<8
						name := string(s[2 : 2+nl])
						if !bytes.Equal(s[2+nl:], f.streams[name]) {
							t.Errorf("%q: stream %q differs", p, name)
						}
					}
				}
			}
			var a NTACL
			if e := img.aclSection[5]; a.UnmarshalBinary(e) != nil || len(a.ACEs) != MaxACEs || fmt.Sprint(a) != fmt.Sprint(*testACL(MaxACEs)) {
				t.Errorf("ACL section: 1,024-ACE ACL of inode 5 not read back")
			}
			if e := img.aclSection[3]; a.UnmarshalBinary(e) != nil || len(a.ACEs) != 3 {
				t.Errorf("ACL section: ACL of inode 3 not read back")
			}
			// Offset map, writer index and reader agree; direct access
			// reads one inode at its offset.
			idx := w.Index()
			if len(idx) != len(img.offsetMap) {
				t.Fatalf("offset map %d entries, index %d", len(img.offsetMap), len(idx))
			}
			for i, p := range idx {
				if img.offsetMap[i].Ino != p.Ino || img.offsetMap[i].Offset != p.Offset || img.nodes[p.Ino].off != p.Offset || p.Volume != 1 || p.VolumeOffset != p.Offset {
					t.Errorf("offset of inode %d: map %+v, index %+v, reader %d", p.Ino, img.offsetMap[i], p, img.nodes[p.Ino].off)
				}
				h, r, err := ReadInodeAt(bytes.NewReader(b), p.Offset)
				if err != nil {
					t.Fatalf("ReadInodeAt(%d): %v", p.Offset, err)
				}
				if h.Ino != p.Ino {
					t.Errorf("ReadInodeAt(%d): inode %d, want %d", p.Offset, h.Ino, p.Ino)
				}
				if h.Inode.IsDir() {
					es, err := r.DirEntries()
					if err != nil || len(es) != len(img.nodes[p.Ino].entries) {
						t.Errorf("DAR of directory %d: %d entries, %v", p.Ino, len(es), err)
					}
				} else {
					d, err := io.ReadAll(r)
					if err != nil || !bytes.Equal(d, img.nodes[p.Ino].data) {
						t.Errorf("DAR of inode %d: data differs (%v)", p.Ino, err)
					}
				}
			}
			if _, _, err := ReadInodeAt(bytes.NewReader(b), RecordSize+3); !errors.Is(err, ErrFormat) {
				t.Errorf("ReadInodeAt at an odd offset: %v", err)
			}
			if _, _, err := ReadInodeAt(bytes.NewReader(b), 0); !errors.Is(err, ErrFormat) {
				t.Errorf("ReadInodeAt at the volume header: %v", err)
			}
		})
	}
}

// TestRoundTripLinuxRestore has Linux restore list and extract the
// synthetic image, big-endian included (it swaps bytes itself).
func TestRoundTripLinuxRestore(t *testing.T) {
	restore := testutil.RequireTool(t, "restore")
	testutil.RequireRoot(t)
	for _, big := range []bool{false, true} {
		b, files, _ := synthImage(t, Options{BigEndian: big})
		dir := t.TempDir()
		p := filepath.Join(dir, "img")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out := []byte(testutil.Run(t, restore, "-t", "-f", p))
		out = bytes.ReplaceAll(out, []byte("Note: Doing Byte swapping\n"), nil)
		checkQuiet(t, "restore -t", out)
		for _, f := range files {
			if len(f.name) == 255 {
				continue // Linux restore 0.4b47 loses 255-byte names
			}
			if !bytes.Contains(out, []byte(fmt.Sprintf("%d\t./qtree/%s\n", f.in.Ino, f.name))) {
				t.Errorf("bigendian=%v: restore -t does not list %q", big, f.name)
			}
		}
		dst := filepath.Join(dir, "out")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(restore, "-r", "-f", p)
		cmd.Dir = dst
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("restore -r: %v\n%s", err, out)
		}
		out = bytes.ReplaceAll(out, []byte("Note: Doing Byte swapping\n"), nil)
		checkQuiet(t, "restore -r", out)
		if _, err := os.Stat(filepath.Join(dst, "bigdir", "entry-with-a-longer-name-13999")); err != nil {
			t.Errorf("bigendian=%v: big directory not restored: %v", big, err)
		}
		for _, f := range files {
			p := filepath.Join(dst, "qtree", f.name)
			switch {
			case f.in.Mode&ModeFmt == ModeLnk:
				if s, err := os.Readlink(p); err != nil || s != string(f.data) {
					t.Errorf("bigendian=%v: link %q restored as %d bytes (%v)", big, f.name, len(s), err)
				}
			case f.in.Mode&ModeFmt == ModeReg && len(f.name) < 255:
				if d, err := os.ReadFile(p); err != nil || !bytes.Equal(d, f.data) {
					t.Errorf("bigendian=%v: %q not restored (%v)", big, f.name, err)
				}
			}
		}
	}
}
