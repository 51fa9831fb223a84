package smtape

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testHeader returns a baseline header with two snapshots (S2).
func testHeader() *Header {
	t0 := time.Date(2026, 12, 7, 6, 0, 0, 123456789, time.UTC)
	return &Header{
		SetID: [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		Time:  t0, Mode: Baseline, Node: "nodeA", SVM: "vs1", Volume: "vol1", FSType: "btrfs",
		VolumeType: VolumeRW, Capacity: 1 << 30, Used: 5 << 20, BlockSize: 240 << 10,
		Snapshots: []Snapshot{
			{Name: "hourly.0", Created: t0.Add(-time.Hour), ID: 7},
			{Name: "smtape_snap", Created: t0, ID: 9},
		},
	}
}

// testRecords returns one record of every type.
func testRecords() []Record {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	snap := Snapshot{Name: "smtape_snap", Created: t0, ID: 9}
	return []Record{
		&SnapshotStart{snap},
		&Inode{Ino: 256, Mode: 0o40755, UID: 0, GID: 0, Nlink: 2, Size: 4096, Atime: t0, Mtime: t0, Ctime: t0},
		&Inode{Ino: 257, Mode: 0o100640, UID: 1000, GID: 100, Nlink: 2, Size: 10, Flags: 0x10, Mtime: t0,
			Xattrs: []Xattr{{Name: "user.a", Value: []byte("v")}, {Name: "system.posix_acl_access", Value: []byte{2, 0, 0, 0}}}},
		&Inode{Ino: 258, Mode: 0o120777, Target: "../x", Nlink: 1},
		&Dirent{Dir: 256, Name: "file", Ino: 257},
		&Dirent{Dir: 256, Name: "link to file", Ino: 257},
		&Extent{ID: 1, Encoding: EncRaw, Length: 10, Data: []byte("0123456789")},
		&Extent{ID: 2, Encoding: EncZstd, Length: 1 << 20, Data: []byte{0x28, 0xb5, 0x2f, 0xfd}},
		&Map{Ino: 257, Offset: 0, Length: 10, Extent: 1},
		&Map{Ino: 257, Offset: 1 << 20, Length: 4096, Extent: 2, ExtentOffset: 8192},
		&Delete{Ino: 300},
		&Delete{Dir: 256, Name: "old"},
		&SnapshotEnd{snap},
	}
}

// writeImage writes hdr and recs to one stream, starting a new tape (into
// the same stream) before the records whose indexes are in tapesAt.
func writeImage(t testing.TB, hdr *Header, recs []Record, tapesAt ...int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, hdr)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		for _, at := range tapesAt {
			if at == i {
				if err := w.NewTape(&buf); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads an image to its end and returns its records.
func readAll(img []byte) (*Header, []Record, error) {
	r, err := NewReader(bytes.NewReader(img))
	if err != nil {
		return nil, nil, err
	}
	var recs []Record
	for {
		c, err := r.Next()
		if err == io.EOF {
			return r.Header(), recs, nil
		}
		if err != nil {
			return r.Header(), recs, err
		}
		rec, err := DecodeRecord(c)
		if err != nil {
			return r.Header(), recs, err
		}
		if x, ok := rec.(*Extent); ok {
			x.Data = append([]byte(nil), x.Data...) // it aliases the reader's buffer
		}
		recs = append(recs, rec)
	}
}

func TestRoundTrip(t *testing.T) {
	hdr, recs := testHeader(), testRecords()
	img := writeImage(t, hdr, recs)
	if !bytes.HasPrefix(img, []byte(Magic)) {
		t.Fatalf("image of %d bytes starts %q", len(img), img[:8])
	}
	got, gotRecs, err := readAll(img)
	if err != nil {
		t.Fatal(err)
	}
	want := *hdr
	want.Tape = 1
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("header:\n got %+v\nwant %+v", *got, want)
	}
	if !reflect.DeepEqual(gotRecs, recs) {
		t.Errorf("records:\n got %+v\nwant %+v", gotRecs, recs)
	}
}

// TestManySnapshotsHeader: 255 snapshots with long names need a header of
// several 4 KB blocks (S2); a 256th is refused.
func TestManySnapshotsHeader(t *testing.T) {
	hdr := testHeader()
	hdr.Snapshots = nil
	for i := range MaxSnapshots {
		hdr.Snapshots = append(hdr.Snapshots, Snapshot{Name: strings.Repeat("s", 200) + string(rune('a'+i%26)), ID: uint64(i)})
	}
	b, err := hdr.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%BlockSize != 0 || len(b) < 12*BlockSize {
		t.Fatalf("header of %d bytes", len(b))
	}
	got, err := ReadHeader(bytes.NewReader(b))
	if err != nil || len(got.Snapshots) != MaxSnapshots || got.Snapshots[254].Name != hdr.Snapshots[254].Name {
		t.Fatalf("read back: %v", err)
	}
	hdr.Snapshots = append(hdr.Snapshots, Snapshot{Name: "one too many"})
	if _, err := hdr.MarshalBinary(); !errors.Is(err, ErrInternal) {
		t.Fatalf("256 snapshots: %v", err)
	}
}

// TestTapes: an image over three tapes reads back whole, both as one
// stream with the headers inline and tape by tape through NextTape.
func TestTapes(t *testing.T) {
	hdr, recs := testHeader(), testRecords()
	img := writeImage(t, hdr, recs, 4, 9)
	if _, got, err := readAll(img); err != nil || !reflect.DeepEqual(got, recs) {
		t.Fatalf("one stream: %v, %d records", err, len(got))
	}
	tapes := splitTapes(t, img)
	if len(tapes) != 3 {
		t.Fatalf("%d tapes", len(tapes))
	}
	r, err := NewReader(bytes.NewReader(tapes[0]))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for next := 1; ; {
		c, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil && r.AtTapeEnd() && next < len(tapes) {
			if err := r.NextTape(bytes.NewReader(tapes[next])); err != nil {
				t.Fatal(err)
			}
			next++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRecord(c); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != len(recs) || r.Tape() != 3 {
		t.Fatalf("read %d records, on tape %d", n, r.Tape())
	}
	h2, err := ReadHeader(bytes.NewReader(tapes[1]))
	if err != nil || h2.Tape != 2 || h2.FirstChunk != 4 {
		t.Fatalf("tape 2 header: %+v, %v", h2, err)
	}
}

// splitTapes cuts a one-stream image at each header after the first.
func splitTapes(t *testing.T, img []byte) [][]byte {
	t.Helper()
	var tapes [][]byte
	start := 0
	for i := BlockSize; i+len(Magic) <= len(img); i++ {
		if string(img[i:i+len(Magic)]) == Magic {
			tapes = append(tapes, img[start:i])
			start = i
		}
	}
	return append(tapes, img[start:])
}

// TestWriterRefuses: what a writer must not write.
func TestWriterRefuses(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteChunk(TypeEnd, 0, nil); !errors.Is(err, ErrInternal) {
		t.Errorf("end chunk by hand: %v", err)
	}
	if err := w.WriteChunk(TypeInode, 0, make([]byte, MaxPayload+1)); !errors.Is(err, ErrInternal) {
		t.Errorf("oversized chunk: %v", err)
	}
	if err := w.WriteRecord(&Inode{Target: strings.Repeat("x", 70000)}); !errors.Is(err, ErrInternal) {
		t.Errorf("long string: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRecord(&Delete{Ino: 1}); err == nil {
		t.Error("write after Close succeeded")
	}
	if _, recs, err := readAll(buf.Bytes()); err != nil || len(recs) != 0 {
		t.Errorf("refused writes left %d records, %v", len(recs), err)
	}
}

// failWriter fails every write after the first n bytes.
type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errors.New("no space left on tape")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriterKeepsFirstError(t *testing.T) {
	w, err := NewWriter(&failWriter{n: 2 * BlockSize}, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	err = w.WriteRecord(&Extent{ID: 1, Length: 8192, Data: make([]byte, 8192)})
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("write: %v", err)
	}
	if err2 := w.Close(); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("close after failure: %v", err2)
	}
}

func TestMessage(t *testing.T) {
	err := fail(ErrChunksOutOfOrder, "chunk 3 where chunk 2 belongs")
	wrapped := errors.Join(errors.New("restore"), err)
	if Message(wrapped) != "Chunks out of order" || !errors.Is(wrapped, ErrChunksOutOfOrder) || errors.Is(wrapped, ErrChecksum) {
		t.Fatalf("Message %q", Message(wrapped))
	}
	if err.Error() != "Chunks out of order (chunk 3 where chunk 2 belongs)" {
		t.Fatalf("Error %q", err.Error())
	}
	if Message(io.EOF) != "" {
		t.Fatal("Message of a foreign error")
	}
}

// put32 sets a big-endian word and, when sumAt >= 0, recomputes the CRC of
// b[:sumAt] stored at sumAt.
func put32(b []byte, at int, v uint32, sumAt int) {
	binary.BigEndian.PutUint32(b[at:], v)
	if sumAt >= 0 {
		binary.BigEndian.PutUint32(b[sumAt:], checksum(b[:sumAt]))
	}
}

// changer is a TapeChanger whose tapes hold at least size bytes each: the
// tape in use is full once size bytes are on it.
type changer struct {
	tapes [][]byte
	size  int
}

func (c *changer) Write(p []byte) (int, error) {
	c.tapes[len(c.tapes)-1] = append(c.tapes[len(c.tapes)-1], p...)
	return len(p), nil
}

func (c *changer) NextTape() (io.Writer, error) {
	if len(c.tapes[len(c.tapes)-1]) < c.size {
		return nil, nil
	}
	c.tapes = append(c.tapes, nil)
	return c, nil
}

// TestTapeChanger: a writer over a TapeChanger starts every tape with the
// header at a chunk boundary; the tapes read back in order through
// NextTape, and out of order fail.
func TestTapeChanger(t *testing.T) {
	c := &changer{tapes: [][]byte{nil}, size: BlockSize + 200}
	w, err := NewWriter(c, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range testRecords() {
		if err := w.WriteRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(c.tapes) < 3 {
		t.Fatalf("%d tapes", len(c.tapes))
	}
	for i, tp := range c.tapes {
		h, err := ReadHeader(bytes.NewReader(tp))
		if err != nil || int(h.Tape) != i+1 {
			t.Fatalf("tape %d: header %+v, %v", i+1, h, err)
		}
	}
	if _, recs, err := readAll(bytes.Join(c.tapes, nil)); err != nil || len(recs) != len(testRecords()) {
		t.Fatalf("read back: %d records, %v", len(recs), err)
	}
	r, err := NewReader(bytes.NewReader(c.tapes[0]))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := r.Next(); err != nil {
			if !r.AtTapeEnd() {
				t.Fatalf("tape 1 ends with %v", err)
			}
			break
		}
	}
	if err := r.NextTape(bytes.NewReader(c.tapes[2])); Message(err) != "Tapes out of order" {
		t.Fatalf("tape 3 after tape 1: %v", err)
	}
}
