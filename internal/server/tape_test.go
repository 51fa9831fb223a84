package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// fill makes a record whose bytes tell its file and record number.
func fill(size, file, rec int) []byte {
	b := make([]byte, size)
	for i := 0; i+12 <= size; i += 12 {
		binary.BigEndian.PutUint32(b[i:], uint32(file))
		binary.BigEndian.PutUint32(b[i+4:], uint32(rec))
		binary.BigEndian.PutUint32(b[i+8:], uint32(i))
	}
	return b
}

func mtio(t *testing.T, c *ndmp.Client, op ndmp.TapeMTIOOp, count, wantResid uint32, want ndmp.Error) {
	t.Helper()
	resid, err := c.TapeMTIO(context.Background(), op, count)
	wantErr(t, op.String(), err, want)
	if resid != wantResid {
		t.Fatalf("%v %d: resid %d, want %d", op, count, resid, wantResid)
	}
}

func position(t *testing.T, c *ndmp.Client, file, block uint32) {
	t.Helper()
	st, err := c.TapeGetState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.FileNum != file {
		t.Fatalf("file_num %d, want %d", st.FileNum, file)
	}
	// block ^0: any block number (after an EOF read ndmjob accepts an
	// unknown one, the VTL reports the exact one).
	if block != ^uint32(0) && st.Unsupported&ndmp.TapeStateBlockNoUns == 0 && st.BlockNo != block && st.BlockNo != ^uint32(0) {
		t.Fatalf("blockno %d, want %d (file %d)", st.BlockNo, block, file)
	}
}

