package server

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// localPipeSize is the buffer of each direction of a LOCAL data
// connection: two records of 256 KiB, so that the engine can encode the
// next record while the mover writes the previous one to the cartridge. A
// larger ring is slower: the bytes the engine copies in no longer are in
// the CPU's cache when the mover writes them out.
const localPipeSize = 512 << 10

// localPipeSizeFor returns the buffer size of a LOCAL data connection
// whose mover uses records of rs bytes: at least localPipeSize and two
// records, and a whole number of records, so that a record never wraps
// around the end of the ring and the mover can write it to tape straight
// from the ring (see halfPipe.peek).
func localPipeSizeFor(rs int) int {
	if rs <= 0 {
		return localPipeSize
	}
	n := max(localPipeSize, 2*rs)
	return (n + rs - 1) / rs * rs
}

// newLocalPipe returns the two ends of a LOCAL data connection. It behaves
// like net.Pipe except that each direction buffers up to localPipeSize
// bytes, so the writer and the reader run at the same time instead of
// taking turns:
//
//   - Close of one end makes its own Read and Write fail with
//     io.ErrClosedPipe, the peer's Write fail with io.ErrClosedPipe (what
//     it had buffered is dropped), and the peer's Read return the bytes
//     already buffered and then io.EOF.
//   - A Write blocks while the buffer is full, a Read while it is empty;
//     both unblock when either end closes.
//
// Deadlines are not supported (the data service and the mover cancel by
// closing the connection); the SetDeadline methods return an error.
func newLocalPipe() (net.Conn, net.Conn) {
	return newLocalPipeSize(localPipeSize)
}

// newLocalPipeSize is newLocalPipe with a buffer of size bytes each way.
func newLocalPipeSize(size int) (*localConn, *localConn) {
	ab, ba := newHalfPipe(size), newHalfPipe(size)
	return &localConn{rx: ba, tx: ab}, &localConn{rx: ab, tx: ba}
}

// halfPipe is one direction of a local pipe: a ring buffer with one writer
// end and one reader end. A side that waits says how much it waits for
// (rwant bytes to read, wwant bytes of room), and the other side wakes it
// only once that much is there: the two do not take turns at every record.
type halfPipe struct {
	mu      sync.Mutex
	rcond   sync.Cond // the reader waits here for data
	wcond   sync.Cond // the writer waits here for room
	size    int
	buf     []byte // allocated at the first write
	r, n    int    // read position and bytes buffered
	held    int    // bytes at r handed out by peek and not released yet
	rwant   int    // bytes the waiting reader needs (0: none waits)
	wwant   int    // room the waiting writer needs (0: none waits)
	wwakes  int    // times the writer woke up (for tests)
	wclosed bool   // the writing end closed
	rclosed bool   // the reading end closed
}

func newHalfPipe(size int) *halfPipe {
	h := &halfPipe{size: size}
	h.rcond.L = &h.mu
	h.wcond.L = &h.mu
	return h
}

// wakeAll wakes both sides (an end closed).
func (h *halfPipe) wakeAll() {
	h.rcond.Broadcast()
	h.wcond.Broadcast()
}

// consumedLocked wakes the writer once the room it waits for is free.
func (h *halfPipe) consumedLocked() {
	if h.wwant > 0 && len(h.buf)-h.n >= h.wwant {
		h.wcond.Broadcast()
	}
}

// write copies p into the ring, blocking while it is full.
func (h *halfPipe) write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	done := 0
	for {
		if h.wclosed || h.rclosed {
			return done, io.ErrClosedPipe
		}
		if h.buf == nil {
			h.buf = make([]byte, h.size)
		}
		if done == len(p) {
			return done, nil
		}
		if h.n == len(h.buf) {
			// Wait for room for the rest, or a quarter of the ring.
			h.wwant = max(1, min(len(p)-done, len(h.buf)/4))
			h.wcond.Wait()
			h.wwant = 0
			h.wwakes++
			continue
		}
		w := (h.r + h.n) % len(h.buf)
		end := len(h.buf)
		if w < h.r {
			end = h.r
		}
		c := copy(h.buf[w:end], p[done:])
		h.n += c
		done += c
		if h.rwant > 0 && h.n >= h.rwant {
			h.rcond.Broadcast()
		}
	}
}

