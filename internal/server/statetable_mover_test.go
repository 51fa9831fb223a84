package server

import (
	"errors"
	"fmt"
	"math"
	"net"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// anyTapeAnswer marks a request the state allows whose answer depends on
// the tape, not on the state (a TAPE_READ may meet the end of data): any
// reply but NDMP_ILLEGAL_STATE_ERR and NDMP_DEVICE_BUSY_ERR passes.
const anyTapeAnswer ndmp.Error = math.MaxUint32

// anyRefusal marks a request the state must refuse with some error (the
// draft names none) while the mover stays in its state.
const anyRefusal ndmp.Error = math.MaxUint32 - 1

// moverCase is one session brought into a mover state for one request.
type moverCase struct {
	t  *testing.T
	f  *fixture
	c  *ndmp.Client
	ps *posts
	// peer is a TCP end point that accepts connections (for
	// MOVER_CONNECT).
	peer ndmp.Addr
	// window is the MOVER_SET_WINDOW that is valid in the state.
	window [2]uint64
	// dc is the data connection the test holds, if any.
	dc net.Conn
}

// openDrive opens drive i of the library, waiting while a closed session
// of the test still holds it.
func (mc *moverCase) openDrive(i int) {
	mc.t.Helper()
	dev := fmt.Sprintf("nrst%dl", i)
	deadline := time.Now().Add(hangGuard)
	for {
		err := mc.c.TapeOpen(mc.f.ctx, dev, ndmp.TapeRDWRMode)
		if err == nil {
			return
		}
		if !errors.Is(err, ndmp.ErrDeviceBusy) || time.Now().After(deadline) {
			mc.t.Fatalf("open %s: %v", dev, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (mc *moverCase) waitMover(want ndmp.MoverState) {
	mc.t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		ms, err := mc.c.MoverGetState(mc.f.ctx)
		if err == nil && ms.State == want {
			return
		}
		if time.Now().After(deadline) {
			mc.t.Fatalf("mover did not reach %v: %+v %v", want, ms, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// moverStates brings a fresh session into each state of the draft's mover
// state table (2.11.6), with the tape open read-write and the record size
// set.
var moverStates = []struct {
	state ndmp.MoverState
	enter func(mc *moverCase)
}{
	{ndmp.MoverStateIdle, func(mc *moverCase) { mc.window = [2]uint64{0, recSize} }},
	{ndmp.MoverStateListen, func(mc *moverCase) {
		// LOCAL, so that DATA_CONNECT (LOCAL) can take it.
		if _, err := mc.c.MoverListen(mc.f.ctx, ndmp.MoverModeRead, ndmp.AddrLocal); err != nil {
			mc.t.Fatal(err)
		}
	}},
	{ndmp.MoverStateActive, func(mc *moverCase) {
		// Mode WRITE (a restore) reading three records from tape, so
		// that MOVER_READ is valid.
		ctx := mc.f.ctx
		data := pattern(3 * recSize)
		for i := 0; i < 3; i++ {
			if _, err := mc.c.TapeWrite(ctx, data[i*recSize:(i+1)*recSize]); err != nil {
				mc.t.Fatal(err)
			}
		}
		if _, err := mc.c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
			mc.t.Fatal(err)
		}
		wantErr(mc.t, "window", mc.c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
		a, err := mc.c.MoverListen(ctx, ndmp.MoverModeWrite, ndmp.AddrTCP)
		if err != nil {
			mc.t.Fatal(err)
		}
		if mc.dc, err = net.Dial("tcp", a.AddrPorts()[0].String()); err != nil {
			mc.t.Fatal(err)
		}
		mc.waitMover(ndmp.MoverStateActive)
	}},
	{ndmp.MoverStatePaused, func(mc *moverCase) {
		// Mode READ (a backup) with a window of two records: the third
		// record pauses the mover with EOW; the next window is set.
		ctx := mc.f.ctx
		wantErr(mc.t, "window", mc.c.MoverSetWindow(ctx, 0, 2*recSize), ndmp.NoErr)
		a, err := mc.c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrTCP)
		if err != nil {
			mc.t.Fatal(err)
		}
		if mc.dc, err = net.Dial("tcp", a.AddrPorts()[0].String()); err != nil {
			mc.t.Fatal(err)
		}
		dc := mc.dc
		go func() { _, _ = dc.Write(pattern(5 * recSize)) }()
		p := mc.ps.wait(mc.t, ndmp.NotifyMoverPaused, 5*time.Second).Body.(*ndmp.NotifyMoverPausedPost)
		if p.Reason != ndmp.MoverPauseEOW || p.SeekPosition != 2*recSize {
			mc.t.Fatalf("pause %+v", p)
		}
		mc.window = [2]uint64{2 * recSize, 2 * recSize}
		wantErr(mc.t, "next window", mc.c.MoverSetWindow(ctx, mc.window[0], mc.window[1]), ndmp.NoErr)
	}},
	{ndmp.MoverStateHalted, func(mc *moverCase) {
		ctx := mc.f.ctx
		if _, err := mc.c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrTCP); err != nil {
			mc.t.Fatal(err)
		}
		wantErr(mc.t, "abort", mc.c.MoverAbort(ctx), ndmp.NoErr)
		h := mc.ps.wait(mc.t, ndmp.NotifyMoverHalted, 5*time.Second).Body.(*ndmp.NotifyMoverHaltedPost)
		if h.Reason != ndmp.MoverHaltAborted {
			mc.t.Fatalf("halted %v", h.Reason)
		}
	}},
}

// moverRequests are the requests of the table, each with its expected
// reply per state (IDLE, LISTEN, ACTIVE, PAUSED, HALTED), from the
// "Reply Errors" of each message in draft sections 3.4 and 3.6 and the
// tape rules of 2.11.4.
var moverRequests = []struct {
	name string
	do   func(mc *moverCase) error
	want [5]ndmp.Error
}{
	// 3.6.2.1: only in IDLE.
	{"MOVER_SET_RECORD_SIZE", func(mc *moverCase) error { return mc.c.MoverSetRecordSize(mc.f.ctx, recSize) },
		[5]ndmp.Error{ndmp.NoErr, ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.ErrIllegalState}},
	// 3.6.2.2: IDLE or PAUSED.
	{"MOVER_SET_WINDOW", func(mc *moverCase) error { return mc.c.MoverSetWindow(mc.f.ctx, mc.window[0], mc.window[1]) },
		[5]ndmp.Error{ndmp.NoErr, ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.NoErr, ndmp.ErrIllegalState}},
	// 3.6.2.3: only in IDLE.
	{"MOVER_CONNECT", func(mc *moverCase) error { return mc.c.MoverConnect(mc.f.ctx, ndmp.MoverModeRead, mc.peer) },
		[5]ndmp.Error{ndmp.NoErr, ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.ErrIllegalState}},
	// 3.6.2.4: only in IDLE.
	{"MOVER_LISTEN", func(mc *moverCase) error {
		_, err := mc.c.MoverListen(mc.f.ctx, ndmp.MoverModeRead, ndmp.AddrTCP)
		return err
	}, [5]ndmp.Error{ndmp.NoErr, ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.ErrIllegalState}},
	// 3.6.2.5: only in ACTIVE.
	{"MOVER_READ", func(mc *moverCase) error { return mc.c.MoverRead(mc.f.ctx, 0, 1) },
		[5]ndmp.Error{ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.NoErr, ndmp.ErrIllegalState, ndmp.ErrIllegalState}},
	// 3.6.2.6: in every state.
	{"MOVER_GET_STATE", func(mc *moverCase) error { _, err := mc.c.MoverGetState(mc.f.ctx); return err },
		[5]ndmp.Error{ndmp.NoErr, ndmp.NoErr, ndmp.NoErr, ndmp.NoErr, ndmp.NoErr}},
	// 3.6.2.7: only in PAUSED.
	{"MOVER_CONTINUE", func(mc *moverCase) error { return mc.c.MoverContinue(mc.f.ctx) },
		[5]ndmp.Error{ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.NoErr, ndmp.ErrIllegalState}},
	// 3.6.2.8: only in PAUSED.
	{"MOVER_CLOSE", func(mc *moverCase) error { return mc.c.MoverClose(mc.f.ctx) },
		[5]ndmp.Error{ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.NoErr, ndmp.ErrIllegalState}},
	// 3.6.2.9: not in IDLE.
	{"MOVER_ABORT", func(mc *moverCase) error { return mc.c.MoverAbort(mc.f.ctx) },
		[5]ndmp.Error{ndmp.ErrIllegalState, ndmp.NoErr, ndmp.NoErr, ndmp.NoErr, ndmp.NoErr}},
	// 3.6.2.10: only in HALTED.
	{"MOVER_STOP", func(mc *moverCase) error { return mc.c.MoverStop(mc.f.ctx) },
		[5]ndmp.Error{ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.ErrIllegalState, ndmp.NoErr}},
	// 3.4.3: DEVICE_BUSY while the mover is ACTIVE or LISTEN.
	{"TAPE_CLOSE", func(mc *moverCase) error { return mc.c.TapeClose(mc.f.ctx) },
		[5]ndmp.Error{ndmp.NoErr, ndmp.ErrDeviceBusy, ndmp.ErrDeviceBusy, ndmp.NoErr, ndmp.NoErr}},
	// 3.4.6: DEVICE_BUSY while the mover is ACTIVE or LISTEN.
	{"TAPE_WRITE", func(mc *moverCase) error { _, err := mc.c.TapeWrite(mc.f.ctx, pattern(recSize)); return err },
		[5]ndmp.Error{ndmp.NoErr, ndmp.ErrDeviceBusy, ndmp.ErrDeviceBusy, ndmp.NoErr, ndmp.NoErr}},
	// 3.4.7: DEVICE_BUSY while the mover is ACTIVE or LISTEN.
	{"TAPE_READ", func(mc *moverCase) error { _, err := mc.c.TapeRead(mc.f.ctx, recSize); return err },
		[5]ndmp.Error{anyTapeAnswer, ndmp.ErrDeviceBusy, ndmp.ErrDeviceBusy, anyTapeAnswer, anyTapeAnswer}},
	// 2.11.4: while ACTIVE only TAPE_GET_STATE.
	{"TAPE_MTIO", func(mc *moverCase) error { _, err := mc.c.TapeMTIO(mc.f.ctx, ndmp.MTIOTUR, 1); return err },
		[5]ndmp.Error{ndmp.NoErr, ndmp.NoErr, ndmp.ErrDeviceBusy, ndmp.NoErr, ndmp.NoErr}},
	{"TAPE_EXECUTE_CDB", func(mc *moverCase) error {
		_, err := mc.c.TapeExecuteCDB(mc.f.ctx, &ndmp.TapeExecuteCDBRequest{CDB: []byte{0, 0, 0, 0, 0, 0}})
		return err
	}, [5]ndmp.Error{ndmp.NoErr, ndmp.NoErr, ndmp.ErrDeviceBusy, ndmp.NoErr, ndmp.NoErr}},
	{"TAPE_GET_STATE", func(mc *moverCase) error { _, err := mc.c.TapeGetState(mc.f.ctx); return err },
		[5]ndmp.Error{ndmp.NoErr, ndmp.NoErr, ndmp.NoErr, ndmp.NoErr, ndmp.NoErr}},
	// 2.11.4: one device per connection, so a second TAPE_OPEN is refused
	// whatever the mover does.
	{"TAPE_OPEN", func(mc *moverCase) error { return mc.c.TapeOpen(mc.f.ctx, "nrst0l", ndmp.TapeReadMode) },
		[5]ndmp.Error{ndmp.ErrDeviceOpened, ndmp.ErrDeviceOpened, ndmp.ErrDeviceOpened, ndmp.ErrDeviceOpened, ndmp.ErrDeviceOpened}},
	// 3.5.2.1 with a LOCAL address: the data service takes the mover's
	// LOCAL listen; with no mover listening there is nothing to connect to.
	{"DATA_CONNECT(LOCAL)", func(mc *moverCase) error {
		return mc.c.DataConnect(mc.f.ctx, ndmp.Addr{AddrType: ndmp.AddrLocal})
	}, [5]ndmp.Error{anyRefusal, ndmp.NoErr, anyRefusal, anyRefusal, anyRefusal}},
}

// N1, draft 2.11.6 and the Reply Errors of 3.4 and 3.6: for each mover
// state (IDLE, LISTEN, ACTIVE, PAUSED, HALTED) and each MOVER_* request
// and the TAPE_* and DATA_CONNECT requests that depend on the mover, a
// fresh session is brought into the state and sends the request; the
// reply error is the one the draft gives. A refused request leaves the
// mover in its state; MOVER_GET_STATE reports the state.
func TestMoverStateTableDraft(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	peer, err := ndmp.NewTCPAddrs(ln.Addr().(*net.TCPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for si, st := range moverStates {
		for _, rq := range moverRequests {
			want := rq.want[si]
			t.Run(fmt.Sprintf("%v/%s", st.state, rq.name), func(t *testing.T) {
				ps := newPosts()
				mc := &moverCase{t: t, f: f, ps: ps, peer: peer}
				mc.c = f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
				defer func() {
					mc.c.Conn().Close()
					if mc.dc != nil {
						mc.dc.Close()
					}
				}()
				mc.openDrive(n % 4)
				n++
				wantErr(t, "record size", mc.c.MoverSetRecordSize(f.ctx, recSize), ndmp.NoErr)
				st.enter(mc)
				if ms, err := mc.c.MoverGetState(f.ctx); err != nil || ms.State != st.state {
					t.Fatalf("setup: mover %+v %v, want %v", ms, err, st.state)
				}
				err := rq.do(mc)
				var got ndmp.Error
				isNDMP := errors.As(err, &got)
				switch want {
				case anyTapeAnswer:
					if isNDMP && (got == ndmp.ErrIllegalState || got == ndmp.ErrDeviceBusy) {
						t.Fatalf("%s in %v: %v, want the state to allow it", rq.name, st.state, err)
					}
				case anyRefusal:
					if err == nil {
						t.Fatalf("%s in %v succeeded, want a refusal", rq.name, st.state)
					}
				default:
					wantErr(t, fmt.Sprintf("%s in %v", rq.name, st.state), err, want)
				}
				if err != nil {
					// A refusal leaves the mover where it was.
					if ms, gerr := mc.c.MoverGetState(f.ctx); gerr != nil || ms.State != st.state {
						t.Fatalf("after the refused %s the mover is %+v (%v), want %v", rq.name, ms, gerr, st.state)
					}
				}
			})
		}
	}
}
