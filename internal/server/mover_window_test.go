package server

import (
	"bytes"
	"io"
	"math"
	"net"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// waitMoverStops waits until the mover of c leaves ACTIVE for PAUSED or
// HALTED and returns its state.
func waitMoverStops(t *testing.T, f *fixture, c *ndmp.Client) *ndmp.MoverGetStateReply {
	t.Helper()
	var ms *ndmp.MoverGetStateReply
	if !waitUntil(20*time.Second, func() bool {
		var err error
		ms, err = c.MoverGetState(f.ctx)
		return err == nil && (ms.State == ndmp.MoverStatePaused || ms.State == ndmp.MoverStateHalted)
	}) {
		t.Fatalf("mover neither paused nor halted: %+v", ms)
	}
	return ms
}

// wantEOW checks that the mover paused at the end of its window at stream
// offset pos with moved bytes written, and that the DMA got
// NOTIFY_MOVER_PAUSED(EOW) for it.
func wantEOW(t *testing.T, ms *ndmp.MoverGetStateReply, ps *posts, pos, moved uint64) {
	t.Helper()
	if ms.State != ndmp.MoverStatePaused || ms.PauseReason != ndmp.MoverPauseEOW || ms.BytesMoved != moved {
		t.Fatalf("mover %v (pause %v, halt %v) with %d bytes moved, want PAUSED(EOW) with %d",
			ms.State, ms.PauseReason, ms.HaltReason, ms.BytesMoved, moved)
	}
	p := ps.wait(t, ndmp.NotifyMoverPaused, 10*time.Second).Body.(*ndmp.NotifyMoverPausedPost)
	if p.Reason != ndmp.MoverPauseEOW || p.SeekPosition != pos {
		t.Fatalf("NOTIFY_MOVER_PAUSED %+v, want EOW at %d", p, pos)
	}
}

// Issue 11 (item 3), draft 2.3.5.1.4-5 and MOVER_SET_WINDOW: a window the
// DMA sets to length 0 is a window, not "no window". Amanda's NDMP device
// sends MOVER_SET_WINDOW(0, 0) and MOVER_LISTEN(READ) so that the mover
// takes the connection but writes nothing until the device has written
// its own label and file header with TAPE_WRITE; the mover used to take
// the empty window for an unlimited one and write the whole stream to the
// tape at once. Now the first record pauses the mover (EOW) with nothing
// written; the DMA writes to the tape while the mover is paused, sets a
// window of two records and continues, the mover pauses again after
// them, and a last window takes the rest of the stream. The tape holds the
// DMA's record followed by the stream.
func TestMoverZeroWindowPausesBeforeWriting(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	ctx := f.ctx
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	wantErr(t, "empty window", c.MoverSetWindow(ctx, 0, 0), ndmp.NoErr)
	addr, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrTCP)
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(5*recSize + 77)
	dc, err := net.Dial("tcp", addr.AddrPorts()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = dc.Write(data)
		_ = dc.Close()
	}()
	wantEOW(t, waitMoverStops(t, f, c), ps, 0, 0)
	if ts, err := c.TapeGetState(ctx); err != nil || ts.FileNum != 0 || ts.BlockNo != 0 {
		t.Fatalf("tape after the pause: %+v %v, want nothing written", ts, err)
	}
	label := bytes.Repeat([]byte("LABEL"), recSize/5)
	if _, err := c.TapeWrite(ctx, label); err != nil {
		t.Fatalf("TAPE_WRITE while the mover is paused: %v", err)
	}
	wantErr(t, "two-record window", c.MoverSetWindow(ctx, 0, 2*recSize), ndmp.NoErr)
	wantErr(t, "continue", c.MoverContinue(ctx), ndmp.NoErr)
	wantEOW(t, waitMoverStops(t, f, c), ps, 2*recSize, 2*recSize)
	wantErr(t, "rest window", c.MoverSetWindow(ctx, 2*recSize, math.MaxUint64-2*recSize), ndmp.NoErr)
	wantErr(t, "continue", c.MoverContinue(ctx), ndmp.NoErr)
	h := ps.wait(t, ndmp.NotifyMoverHalted, 10*time.Second).Body.(*ndmp.NotifyMoverHaltedPost)
	if ms, _ := c.MoverGetState(ctx); h.Reason != ndmp.MoverHaltConnectClosed || ms.BytesMoved != uint64(len(data)) {
		t.Fatalf("halt %v with %d bytes moved, want CONNECT_CLOSED with %d", h.Reason, ms.BytesMoved, len(data))
	}
	wantErr(t, "stop", c.MoverStop(ctx), ndmp.NoErr)
	if _, err := c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
		t.Fatal(err)
	}
	got := readTapeFile(t, f, c)
	want := append(append([]byte{}, label...), data...)
	want = append(want, make([]byte, recSize-len(data)%recSize)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("tape holds %d bytes, want the DMA's record and the %d-byte stream padded (%d)", len(got), len(data), len(want))
	}
}

// Issue 11 (item 3), draft MOVER_SET_WINDOW and 2.3.5.1.6: the restore side
// of the same rule, Amanda's connect_impl for reading: with the window set
// to (0, 0) a MOVER_READ is outside the window, so the mover pauses with
// SEEK at offset 0 before it reads the tape; a window set in PAUSED lets
// it deliver the bytes.
func TestMoverZeroWindowRestorePausesSeek(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	ctx := f.ctx
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	data := pattern(3 * recSize)
	for i := 0; i < 3; i++ {
		if _, err := c.TapeWrite(ctx, data[i*recSize:(i+1)*recSize]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	wantErr(t, "empty window", c.MoverSetWindow(ctx, 0, 0), ndmp.NoErr)
	rc := dialMover(t, ctx, c, ndmp.MoverModeWrite)
	wantErr(t, "read", c.MoverRead(ctx, 0, uint64(len(data))), ndmp.NoErr)
	ms := waitMoverStops(t, f, c)
	if ms.State != ndmp.MoverStatePaused || ms.PauseReason != ndmp.MoverPauseSeek || ms.BytesMoved != 0 {
		t.Fatalf("mover %v (pause %v) with %d bytes moved, want PAUSED(SEEK) with none", ms.State, ms.PauseReason, ms.BytesMoved)
	}
	p := ps.wait(t, ndmp.NotifyMoverPaused, 10*time.Second).Body.(*ndmp.NotifyMoverPausedPost)
	if p.Reason != ndmp.MoverPauseSeek || p.SeekPosition != 0 {
		t.Fatalf("NOTIFY_MOVER_PAUSED %+v, want SEEK at 0", p)
	}
	wantErr(t, "window", c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
	wantErr(t, "continue", c.MoverContinue(ctx), ndmp.NoErr)
	got := make([]byte, len(data))
	if _, err := io.ReadFull(rc, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restored %v, equal %v", err, bytes.Equal(got, data))
	}
}
