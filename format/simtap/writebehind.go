package simtap

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// writeBehindChunk is how many bytes of written objects the cartridge lets
// pile up in the page cache before their writeback is started.
const writeBehindChunk = 8 << 20

// writeBehindLag bounds how far the writer may run ahead of the disk: a
// write returns only once the writeback of all but this many bytes before
// the end of the data is done. It is the most a cartridge keeps in the page
// cache, and about the most the fsync of Sync has left to write.
const writeBehindLag = 64 << 20

// flusher is the write-behind of a writable cartridge. The cartridge hands
// it the end of the data after each record (wrote); a goroutine of its own
// starts the kernel's writeback of each writeBehindChunk bytes
// (sync_file_range WRITE), waits for the writeback of the chunks before the
// latest one (WAIT_BEFORE) and drops them from the page cache
// (FADV_DONTNEED), so that the writer is held up by the disk only when it
// gets writeBehindLag bytes ahead of it, and the fsync of Sync finds little
// left to do. Durability still comes from Sync alone.
//
// The first error of a background writeback is kept and returned by the
// next call of takeErr (the next write, Sync or Close of the cartridge).
type flusher struct {
	mu   sync.Mutex
	cond sync.Cond
	fd   int
	gen  uint64 // bumped by reset: results of older syscalls are dropped
	// Offsets in the image: the end of the data handed over (written), the
	// writeback started up to started, the start of the last range started
	// (last), the writeback done up to done. done <= last <= started <=
	// written.
	written, started, last, done int64
	busy                         bool // the goroutine is in a syscall
	blocked                      bool // a writer waits for the lag to shrink
	running                      bool // the goroutine runs (it ends when it has nothing to do)
	stopping                     bool
	err                          error
	// syncRange is unix.SyncFileRange; tests put a failing or blocking
	// one in its place (before the first write).
	syncRange func(fd int, off, n int64, flags int) error
}

func newFlusher(fd int, end int64) *flusher {
	w := &flusher{fd: fd, written: end, started: end, last: end, done: end,
		syncRange: unix.SyncFileRange}
	w.cond.L = &w.mu
	return w
}

// wrote records that the data now ends at end, starts the goroutine when
// there is work for it, and waits while the writer is more than
// writeBehindLag bytes ahead of the finished writeback.
func (w *flusher) wrote(end int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.written = end
	w.kickLocked()
	for w.written-w.done > writeBehindLag && w.err == nil && !w.stopping {
		w.blocked = true
		w.kickLocked()
		w.cond.Wait()
	}
	w.blocked = false
}

// kickLocked wakes the goroutine, or starts it if it is not running and
// has work. Call with w.mu held.
func (w *flusher) kickLocked() {
	if w.running {
		w.cond.Broadcast()
		return
	}
	if _, _, _, ok := w.nextLocked(); ok && !w.stopping {
		w.running = true
		go w.run()
	}
}

// nextLocked returns the next syscall of the goroutine, if any: start the
// writeback of the data once a chunk of it is waiting, wait for the ranges
// before the latest one started, or, while a writer waits for the lag,
// start and wait for all that is left. After an error there is none until
// it was reported.
func (w *flusher) nextLocked() (off, end int64, flags int, ok bool) {
	switch {
	case w.err != nil:
		return 0, 0, 0, false
	case w.written-w.started >= writeBehindChunk:
		return w.started, w.written, unix.SYNC_FILE_RANGE_WRITE, true
	case w.last > w.done:
		return w.done, w.last, unix.SYNC_FILE_RANGE_WAIT_BEFORE, true
	case w.blocked && w.written > w.done:
		return w.done, w.written, unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER, true
	}
	return 0, 0, 0, false
}

// reset moves all offsets to off (the data was cut there) and the file
// descriptor to fd (the image was replaced), once the goroutine is out of
// any syscall on the old range.
func (w *flusher) reset(fd int, off int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.busy {
		w.cond.Wait()
	}
	w.gen++
	w.fd = fd
	w.written, w.started, w.last, w.done = off, off, off, off
	w.cond.Broadcast()
}

// takeErr returns the error of a background writeback not reported yet.
func (w *flusher) takeErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.err
	w.err = nil
	return err
}

// stop ends the goroutine, once it is out of any syscall, so that the
// image can be closed.
func (w *flusher) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopping = true
	w.cond.Broadcast()
	for w.running {
		w.cond.Wait()
	}
}

// run makes the syscalls nextLocked names until there is none (or stop)
// and then ends: an idle cartridge has no goroutine.
func (w *flusher) run() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for !w.stopping {
		fd, gen := w.fd, w.gen
		off, end, flags, ok := w.nextLocked()
		if !ok {
			break
		}
		w.busy = true
		w.mu.Unlock()
		err := w.syncRange(fd, off, end-off, flags)
		if err == nil && flags&unix.SYNC_FILE_RANGE_WAIT_BEFORE != 0 {
			// Like a tape, the cartridge keeps nothing in memory once it
			// is written: the clean pages leave the page cache, so that a
			// long backup does not push everyone else's data out of it
			// (the kernel keeps any page that is still dirty).
			_ = unix.Fadvise(fd, off, end-off, unix.FADV_DONTNEED)
		}
		w.mu.Lock()
		w.busy = false
		if gen == w.gen {
			switch {
			case err != nil:
				w.err = fmt.Errorf("simtap: writeback of %d bytes at %d: %w", end-off, off, err)
			case flags == unix.SYNC_FILE_RANGE_WRITE:
				w.last, w.started = off, end
			case flags&unix.SYNC_FILE_RANGE_WRITE != 0:
				w.last, w.started, w.done = end, end, end
			default:
				w.done = end
			}
		}
		w.cond.Broadcast()
	}
	w.running = false
	w.cond.Broadcast()
}
