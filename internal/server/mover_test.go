package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

const recSize = 10240

// pattern returns n bytes of recognisable data.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// swapCartridge moves the cartridge of drive i to an empty slot and loads
// another one from a slot; it returns the new barcode.
func swapCartridge(t *testing.T, lib *vtl.Library, i int) string {
	t.Helper()
	d, err := lib.Drive(i)
	if err != nil {
		t.Fatal(err)
	}
	var driveAddr, empty, full uint16
	var fullCode string
	for _, e := range lib.Inventory() {
		switch {
		case e.Type == vtl.TypeDrive && e.Barcode == d.Barcode():
			driveAddr = e.Addr
		case e.Type == vtl.TypeSlot && !e.Full && empty == 0:
			empty = e.Addr
		case e.Type == vtl.TypeSlot && e.Full && full == 0:
			full, fullCode = e.Addr, e.Barcode
		}
	}
	if driveAddr == 0 || empty == 0 || full == 0 {
		t.Fatalf("inventory lacks drive/empty/full elements: %+v", lib.Inventory())
	}
	if err := lib.Move(driveAddr, empty); err != nil {
		t.Fatal(err)
	}
	if err := lib.Move(full, driveAddr); err != nil {
		t.Fatal(err)
	}
	return fullCode
}

// readTapeFile reads records from the session's open tape until a file
// mark or the end of data.
func readTapeFile(t *testing.T, f *fixture, c *ndmp.Client) []byte {
	t.Helper()
	var out []byte
	for {
		b, err := c.TapeRead(f.ctx, recSize)
		if errors.Is(err, ndmp.ErrEOF) || errors.Is(err, ndmp.ErrEOM) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
}

// Draft 3.6 mover in mode READ (backup, three-way style over TCP): records
// of record_size reach the tape; end of medium pauses the mover with
// NOTIFY_MOVER_PAUSED(EOM); the DMA changes the tape (close, robot move,
// open) and continues; when the data connection closes the mover halts
// with CONNECT_CLOSED and the two tapes hold the stream.
func TestMoverBackupWithTapeChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	d0, _ := f.lib.Drive(0)
	first := d0.Barcode()
	if err := f.lib.SetShortTape(first, 256<<10); err != nil {
		t.Fatal(err)
	}
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	ctx := f.ctx
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	_, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrTCP)
	wantErr(t, "listen before record size", err, ndmp.ErrPrecondition)
	wantErr(t, "record size 0", c.MoverSetRecordSize(ctx, 0), ndmp.ErrIllegalArgs)
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	wantErr(t, "window", c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
	addr, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrTCP)
	if err != nil {
		t.Fatal(err)
	}
	eps := addr.AddrPorts()
	if addr.AddrType != ndmp.AddrTCP || len(eps) != 1 || eps[0].Addr().String() != "127.0.0.1" {
		t.Fatalf("listen address %+v", addr)
	}
	ms, _ := c.MoverGetState(ctx)
	if ms.State != ndmp.MoverStateListen || ms.Mode != ndmp.MoverModeRead {
		t.Fatalf("state after listen %+v", ms)
	}
	wantErr(t, "set window in LISTEN", c.MoverSetWindow(ctx, 0, recSize), ndmp.ErrIllegalState)
	wantErr(t, "tape close in LISTEN", c.TapeClose(ctx), ndmp.ErrDeviceBusy)

	data := pattern(600<<10 + 1234) // not a multiple of the record size
	dc, err := net.Dial("tcp", eps[0].String())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = dc.Write(data)
		_ = dc.Close()
	}()
	p := ps.wait(t, ndmp.NotifyMoverPaused, 10*time.Second).Body.(*ndmp.NotifyMoverPausedPost)
	if p.Reason != ndmp.MoverPauseEOM {
		t.Fatalf("pause reason %v", p.Reason)
	}
	ms, _ = c.MoverGetState(ctx)
	if ms.State != ndmp.MoverStatePaused || ms.PauseReason != ndmp.MoverPauseEOM || ms.BytesMoved == 0 ||
		ms.SeekPosition != uint64(ms.RecordNum)*recSize {
		t.Fatalf("paused state %+v", ms)
	}
	onFirst := ms.BytesMoved
	// Tape change while paused.
	wantErr(t, "close first tape", c.TapeClose(ctx), ndmp.NoErr)
	second := swapCartridge(t, f.lib, 0)
	wantErr(t, "open second tape", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "continue", c.MoverContinue(ctx), ndmp.NoErr)
	h := ps.wait(t, ndmp.NotifyMoverHalted, 10*time.Second).Body.(*ndmp.NotifyMoverHaltedPost)
	if h.Reason != ndmp.MoverHaltConnectClosed {
		t.Fatalf("halt reason %v", h.Reason)
	}
	ms, _ = c.MoverGetState(ctx)
	if ms.State != ndmp.MoverStateHalted || ms.BytesMoved != uint64(len(data)) {
		t.Fatalf("halted state %+v, want %d bytes", ms, len(data))
	}
	wantErr(t, "stop", c.MoverStop(ctx), ndmp.NoErr)
	ms, _ = c.MoverGetState(ctx)
	if ms.State != ndmp.MoverStateIdle || ms.BytesMoved != 0 || ms.RecordSize != recSize || ms.HaltReason != ndmp.MoverHaltNA {
		t.Fatalf("idle state %+v", ms)
	}
	// Read both tapes back.
	mtioOK := func(op ndmp.TapeMTIOOp) {
		if _, err := c.TapeMTIO(ctx, op, 1); err != nil {
			t.Fatal(err)
		}
	}
	mtioOK(ndmp.MTIOREW)
	got2 := readTapeFile(t, f, c)
	wantErr(t, "close", c.TapeClose(ctx), ndmp.NoErr)
	if back := swapCartridge(t, f.lib, 0); back == second {
		t.Fatal("swap did not change the cartridge")
	}
	// Put the first cartridge back: find it and load it.
	for d0.Barcode() != first {
		swapCartridge(t, f.lib, 0)
	}
	wantErr(t, "open first", c.TapeOpen(ctx, "nrst0l", ndmp.TapeReadMode), ndmp.NoErr)
	got1 := readTapeFile(t, f, c)
	if uint64(len(got1)) != onFirst {
		t.Fatalf("first tape holds %d bytes, mover said %d", len(got1), onFirst)
	}
	all := append(got1, got2...)
	if len(all)%recSize != 0 || len(all) < len(data) || !bytes.Equal(all[:len(data)], data) ||
		!bytes.Equal(all[len(data):], make([]byte, len(all)-len(data))) {
		t.Fatalf("tapes hold %d bytes, not the %d-byte stream padded to records", len(all), len(data))
	}

	// Restore across the tape change: the first tape is loaded; at its
	// file mark the mover pauses with EOF at the stream offset reached,
	// the DMA loads the second tape, sets the window from that offset and
	// continues.
	mtioOK(ndmp.MTIOREW)
	wantErr(t, "window", c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
	rc := dialMover(t, ctx, c, ndmp.MoverModeWrite)
	waitFor(t, func() bool { s, _ := c.MoverGetState(ctx); return s.State == ndmp.MoverStateActive })
	wantErr(t, "read all", c.MoverRead(ctx, 0, uint64(len(data))), ndmp.NoErr)
	restored := make([]byte, len(data))
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(rc, restored); done <- err }()
	p = ps.wait(t, ndmp.NotifyMoverPaused, 10*time.Second).Body.(*ndmp.NotifyMoverPausedPost)
	if p.Reason != ndmp.MoverPauseEOF || p.SeekPosition != onFirst {
		t.Fatalf("restore pause %+v, want EOF at %d", p, onFirst)
	}
	wantErr(t, "close first", c.TapeClose(ctx), ndmp.NoErr)
	for d0.Barcode() != second {
		swapCartridge(t, f.lib, 0)
	}
	wantErr(t, "open second", c.TapeOpen(ctx, "nrst0l", ndmp.TapeReadMode), ndmp.NoErr)
	wantErr(t, "window", c.MoverSetWindow(ctx, p.SeekPosition, math.MaxUint64-p.SeekPosition), ndmp.NoErr)
	wantErr(t, "continue", c.MoverContinue(ctx), ndmp.NoErr)
	select {
	case err := <-done:
		if err != nil || !bytes.Equal(restored, data) {
			t.Fatalf("restored stream differs: %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("restore across the tape change stalled")
	}
}

// Mover mode WRITE (restore): MOVER_READ delivers the requested bytes from
// tape over the data connection; a read outside the window pauses with
// SEEK; SET_WINDOW in PAUSED and CONTINUE resume; the peer closing the
// connection halts the mover with CONNECT_CLOSED.
func TestMoverRestoreWindowAndSeek(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	ctx := f.ctx
	data := pattern(20 * recSize)
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	for i := 0; i < len(data); i += recSize {
		if _, err := c.TapeWrite(ctx, data[i:i+recSize]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "read before active", c.MoverRead(ctx, 0, 10), ndmp.ErrIllegalState)
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	wantErr(t, "window", c.MoverSetWindow(ctx, 0, 10*recSize), ndmp.NoErr)
	dc := dialMover(t, ctx, c, ndmp.MoverModeWrite)
	waitFor(t, func() bool { s, _ := c.MoverGetState(ctx); return s.State == ndmp.MoverStateActive })
	wantErr(t, "read", c.MoverRead(ctx, 3*recSize+100, 5000), ndmp.NoErr)
	buf := make([]byte, 5000)
	if _, err := io.ReadFull(dc, buf); err != nil || !bytes.Equal(buf, data[3*recSize+100:3*recSize+5100]) {
		t.Fatalf("first read: %v", err)
	}
	// Outside the window: SEEK pause.
	wantErr(t, "read 2", c.MoverRead(ctx, 15*recSize, 2*recSize), ndmp.NoErr)
	p := ps.wait(t, ndmp.NotifyMoverPaused, 10*time.Second).Body.(*ndmp.NotifyMoverPausedPost)
	if p.Reason != ndmp.MoverPauseSeek || p.SeekPosition != 15*recSize {
		t.Fatalf("pause %+v", p)
	}
	wantErr(t, "read in PAUSED", c.MoverRead(ctx, 0, 1), ndmp.ErrIllegalState)
	wantErr(t, "window with bad offset", c.MoverSetWindow(ctx, 100, recSize), ndmp.ErrIllegalArgs)
	// The DMA positions the tape at the window start, then sets it.
	if _, err := c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TapeMTIO(ctx, ndmp.MTIOFSR, 12); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "window", c.MoverSetWindow(ctx, 12*recSize, 8*recSize), ndmp.NoErr)
	wantErr(t, "continue", c.MoverContinue(ctx), ndmp.NoErr)
	buf = make([]byte, 2*recSize)
	if _, err := io.ReadFull(dc, buf); err != nil || !bytes.Equal(buf, data[15*recSize:17*recSize]) {
		t.Fatalf("read after seek: %v", err)
	}
	ms, _ := c.MoverGetState(ctx)
	if ms.State != ndmp.MoverStateActive || ms.BytesMoved != 5000+2*recSize || ms.WindowOffset != 12*recSize {
		t.Fatalf("state %+v", ms)
	}
	wantErr(t, "tape read while active", func() error { _, err := c.TapeRead(ctx, 10); return err }(), ndmp.ErrDeviceBusy)
	if _, err := c.TapeGetState(ctx); err != nil {
		t.Fatalf("TAPE_GET_STATE while active: %v", err)
	}
	dc.Close()
	h := ps.wait(t, ndmp.NotifyMoverHalted, 10*time.Second).Body.(*ndmp.NotifyMoverHaltedPost)
	if h.Reason != ndmp.MoverHaltConnectClosed {
		t.Fatalf("halt %v", h.Reason)
	}
	wantErr(t, "stop", c.MoverStop(ctx), ndmp.NoErr)
}

// Mover state table: every request in the states where it is illegal gets
// NDMP_ILLEGAL_STATE_ERR; ABORT halts with ABORTED and posts
// NOTIFY_MOVER_HALTED; MOVER_CLOSE in PAUSED halts with CONNECT_CLOSED.
func TestMoverStateTable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	ctx := f.ctx
	type call struct {
		name string
		do   func() error
	}
	calls := map[string]call{
		"CONTINUE": {"CONTINUE", func() error { return c.MoverContinue(ctx) }},
		"ABORT":    {"ABORT", func() error { return c.MoverAbort(ctx) }},
		"STOP":     {"STOP", func() error { return c.MoverStop(ctx) }},
		"CLOSE":    {"CLOSE", func() error { return c.MoverClose(ctx) }},
		"READ":     {"READ", func() error { return c.MoverRead(ctx, 0, 1) }},
		"RECSIZE":  {"RECSIZE", func() error { return c.MoverSetRecordSize(ctx, recSize) }},
		"WINDOW":   {"WINDOW", func() error { return c.MoverSetWindow(ctx, 0, recSize) }},
		"LISTEN": {"LISTEN", func() error {
			_, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrTCP)
			return err
		}},
	}
	expect := func(state string, table map[string]ndmp.Error) {
		t.Helper()
		for name, want := range table {
			wantErr(t, state+" "+name, calls[name].do(), want)
		}
	}
	// IDLE.
	expect("IDLE", map[string]ndmp.Error{"CONTINUE": ndmp.ErrIllegalState, "ABORT": ndmp.ErrIllegalState,
		"STOP": ndmp.ErrIllegalState, "CLOSE": ndmp.ErrIllegalState, "READ": ndmp.ErrIllegalState})
	_, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrTCP)
	wantErr(t, "listen without tape", err, ndmp.ErrPrecondition)
	expect("IDLE", map[string]ndmp.Error{"RECSIZE": ndmp.NoErr})
	expect("IDLE", map[string]ndmp.Error{"WINDOW": ndmp.NoErr})
	wantErr(t, "listen without tape", calls["LISTEN"].do(), ndmp.ErrDevNotOpen)
	wantErr(t, "tape open ro", c.TapeOpen(ctx, "nrst0l", ndmp.TapeReadMode), ndmp.NoErr)
	wantErr(t, "listen READ on ro tape", calls["LISTEN"].do(), ndmp.ErrPermission)
	_, err = c.MoverListen(ctx, 7, ndmp.AddrTCP)
	wantErr(t, "bad mode", err, ndmp.ErrIllegalArgs)
	_, err = c.MoverListen(ctx, ndmp.MoverModeWrite, 123)
	wantErr(t, "bad addr type", err, ndmp.ErrIllegalArgs)
	_, err = c.MoverListen(ctx, ndmp.MoverModeWrite, ndmp.AddrTCPIPv6)
	wantErr(t, "IPv6 without CAE negotiated", err, ndmp.ErrIllegalArgs)
	// LISTEN (LOCAL).
	a, err := c.MoverListen(ctx, ndmp.MoverModeWrite, ndmp.AddrLocal)
	if err != nil || a.AddrType != ndmp.AddrLocal {
		t.Fatalf("listen LOCAL: %+v %v", a, err)
	}
	expect("LISTEN", map[string]ndmp.Error{"LISTEN": ndmp.ErrIllegalState, "CONTINUE": ndmp.ErrIllegalState,
		"STOP": ndmp.ErrIllegalState, "WINDOW": ndmp.ErrIllegalState, "RECSIZE": ndmp.ErrIllegalState,
		"CLOSE": ndmp.ErrIllegalState, "READ": ndmp.ErrIllegalState})
	expect("LISTEN", map[string]ndmp.Error{"ABORT": ndmp.NoErr})
	h := ps.wait(t, ndmp.NotifyMoverHalted, 5*time.Second).Body.(*ndmp.NotifyMoverHaltedPost)
	ms, _ := c.MoverGetState(ctx)
	if h.Reason != ndmp.MoverHaltAborted || ms.State != ndmp.MoverStateHalted || ms.HaltReason != ndmp.MoverHaltAborted || ms.PauseReason != ndmp.MoverPauseNA {
		t.Fatalf("after abort: post %v, state %+v", h.Reason, ms)
	}
	expect("HALTED", map[string]ndmp.Error{"CONTINUE": ndmp.ErrIllegalState, "CLOSE": ndmp.ErrIllegalState,
		"RECSIZE": ndmp.ErrIllegalState, "WINDOW": ndmp.ErrIllegalState, "LISTEN": ndmp.ErrIllegalState})
	expect("HALTED", map[string]ndmp.Error{"STOP": ndmp.NoErr})
	ms, _ = c.MoverGetState(ctx)
	if ms.State != ndmp.MoverStateIdle || ms.Mode != ndmp.MoverModeNoaction {
		t.Fatalf("after stop %+v", ms)
	}
	// PAUSED via a window pause in a backup, then CLOSE.
	wantErr(t, "close ro", c.TapeClose(ctx), ndmp.NoErr)
	wantErr(t, "open rw", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "window 2 records", c.MoverSetWindow(ctx, 0, 2*recSize), ndmp.NoErr)
	dc := dialMover(t, ctx, c, ndmp.MoverModeRead)
	go func() { _, _ = dc.Write(pattern(5 * recSize)) }()
	p := ps.wait(t, ndmp.NotifyMoverPaused, 5*time.Second).Body.(*ndmp.NotifyMoverPausedPost)
	if p.Reason != ndmp.MoverPauseEOW || p.SeekPosition != 2*recSize {
		t.Fatalf("pause %+v", p)
	}
	expect("PAUSED", map[string]ndmp.Error{"STOP": ndmp.ErrIllegalState, "LISTEN": ndmp.ErrIllegalState,
		"RECSIZE": ndmp.ErrIllegalState, "READ": ndmp.ErrIllegalState})
	wantErr(t, "window not a record multiple", c.MoverSetWindow(ctx, 2*recSize, 100), ndmp.ErrIllegalArgs)
	wantErr(t, "window", c.MoverSetWindow(ctx, 2*recSize, 2*recSize), ndmp.NoErr)
	wantErr(t, "continue", c.MoverContinue(ctx), ndmp.NoErr)
	p = ps.wait(t, ndmp.NotifyMoverPaused, 5*time.Second).Body.(*ndmp.NotifyMoverPausedPost)
	if p.Reason != ndmp.MoverPauseEOW || p.SeekPosition != 4*recSize {
		t.Fatalf("second pause %+v", p)
	}
	expect("PAUSED", map[string]ndmp.Error{"CLOSE": ndmp.NoErr})
	h = ps.wait(t, ndmp.NotifyMoverHalted, 5*time.Second).Body.(*ndmp.NotifyMoverHaltedPost)
	if h.Reason != ndmp.MoverHaltConnectClosed {
		t.Fatalf("halt after close %v", h.Reason)
	}
	ms, _ = c.MoverGetState(ctx)
	if ms.BytesMoved != 4*recSize {
		t.Fatalf("bytes moved %d", ms.BytesMoved)
	}
	// Order matters here: ABORT in HALTED is a no-op, STOP goes to IDLE.
	expect("HALTED", map[string]ndmp.Error{"ABORT": ndmp.NoErr})
	expect("HALTED", map[string]ndmp.Error{"STOP": ndmp.NoErr})
}

