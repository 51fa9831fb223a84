package filedump

import (
	"errors"
	"io"
	"sync"
)

// asyncChunk is the size of the writes an asyncWriter makes to its
// destination: just over the 1 MiB buffer the local dump command puts in
// front of its image file, so that such a buffer passes the writes
// through instead of copying them.
const asyncChunk = 1<<20 + 64<<10

// asyncBuffers is the number of chunks an asyncWriter holds: one being
// filled, one being written, one spare so that neither side waits for the
// other on every chunk.
const asyncBuffers = 3

// errAsyncClosed is returned by Write after Close or Abort.
var errAsyncClosed = errors.New("dump backup: output already closed")

// asyncWriter writes to w from a goroutine of its own, so that the backup
// reads and encodes the next chunk of the image while the previous one is
// being written (double buffering). It holds at most asyncBuffers chunks.
//
// Write and Close are called from one goroutine. An error of the
// destination is returned by the next Write or by Close; after an error
// nothing more is written. Close and Abort wait for the goroutine, so the
// destination is never used after they return.
type asyncWriter struct {
	w    io.Writer
	cur  []byte        // chunk being filled
	free chan []byte   // empty chunks
	full chan []byte   // chunks to write, in order
	done chan struct{} // closed when the goroutine has ended

	mu     sync.Mutex
	err    error // first error of the destination
	stop   bool  // Abort: write nothing more
	closed bool
}

func newAsyncWriter(w io.Writer) *asyncWriter {
	a := &asyncWriter{
		w:    w,
		free: make(chan []byte, asyncBuffers),
		full: make(chan []byte, asyncBuffers),
		done: make(chan struct{}),
	}
	for i := 0; i < asyncBuffers-1; i++ {
		a.free <- make([]byte, 0, asyncChunk)
	}
	a.cur = make([]byte, 0, asyncChunk)
	go a.run()
	return a
}

func (a *asyncWriter) run() {
	defer close(a.done)
	for b := range a.full {
		a.mu.Lock()
		skip := a.err != nil || a.stop
		a.mu.Unlock()
		if !skip {
			if _, err := a.w.Write(b); err != nil {
				a.mu.Lock()
				a.err = err
				a.mu.Unlock()
			}
		}
		a.free <- b[:0]
	}
}

func (a *asyncWriter) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// LendBlock implements dump.BlockLender: it returns the next n bytes of
// the chunk being filled (sending the chunk first when they do not fit), or
// nil when n is more than a chunk or the writer is closed or failed.
func (a *asyncWriter) LendBlock(n int) []byte {
	if a.closed || n <= 0 || n > asyncChunk || a.failed() != nil {
		return nil
	}
	if cap(a.cur)-len(a.cur) < n {
		a.full <- a.cur
		a.cur = <-a.free
	}
	return a.cur[len(a.cur) : len(a.cur)+n : len(a.cur)+n]
}

// Write implements io.Writer. It copies p, unless p is memory LendBlock
// lent, and returns before the data is written.
func (a *asyncWriter) Write(p []byte) (int, error) {
	if a.closed {
		return 0, errAsyncClosed
	}
	if err := a.failed(); err != nil {
		return 0, err
	}
	if l := len(a.cur); len(p) > 0 && len(p) <= cap(a.cur)-l && &p[0] == &a.cur[l:cap(a.cur)][0] {
		// Built in place: the chunk only grows over it.
		a.cur = a.cur[:l+len(p)]
		if len(a.cur) == cap(a.cur) {
			a.full <- a.cur
			a.cur = <-a.free
		}
		return len(p), nil
	}
	n := 0
	for len(p) > 0 {
		c := copy(a.cur[len(a.cur):cap(a.cur)], p)
		a.cur = a.cur[:len(a.cur)+c]
		p = p[c:]
		n += c
		if len(a.cur) == cap(a.cur) {
			a.full <- a.cur
			a.cur = <-a.free
		}
	}
	return n, nil
}

// Close writes what is buffered, waits until everything is written and
// returns the first error of the destination.
func (a *asyncWriter) Close() error {
	if a.closed {
		return a.failed()
	}
	a.closed = true
	if len(a.cur) > 0 {
		a.full <- a.cur
		a.cur = nil
	}
	close(a.full)
	<-a.done
	return a.failed()
}

// Abort drops what is not yet written and waits for a write in progress to
// end. Calling it after Close is harmless.
func (a *asyncWriter) Abort() {
	if a.closed {
		return
	}
	a.closed = true
	a.mu.Lock()
	a.stop = true
	a.mu.Unlock()
	close(a.full)
	<-a.done
}
