package dump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// smallImage writes a small image: root, a directory, a 3 KB file with an
// xattr, a symbolic link and an NT ACL, plus the offset map.
func smallImage(t testing.TB, big bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Options{Date: time.Unix(1795300000, 0), BigEndian: big, OffsetMap: true, NTREC: 4})
	if err != nil {
		t.Fatal(err)
	}
	m := NewBitmap(64)
	for _, i := range []uint32{2, 3, 4, 5} {
		m.Set(i)
	}
	must := func(_ Position, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteMaps(m, m); err != nil {
		t.Fatal(err)
	}
	must(w.WriteDir(&Inode{Ino: 2, Mode: ModeDir | 0o755, Nlink: 3}, nil, []DirEntry{{2, DTDir, "."}, {2, DTDir, ".."}, {3, DTDir, "d"}}))
	must(w.WriteDir(&Inode{Ino: 3, Mode: ModeDir | 0o755, Nlink: 2}, nil, []DirEntry{{3, DTDir, "."}, {2, DTDir, ".."}, {4, DTReg, "f"}, {5, DTLnk, "l"}}))
	data := bytes.Repeat([]byte("0123456789"), 300)
	must(w.WriteFile(&Inode{Ino: 4, Mode: ModeReg | 0o644, Nlink: 1, Size: int64(len(data)), Mtime: time.Unix(1e9, 5)}, []Xattr{{Name: "user.x", Value: []byte("y")}}, bytes.NewReader(data)))
	if err := w.WriteNTACL(testACL(5)); err != nil {
		t.Fatal(err)
	}
	must(w.WriteFile(&Inode{Ino: 5, Mode: ModeLnk | 0o777, Nlink: 1, Size: 1}, nil, strings.NewReader("f")))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// drain reads every header and all data of an image without keeping it,
// and returns the first error (nil at a clean end).
func drain(r *Reader) error {
	for i := 0; i < 1<<20; i++ {
		h, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case h.Kind == KindInode && h.Inode.IsDir():
			if _, err := r.DirEntries(); err != nil {
				return err
			}
		case h.Kind == KindXattr:
			if _, err := r.Xattrs(); err != nil {
				return err
			}
		case h.Kind == KindUsedMap || h.Kind == KindDumpedMap:
			if _, err := r.Bitmap(); err != nil {
				return err
			}
		case h.Kind == KindExtension && h.Ext == ExtNTACL:
			b, err := r.Extension(1 << 20)
			if err != nil {
				return err
			}
			var a NTACL
			if err := a.UnmarshalBinary(b); err != nil {
				return err
			}
		default:
			for {
				_, _, _, err := r.ReadChunk()
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
			}
		}
	}
	return errors.New("too many headers")
}

// recordOf returns the index of the first header record for which f is
// true.
func recordOf(t *testing.T, b []byte, f func(h *raw) bool) int {
	t.Helper()
	for i := 0; i+RecordSize <= len(b); i += RecordSize {
		var h raw
		if h.decode(b[i:]) == nil && f(&h) {
			return i / RecordSize
		}
	}
	t.Fatal("record not found")
	return -1
}

// patch rewrites header record rec after f changed it (with a valid
// checksum).
func patch(t *testing.T, b []byte, rec int, f func(h *raw)) []byte {
	t.Helper()
	c := append([]byte(nil), b...)
	var h raw
	if err := h.decode(c[rec*RecordSize:]); err != nil {
		t.Fatal(err)
	}
	f(&h)
	h.encode(c[rec*RecordSize:])
	return c
}

func TestSmallImageReads(t *testing.T) {
	for _, big := range []bool{false, true} {
		b := smallImage(t, big)
		if err := drain(NewReader(bytes.NewReader(b))); err != nil {
			t.Fatalf("bigendian=%v: %v", big, err)
		}
	}
}