// A restore that meets a file mark pauses with EOF at the stream offset
// reached; the DMA spaces over the mark, sets the window from there and
// continues, and the rest of the stream follows.
func TestMoverRestoreEOFPause(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	ctx := f.ctx
	data := pattern(5 * recSize)
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	for i := 0; i < 5; i++ {
		if _, err := c.TapeWrite(ctx, data[i*recSize:(i+1)*recSize]); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			if _, err := c.TapeMTIO(ctx, ndmp.MTIOEOF, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	wantErr(t, "window", c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
	dc := dialMover(t, ctx, c, ndmp.MoverModeWrite)
	waitFor(t, func() bool { s, _ := c.MoverGetState(ctx); return s.State == ndmp.MoverStateActive })
	wantErr(t, "read", c.MoverRead(ctx, 0, uint64(len(data))), ndmp.NoErr)
	got := make([]byte, 3*recSize)
	if _, err := io.ReadFull(dc, got); err != nil || !bytes.Equal(got, data[:3*recSize]) {
		t.Fatalf("first tape file: %v", err)
	}
	p := ps.wait(t, ndmp.NotifyMoverPaused, 10*time.Second).Body.(*ndmp.NotifyMoverPausedPost)
	if p.Reason != ndmp.MoverPauseEOF || p.SeekPosition != 3*recSize {
		t.Fatalf("pause %+v", p)
	}
	if _, err := c.TapeMTIO(ctx, ndmp.MTIOFSF, 1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "window", c.MoverSetWindow(ctx, 3*recSize, math.MaxUint64-3*recSize), ndmp.NoErr)
	wantErr(t, "continue", c.MoverContinue(ctx), ndmp.NoErr)
	got = make([]byte, 2*recSize)
	if _, err := io.ReadFull(dc, got); err != nil || !bytes.Equal(got, data[3*recSize:]) {
		t.Fatalf("second tape file: %v", err)
	}
	waitFor(t, func() bool {
		s, _ := c.MoverGetState(ctx)
		return s.BytesLeftToRead == 0 && s.BytesMoved == uint64(len(data))
	})
}

// dialMover puts the mover of c in LISTEN on TCP in the given mode and
// connects to it, as the data service of another server would; the
// connection is closed when the test ends.
func dialMover(t *testing.T, ctx context.Context, c *ndmp.Client, mode ndmp.MoverMode) net.Conn {
	t.Helper()
	a, err := c.MoverListen(ctx, mode, ndmp.AddrTCP)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := net.Dial("tcp", a.AddrPorts()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dc.Close() })
	return dc
}

// N14, draft MOVER_READ: a DMA learns that a three-way restore's data
// connection is up from the data server's DATA_CONNECT reply and may send
// MOVER_READ at once, before the listening mover's accept has run: the
// mover takes the established connection and the read is accepted, never
// refused with ILLEGAL_STATE (a three-way restore once waited forever for
// data after such a refusal). Repeated, because the order of the accept and
// the request is up to the scheduler.
func TestMoverReadRightAfterConnect(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	c := f.login(&ndmp.ClientConfig{})
	ctx := f.ctx
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeReadMode), ndmp.NoErr)
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	for i := 0; i < 50; i++ {
		wantErr(t, "window", c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
		addr, err := c.MoverListen(ctx, ndmp.MoverModeWrite, ndmp.AddrTCP)
		if err != nil {
			t.Fatal(err)
		}
		dc, err := net.Dial("tcp", addr.AddrPorts()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, fmt.Sprintf("read right after connect #%d", i), c.MoverRead(ctx, 0, recSize), ndmp.NoErr)
		_ = dc.Close()
		_ = c.MoverAbort(ctx)
		if !waitUntil(10*time.Second, func() bool {
			ms, err := c.MoverGetState(ctx)
			return err == nil && ms.State == ndmp.MoverStateHalted
		}) {
			t.Fatal("mover did not halt after the abort")
		}
		wantErr(t, "stop", c.MoverStop(ctx), ndmp.NoErr)
	}
	// A listening mover that gets no connection still refuses the read,
	// after the grace.
	if _, err := c.MoverListen(ctx, ndmp.MoverModeWrite, ndmp.AddrTCP); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "read without a connection", c.MoverRead(ctx, 0, recSize), ndmp.ErrIllegalState)
}
