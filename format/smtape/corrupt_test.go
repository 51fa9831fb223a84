package smtape

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// corruption is a damaged or misplaced image and the spec's message (S9)
// reading it must end with.
type corruption struct {
	name string
	img  func(t *testing.T) []byte
	want *Error
}

// firstChunk is the offset of the first chunk of a testHeader image.
const firstChunk = BlockSize

func mutate(f func(b []byte) []byte) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		img := writeImage(t, testHeader(), testRecords())
		return f(append([]byte(nil), img...))
	}
}

// otherTape returns tape 1 of the test image followed by tape 2 of an image
// written with hdr changed by change.
func otherTape(change func(h *Header)) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		a := splitTapes(t, writeImage(t, testHeader(), testRecords(), 4))
		h := testHeader()
		change(h)
		b := splitTapes(t, writeImage(t, h, testRecords(), 4))
		return append(append([]byte(nil), a[0]...), b[1]...)
	}
}

func headerCorruptions() []corruption {
	return []corruption{
		{"empty", func(*testing.T) []byte { return nil }, ErrHeader},
		{"short header", mutate(func(b []byte) []byte { return b[:100] }), ErrHeader},
		{"not an image", mutate(func(b []byte) []byte { copy(b, "070707 cpio"); return b }), ErrMagic},
		{"header version", mutate(func(b []byte) []byte { b[9] = 2; return b }), ErrChunkFormat},
		{"header bit flipped", mutate(func(b []byte) []byte { b[40] ^= 1; return b }), ErrHeader},
		{"header length absurd", mutate(func(b []byte) []byte { put32(b, 12, 1<<30, -1); return b }), ErrHeader},
		{"second tape first", func(t *testing.T) []byte {
			return splitTapes(t, writeImage(t, testHeader(), testRecords(), 4))[1]
		}, ErrTapesOutOfOrder},
	}
}

func chunkCorruptions() []corruption {
	c := firstChunk
	return []corruption{
		{"chunk header bit flipped", mutate(func(b []byte) []byte { b[c+10] ^= 4; return b }), ErrChecksum},
		{"chunk format", mutate(func(b []byte) []byte { b[c+5] = 9; put32(b[c:], 28, checksum(b[c:c+28]), -1); return b }), ErrChunkFormat},
		{"chunk type unknown", mutate(func(b []byte) []byte { b[c+7] = 99; put32(b[c:], 28, checksum(b[c:c+28]), -1); return b }), ErrChunkFormat},
		{"payload bit flipped", mutate(func(b []byte) []byte { b[c+ChunkHeaderSize+1] ^= 0x80; return b }), ErrChecksum},
		{"chunk missing", mutate(dropFirstChunk), ErrChunksOutOfOrder},
		{"cut in a payload", mutate(func(b []byte) []byte { return b[:c+ChunkHeaderSize+3] }), ErrReadImage},
		{"cut between chunks", mutate(func(b []byte) []byte { return b[:c+ChunkHeaderSize+chunkLen(b[c:])] }), ErrReadImage},
		{"garbage for a chunk", mutate(func(b []byte) []byte { copy(b[c:], "garbage garbage garbage garbage!"); return b }), ErrReadImage},
		{"tape 3 after tape 1", func(t *testing.T) []byte {
			tapes := splitTapes(t, writeImage(t, testHeader(), testRecords(), 4, 9))
			return append(append([]byte(nil), tapes[0]...), tapes[2]...)
		}, ErrTapesOutOfOrder},
		{"tape of another set", otherTape(func(h *Header) { h.SetID[0]++ }), ErrSetIDMismatch},
		{"tape of another time", otherTape(func(h *Header) { h.Time = h.Time.Add(time.Second) }), ErrTimeStampMismatch},
		{"tape starting at the wrong chunk", func(t *testing.T) []byte {
			a := splitTapes(t, writeImage(t, testHeader(), testRecords(), 4))
			b := splitTapes(t, writeImage(t, testHeader(), testRecords(), 5))
			return append(append([]byte(nil), a[0]...), b[1]...)
		}, ErrChunksOutOfOrder},
	}
}

// chunkLen returns the payload length of the chunk at the start of b.
func chunkLen(b []byte) int { return int(b[16])<<24 | int(b[17])<<16 | int(b[18])<<8 | int(b[19]) }

// dropFirstChunk removes the first chunk from an image.
func dropFirstChunk(b []byte) []byte {
	n := ChunkHeaderSize + chunkLen(b[firstChunk:])
	return append(b[:firstChunk], b[firstChunk+n:]...)
}

// TestCorruptImages: every damage a reader can meet ends in the spec's
// message for it (S9), never in a success, a panic or a hang.
func TestCorruptImages(t *testing.T) {
	for _, c := range append(headerCorruptions(), chunkCorruptions()...) {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := readAll(c.img(t))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %q", err, c.want.Message)
			}
			if Message(err) != c.want.Message {
				t.Fatalf("Message %q", Message(err))
			}
		})
	}
}

// TestAtTapeEnd: data ending between chunks is a tape end the caller may
// continue from; ending inside a chunk is not.
func TestAtTapeEnd(t *testing.T) {
	img := writeImage(t, testHeader(), testRecords())
	cut := firstChunk + ChunkHeaderSize + chunkLen(img[firstChunk:])
	r, err := NewReader(bytes.NewReader(img[:cut]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrReadImage) || !r.AtTapeEnd() {
		t.Fatalf("at a boundary: %v, AtTapeEnd %v", err, r.AtTapeEnd())
	}
	r, _ = NewReader(bytes.NewReader(img[:cut-1]))
	if _, err := r.Next(); !errors.Is(err, ErrReadImage) || r.AtTapeEnd() {
		t.Fatalf("inside a chunk: %v, AtTapeEnd %v", err, r.AtTapeEnd())
	}
	if _, err := r.Next(); !errors.Is(err, ErrReadImage) {
		t.Fatalf("after a failure Next returns it again, got %v", err)
	}
}

// TestEndChunkCounts: an end chunk that counts differently from what was
// read (a chunk lost with checksums recomputed) fails.
func TestEndChunkCounts(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, testHeader())
	_ = w.WriteRecord(&Delete{Ino: 5})
	w.bytes += 3 // the end chunk now claims three more payload bytes
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readAll(buf.Bytes()); !errors.Is(err, ErrReadImage) {
		t.Fatalf("got %v", err)
	}
}

// TestRecordShort: a payload that does not hold its record fails.
func TestRecordShort(t *testing.T) {
	for _, c := range []*Chunk{
		{Type: TypeInode, Payload: []byte{1, 2, 3}},
		{Type: TypeDirent, Payload: make([]byte, 40)},
		{Type: TypeExtent, Payload: append(make([]byte, 9), 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1, 'x')},
		{Type: TypeEnd},
	} {
		if _, err := DecodeRecord(c); err == nil {
			t.Errorf("type %d decoded from %d bytes", c.Type, len(c.Payload))
		}
	}
}
