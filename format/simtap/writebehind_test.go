package simtap

import (
	"errors"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// checkWriteBehind checks the order of the write-behind offsets and that
// it follows the end of the data within writeBehindLag.
func checkWriteBehind(t *testing.T, c *Cartridge) {
	t.Helper()
	w := c.wb
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.written != c.end || w.done > w.last || w.last > w.started || w.started > w.written || w.written-w.done > writeBehindLag {
		t.Fatalf("end of data %d: write-behind written %d, started %d, last %d, done %d (lag at most %d)",
			c.end, w.written, w.started, w.last, w.done, writeBehindLag)
	}
}

// waitUntil yields until cond holds (under the write-behind's lock).
func waitUntil(w *flusher, cond func() bool) {
	for {
		w.mu.Lock()
		ok := cond()
		w.mu.Unlock()
		if ok {
			return
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// TestWriteBehindLagBounded holds the background writeback (a disk that
// does not answer) and checks that the writer stops once it is
// writeBehindLag bytes ahead of the finished writeback, and goes on when
// the writeback does.
func TestWriteBehindLagBounded(t *testing.T) {
	c, _ := newCart(t)
	release := make(chan struct{})
	var calls atomic.Int64
	c.wb.syncRange = func(fd int, off, n int64, flags int) error {
		calls.Add(1)
		<-release
		return unix.SyncFileRange(fd, off, n, flags)
	}
	const size = 64 << 10
	const n = 2 * writeBehindLag / size
	var wrote atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := c.WriteRecord(rec(1, i, size)); err != nil {
				done <- err
				return
			}
			wrote.Add(1)
		}
		done <- nil
	}()
	waitUntil(c.wb, func() bool { return c.wb.blocked })
	c.wb.mu.Lock()
	lag := c.wb.written - c.wb.done
	c.wb.mu.Unlock()
	if k := wrote.Load(); k >= n || lag <= writeBehindLag || lag > writeBehindLag+size+8 {
		t.Fatalf("writer blocked after %d of %d records, %d bytes ahead of the writeback (bound %d)", k, n, lag, writeBehindLag)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls.Load() == 0 {
		t.Fatal("no writeback was started")
	}
	checkWriteBehind(t, c)
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWriteBehindErrorReported checks that a failed background writeback
// fails the next write (once), or Sync, or Close, with the error.
func TestWriteBehindErrorReported(t *testing.T) {
	const size = 64 << 10
	// Just over one chunk with the framing: the first writeback starts,
	// and fails, after
	// the last of these records.
	const n = writeBehindChunk / size
	failing := func(c *Cartridge) {
		var failed atomic.Bool
		c.wb.syncRange = func(fd int, off, n int64, flags int) error {
			if failed.CompareAndSwap(false, true) {
				return syscall.EIO
			}
			return unix.SyncFileRange(fd, off, n, flags)
		}
	}
	// writeUntilErr writes records until the background writeback failed.
	writeUntilErr := func(t *testing.T, c *Cartridge) {
		t.Helper()
		for i := 0; i < n; i++ {
			if err := c.WriteRecord(rec(2, i, size)); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
		waitUntil(c.wb, func() bool { return c.wb.err != nil })
	}
	for _, then := range []string{"write", "sync", "close"} {
		t.Run(then, func(t *testing.T) {
			c, _ := newCart(t)
			failing(c)
			writeUntilErr(t, c)
			var err error
			switch then {
			case "write":
				err = c.WriteRecord(rec(2, n, size))
			case "sync":
				err = c.Sync()
			case "close":
				err = c.Close()
			}
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("%s after a failed writeback: %v, want EIO", then, err)
			}
			if then == "close" {
				return
			}
			// Reported once: the tape goes on.
			if err := c.WriteRecord(rec(2, n+1, size)); err != nil {
				t.Fatal(err)
			}
			if err := c.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWriteBehindIdleNoGoroutine checks that the write-behind's goroutine
// ends once it has nothing left to do, so that a cartridge left open in a
// drive holds none (the server's tests count goroutines after a session).
func TestWriteBehindIdleNoGoroutine(t *testing.T) {
	c, _ := newCart(t)
	defer c.Close()
	for i := 0; i < 3*writeBehindChunk/(64<<10); i++ {
		if err := c.WriteRecord(rec(3, i, 64<<10)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; ; i++ {
		c.wb.mu.Lock()
		w := c.wb
		running, written, started, last, done := w.running, w.written, w.started, w.last, w.done
		c.wb.mu.Unlock()
		if !running {
			// Done, but for the latest range started and the rest of a
			// chunk (left to the fsync of Sync).
			if done != last || last >= started || written-started >= writeBehindChunk {
				t.Fatalf("goroutine ended with the writeback done up to %d, started up to %d (last range from %d), data up to %d",
					done, started, last, written)
			}
			return
		}
		if i == 10000 {
			t.Fatal("the write-behind goroutine still runs with nothing to do")
		}
		time.Sleep(time.Millisecond)
	}
}
