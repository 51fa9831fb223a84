package simtap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// rec makes deterministic record contents for record i of file f.
func rec(f, i, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewSource(int64(f*100003 + i)))
	r.Read(b)
	return b
}

func newCart(t testing.TB) (*Cartridge, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.tap")
	c, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

// simhImage encodes objects the way SIMH does, independently of the
// writer: a nil slice is a tape mark.
func simhImage(objs ...[]byte) []byte {
	var out []byte
	for _, o := range objs {
		if o == nil {
			out = binary.LittleEndian.AppendUint32(out, 0)
			continue
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(len(o)))
		out = append(out, o...)
		if len(o)%2 == 1 {
			out = append(out, 0)
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(len(o)))
	}
	return out
}

func TestWriteMatchesSIMHLayout(t *testing.T) {
	c, p := newCart(t)
	a, b := []byte("hello"), []byte("even")
	for _, step := range []func() error{
		func() error { return c.WriteRecord(a) },
		func() error { return c.WriteRecord(b) },
		c.WriteMark,
		func() error { return c.WriteRecord(a) },
		c.WriteMark,
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := simhImage(a, b, nil, a, nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("image bytes\n got %x\nwant %x", got, want)
	}
}

func TestReadForeignSIMHImage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "foreign.tap")
	img := simhImage([]byte("abc"))
	img = binary.LittleEndian.AppendUint32(img, wordGap) // erase gap
	img = append(img, simhImage(nil, []byte("bad!"))...)
	// flag the last record bad (class 8)
	bad := uint32(0x80000000 | 4)
	binary.LittleEndian.PutUint32(img[len(img)-12:], bad)
	binary.LittleEndian.PutUint32(img[len(img)-4:], bad)
	img = binary.LittleEndian.AppendUint32(img, wordEOM)
	img = append(img, "junk after the end of medium"...)
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Open(p, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Len() != 3 || c.Files() != 1 {
		t.Fatalf("len %d files %d, want 3 and 1", c.Len(), c.Files())
	}
	buf := make([]byte, 100)
	n, err := c.ReadRecord(buf)
	if err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("first record %q %v", buf[:n], err)
	}
	if _, err := c.ReadRecord(buf); !errors.Is(err, ErrTapeMark) {
		t.Fatalf("want tape mark, got %v", err)
	}
	n, err = c.ReadRecord(buf)
	if !errors.Is(err, ErrBadRecord) || string(buf[:n]) != "bad!" {
		t.Fatalf("bad record: %q %v", buf[:n], err)
	}
	if _, err := c.ReadRecord(buf); !errors.Is(err, ErrEndOfData) {
		t.Fatalf("want end of data, got %v", err)
	}
	if c.Repaired() != 0 {
		t.Fatal("read-only open must not repair")
	}
}

