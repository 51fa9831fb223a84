package smtape

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary bytes as an image: reading must end in io.EOF
// or an *Error with a spec message, never panic, hang or allocate without
// the data to back it; what decodes re-encodes to the same payload.
func FuzzReader(f *testing.F) {
	img := writeImage(f, testHeader(), testRecords())
	f.Add(img)
	f.Add(writeImage(f, testHeader(), testRecords(), 3, 7))
	f.Add(img[:BlockSize])
	f.Add(img[:firstChunk+ChunkHeaderSize+5])
	f.Add(dropFirstChunk(append([]byte(nil), img...)))
	f.Add([]byte(Magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			mustBeSpec(t, err)
			return
		}
		for range 1 << 16 {
			c, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				mustBeSpec(t, err)
				return
			}
			checkRecord(t, c)
		}
		t.Fatal("more chunks than the data can hold")
	})
}

// mustBeSpec fails unless err carries one of the spec's messages.
func mustBeSpec(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("error without a spec message: %v", err)
	}
}

// checkRecord decodes c and, when it decodes, checks it encodes back to
// the same bytes.
func checkRecord(t *testing.T, c *Chunk) {
	rec, err := DecodeRecord(c)
	if err != nil {
		mustBeSpec(t, err)
		return
	}
	e := enc{}
	rec.encode(&e)
	if !bytes.Equal(e.b, c.Payload) {
		t.Fatalf("%T re-encodes to %x, read %x", rec, e.b, c.Payload)
	}
}