// TAPE service semantics of draft 3.4 as ndmjob's test-tape phases T-BR,
// T-BWR, T-WRITE, T-READ and T-MTIO check them (T8 positions, EOF/EOM,
// resid counts, open modes).
func TestTapeSemantics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := f.ctx
	c := f.login(nil)
	const dev = "nrst0l"
	// T-OC / T-BW basics.
	wantErr(t, "close unopened", c.TapeClose(ctx), ndmp.ErrDevNotOpen)
	wantErr(t, "open bogus", c.TapeOpen(ctx, "bogus", ndmp.TapeReadMode), ndmp.ErrNoDevice)
	wantErr(t, "open unknown alias", c.TapeOpen(ctx, "nrst9l", ndmp.TapeReadMode), ndmp.ErrNoDevice)
	wantErr(t, "open mode 123", c.TapeOpen(ctx, dev, 123), ndmp.ErrIllegalArgs)
	_, err := c.TapeWrite(ctx, []byte("x"))
	wantErr(t, "write unopened", err, ndmp.ErrDevNotOpen)
	_, err = c.TapeRead(ctx, 10)
	wantErr(t, "read unopened", err, ndmp.ErrDevNotOpen)
	wantErr(t, "open READ", c.TapeOpen(ctx, dev, ndmp.TapeReadMode), ndmp.NoErr)
	wantErr(t, "second open", c.TapeOpen(ctx, dev, ndmp.TapeReadMode), ndmp.ErrDeviceOpened)
	wantErr(t, "SCSI open with tape open", c.SCSIOpen(ctx, "mc0"), ndmp.ErrDeviceOpened)
	_, err = c.TapeWrite(ctx, []byte("x"))
	wantErr(t, "write in READ mode", err, ndmp.ErrPermission)
	st, err := c.TapeGetState(ctx)
	if err != nil || st.Flags&ndmp.TapeStateWrProt == 0 {
		t.Fatalf("state in READ mode: %+v %v", st, err)
	}
	_, err = c.TapeRead(ctx, 0x80000000)
	wantErr(t, "read 0x80000000", err, ndmp.ErrIllegalArgs)
	b, err := c.TapeRead(ctx, 0)
	wantErr(t, "read 0", err, ndmp.NoErr)
	if len(b) != 0 {
		t.Fatal("read 0 returned data")
	}
	wantErr(t, "close", c.TapeClose(ctx), ndmp.NoErr)

	// T-BWR: EOF and EOM around one filemark.
	wantErr(t, "open RDWR", c.TapeOpen(ctx, dev, ndmp.TapeRDWRMode), ndmp.NoErr)
	n, err := c.TapeWrite(ctx, nil)
	wantErr(t, "write 0", err, ndmp.NoErr)
	if n != 0 {
		t.Fatal("write 0 counted bytes")
	}
	mtio(t, c, ndmp.MTIOREW, 1, 0, ndmp.NoErr)
	mtio(t, c, ndmp.MTIOBSR, 100, 100, ndmp.NoErr)
	mtio(t, c, ndmp.MTIOBSF, 100, 100, ndmp.NoErr)
	mtio(t, c, ndmp.MTIOEOF, 1, 0, ndmp.NoErr)
	mtio(t, c, ndmp.MTIOBSF, 100, 99, ndmp.NoErr)
	mtio(t, c, ndmp.MTIOFSF, 100, 99, ndmp.NoErr)
	for range 2 {
		_, err = c.TapeRead(ctx, 65536)
		wantErr(t, "read at end of data", err, ndmp.ErrEOM)
	}
	mtio(t, c, ndmp.MTIOREW, 1, 0, ndmp.NoErr)
	if _, err := c.TapeWrite(ctx, make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	// Draft 3.4 "implicit file mark generation": the MTIO after a write
	// first writes a file mark and leaves the tape on its EOT side, so a
	// backward space meets that mark at once (ndmjob's T-BWR, written
	// before v4, expects no mark here).
	mtio(t, c, ndmp.MTIOBSR, 100, 100, ndmp.NoErr)
	mtio(t, c, ndmp.MTIOBSF, 1, 0, ndmp.NoErr)
	mtio(t, c, ndmp.MTIOBSR, 100, 99, ndmp.NoErr)
	mtio(t, c, ndmp.MTIOFSR, 100, 99, ndmp.NoErr)
	mtio(t, c, ndmp.MTIOFSR, 100, 100, ndmp.NoErr)
	mtio(t, c, ndmp.MTIOFSF, 100, 99, ndmp.NoErr)
	mtio(t, c, ndmp.MTIOFSR, 0, 0, ndmp.NoErr)

	// T-WRITE: files of various record sizes with positions after each.
	series := []struct{ n, size int }{{1, 512}, {100, 1024}, {1, 512}, {100, 139}, {1, 512}, {99, 10240}, {1, 512}, {3, 32768}, {1, 512}}
	mtio(t, c, ndmp.MTIOREW, 1, 0, ndmp.NoErr)
	for fi, s := range series {
		for r := 0; r < s.n; r++ {
			if n, err := c.TapeWrite(ctx, fill(s.size, fi, r)); err != nil || int(n) != s.size {
				t.Fatalf("write file %d rec %d: %d %v", fi, r, n, err)
			}
			if r == s.n-1 || r == 0 {
				position(t, c, uint32(fi), uint32(r+1))
			}
		}
		mtio(t, c, ndmp.MTIOEOF, 1, 0, ndmp.NoErr)
		position(t, c, uint32(fi+1), 0)
	}
	wantErr(t, "close", c.TapeClose(ctx), ndmp.NoErr)

	// T-READ: read back, EOF stays in the file until FSF (v4).
	wantErr(t, "open READ", c.TapeOpen(ctx, dev, ndmp.TapeReadMode), ndmp.NoErr)
	mtio(t, c, ndmp.MTIOREW, 1, 0, ndmp.NoErr)
	for fi, s := range series {
		for r := 0; r < s.n; r++ {
			got, err := c.TapeRead(ctx, uint32(s.size))
			if err != nil || !bytes.Equal(got, fill(s.size, fi, r)) {
				t.Fatalf("read file %d rec %d: %d bytes %v", fi, r, len(got), err)
			}
		}
		_, err := c.TapeRead(ctx, uint32(s.size))
		wantErr(t, "read at filemark", err, ndmp.ErrEOF)
		position(t, c, uint32(fi), ^uint32(0))
		mtio(t, c, ndmp.MTIOFSF, 1, 0, ndmp.NoErr)
		position(t, c, uint32(fi+1), 0)
	}
	// A longer count returns the record; a shorter one truncates it.
	mtio(t, c, ndmp.MTIOREW, 1, 0, ndmp.NoErr)
	got, err := c.TapeRead(ctx, 2048)
	if err != nil || len(got) != 512 {
		t.Fatalf("oversize read: %d %v", len(got), err)
	}

	// T-MTIO: spacing over records and files.
	for fi, s := range series {
		mtio(t, c, ndmp.MTIOREW, 1, 0, ndmp.NoErr)
		if fi > 0 {
			mtio(t, c, ndmp.MTIOFSF, uint32(fi), 0, ndmp.NoErr)
		}
		position(t, c, uint32(fi), 0)
		mtio(t, c, ndmp.MTIOFSR, 1000000, uint32(1000000-s.n), ndmp.NoErr)
		position(t, c, uint32(fi), uint32(s.n))
		mtio(t, c, ndmp.MTIOBSR, 1000000, uint32(1000000-s.n), ndmp.NoErr)
		position(t, c, uint32(fi), 0)
		if s.n > 2 {
			mtio(t, c, ndmp.MTIOFSR, uint32(s.n/2), 0, ndmp.NoErr)
			got, err := c.TapeRead(ctx, uint32(s.size))
			if err != nil || !bytes.Equal(got, fill(s.size, fi, s.n/2)) {
				t.Fatalf("read after FSR in file %d: %v", fi, err)
			}
			mtio(t, c, ndmp.MTIOBSR, 2, 0, ndmp.NoErr)
			got, err = c.TapeRead(ctx, uint32(s.size))
			if err != nil || !bytes.Equal(got, fill(s.size, fi, s.n/2-1)) {
				t.Fatalf("read after BSR in file %d: %v", fi, err)
			}
		}
	}
	_, err = c.TapeMTIO(ctx, 99, 1)
	wantErr(t, "bad MTIO op", err, ndmp.ErrIllegalArgs)
	mtio(t, c, ndmp.MTIOTUR, 1, 0, ndmp.NoErr)
	mtio(t, c, ndmp.MTIOOff, 1, 0, ndmp.NoErr)
	_, err = c.TapeRead(ctx, 10)
	if !errors.Is(err, ndmp.ErrNoTapeLoaded) && !errors.Is(err, ndmp.ErrIo) {
		t.Fatalf("read after unload: %v", err)
	}
	wantErr(t, "close", c.TapeClose(ctx), ndmp.NoErr)
}

