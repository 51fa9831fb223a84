package server

import (
	"net"
	"syscall"
)

// recordReaderSize is the least buffer of a recordReader.
const recordReaderSize = 1 << 20

// recordReader cuts the stream of a TCP data connection into tape records
// for the mover (mode READ). It reads whatever the connection has, up to
// its buffer of several records, and hands the records out of that buffer
// (no copy), so that the mover makes a read for many records rather than
// one or more for each. It asks the socket (SO_RCVLOWAT) to report data
// only once a record is there: the mover writes only whole records anyway,
// and it is not woken for every segment that arrives.
type recordReader struct {
	c    net.Conn
	rs   int
	buf  []byte
	r, w int   // the unread bytes are buf[r:w]
	err  error // the error that ended the reads
}

func newRecordReader(c net.Conn, rs int) *recordReader {
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			// Only a hint: without it the reads are just smaller.
			_ = raw.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, rs)
			})
		}
	}
	return &recordReader{c: c, rs: rs, buf: make([]byte, max(recordReaderSize, 2*rs))}
}

// next returns the next record and the number of stream bytes in it: rs,
// or fewer for the last record at the end of the stream, which is padded
// with zeros to rs. With no byte left it returns n == 0 and the error that
// ended the stream (io.EOF for a close). The record stays valid until the
// next call.
func (rr *recordReader) next() (rec []byte, n int, err error) {
	for rr.w-rr.r < rr.rs && rr.err == nil {
		if len(rr.buf)-rr.r < rr.rs {
			rr.compact()
		}
		k, err := rr.c.Read(rr.buf[rr.w:])
		rr.w += k
		if err != nil {
			rr.err = err
		}
	}
	n = min(rr.w-rr.r, rr.rs)
	if n == 0 {
		return nil, 0, rr.err
	}
	if n < rr.rs {
		if len(rr.buf)-rr.r < rr.rs {
			rr.compact()
		}
		clear(rr.buf[rr.r+n : rr.r+rr.rs])
	}
	rec = rr.buf[rr.r : rr.r+rr.rs]
	rr.r += n
	if rr.r == rr.w {
		rr.r, rr.w = 0, 0
	}
	return rec, n, nil
}

// compact moves the unread bytes to the start of the buffer.
func (rr *recordReader) compact() {
	rr.w = copy(rr.buf, rr.buf[rr.r:rr.w])
	rr.r = 0
}
