package dump

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// imgNode is everything an image says about one inode.
type imgNode struct {
	in      Inode
	off     int64
	data    []byte
	holes   []bool // per 1 KB piece
	xattrs  map[string]string
	exts    map[ExtKind][][]byte
	entries []DirEntry
}

// image is a whole image read into memory with the package's Reader.
type image struct {
	vol        Volume
	used       *Bitmap
	dumped     *Bitmap
	nodes      map[uint32]*imgNode
	order      []uint32
	aclSection map[uint32][]byte
	offsetMap  []OffsetEntry
	sawEnd     bool
	paths      map[string]uint32 // "" is the root
}

// readImage reads every header of r and builds the image model.
func readImage(t testing.TB, r *Reader) *image {
	t.Helper()
	img, err := loadImage(r)
	if err != nil {
		t.Fatalf("reading image: %v", err)
	}
	return img
}

func loadImage(r *Reader) (*image, error) {
	img := &image{nodes: map[uint32]*imgNode{}, aclSection: map[uint32][]byte{}, paths: map[string]uint32{}}
	var last *imgNode
	inACL := false
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch h.Kind {
		case KindVolume:
			img.vol = h.Dump
		case KindUsedMap, KindDumpedMap:
			m, err := r.Bitmap()
			if err != nil {
				return nil, err
			}
			if h.Kind == KindUsedMap {
				img.used = m
			} else {
				img.dumped = m
			}
		case KindInode:
			n := &imgNode{in: h.Inode, off: h.Offset, xattrs: map[string]string{}, exts: map[ExtKind][][]byte{}}
			if h.Inode.IsDir() {
				es, err := r.DirEntries()
				if err != nil {
					return nil, err
				}
				n.entries = es
			} else {
				var buf bytes.Buffer
				for {
					off, d, hole, err := r.ReadChunk()
					if err == io.EOF {
						break
					}
					if err != nil {
						return nil, err
					}
					if int64(buf.Len()) != off {
						return nil, errors.New("chunk offsets out of order")
					}
					buf.Write(d)
					n.holes = append(n.holes, hole)
				}
				n.data = buf.Bytes()
			}
			img.nodes[h.Ino] = n
			img.order = append(img.order, h.Ino)
			last = n
		case KindXattr:
			xs, err := r.Xattrs()
			if err != nil {
				return nil, err
			}
			if last == nil || last.in.Ino != h.Ino {
				return nil, errors.New("EA record without its inode")
			}
			for _, x := range xs {
				last.xattrs[x.Name] = string(x.Value)
			}
		case KindExtension:
			switch h.Ext {
			case ExtACLSection:
				inACL = true
				continue
			case ExtOffsetMap:
				b, err := r.Extension(1 << 30)
				if err != nil {
					return nil, err
				}
				img.offsetMap, err = DecodeOffsetMap(b)
				if err != nil {
					return nil, err
				}
				continue
			}
			b, err := r.Extension(1 << 30)
			if err != nil {
				return nil, err
			}
			if inACL {
				img.aclSection[h.Ino] = b
				continue
			}
			if last == nil || last.in.Ino != h.Ino {
				return nil, errors.New("extension record without its inode")
			}
			if h.Ext == ExtXattrs {
				xs, err := DecodeXattrs(b)
				if err != nil {
					return nil, err
				}
				for _, x := range xs {
					last.xattrs[x.Name] = string(x.Value)
				}
			}
			last.exts[h.Ext] = append(last.exts[h.Ext], b)
		case KindEnd:
			img.sawEnd = true
		}
	}
	// Names, from the root down.
	seen := map[uint32]bool{}
	var walk func(dir uint32, prefix string)
	walk = func(dir uint32, prefix string) {
		if seen[dir] {
			return
		}
		seen[dir] = true
		n := img.nodes[dir]
		if n == nil {
			return
		}
		for _, e := range n.entries {
			if e.Name == "." || e.Name == ".." {
				continue
			}
			p := e.Name
			if prefix != "" {
				p = prefix + "/" + e.Name
			}
			img.paths[p] = e.Ino
			if c := img.nodes[e.Ino]; c != nil && c.in.IsDir() {
				walk(e.Ino, p)
			}
		}
	}
	img.paths[""] = RootIno
	walk(RootIno, "")
	return img, nil
}

// fsNode is what lstat and friends say about a path.
type fsNode struct {
	st     unix.Stat_t
	target string
	data   []byte
	holes  []bool // per 1 KB piece, from SEEK_DATA/SEEK_HOLE
	xattrs map[string]string
}

func lstatNode(t testing.TB, p string) *fsNode {
	t.Helper()
	n := &fsNode{xattrs: map[string]string{}}
	if err := unix.Lstat(p, &n.st); err != nil {
		t.Fatalf("lstat %q: %v", p, err)
	}
	n.xattrs = listXattrs(t, p)
	switch n.st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		s, err := os.Readlink(p)
		if err != nil {
			t.Fatal(err)
		}
		n.target = s
	case unix.S_IFREG:
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		n.data = b
		n.holes = holeMap(t, p, n.st.Size)
	}
	return n
}

func listXattrs(t testing.TB, p string) map[string]string {
	t.Helper()
	out := map[string]string{}
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return out
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("llistxattr %q: %v", p, err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 70000)
		n, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("lgetxattr %q %s: %v", p, name, err)
		}
		out[name] = string(v[:n])
	}
	return out
}