// T6 and draft 2.11.4: a drive open in one session is busy for another;
// it is free again after close.
func TestTapeBusyAcrossSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := f.ctx
	a, b := f.login(nil), f.login(nil)
	wantErr(t, "A opens", a.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "B opens the same drive", b.TapeOpen(ctx, "rst0l", ndmp.TapeReadMode), ndmp.ErrDeviceBusy)
	wantErr(t, "B opens another drive", b.TapeOpen(ctx, "nrst1l", ndmp.TapeReadMode), ndmp.NoErr)
	wantErr(t, "A closes", a.TapeClose(ctx), ndmp.NoErr)
	wantErr(t, "B closes", b.TapeClose(ctx), ndmp.NoErr)
	wantErr(t, "B opens the freed drive", b.TapeOpen(ctx, "nrst0l", ndmp.TapeReadMode), ndmp.NoErr)
}

// SCSI service on the library's medium changer: open, state, INQUIRY and
// TEST UNIT READY through EXECUTE_CDB, reset, close.
func TestSCSIChanger(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := f.ctx
	c := f.login(nil)
	_, err := c.SCSIGetState(ctx)
	wantErr(t, "state unopened", err, ndmp.ErrDevNotOpen)
	wantErr(t, "open bogus", c.SCSIOpen(ctx, "mc9"), ndmp.ErrNoDevice)
	wantErr(t, "open", c.SCSIOpen(ctx, "mc0"), ndmp.NoErr)
	wantErr(t, "open twice", c.SCSIOpen(ctx, "mc0"), ndmp.ErrDeviceOpened)
	wantErr(t, "tape open while SCSI open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeReadMode), ndmp.ErrDeviceOpened)
	if _, err := c.SCSIGetState(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := c.SCSIExecuteCDB(ctx, &ndmp.SCSIExecuteCDBRequest{Flags: ndmp.SCSIDataIn, Timeout: 5000, DataInLen: 96,
		CDB: []byte{0x12, 0, 0, 0, 96, 0}})
	if err != nil || r.Status != 0 || len(r.DataIn) < 36 || r.DataIn[0]&0x1f != 0x08 {
		t.Fatalf("INQUIRY: %+v %v", r, err)
	}
	r, err = c.SCSIExecuteCDB(ctx, &ndmp.SCSIExecuteCDBRequest{CDB: []byte{0, 0, 0, 0, 0, 0}})
	if err != nil || r.Status != 0 {
		t.Fatalf("TEST UNIT READY: %+v %v", r, err)
	}
	// An unsupported opcode is a CHECK CONDITION with sense data.
	r, err = c.SCSIExecuteCDB(ctx, &ndmp.SCSIExecuteCDBRequest{CDB: []byte{0xff, 0, 0, 0, 0, 0}})
	if err != nil || r.Status == 0 || len(r.ExtSense) == 0 {
		t.Fatalf("bogus opcode: %+v %v", r, err)
	}
	_, err = c.SCSIExecuteCDB(ctx, &ndmp.SCSIExecuteCDBRequest{CDB: nil})
	wantErr(t, "empty CDB", err, ndmp.ErrIllegalArgs)
	wantErr(t, "reset", c.SCSIResetDevice(ctx), ndmp.NoErr)
	wantErr(t, "close", c.SCSIClose(ctx), ndmp.NoErr)
	wantErr(t, "close twice", c.SCSIClose(ctx), ndmp.ErrDevNotOpen)
	// TAPE_EXECUTE_CDB reaches the drive.
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeReadMode), ndmp.NoErr)
	tr, err := c.TapeExecuteCDB(ctx, &ndmp.TapeExecuteCDBRequest{Flags: ndmp.SCSIDataIn, DataInLen: 96, CDB: []byte{0x12, 0, 0, 0, 96, 0}})
	if err != nil || tr.Status != 0 || tr.DataIn[0]&0x1f != 0x01 {
		t.Fatalf("drive INQUIRY: %+v %v", tr, err)
	}
}