func TestSpacingAndResiduals(t *testing.T) {
	c, _ := newCart(t)
	defer c.Close()
	// file 0: 5 records, file 1: 3 records, file 2: 0 records, then EOD
	for f, n := range []int{5, 3, 0} {
		for i := 0; i < n; i++ {
			if err := c.WriteRecord(rec(f, i, 100+i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.WriteMark(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string, gotResid, wantResid, file, record int64) {
		t.Helper()
		pos := c.Position()
		if gotResid != wantResid || pos.File != file || pos.Record != record {
			t.Fatalf("%s: resid %d pos %d/%d, want resid %d pos %d/%d", step, gotResid, pos.File, pos.Record, wantResid, file, record)
		}
	}
	must := func(r int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	_ = c.Rewind()
	check("BSR at BOT", must(c.SpaceRecords(-100)), 100, 0, 0)
	check("BSF at BOT", must(c.SpaceFiles(-100)), 100, 0, 0)
	check("FSR 3", must(c.SpaceRecords(3)), 0, 0, 3)
	check("FSR stops before mark", must(c.SpaceRecords(10)), 8, 0, 5)
	check("FSR again at mark", must(c.SpaceRecords(4)), 4, 0, 5)
	check("FSF 1 crosses mark", must(c.SpaceFiles(1)), 0, 1, 0)
	check("FSR 2", must(c.SpaceRecords(2)), 0, 1, 2)
	check("BSR stops after mark", must(c.SpaceRecords(-5)), 3, 1, 0)
	check("FSF 5 to EOD", must(c.SpaceFiles(5)), 3, 3, 0)
	if !c.AtEnd() {
		t.Fatal("expected end of data")
	}
	check("BSF 1 lands before last mark", must(c.SpaceFiles(-1)), 0, 2, 0)
	if o, err := c.Peek(); err != nil || o.Kind != KindMark {
		t.Fatalf("peek after BSF: %+v %v", o, err)
	}
	check("BSF 2", must(c.SpaceFiles(-2)), 0, 0, 5)
	check("BSF 1 to BOT", must(c.SpaceFiles(-1)), 1, 0, 0)
	if err := c.LocateFile(2); err != nil {
		t.Fatal(err)
	}
	check("locate file 2", 0, 0, 2, 0)
	if err := c.LocateFile(9); !errors.Is(err, ErrEndOfData) {
		t.Fatalf("locate beyond: %v", err)
	}
}

func TestReadRecordsAndMarks(t *testing.T) {
	c, _ := newCart(t)
	defer c.Close()
	for i := 0; i < 4; i++ {
		if err := c.WriteRecord(rec(0, i, 1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WriteMark(); err != nil {
		t.Fatal(err)
	}
	_ = c.Rewind()
	buf := make([]byte, 4096)
	for i := 0; i < 4; i++ {
		n, err := c.ReadRecord(buf)
		if err != nil || !bytes.Equal(buf[:n], rec(0, i, 1000+i)) {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if _, err := c.ReadRecord(buf); !errors.Is(err, ErrTapeMark) {
		t.Fatalf("want mark, got %v", err)
	}
	if p := c.Position(); p.File != 1 || p.Record != 0 {
		t.Fatalf("after mark at %+v, want file 1 record 0", p)
	}
	if _, err := c.ReadRecord(buf); !errors.Is(err, ErrEndOfData) {
		t.Fatalf("want end of data, got %v", err)
	}
	_ = c.Rewind()
	small := make([]byte, 10)
	n, err := c.ReadRecord(small)
	if !errors.Is(err, ErrTruncated) || n != 10 || !bytes.Equal(small, rec(0, 0, 1000)[:10]) {
		t.Fatalf("truncated read: n=%d err=%v", n, err)
	}
	if p := c.Position(); p.Record != 1 {
		t.Fatalf("truncated read must still pass the record, at %+v", p)
	}
}

func TestWriteInMiddleDiscardsRest(t *testing.T) {
	c, p := newCart(t)
	for i := 0; i < 10; i++ {
		if err := c.WriteRecord(rec(0, i, 300)); err != nil {
			t.Fatal(err)
		}
		if i == 4 {
			if err := c.WriteMark(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	_ = c.Rewind()
	if _, err := c.SpaceRecords(3); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteRecord([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 4 || c.Files() != 0 {
		t.Fatalf("after overwrite len %d files %d, want 4 and 0", c.Len(), c.Files())
	}
	// Reopen without closing (as after kill -9): the index file must not
	// describe the discarded objects.
	c2, err := Open(p, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if c2.Len() != 4 || c2.Files() != 0 {
		t.Fatalf("reopened len %d files %d, want 4 and 0", c2.Len(), c2.Files())
	}
	_ = c2.Locate(3)
	b, err := c2.ReadRecordAlloc()
	if err != nil || string(b) != "new" {
		t.Fatalf("last record %q %v", b, err)
	}
	c2.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if want := int64(3*308 + 4 + 4 + 4); st.Size() != want {
		t.Fatalf("image size %d, want %d", st.Size(), want)
	}
}

func TestIndexReusedRebuiltAndStale(t *testing.T) {
	c, p := newCart(t)
	for i := 0; i < 50; i++ {
		if err := c.WriteRecord(rec(0, i, 64+i)); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			if err := c.WriteMark(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(IndexPath(p))
	if err != nil || st.Size() != idxHeaderSize+55*idxEntrySize {
		t.Fatalf("index size %v %v", st, err)
	}
	verify := func(why string) {
		t.Helper()
		c, err := Open(p, nil)
		if err != nil {
			t.Fatal(why, err)
		}
		defer c.Close()
		if c.Len() != 55 || c.Files() != 5 {
			t.Fatalf("%s: len %d files %d", why, c.Len(), c.Files())
		}
		if err := c.LocateFile(3); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SpaceRecords(4); err != nil {
			t.Fatal(err)
		}
		b, err := c.ReadRecordAlloc()
		if err != nil || !bytes.Equal(b, rec(0, 34, 64+34)) {
			t.Fatalf("%s: record 3/4 wrong: %v", why, err)
		}
	}
	verify("valid index")
	if err := os.Remove(IndexPath(p)); err != nil {
		t.Fatal(err)
	}
	verify("index missing")
	// A stale index claiming other objects: corrupt the stored length word.
	raw, _ := os.ReadFile(IndexPath(p))
	binary.LittleEndian.PutUint32(raw[idxHeaderSize+54*idxEntrySize+8:], 12345)
	if err := os.WriteFile(IndexPath(p), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	verify("index stale")
	// An index of a shorter image: the rest is scanned.
	if err := os.WriteFile(IndexPath(p), []byte("TPSTIDX1 truncated garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	verify("index garbage")
}

func TestTornTailIsCut(t *testing.T) {
	for _, tail := range [][]byte{
		{0x10},                   // part of a length word
		{0x00, 0x01, 0x00, 0x00}, // a length word and no data
		append(binary.LittleEndian.AppendUint32(nil, 200), make([]byte, 150)...),         // partial data
		append(binary.LittleEndian.AppendUint32(nil, 4), 'a', 'b', 'c', 'd', 9, 0, 0, 0), // bad trailer
	} {
		t.Run(fmt.Sprintf("%d", len(tail)), func(t *testing.T) {
			c, p := newCart(t)
			for i := 0; i < 3; i++ {
				if err := c.WriteRecord(rec(1, i, 777)); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			_, _ = f.Write(tail)
			f.Close()
			c, err := Open(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Repaired() != int64(len(tail)) || c.Len() != 3 {
				t.Fatalf("repaired %d len %d, want %d and 3", c.Repaired(), c.Len(), len(tail))
			}
			for i := 0; i < 3; i++ {
				b, err := c.ReadRecordAlloc()
				if err != nil || !bytes.Equal(b, rec(1, i, 777)) {
					t.Fatalf("record %d: %v", i, err)
				}
			}
			if _, err := c.ReadRecordAlloc(); !errors.Is(err, ErrEndOfData) {
				t.Fatalf("torn record read back: %v", err)
			}
			if err := c.WriteRecord([]byte("after")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCompressionRoundTrip(t *testing.T) {
	c, p := newCart(t)
	text := bytes.Repeat([]byte("tapestry compresses this line nicely. "), 3000)
	random := rec(2, 0, 5000)
	for _, comp := range []Compression{None, Fast, Default, Better} {
		if err := c.WriteRecordCompressed(text, comp); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WriteRecordCompressed(random, Better); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Size() > int64(len(text))+int64(len(random))+20000 {
		t.Fatalf("image %d bytes: compression did not happen", st.Size())
	}
	for _, drop := range []bool{false, true} {
		if drop {
			if err := os.Remove(IndexPath(p)); err != nil {
				t.Fatal(err)
			}
		}
		c, err := Open(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []Compression{None, Fast, Default, Better, None} {
			o, err := c.Peek()
			if err != nil || o.Compression != want {
				t.Fatalf("record %d: compression %v %v, want %v", i, o.Compression, err, want)
			}
			wantData := text
			if i == 4 {
				wantData = random
			}
			if o.Length != len(wantData) {
				t.Fatalf("record %d: length %d, want %d", i, o.Length, len(wantData))
			}
			b, err := c.ReadRecordAlloc()
			if err != nil || !bytes.Equal(b, wantData) {
				t.Fatalf("record %d (index dropped %v): %v", i, drop, err)
			}
		}
		c.Close()
	}
}

func TestBadInput(t *testing.T) {
	c, p := newCart(t)
	if err := c.WriteRecord(nil); !errors.Is(err, ErrRecordSize) {
		t.Fatalf("empty record: %v", err)
	}
	if err := c.WriteRecord(make([]byte, MaxRecordSize+1)); !errors.Is(err, ErrRecordSize) {
		t.Fatalf("huge record: %v", err)
	}
	if err := c.WriteRecordCompressed([]byte("x"), 9); err == nil {
		t.Fatal("unknown compression accepted")
	}
	if err := c.Locate(-1); err == nil {
		t.Fatal("negative locate accepted")
	}
	_ = c.Close()
	if err := c.WriteMark(); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	ro, err := Open(p, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.WriteMark(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write read-only: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.tap"), nil); err == nil {
		t.Fatal("missing file opened")
	}
	if _, err := Open(t.TempDir(), nil); err == nil {
		t.Fatal("directory opened")
	}
}

// TestWriteBehindFollowsHead checks the write-behind bookkeeping: a long
// run of records keeps the writeback behind the end of the data and at most
// writeBehindLag bytes behind it, a write back at the beginning of the tape
// pulls it back, and the records read back intact (the writeback hints
// never change what is written).
func TestWriteBehindFollowsHead(t *testing.T) {
	c, path := newCart(t)
	const n = 3*writeBehindChunk/(64<<10) + 5
	for i := 0; i < n; i++ {
		if err := c.WriteRecord(rec(5, i, 64<<10)); err != nil {
			t.Fatal(err)
		}
	}
	checkWriteBehind(t, c)
	if err := c.Rewind(); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteRecord(rec(6, 0, 100)); err != nil {
		t.Fatal(err)
	}
	checkWriteBehind(t, c)
	for i := 1; i < n; i++ {
		if err := c.WriteRecord(rec(5, i, 64<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	for i := 0; i < n; i++ {
		k, err := c.ReadRecord(buf)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		want := rec(5, i, 64<<10)
		if i == 0 {
			want = rec(6, 0, 100)
		}
		if !bytes.Equal(buf[:k], want) {
			t.Fatalf("record %d differs", i)
		}
	}
	if _, err := c.ReadRecord(buf); !errors.Is(err, ErrEndOfData) {
		t.Fatalf("after the records: %v, want end of data", err)
	}
}

// TestRewriteFromBOTReplacesImage (issue 5): a write at the beginning of
// a tape that holds data puts a new image file in place of the old one (no
// truncation of a big file on the write path) with the old file's mode;
// the tape then holds only the new data, also after the cartridge is
// opened again with its index and without it, and Sync syncs the
// directory once for it. The old file stays open until that Sync (its
// freeing does not compete with the new data's writes).
func TestRewriteFromBOTReplacesImage(t *testing.T) {
	c, path := newCart(t)
	for i := 0; i < 50; i++ {
		if err := c.WriteRecord(rec(1, i, 4000+i)); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			if err := c.WriteMark(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Rewind(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := c.WriteRecord(rec(2, i, 3000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WriteMark(); err != nil {
		t.Fatal(err)
	}
	now, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(old, now) || now.Mode().Perm() != 0o600 || now.Size() != c.Size() || !c.dirDirty || len(c.old) != 1 {
		t.Fatalf("after the rewrite: same file %v, mode %v, size %d (tape %d), directory to sync %v, %d old images open",
			os.SameFile(old, now), now.Mode(), now.Size(), c.Size(), c.dirDirty, len(c.old))
	}
	if st, err := c.old[0].Stat(); err != nil || !os.SameFile(st, old) {
		t.Fatalf("old image held: %v", err)
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if c.dirDirty || len(c.old) != 0 {
		t.Fatalf("Sync left the directory unsynced (%v) or %d old images open", c.dirDirty, len(c.old))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".new"); !os.IsNotExist(err) {
		t.Fatalf("replacement file left: %v", err)
	}
	for _, withIndex := range []bool{true, false} {
		if !withIndex {
			if err := os.Remove(IndexPath(path)); err != nil {
				t.Fatal(err)
			}
		}
		c, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Len() != 4 || c.Files() != 1 {
			t.Fatalf("index %v: %d objects, %d marks; want 4, 1", withIndex, c.Len(), c.Files())
		}
		buf := make([]byte, 5000)
		for i := 0; i < 3; i++ {
			n, err := c.ReadRecord(buf)
			if err != nil || !bytes.Equal(buf[:n], rec(2, i, 3000)) {
				t.Fatalf("index %v: record %d: %v", withIndex, i, err)
			}
		}
		if _, err := c.ReadRecord(buf); !errors.Is(err, ErrTapeMark) {
			t.Fatalf("index %v: after the records: %v", withIndex, err)
		}
		if _, err := c.ReadRecord(buf); !errors.Is(err, ErrEndOfData) {
			t.Fatalf("index %v: after the mark: %v", withIndex, err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
