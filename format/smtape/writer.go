package smtape

import (
	"errors"
	"fmt"
	"io"
)

// Writer writes an image: NewWriter writes the header, WriteChunk or
// WriteRecord each chunk, NewTape moves to the next tape, Close writes the
// end chunk. A Writer is not safe for concurrent use.
//
// When the underlying writer is a TapeChanger, the Writer asks it after
// every chunk whether the tape is full and then goes on with NewTape on the
// writer it returns, so that every tape of the image starts with its
// header.
type Writer struct {
	w      io.Writer
	hdr    Header
	seq    uint64 // number of the next chunk
	bytes  uint64 // payload bytes written
	closed bool
	err    error // the first write error; every later call returns it
}

// NewWriter writes hdr as the header of tape 1 to w. Tape and FirstChunk
// of hdr are ignored.
func NewWriter(w io.Writer, hdr *Header) (*Writer, error) {
	zw := &Writer{w: w, hdr: *hdr}
	zw.hdr.Snapshots = append([]Snapshot(nil), hdr.Snapshots...)
	zw.hdr.Tape, zw.hdr.FirstChunk = 1, 0
	if err := zw.writeHeader(); err != nil {
		return nil, err
	}
	return zw, nil
}

// Header returns a copy of the header of the current tape.
func (w *Writer) Header() Header { return w.hdr }

// Chunks returns the number of chunks written so far.
func (w *Writer) Chunks() uint64 { return w.seq }

func (w *Writer) writeHeader() error {
	b, err := w.hdr.MarshalBinary()
	if err != nil {
		return err
	}
	return w.write(b)
}

func (w *Writer) write(b []byte) error {
	if w.err != nil {
		return w.err
	}
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("smtape: write image: %w", err)
	}
	return w.err
}

// WriteChunk writes one chunk of type t. The payload is at most MaxPayload
// bytes; TypeEnd is written by Close only.
func (w *Writer) WriteChunk(t ChunkType, flags uint16, payload []byte) error {
	switch {
	case w.closed:
		return errors.New("smtape: write after Close")
	case len(payload) > MaxPayload:
		return fail(ErrInternal, fmt.Sprintf("chunk of %d bytes", len(payload)))
	case t == TypeEnd || !knownType(t):
		return fail(ErrInternal, fmt.Sprintf("chunk type %d", t))
	}
	return w.writeChunk(&Chunk{Type: t, Seq: w.seq, Flags: flags, Payload: payload})
}

func (w *Writer) writeChunk(c *Chunk) error {
	if err := w.write(chunkHeader(c)); err != nil {
		return err
	}
	if err := w.write(c.Payload); err != nil {
		return err
	}
	w.seq++
	w.bytes += uint64(len(c.Payload))
	if tc, ok := w.w.(TapeChanger); ok && c.Type != TypeEnd {
		next, err := tc.NextTape()
		if err != nil {
			w.err = fmt.Errorf("smtape: change tape: %w", err)
			return w.err
		}
		if next != nil {
			return w.NewTape(next)
		}
	}
	return nil
}

// TapeChanger is a writer that controls the tapes an image goes to.
type TapeChanger interface {
	io.Writer
	// NextTape is called between chunks: it returns the writer of the
	// next tape when the current one is full (past its early warning),
	// having closed the current one, or nil to go on where it is.
	NextTape() (io.Writer, error)
}

// NewTape continues the image on the next tape, written through next: the
// header again with the next tape number and the number of the next chunk.
// A writer whose tape changes happen below it (an NDMP mover pausing at the
// end of medium) never calls NewTape; its image is one stream.
func (w *Writer) NewTape(next io.Writer) error {
	if w.closed {
		return errors.New("smtape: NewTape after Close")
	}
	if w.err != nil {
		return w.err
	}
	w.w = next
	w.hdr.Tape++
	w.hdr.FirstChunk = w.seq
	return w.writeHeader()
}

// Close writes the end chunk. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	end := &Chunk{Type: TypeEnd, Seq: w.seq, Payload: endPayload(w.seq, w.bytes)}
	return w.writeChunk(end)
}