// T6: with persistent reservations a drive stays reserved by the session
// that opened it until that session ends; another session gets
// DEVICE_BUSY with the ONTAP message in LOG_MESSAGE.
func TestTapeReservations(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: func(f *fixture) {
		if err := f.reg.SetReservations(context.Background(), tape.ReservationsPersistent); err != nil {
			f.t.Fatal(err)
		}
	}})
	ctx := f.ctx
	a := f.login(nil)
	ps := newPosts()
	b := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	wantErr(t, "A opens", a.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "A closes", a.TapeClose(ctx), ndmp.NoErr)
	wantErr(t, "B opens A's reserved drive", b.TapeOpen(ctx, "nrst0l", ndmp.TapeReadMode), ndmp.ErrDeviceBusy)
	m := ps.wait(t, ndmp.LogMessage, 5*time.Second).Body.(*ndmp.LogMessagePost)
	if m.Entry != tape.MsgReservationPreempted {
		t.Errorf("log message %q, want %q", m.Entry, tape.MsgReservationPreempted)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(f.srv.Sessions()) == 1 })
	wantErr(t, "B opens after A ended", b.TapeOpen(ctx, "nrst0l", ndmp.TapeReadMode), ndmp.NoErr)
}

// N12: at most MaxActive local drives may be open at once on the node
// (ONTAP: 16); the next TAPE_OPEN gets DEVICE_BUSY and the DMA reads
// "Resource limitation: no available thread".
func TestTapeThreadLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{vtl: &vtl.Config{Drives: 3, Slots: 3, MaxActive: 2}})
	ctx := f.ctx
	a, b := f.login(nil), f.login(nil)
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	wantErr(t, "first drive", a.TapeOpen(ctx, "nrst0l", ndmp.TapeRawMode), ndmp.NoErr)
	wantErr(t, "second drive", b.TapeOpen(ctx, "nrst1l", ndmp.TapeRawMode), ndmp.NoErr)
	wantErr(t, "third drive", c.TapeOpen(ctx, "nrst2l", ndmp.TapeRawMode), ndmp.ErrDeviceBusy)
	if m := ps.wait(t, ndmp.LogMessage, 5*time.Second).Body.(*ndmp.LogMessagePost); m.Entry != "Resource limitation: no available thread" {
		t.Fatalf("log message %q", m.Entry)
	}
	wantErr(t, "close one", a.TapeClose(ctx), ndmp.NoErr)
	wantErr(t, "third drive after a close", c.TapeOpen(ctx, "nrst2l", ndmp.TapeRawMode), ndmp.NoErr)
	// Without a tape only RAW mode opens.
	wantErr(t, "READ without tape", a.TapeOpen(ctx, "nrst0l", ndmp.TapeReadMode), ndmp.ErrNoTapeLoaded)
}
