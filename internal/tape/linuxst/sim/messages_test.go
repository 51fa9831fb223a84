//go:build linux

package sim

import (
	"context"
	"errors"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst"
)

// t10Case prepares the standard library's drive 0 (cartridge 0 loaded)
// and runs the operation that must fail.
type t10Case struct {
	msg      string
	sentinel error
	opts     LibraryOptions
	prepare  func(l *Library, c *Cartridge)
	run      func(t *testing.T, d *linuxst.Drive) error
	records  int // records and marks on the cartridge afterwards (st writes a mark before rewinding after writes)
}

// drive0 returns linuxst's drive 0 of the library over its primary
// path, with its sg node.
func drive0(l *Library) *linuxst.Drive {
	dev := l.Host.DevRoot()
	return linuxst.NewDrive(l.Host, dev+"/nst0", linuxst.NewSG(l.Host, dev+"/sg1"))
}

func openRW(d *linuxst.Drive) error {
	return d.Open(context.Background(), tape.OpenOptions{Mode: tape.ReadWriteMode, Rewind: tape.NoRewind})
}

func writeN(t *testing.T, d *linuxst.Drive, n, size int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := d.Write(make([]byte, size)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
}

// openAndWrite opens drive 0, writes n records of size bytes and returns
// the error of the next write.
func openAndWrite(n, size int) func(t *testing.T, d *linuxst.Drive) error {
	return func(t *testing.T, d *linuxst.Drive) error {
		if err := openRW(d); err != nil {
			t.Fatal(err)
		}
		writeN(t, d, n, size)
		_, err := d.Write(make([]byte, size))
		return err
	}
}

// readBack writes n records, rewinds and returns the error of the read
// after k good ones, with a buffer of buf bytes.
func readBack(n, k, size, buf int) func(t *testing.T, d *linuxst.Drive) error {
	return func(t *testing.T, d *linuxst.Drive) error {
		if err := openRW(d); err != nil {
			t.Fatal(err)
		}
		writeN(t, d, n, size)
		if err := d.Rewind(); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, buf)
		for i := 0; i < k; i++ {
			if _, err := d.Read(b); err != nil {
				t.Fatalf("read %d: %v", i, err)
			}
		}
		_, err := d.Read(b)
		return err
	}
}

func justOpen(t *testing.T, d *linuxst.Drive) error { return openRW(d) }

// T10, issue 15 item 3: every tape message of the spec that a drive's
// errors produce, each from the simulated drive's sense data and
// TapeAlert flags as linuxst reads them through st and the sg node.
func TestT10Messages(t *testing.T) {
	cases := []t10Case{
		{msg: tape.MsgReservationPreempted, sentinel: tape.ErrReserved, records: 0,
			prepare: func(l *Library, _ *Cartridge) { l.Drives[0].ReserveFor("other-host") }, run: justOpen},
		{msg: tape.MsgCouldNotInitializeMedia, sentinel: tape.ErrIO, records: 0,
			prepare: func(_ *Library, c *Cartridge) { c.Incompatible = true }, run: justOpen},
		{msg: tape.MsgMediaErrorOnWrite, sentinel: tape.ErrIO, records: 2,
			prepare: func(_ *Library, c *Cartridge) { c.Fault(FaultWriteMedia, 2) }, run: openAndWrite(2, 1024)},
		{msg: tape.MsgWriteFailed, sentinel: tape.ErrIO, records: 1,
			prepare: func(_ *Library, c *Cartridge) { c.Fault(FaultWriteHardware, 1) }, run: openAndWrite(1, 1024)},
		{msg: tape.MsgWriteFailedNewMediaError, sentinel: tape.ErrIO, records: 0,
			prepare: func(_ *Library, c *Cartridge) { c.Fault(FaultWriteMedia, 0) }, run: openAndWrite(0, 1024)},
		{msg: tape.MsgWriteFailedNewBroken, sentinel: tape.ErrWriteProtect, records: 0,
			prepare: func(_ *Library, c *Cartridge) { c.WriteProtect = true }, run: justOpen},
		{msg: tape.MsgWriteFailedNewAtEnd, sentinel: tape.ErrEOM, records: 0, opts: LibraryOptions{Capacity: 512, EarlyWarning: 64},
			run: openAndWrite(0, 1024)},
		{msg: tape.MsgMediaErrorOnRead, sentinel: tape.ErrIO, records: 4,
			prepare: func(_ *Library, c *Cartridge) { c.Fault(FaultReadMedia, 1) }, run: readBack(3, 1, 1024, 1024)},
		{msg: tape.MsgReadError, sentinel: tape.ErrIO, records: 4,
			prepare: func(_ *Library, c *Cartridge) { c.Fault(FaultReadHardware, 2) }, run: readBack(3, 2, 1024, 1024)},
		{msg: tape.MsgAlreadyAtEnd, sentinel: tape.ErrEOM, records: 2, run: func(t *testing.T, d *linuxst.Drive) error {
			if err := openRW(d); err != nil {
				t.Fatal(err)
			}
			writeN(t, d, 1, 100)
			if err := d.Rewind(); err != nil { // st writes the file mark first
				t.Fatal(err)
			}
			if _, err := d.Space(tape.SpaceFSF, 1); err != nil {
				t.Fatal(err)
			}
			_, err := d.Read(make([]byte, 100))
			return err
		}},
		{msg: tape.MsgRecordSizeTooSmall, sentinel: tape.ErrIO, records: 2, run: readBack(1, 0, 64<<10, 10<<10)},
	}
	for _, c := range cases {
		t.Run(c.msg, func(t *testing.T) {
			l := newLib(t, c.opts)
			cart := l.Cartridges[0]
			move(t, l, SlotBase, DriveBase)
			if c.prepare != nil {
				c.prepare(l, cart)
			}
			d := drive0(l)
			err := c.run(t, d)
			if err == nil || tape.Message(err) != c.msg || !errors.Is(err, c.sentinel) {
				t.Fatalf("got %v (message %q), want %q and %v", err, tape.Message(err), c.msg, c.sentinel)
			}
			if n := len(cart.Records()); c.records >= 0 && n != c.records {
				t.Fatalf("%d records and marks on the cartridge, want %d", n, c.records)
			}
		})
	}
}