// read copies buffered bytes into p, blocking while there are none.
func (h *halfPipe) read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		if h.rclosed {
			return 0, io.ErrClosedPipe
		}
		if h.n > 0 {
			break
		}
		if h.wclosed {
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		h.rwant = 1
		h.rcond.Wait()
		h.rwant = 0
	}
	done := 0
	for done < len(p) && h.n > 0 {
		end := min(h.r+h.n, len(h.buf))
		c := copy(p[done:], h.buf[h.r:end])
		h.r = (h.r + c) % len(h.buf)
		h.n -= c
		done += c
	}
	h.consumedLocked()
	return done, nil
}

// peek is Read without a copy, for the mover: it waits until n bytes are
// buffered, or fewer and the writer closed, and returns them (at most n).
// When they lie in one piece of the ring the result is that piece: the
// bytes stay in the pipe, and the writer cannot overwrite them, until
// release. Otherwise they are copied into spare (len(spare) >= n) and
// consumed at once. At the end of the stream it returns io.EOF, on a
// closed reading end io.ErrClosedPipe. n must not exceed the ring's size.
func (h *halfPipe) peek(n int, spare []byte) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.releaseLocked()
	for {
		if h.rclosed {
			return nil, io.ErrClosedPipe
		}
		if h.n >= n || (h.wclosed && h.n > 0) {
			break
		}
		if h.wclosed {
			return nil, io.EOF
		}
		h.rwant = n
		h.rcond.Wait()
		h.rwant = 0
	}
	k := min(n, h.n)
	if h.r+k <= len(h.buf) {
		h.held = k
		return h.buf[h.r : h.r+k], nil
	}
	c := copy(spare[:k], h.buf[h.r:])
	copy(spare[c:k], h.buf[:k-c])
	h.r = (h.r + k) % len(h.buf)
	h.n -= k
	h.consumedLocked()
	return spare[:k], nil
}

// release gives the bytes the last peek returned in place back to the
// writer; it does nothing if there are none or the reading end closed.
func (h *halfPipe) release() {
	h.mu.Lock()
	h.releaseLocked()
	h.mu.Unlock()
}

func (h *halfPipe) releaseLocked() {
	if h.held == 0 {
		return
	}
	if !h.rclosed {
		h.r = (h.r + h.held) % len(h.buf)
		h.n -= h.held
		h.consumedLocked()
	}
	h.held = 0
}

// closeWrite marks the writing end closed: the reader drains and then
// sees io.EOF.
func (h *halfPipe) closeWrite() {
	h.mu.Lock()
	h.wclosed = true
	h.wakeAll()
	h.mu.Unlock()
}

// closeRead marks the reading end closed and drops what is buffered.
func (h *halfPipe) closeRead() {
	h.mu.Lock()
	h.rclosed, h.buf, h.n, h.held = true, nil, 0, 0
	h.wakeAll()
	h.mu.Unlock()
}

// localConn is one end of a local pipe.
type localConn struct {
	rx, tx *halfPipe
	once   sync.Once
}

// localAddr is the address of both ends of a local pipe.
type localAddr struct{}

func (localAddr) Network() string { return "local" }
func (localAddr) String() string  { return "local" }

func (c *localConn) Read(p []byte) (int, error)  { return c.rx.read(p) }
func (c *localConn) Write(p []byte) (int, error) { return c.tx.write(p) }

// Close closes both directions of this end; it is safe to call twice.
func (c *localConn) Close() error {
	c.once.Do(func() {
		c.tx.closeWrite()
		c.rx.closeRead()
	})
	return nil
}

func (c *localConn) LocalAddr() net.Addr  { return localAddr{} }
func (c *localConn) RemoteAddr() net.Addr { return localAddr{} }

func (c *localConn) SetDeadline(time.Time) error      { return errNoDeadline }
func (c *localConn) SetReadDeadline(time.Time) error  { return errNoDeadline }
func (c *localConn) SetWriteDeadline(time.Time) error { return errNoDeadline }

// errNoDeadline is what the deadline methods of a local pipe return.
var errNoDeadline = &net.OpError{Op: "set deadline", Net: "local", Err: os.ErrNoDeadline}
