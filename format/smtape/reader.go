package smtape

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Reader reads an image chunk by chunk. It is not safe for concurrent use.
type Reader struct {
	r       io.Reader
	first   Header // the header of tape 1
	tape    uint16 // the tape being read
	seq     uint64 // number of the next chunk
	bytes   uint64 // payload bytes read
	buf     []byte // payload buffer, reused
	done    bool   // the end chunk was read
	tapeEnd bool   // the last Next met the end of the data between chunks
	err     error  // a failure every later call returns
}

// NewReader reads and checks the header of an image's first tape.
func NewReader(r io.Reader) (*Reader, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return nil, err
	}
	if h.Tape != 1 || h.FirstChunk != 0 {
		return nil, fail(ErrTapesOutOfOrder, fmt.Sprintf("first tape read is tape %d of its image", h.Tape))
	}
	return &Reader{r: r, first: *h, tape: 1}, nil
}

// Header returns the header of the image's first tape.
func (r *Reader) Header() *Header { h := r.first; return &h }

// Tape returns the number of the tape being read.
func (r *Reader) Tape() uint16 { return r.tape }

// AtTapeEnd reports whether the last Next failed because the data ended
// between two chunks before the end chunk: the point where a reader that
// controls the tapes calls NextTape.
func (r *Reader) AtTapeEnd() bool { return r.tapeEnd }

// Next returns the next chunk, or io.EOF after the end chunk. The payload
// is valid until the next call. A header met in place of a chunk (the next
// tape's, in an image written as one stream across tapes) is checked like
// one given to NextTape.
func (r *Reader) Next() (*Chunk, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.done {
		return nil, io.EOF
	}
	c, err := r.next()
	if err != nil && !r.tapeEnd {
		r.err = err
	}
	return c, err
}

func (r *Reader) next() (*Chunk, error) {
	r.tapeEnd = false
	var hb [ChunkHeaderSize]byte
	for {
		n, err := io.ReadFull(r.r, hb[:])
		if err != nil {
			r.tapeEnd = n == 0 && errors.Is(err, io.EOF)
			return nil, fail(ErrReadImage, fmt.Sprintf("image ends before its end chunk (chunk %d): %s", r.seq, readErr(err)))
		}
		if !bytes.HasPrefix(hb[:], []byte(Magic)) {
			break
		}
		if err := r.inlineHeader(hb[:]); err != nil {
			return nil, err
		}
	}
	p, err := parseChunkHeader(hb[:])
	if err != nil {
		return nil, err
	}
	if p.seq != r.seq {
		return nil, fail(ErrChunksOutOfOrder, fmt.Sprintf("chunk %d where chunk %d belongs", p.seq, r.seq))
	}
	return r.payload(p)
}

// inlineHeader reads the rest of a header whose first bytes are start and
// checks it as the next tape's.
func (r *Reader) inlineHeader(start []byte) error {
	block := make([]byte, BlockSize)
	copy(block, start)
	if _, err := io.ReadFull(r.r, block[len(start):]); err != nil {
		return fail(ErrHeader, "header cut short: "+readErr(err))
	}
	h, err := readHeaderRest(r.r, block)
	if err != nil {
		return err
	}
	return r.continueWith(h)
}

// payload reads and checks the payload of the chunk p describes.
func (r *Reader) payload(p parsedHeader) (*Chunk, error) {
	r.buf = r.buf[:0]
	for len(r.buf) < p.length { // grown as the data arrives, not on the header's word
		step := min(p.length-len(r.buf), 1<<20)
		r.buf = slices.Grow(r.buf, step)
		if _, err := io.ReadFull(r.r, r.buf[len(r.buf):len(r.buf)+step]); err != nil {
			return nil, fail(ErrReadImage, fmt.Sprintf("chunk %d cut short: %s", p.seq, readErr(err)))
		}
		r.buf = r.buf[:len(r.buf)+step]
	}
	if got := checksum(r.buf); got != p.sum {
		return nil, fail(ErrChecksum, fmt.Sprintf("chunk %d payload checksum %08x, expected %08x", p.seq, got, p.sum))
	}
	c := &Chunk{Type: p.typ, Seq: p.seq, Flags: p.flags, Payload: r.buf}
	if c.Type == TypeEnd {
		return nil, r.end(c)
	}
	r.seq++
	r.bytes += uint64(len(c.Payload))
	return c, nil
}

// end checks the end chunk against what was read and ends the image.
func (r *Reader) end(c *Chunk) error {
	d := dec{b: c.Payload}
	chunks, total := d.u64(), d.u64()
	if d.short || len(d.b) != 0 || chunks != r.seq || total != r.bytes {
		return fail(ErrReadImage, fmt.Sprintf("end chunk counts %d chunks and %d bytes, read %d and %d", chunks, total, r.seq, r.bytes))
	}
	r.done = true
	return io.EOF
}

// NextTape continues the image on the next tape, read through next, after
// Next reported the end of the data between chunks (AtTapeEnd). The tape's
// header must belong to the same backup set and time, have the next tape
// number and start at the next chunk.
func (r *Reader) NextTape(next io.Reader) error {
	if r.err != nil {
		return r.err
	}
	h, err := ReadHeader(next)
	if err != nil {
		return err
	}
	if err := r.continueWith(h); err != nil {
		return err
	}
	r.r = next
	r.tapeEnd = false
	return nil
}

// continueWith checks h as the header of the tape after the current one.
func (r *Reader) continueWith(h *Header) error {
	switch {
	case h.SetID != r.first.SetID:
		return fail(ErrSetIDMismatch, fmt.Sprintf("tape of set %x in set %x", h.SetID, r.first.SetID))
	case !h.Time.Equal(r.first.Time):
		return fail(ErrTimeStampMismatch, fmt.Sprintf("tape of %s in image of %s", h.Time, r.first.Time))
	case h.Tape != r.tape+1:
		return fail(ErrTapesOutOfOrder, fmt.Sprintf("tape %d after tape %d", h.Tape, r.tape))
	case h.FirstChunk != r.seq:
		return fail(ErrChunksOutOfOrder, fmt.Sprintf("tape %d starts at chunk %d, expected %d", h.Tape, h.FirstChunk, r.seq))
	}
	r.tape = h.Tape
	return nil
}