// T6, T10, issue 15 item 5: a persistent reservation another host takes
// while the node writes ends the node's next write with the spec's
// message; nothing more is written.
func TestPreemptedWhileWriting(t *testing.T) {
	l := newLib(t, LibraryOptions{})
	move(t, l, SlotBase, DriveBase)
	d := drive0(l)
	if err := openRW(d); err != nil {
		t.Fatal(err)
	}
	writeN(t, d, 1, 512)
	l.Drives[0].PreemptFor("other-host", 0xBAD)
	_, err := d.Write(make([]byte, 512))
	if tape.Message(err) != tape.MsgReservationPreempted || !errors.Is(err, tape.ErrReserved) {
		t.Fatalf("write after the preemption: %v", err)
	}
	if n := len(l.Cartridges[0].Records()); n != 1 {
		t.Fatalf("%d records on the cartridge, want 1", n)
	}
}

// T6, issue 15 item 5: the drive's own reservations. scsi: RESERVE(6)
// at open, RELEASE(6) at close; persistent: the node's key registered
// and the reservation taken at open, kept after close and released by
// ReleaseReservation; a device another host reserved (either way) fails
// the open with the spec's message.
func TestDriveReservations(t *testing.T) {
	l := newLib(t, LibraryOptions{})
	move(t, l, SlotBase, DriveBase)
	d, sd := drive0(l), l.Drives[0]
	ctx := context.Background()
	const key = 0x7A9E57
	open := func(m tape.Reservations) error {
		return d.Open(ctx, tape.OpenOptions{Mode: tape.ReadWriteMode, Rewind: tape.NoRewind, Reservation: m, ReservationKey: key})
	}
	if err := open(tape.ReservationsSCSI); err != nil {
		t.Fatal(err)
	}
	if holder, _, _ := sd.Reservation(); holder != "host2" {
		t.Fatalf("RESERVE(6) holder %q, want host2 (the primary path's initiator)", holder)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if holder, _, _ := sd.Reservation(); holder != "" {
		t.Fatalf("RESERVE(6) still held by %q after close", holder)
	}
	if err := open(tape.ReservationsPersistent); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, pr, regs := sd.Reservation(); pr != "host2" || len(regs) != 1 {
		t.Fatalf("after close: persistent holder %q, registered %q; want host2 and [host2]", pr, regs)
	}
	if err := d.ReleaseReservation(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, pr, regs := sd.Reservation(); pr != "" || len(regs) != 0 {
		t.Fatalf("after release: persistent holder %q, registered %q", pr, regs)
	}
	sd.PreemptFor("other-host", 0xBAD)
	for _, m := range []tape.Reservations{tape.ReservationsOff, tape.ReservationsSCSI, tape.ReservationsPersistent} {
		if err := open(m); tape.Message(err) != tape.MsgReservationPreempted || !errors.Is(err, tape.ErrReserved) {
			t.Fatalf("open (%s) of a drive another host reserved: %v", m, err)
		}
	}
	if n := len(l.Cartridges[0].Records()); n != 0 {
		t.Fatalf("%d records written", n)
	}
}