// holeMap returns, per 1 KB piece, whether the piece lies wholly in a hole.
func holeMap(t testing.TB, p string, size int64) []bool {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pieces := (size + RecordSize - 1) / RecordSize
	holes := make([]bool, pieces)
	for i := range holes {
		holes[i] = true
	}
	for _, e := range dataExtents(t, f, size) {
		for q := e.Offset / RecordSize; q < pieces && q*RecordSize < e.Offset+e.Length; q++ {
			holes[q] = false
		}
	}
	return holes
}

// dataExtents lists the data ranges of f with SEEK_DATA and SEEK_HOLE.
func dataExtents(t testing.TB, f *os.File, size int64) []Extent {
	t.Helper()
	var out []Extent
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			break // ENXIO: no more data
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Extent{Offset: d, Length: h - d})
		off = h
	}
	return out
}

// srcTree is a directory tree walked for the writer.
type srcTree struct {
	root  string
	inos  map[uint64]uint32 // st_ino -> dump inode
	paths map[uint32][]string
	dirs  []uint32
	files []uint32
	st    map[uint32]*unix.Stat_t
	kids  map[uint32][]DirEntry
	max   uint32
}

// walkTree numbers the tree's inodes (root 2, then 3, 4, ... in walk
// order; hard links share a number).
func walkTree(t testing.TB, root string) *srcTree {
	t.Helper()
	s := &srcTree{root: root, inos: map[uint64]uint32{}, paths: map[uint32][]string{}, st: map[uint32]*unix.Stat_t{}, kids: map[uint32][]DirEntry{}}
	next := uint32(RootIno)
	parentOf := map[string]uint32{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		ino, ok := s.inos[st.Ino]
		if !ok {
			ino = next
			next++
			s.inos[st.Ino] = ino
			s.st[ino] = &st
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				s.dirs = append(s.dirs, ino)
			} else {
				s.files = append(s.files, ino)
			}
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			rel = ""
		}
		s.paths[ino] = append(s.paths[ino], rel)
		if d.IsDir() {
			parentOf[p] = ino
		}
		if rel != "" {
			par := parentOf[filepath.Dir(p)]
			s.kids[par] = append(s.kids[par], DirEntry{Ino: ino, Type: DTFromMode(st.Mode), Name: filepath.Base(p)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.max = next
	return s
}

func statTime(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }

func inodeFromStat(ino uint32, st *unix.Stat_t) *Inode {
	in := &Inode{
		Ino: ino, Mode: st.Mode, Nlink: int(st.Nlink), UID: st.Uid, GID: st.Gid, Size: st.Size,
		Atime: statTime(st.Atim), Mtime: statTime(st.Mtim), Ctime: statTime(st.Ctim),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR, unix.S_IFBLK:
		in.Rdev = uint32(st.Rdev)
		in.Size = 0
	case unix.S_IFIFO, unix.S_IFSOCK:
		in.Size = 0
	}
	return in
}

func xattrList(m map[string]string) []Xattr {
	var out []Xattr
	for k, v := range m {
		out = append(out, Xattr{Name: k, Value: []byte(v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// writeTree writes the whole walked tree with w. extra, if not nil, runs
// after each inode and may add extension records.
func writeTree(t testing.TB, w *Writer, s *srcTree, extra func(ino uint32, w *Writer)) map[uint32]Position {
	t.Helper()
	used := NewBitmap(s.max + 16)
	for ino := range s.st {
		used.Set(ino)
	}
	if err := w.WriteMaps(used, used); err != nil {
		t.Fatal(err)
	}
	pos := map[uint32]Position{}
	for _, ino := range s.dirs {
		p := filepath.Join(s.root, s.paths[ino][0])
		parent := uint32(RootIno)
		if rel := s.paths[ino][0]; rel != "" {
			var pst unix.Stat_t
			if err := unix.Lstat(filepath.Dir(p), &pst); err != nil {
				t.Fatal(err)
			}
			parent = s.inos[pst.Ino]
		}
		ents := append([]DirEntry{{Ino: ino, Type: DTDir, Name: "."}, {Ino: parent, Type: DTDir, Name: ".."}}, s.kids[ino]...)
		in := inodeFromStat(ino, s.st[ino])
		ps, err := w.WriteDir(in, xattrList(listXattrs(t, p)), ents)
		if err != nil {
			t.Fatalf("WriteDir %q: %v", p, err)
		}
		pos[ino] = ps
		if extra != nil {
			extra(ino, w)
		}
	}
	for _, ino := range s.files {
		p := filepath.Join(s.root, s.paths[ino][0])
		st := s.st[ino]
		in := inodeFromStat(ino, st)
		xs := xattrList(listXattrs(t, p))
		var ps Position
		var err error
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			f, ferr := os.Open(p)
			if ferr != nil {
				t.Fatal(ferr)
			}
			ps, err = w.WriteSparseFile(in, xs, f, dataExtents(t, f, st.Size))
			f.Close()
		case unix.S_IFLNK:
			target, lerr := os.Readlink(p)
			if lerr != nil {
				t.Fatal(lerr)
			}
			ps, err = w.WriteFile(in, xs, strings.NewReader(target))
		default:
			ps, err = w.WriteFile(in, xs, nil)
		}
		if err != nil {
			t.Fatalf("writing %q: %v", p, err)
		}
		pos[ino] = ps
		if extra != nil {
			extra(ino, w)
		}
	}
	return pos
}
