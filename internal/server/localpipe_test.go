package server

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// Issue 5 (LOCAL data connection): every byte written reaches the reader
// in order whatever the sizes of the writes and reads, and the reader sees
// io.EOF only after the writer closed and it read everything.
func TestLocalPipeDeliversInOrder(t *testing.T) {
	t.Parallel()
	a, b := newLocalPipe()
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 5*localPipeSize+12345)
	for i := range want {
		want[i] = byte(rng.Uint32())
	}
	werr := make(chan error, 1)
	go func() {
		r := rand.New(rand.NewPCG(3, 4))
		for off := 0; off < len(want); {
			n := min(1+r.IntN(3*localPipeSize/2), len(want)-off)
			if _, err := a.Write(want[off : off+n]); err != nil {
				werr <- err
				return
			}
			off += n
		}
		werr <- a.Close()
	}()
	var got []byte
	buf := make([]byte, 300<<10)
	for {
		n, err := b.Read(buf[:1+rng.IntN(len(buf))])
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
	}
	if err := <-werr; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d; contents differ", len(got), len(want))
	}
	if n, err := b.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after EOF: %d %v", n, err)
	}
}

// The buffer is bounded: a writer that filled it blocks until the reader
// takes something out, so a paused mover still holds back the engine.
func TestLocalPipeBounded(t *testing.T) {
	t.Parallel()
	a, b := newLocalPipeSize(localPipeSize)
	defer a.Close()
	defer b.Close()
	if n, err := a.Write(make([]byte, localPipeSize)); n != localPipeSize || err != nil {
		t.Fatalf("filling write: %d %v", n, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.Write([]byte("x"))
		done <- err
	}()
	waitPipeWaits(t, a.tx, done)
	if n, err := b.Read(make([]byte, 10)); n != 10 || err != nil {
		t.Fatalf("read: %d %v", n, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hangGuard):
		t.Fatal("write still blocked after the reader made room")
	}
}

// Close semantics are those of net.Pipe: the peer's blocked Write fails
// with io.ErrClosedPipe, the peer's blocked Read returns io.EOF, and the
// closed end's own Read and Write fail with io.ErrClosedPipe, also when
// they were blocked at the time of the Close.
func TestLocalPipeCloseUnblocks(t *testing.T) {
	t.Parallel()
	type op struct {
		name  string
		run   func(a, b net.Conn) error // blocks, returns the error
		close func(a, b net.Conn)
		want  error
	}
	fill := func(c net.Conn) error {
		_, err := c.Write(make([]byte, 3*localPipeSize))
		return err
	}
	read := func(c net.Conn) error {
		_, err := c.Read(make([]byte, 10))
		return err
	}
	ops := []op{
		{"writer blocked, reader closes", func(a, _ net.Conn) error { return fill(a) }, func(_, b net.Conn) { b.Close() }, io.ErrClosedPipe},
		{"writer blocked, writer closes", func(a, _ net.Conn) error { return fill(a) }, func(a, _ net.Conn) { a.Close() }, io.ErrClosedPipe},
		{"reader blocked, writer closes", func(_, b net.Conn) error { return read(b) }, func(a, _ net.Conn) { a.Close() }, io.EOF},
		{"reader blocked, reader closes", func(_, b net.Conn) error { return read(b) }, func(_, b net.Conn) { b.Close() }, io.ErrClosedPipe},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			a, b := newLocalPipeSize(localPipeSize)
			defer a.Close()
			defer b.Close()
			done := make(chan error, 1)
			go func() { done <- o.run(a, b) }()
			waitPipeWaits(t, a.tx, done) // the writer of a or the reader of b
			o.close(a, b)
			select {
			case err := <-done:
				if !errors.Is(err, o.want) {
					t.Fatalf("got %v, want %v", err, o.want)
				}
			case <-time.After(hangGuard):
				t.Fatal("still blocked after Close")
			}
		})
	}
	a, b := newLocalPipe()
	if _, err := a.Write([]byte("buffered")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write on the closed end: %v", err)
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("read on the closed end: %v", err)
	}
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "buffered" {
		t.Fatalf("peer read %q %v, want what was written before the Close, then EOF", got, err)
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write to a closed peer: %v", err)
	}
	if err := b.SetDeadline(time.Now()); err == nil {
		t.Fatal("SetDeadline accepted")
	}
}

