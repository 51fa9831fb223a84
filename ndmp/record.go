package ndmp

import (
	"errors"
	"fmt"
	"io"
)

// Record marking (RFC 5531 section 11): each message travels as one record
// of one or more fragments; each fragment starts with a 4-byte big-endian
// word whose top bit marks the last fragment and whose other 31 bits give
// the fragment's length.

const lastFragment = 1 << 31

// DefaultMaxRecordSize is the largest record a RecordReader accepts unless
// told otherwise. It is far above the largest message a DMA or server sends
// in practice (a TAPE_WRITE or TAPE_READ of one tape record).
const DefaultMaxRecordSize = 16 << 20

// DefaultFragmentSize is the fragment size a RecordWriter uses unless told
// otherwise.
const DefaultFragmentSize = 64 << 10

// ErrRecordTooLarge is returned (wrapped) by RecordReader.ReadRecord when a
// record exceeds the reader's maximum size.
var ErrRecordTooLarge = errors.New("ndmp: record exceeds maximum size")

// A RecordReader reads records from a stream with record marking and
// reassembles their fragments.
type RecordReader struct {
	r   io.Reader
	max int
	buf []byte
	hdr [4]byte
}

// NewRecordReader returns a RecordReader reading r that rejects records
// larger than maxSize bytes (DefaultMaxRecordSize if maxSize <= 0).
func NewRecordReader(r io.Reader, maxSize int) *RecordReader {
	if maxSize <= 0 {
		maxSize = DefaultMaxRecordSize
	}
	return &RecordReader{r: r, max: maxSize}
}

// readChunk is how much a RecordReader reads at once, so that memory grows
// with the data that really arrives and not with a fragment's claimed length.
const readChunk = 64 << 10

// ReadRecord reads the next record and returns its bytes, which stay valid
// until the next call. At the end of the stream between records it returns
// io.EOF; a stream that ends inside a record gives io.ErrUnexpectedEOF.
func (rr *RecordReader) ReadRecord() ([]byte, error) {
	rr.buf = rr.buf[:0]
	for first := true; ; first = false {
		if _, err := io.ReadFull(rr.r, rr.hdr[:]); err != nil {
			if err == io.EOF && !first {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		h := uint32(rr.hdr[0])<<24 | uint32(rr.hdr[1])<<16 | uint32(rr.hdr[2])<<8 | uint32(rr.hdr[3])
		n := int(h &^ lastFragment)
		if n > rr.max-len(rr.buf) {
			return nil, fmt.Errorf("%w: %d bytes so far plus a fragment of %d, limit %d", ErrRecordTooLarge, len(rr.buf), n, rr.max)
		}
		for n > 0 {
			c := min(n, readChunk)
			off := len(rr.buf)
			rr.buf = append(rr.buf, make([]byte, c)...)
			if _, err := io.ReadFull(rr.r, rr.buf[off:]); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, fmt.Errorf("ndmp: read record fragment: %w", err)
			}
			n -= c
		}
		if h&lastFragment != 0 {
			return rr.buf, nil
		}
	}
}

// A RecordWriter writes records to a stream, cutting each into fragments of
// at most a fixed size. Each record is passed to the underlying writer in a
// single Write call.
type RecordWriter struct {
	w    io.Writer
	frag int
	buf  []byte
}

// NewRecordWriter returns a RecordWriter writing to w with fragments of at
// most fragSize bytes (DefaultFragmentSize if fragSize <= 0; at most 2^31-1).
func NewRecordWriter(w io.Writer, fragSize int) *RecordWriter {
	if fragSize <= 0 {
		fragSize = DefaultFragmentSize
	}
	fragSize = min(fragSize, lastFragment-1)
	return &RecordWriter{w: w, frag: fragSize}
}

// WriteRecord writes b as one record. An empty b is written as one empty
// last fragment.
func (rw *RecordWriter) WriteRecord(b []byte) error {
	rw.buf = rw.buf[:0]
	for {
		n := min(len(b), rw.frag)
		h := uint32(n)
		if n == len(b) {
			h |= lastFragment
		}
		rw.buf = append(rw.buf, byte(h>>24), byte(h>>16), byte(h>>8), byte(h))
		rw.buf = append(rw.buf, b[:n]...)
		b = b[n:]
		if len(b) == 0 {
			break
		}
	}
	if _, err := rw.w.Write(rw.buf); err != nil {
		return fmt.Errorf("ndmp: write record: %w", err)
	}
	if cap(rw.buf) > 4*DefaultFragmentSize+readChunk {
		rw.buf = nil // do not pin a large buffer after a large record
	}
	return nil
}
