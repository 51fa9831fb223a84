package ndmp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
)

func TestRecordManyFragments(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var stream bytes.Buffer
	w := NewRecordWriter(&stream, 7) // odd size: fragments not aligned to 4
	var records [][]byte
	for i := range 50 {
		b := make([]byte, r.IntN(3000))
		for j := range b {
			b[j] = byte(i + j)
		}
		if i == 10 {
			b = nil
		}
		records = append(records, b)
		if err := w.WriteRecord(b); err != nil {
			t.Fatal(err)
		}
	}
	// Count the fragments to be sure the records were really cut.
	frags := 0
	for raw := stream.Bytes(); len(raw) > 0; frags++ {
		h := binary.BigEndian.Uint32(raw)
		n := int(h &^ lastFragment)
		if n > 7 {
			t.Fatalf("fragment of %d bytes with fragment size 7", n)
		}
		raw = raw[4+n:]
	}
	if frags < 1000 {
		t.Fatalf("only %d fragments", frags)
	}
	rr := NewRecordReader(&stream, 0)
	for i, want := range records {
		got, err := rr.ReadRecord()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("record %d differs (%d vs %d bytes)", i, len(got), len(want))
		}
	}
	if _, err := rr.ReadRecord(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

// TestRecordHandMade reads fragments built by hand, including empty
// non-final fragments.
func TestRecordHandMade(t *testing.T) {
	in := []byte{
		0, 0, 0, 2, 'a', 'b',
		0, 0, 0, 0,
		0x80, 0, 0, 1, 'c',
		0x80, 0, 0, 0,
	}
	rr := NewRecordReader(bytes.NewReader(in), 16)
	got, err := rr.ReadRecord()
	if err != nil || string(got) != "abc" {
		t.Fatalf("first record %q, %v", got, err)
	}
	got, err = rr.ReadRecord()
	if err != nil || len(got) != 0 {
		t.Fatalf("empty record %q, %v", got, err)
	}
}

func TestRecordErrors(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"fragment above max", []byte{0x80, 0, 1, 0}, 255, ErrRecordTooLarge},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff}, 0, ErrRecordTooLarge},
		{"sum of fragments above max", []byte{0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0x80, 0, 0, 8}, 12, ErrRecordTooLarge},
		{"truncated header", []byte{0x80, 0}, 0, io.ErrUnexpectedEOF},
		{"truncated data", []byte{0x80, 0, 0, 8, 1, 2}, 0, io.ErrUnexpectedEOF},
		{"missing last fragment", []byte{0, 0, 0, 1, 9}, 0, io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewRecordReader(bytes.NewReader(c.in), c.max).ReadRecord()
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// TestRecordLengthNoHugeAlloc checks that a claimed 16 MiB fragment followed
// by nothing does not make the reader allocate 16 MiB.
func TestRecordLengthNoHugeAlloc(t *testing.T) {
	in := []byte{0x80, 0xff, 0xff, 0xf0, 1, 2, 3}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := NewRecordReader(bytes.NewReader(in), 32<<20).ReadRecord()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
		t.Fatalf("reader allocated %d bytes for a 7-byte stream", grown)
	}
}

// FuzzRecordReader reads arbitrary streams: no panic, no record above the
// limit, and every record read re-encodes to fragments the reader accepts.
func FuzzRecordReader(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 2, 'h', 'i'})
	f.Add([]byte{0, 0, 0, 1, 'a', 0x80, 0, 0, 1, 'b', 0x80, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		rr := NewRecordReader(bytes.NewReader(in), 1024)
		for {
			rec, err := rr.ReadRecord()
			if err != nil {
				return
			}
			if len(rec) > 1024 {
				t.Fatalf("record of %d bytes above the limit", len(rec))
			}
			var buf bytes.Buffer
			if err := NewRecordWriter(&buf, 5).WriteRecord(rec); err != nil {
				t.Fatal(err)
			}
			again, err := NewRecordReader(&buf, 1024).ReadRecord()
			if err != nil || !bytes.Equal(again, rec) {
				t.Fatalf("rewritten record: %q, %v; want %q", again, err, rec)
			}
		}
	})
}