// BenchmarkLocalPipe measures 256 KiB records through a LOCAL pipe with
// the reader and the writer on their own goroutines.
func BenchmarkLocalPipe(b *testing.B) {
	a, c := newLocalPipe()
	rec := make([]byte, 256<<10)
	b.SetBytes(int64(len(rec)))
	go func() {
		buf := make([]byte, len(rec))
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	a.Close()
}

// Issue 5 (the mover's copy-free read): records taken with peek and
// release arrive whole and in order, whether they lie in one piece of the
// ring or wrap around its end (a record size that does not divide the
// ring), the last one short; then peek says io.EOF.
func TestLocalPipePeekRecords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ ring, rs int }{
		{localPipeSizeFor(64 << 10), 64 << 10},
		{localPipeSize, 10240},
		{localPipeSizeFor(3 << 20), 3 << 20},
		{1000, 333},
	} {
		a, b := newLocalPipeSize(tc.ring)
		if tc.ring%tc.rs == 0 && tc.ring < 2*tc.rs {
			t.Fatalf("ring %d for records of %d", tc.ring, tc.rs)
		}
		rng := rand.New(rand.NewPCG(uint64(tc.rs), 9))
		want := make([]byte, 7*tc.ring+tc.rs/3)
		for i := range want {
			want[i] = byte(rng.Uint32())
		}
		go func() {
			for off := 0; off < len(want); {
				n := min(1+rng.IntN(tc.ring), len(want)-off)
				if _, err := a.Write(want[off : off+n]); err != nil {
					return
				}
				off += n
			}
			a.Close()
		}()
		var got []byte
		spare := make([]byte, tc.rs)
		inPlace := 0
		for {
			rec, err := b.rx.peek(tc.rs, spare)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("ring %d records %d: peek after %d bytes: %v", tc.ring, tc.rs, len(got), err)
			}
			if len(rec) != tc.rs && len(got)+len(rec) != len(want) {
				t.Fatalf("ring %d records %d: short record of %d bytes at %d", tc.ring, tc.rs, len(rec), len(got))
			}
			if &rec[0] != &spare[0] {
				inPlace++
			}
			got = append(got, rec...)
			b.rx.release()
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("ring %d records %d: got %d bytes, want %d; contents differ", tc.ring, tc.rs, len(got), len(want))
		}
		if tc.ring%tc.rs == 0 && inPlace != len(want)/tc.rs+1 {
			t.Fatalf("ring %d records %d: %d of %d records in place", tc.ring, tc.rs, inPlace, len(want)/tc.rs+1)
		}
		b.Close()
	}
}

// A record the mover holds (peeked, not released) keeps its bytes from
// the writer: a writer that filled the rest of the ring blocks until the
// release; a Close of the reading end while a record is held makes the
// release do nothing and the next peek fail.
func TestLocalPipePeekHoldsBytes(t *testing.T) {
	t.Parallel()
	a, b := newLocalPipeSize(4096)
	if _, err := a.Write(bytes.Repeat([]byte{1}, 4096)); err != nil {
		t.Fatal(err)
	}
	rec, err := b.rx.peek(1024, make([]byte, 1024))
	if err != nil || len(rec) != 1024 {
		t.Fatalf("peek: %d bytes, %v", len(rec), err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.Write(bytes.Repeat([]byte{2}, 1024))
		done <- err
	}()
	waitPipeWaits(t, a.tx, done)
	if !bytes.Equal(rec, bytes.Repeat([]byte{1}, 1024)) {
		t.Fatal("held record overwritten")
	}
	b.rx.release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hangGuard):
		t.Fatal("write still blocked after the release")
	}
	if _, err := b.rx.peek(1024, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b.rx.release()
	if _, err := b.rx.peek(1024, make([]byte, 1024)); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("peek on the closed end: %v", err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write to a closed peer: %v", err)
	}
}

// BenchmarkLocalPipePeek is BenchmarkLocalPipe with the reader taking
// 256 KiB records in place (peek and release), as the mover does.
func BenchmarkLocalPipePeek(b *testing.B) {
	a, c := newLocalPipeSize(localPipeSizeFor(256 << 10))
	rec := make([]byte, 256<<10)
	b.SetBytes(int64(len(rec)))
	go func() {
		spare := make([]byte, len(rec))
		for {
			if _, err := c.rx.peek(len(rec), spare); err != nil {
				return
			}
			c.rx.release()
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	a.Close()
}

// Issue 5: a writer waiting on a full ring is woken only once a quarter of
// the ring (or what it has left to write) is free, not at every read: the
// engine and the mover do not take turns at every record.
func TestLocalPipeWakesWriterByQuarters(t *testing.T) {
	t.Parallel()
	a, b := newLocalPipeSize(1 << 20)
	defer a.Close()
	defer b.Close()
	h := a.tx
	size := h.size
	if _, err := a.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.Write(make([]byte, size/2))
		done <- err
	}()
	for {
		h.mu.Lock()
		waiting := h.wwant
		h.mu.Unlock()
		if waiting > 0 {
			if waiting != size/4 {
				t.Fatalf("writer waits for %d bytes of room, want %d", waiting, size/4)
			}
			break
		}
		time.Sleep(time.Millisecond)
	}
	buf := make([]byte, 16<<10)
	for got := 0; got < size+size/2; {
		n, err := b.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got, err)
		}
		got += n
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	wakes := h.wwakes
	h.mu.Unlock()
	if wakes > 2 {
		t.Fatalf("the writer of half a ring woke %d times for %d reads of 16 KiB; want at most 2", wakes, (size+size/2)/len(buf))
	}
}

// waitPipeWaits waits until a reader or a writer waits in h, failing if
// the operation whose result done carries ends first.
func waitPipeWaits(t *testing.T, h *halfPipe, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		h.mu.Lock()
		waits := h.rwant > 0 || h.wwant > 0
		h.mu.Unlock()
		if waits {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("returned (%v) instead of waiting", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("nobody waits in the pipe")
		}
		time.Sleep(time.Millisecond)
	}
}