// TestCorruptImages checks that each kind of damage gives its sentinel
// error and never a panic or a hang.
func TestCorruptImages(t *testing.T) {
	b := smallImage(t, false)
	file := recordOf(t, b, func(h *raw) bool { return h.typ == TypeInode && h.inumber == 4 && h.flags&FlagExtAttributes == 0 })
	ext := recordOf(t, b, func(h *raw) bool { return h.tapestry && h.extKind == uint32(ExtNTACL) })
	cases := []struct {
		name string
		img  []byte
		want error
	}{
		{"checksum", func() []byte { c := append([]byte(nil), b...); c[file*RecordSize+40]++; return c }(), ErrChecksum},
		{"magic", func() []byte { c := append([]byte(nil), b...); copy(c[24:28], []byte{1, 2, 3, 4}); return c }(), ErrMagic},
		{"data where a header belongs", append(append([]byte(nil), b[:file*RecordSize]...), b[(file+1)*RecordSize:]...), ErrMagic},
		{"c_count 513", patch(t, b, file, func(h *raw) { h.count = 513 }), ErrCount},
		{"c_count -1", patch(t, b, file, func(h *raw) { h.count = -1 }), ErrCount},
		{"size 2^62", patch(t, b, file, func(h *raw) { h.size = 1 << 62 }), ErrCount},
		{"map of 2^20 records", patch(t, b, 1, func(h *raw) { h.count = 1 << 20 }), ErrCount},
		{"extension larger than its records", patch(t, b, ext, func(h *raw) { h.extTotal = 1 << 30 }), ErrCount},
		{"extension CRC", patch(t, b, ext, func(h *raw) { h.extCRC ^= 1 }), ErrChecksum},
		{"ACL with 2,000 ACEs", func() []byte {
			c := append([]byte(nil), b...)
			p := c[(ext+2)*RecordSize:]
			// version, control, owner, group, then the count
			off := 4 + 1 + int(p[4]) + 1 + int(p[5+int(p[4])])
			p[off], p[off+1] = 0xd0, 0x07
			return patch(t, c, ext, func(h *raw) { h.extCRC = 0 })
		}(), ErrCount},
		{"unknown record type", patch(t, b, file, func(h *raw) { h.typ = 9 }), ErrFormat},
		{"compressed", patch(t, b, 0, func(h *raw) { h.flags |= FlagCompressed }), ErrCompressed},
		{"not volume 1", patch(t, b, 0, func(h *raw) { h.volume = 2 }), ErrFormat},
		{"no TS_TAPE", b[RecordSize:], ErrFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := drain(NewReader(bytes.NewReader(c.img)))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestTruncatedEverywhere cuts the image at every record boundary and in
// the middle of every record: everything before the end record gives
// ErrTruncated.
func TestTruncatedEverywhere(t *testing.T) {
	for _, big := range []bool{false, true} {
		b := smallImage(t, big)
		end := recordOf(t, b, func(h *raw) bool { return h.typ == TypeEnd })
		for cut := 0; cut < len(b); cut += RecordSize / 2 {
			err := drain(NewReader(bytes.NewReader(b[:cut])))
			if cut < (end+1)*RecordSize {
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("cut at %d (end record %d): %v", cut, end, err)
				}
			} else if err != nil {
				t.Fatalf("cut at %d after the end record: %v", cut, err)
			}
		}
	}
}

// TestWrongVolume gives the reader a next volume that is not the right one.
func TestWrongVolume(t *testing.T) {
	var vols [][]byte
	var cur *bytes.Buffer
	next := func(n int) (io.Writer, error) {
		if cur != nil {
			vols = append(vols, cur.Bytes())
		}
		cur = &bytes.Buffer{}
		return cur, nil
	}
	first, _ := next(1)
	w, err := NewWriter(first, Options{Date: time.Unix(1795300000, 0), NTREC: 2, VolumeSize: 4 * RecordSize, NextVolume: next})
	if err != nil {
		t.Fatal(err)
	}
	m := NewBitmap(16)
	m.Set(2)
	m.Set(3)
	if err := w.WriteMaps(m, m); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteDir(&Inode{Ino: 2, Mode: ModeDir | 0o755}, nil, []DirEntry{{2, DTDir, "."}, {2, DTDir, ".."}, {3, DTReg, "f"}}); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{7}, 10000)
	if _, err := w.WriteFile(&Inode{Ino: 3, Mode: ModeReg | 0o644, Size: int64(len(data))}, nil, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	vols = append(vols, cur.Bytes())
	if len(vols) < 4 {
		t.Fatalf("%d volumes", len(vols))
	}
	read := func(order []int) error {
		r := NewReader(bytes.NewReader(vols[order[0]]))
		i := 1
		r.SetNextVolume(func(n int) (io.Reader, error) {
			if i >= len(order) {
				return nil, fmt.Errorf("no volume %d", n)
			}
			i++
			return bytes.NewReader(vols[order[i-1]]), nil
		})
		return drain(r)
	}
	all := make([]int, len(vols))
	for i := range all {
		all[i] = i
	}
	if err := read(all); err != nil {
		t.Fatalf("volumes in order: %v", err)
	}
	swapped := append([]int(nil), all...)
	swapped[1], swapped[2] = swapped[2], swapped[1]
	if err := read(swapped); !errors.Is(err, ErrFormat) {
		t.Fatalf("volumes out of order: %v", err)
	}
	if err := read(all[:2]); err == nil || !strings.Contains(err.Error(), "no volume") {
		t.Fatalf("missing volume: %v", err)
	}
}

// TestWriterOrder checks the writer's refusals.
func TestWriterOrder(t *testing.T) {
	w, err := NewWriter(io.Discard, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteDir(&Inode{Ino: 2, Mode: ModeDir}, nil, nil); !errors.Is(err, ErrWriter) {
		t.Errorf("dir before maps: %v", err)
	}
	m := NewBitmap(16)
	m.Set(2)
	m.Set(3)
	m.Set(4)
	if err := w.WriteMaps(m, m); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteDir(&Inode{Ino: 3, Mode: ModeDir}, nil, nil); !errors.Is(err, ErrWriter) {
		t.Errorf("non-root first: %v", err)
	}
	if _, err := w.WriteDir(&Inode{Ino: 2, Mode: ModeDir}, nil, []DirEntry{{2, DTDir, "a/b"}}); !errors.Is(err, ErrFormat) {
		t.Errorf("name with a slash: %v", err)
	}
	if _, err := w.WriteDir(&Inode{Ino: 2, Mode: ModeDir}, nil, []DirEntry{{2, DTDir, "."}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteFile(&Inode{Ino: 4, Mode: ModeReg}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteFile(&Inode{Ino: 3, Mode: ModeReg}, nil, nil); !errors.Is(err, ErrWriter) {
		t.Errorf("descending inode: %v", err)
	}
	if _, err := w.WriteDir(&Inode{Ino: 5, Mode: ModeDir}, nil, nil); !errors.Is(err, ErrWriter) {
		t.Errorf("directory after files: %v", err)
	}
	if _, err := w.WriteFile(&Inode{Ino: 9, Mode: ModeReg}, nil, nil); !errors.Is(err, ErrWriter) {
		t.Errorf("inode not in the dumped map: %v", err)
	}
	if err := w.WriteNTACL(&NTACL{ACEs: make([]ACE, MaxACEs+1)}); !errors.Is(err, ErrCount) {
		t.Errorf("1,025 ACEs: %v", err)
	}
	if err := w.WriteACL(4, testACL(1)); !errors.Is(err, ErrWriter) {
		t.Errorf("ACL outside the section: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewWriter(io.Discard, Options{NTREC: 300}); err == nil {
		t.Errorf("NTREC 300 accepted")
	}
	// A full volume without a next one.
	w, _ = NewWriter(io.Discard, Options{NTREC: 1, VolumeSize: 2 * RecordSize})
	if err := w.WriteMaps(m, m); !errors.Is(err, ErrEndOfMedium) {
		t.Errorf("full volume: %v", err)
	}
}

// FuzzReader feeds arbitrary bytes to the reader: it must end with nil or
// one of the package's errors, never panic or loop.
func FuzzReader(f *testing.F) {
	f.Add(smallImage(f, false))
	f.Add(smallImage(f, true))
	for _, name := range []string{"l0.dump", "l1.dump", "l0_ext2.dump"} {
		if b, err := os.ReadFile("testdata/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		err := drain(NewReader(bytes.NewReader(data)))
		if err != nil && !isPackageError(err) {
			t.Fatalf("error without a sentinel: %v", err)
		}
		for off := int64(0); off < int64(len(data)) && off < 8*RecordSize; off += RecordSize {
			if h, r, err := ReadInodeAt(bytes.NewReader(data), off); err == nil {
				_ = h
				_, _ = io.Copy(io.Discard, r)
			}
		}
	})
}

func isPackageError(err error) bool {
	for _, e := range []error{ErrChecksum, ErrMagic, ErrTruncated, ErrCount, ErrFormat, ErrCompressed, ErrWriter} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzParsers feeds arbitrary bytes to the directory, EA buffer and
// extension payload decoders.
func FuzzParsers(f *testing.F) {
	d, _ := EncodeDir([]DirEntry{{2, DTDir, "."}, {5, DTReg, "name"}})
	f.Add(d)
	x, _ := encodeXattrs([]Xattr{{Name: "user.a", Value: []byte("b")}, {Name: "system.posix_acl_access", Value: []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff}}})
	f.Add(x)
	a, _ := testACL(3).MarshalBinary()
	f.Add(a)
	f.Add(EncodeOffsetMap([]OffsetEntry{{2, 5120}}))
	xs, _ := EncodeXattrs([]Xattr{{Name: "user.big", Value: make([]byte, 5000)}})
	f.Add(xs)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, e := range ParseDir(b, binary.LittleEndian) {
			if e.Ino == 0 || len(e.Name) == 0 {
				t.Fatalf("bad entry %+v", e)
			}
		}
		_, _ = parseXattrs(b)
		var acl NTACL
		if acl.UnmarshalBinary(b) == nil && len(acl.ACEs) > MaxACEs {
			t.Fatalf("%d ACEs accepted", len(acl.ACEs))
		}
		var dos DOSInfo
		_ = dos.UnmarshalBinary(b)
		var q QtreeInfo
		_ = q.UnmarshalBinary(b)
		var l LUNInfo
		_ = l.UnmarshalBinary(b)
		_, _ = DecodeXattrs(b)
		_, _ = DecodeOffsetMap(b)
	})
}
