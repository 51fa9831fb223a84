//go:build linux

package linuxst

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// Persistent reservation type Tapestry takes: Exclusive Access,
// Registrants Only, so that every path of the node (each registered with
// the node's key) may use the drive and no other host may.
const prTypeExclusiveRegistrants = 0x06

// reserve takes the reservation of the tape.reservations method (T6)
// through the drive's sg node: RESERVE(6) for scsi; for persistent,
// REGISTER AND IGNORE EXISTING KEY with the node's key, then RESERVE. A
// device another host holds gives tape.ErrReserved with
// MsgReservationPreempted before anything is written.
func (d *Drive) reserve(o tape.OpenOptions) error {
	switch o.Reservation {
	case tape.ReservationsSCSI:
		return d.reserveCmd("RESERVE(6)", tape.CDB{CDB: []byte{0x16, 0, 0, 0, 0, 0}, Dir: tape.DirNone})
	case tape.ReservationsPersistent:
		if err := d.reserveCmd("PERSISTENT RESERVE OUT (register)", prOut(0x06, 0, 0, o.ReservationKey)); err != nil {
			return err
		}
		return d.reserveCmd("PERSISTENT RESERVE OUT (reserve)", prOut(0x01, prTypeExclusiveRegistrants, o.ReservationKey, 0))
	}
	return nil
}

// prOut builds a PERSISTENT RESERVE OUT command with its 24-byte
// parameter list.
func prOut(action, typ byte, key, saKey uint64) tape.CDB {
	p := make([]byte, 24)
	binary.BigEndian.PutUint64(p[0:], key)
	binary.BigEndian.PutUint64(p[8:], saKey)
	return tape.CDB{CDB: []byte{0x5F, action, typ, 0, 0, 0, 0, 0, 24, 0}, Dir: tape.DirOut, DataOut: p}
}

func (d *Drive) reserveCmd(what string, c tape.CDB) error {
	if d.sg == nil {
		return &tape.Error{Op: "open: " + what, Device: d.path, Err: tape.ErrNotSupported,
			Cause: errors.New("tape reservations need the drive's SCSI generic node")}
	}
	res, err := d.sg.ExecuteCDB(context.Background(), c)
	switch {
	case err != nil:
		return &tape.Error{Op: "open: " + what, Device: d.path, Err: tape.ErrIO, Cause: errors.Join(ErrPathDown, err)}
	case res.Status == tape.StatusReservationConflict:
		return &tape.Error{Op: "open: " + what, Device: d.path, Err: tape.ErrReserved, Msg: tape.MsgReservationPreempted,
			Cause: errors.New("the device is reserved by another initiator")}
	case res.Status != tape.StatusGood:
		return &tape.Error{Op: "open: " + what, Device: d.path, Err: tape.ErrIO,
			Cause: fmt.Errorf("SCSI status %#02x, sense % x", res.Status, res.Sense)}
	}
	return nil
}

// release sends RELEASE(6); a failure leaves the reservation to the next
// reset and is not reported (the close itself succeeded).
func (d *Drive) release() {
	if d.sg != nil {
		_, _ = d.sg.ExecuteCDB(context.Background(), tape.CDB{CDB: []byte{0x17, 0, 0, 0, 0, 0}, Dir: tape.DirNone})
	}
}

// ReleaseReservation implements tape.ReservationReleaser: it releases a
// persistent reservation taken with key and removes the registration.
func (d *Drive) ReleaseReservation(ctx context.Context, key uint64) error {
	if d.sg == nil {
		return nil
	}
	for _, c := range []tape.CDB{prOut(0x02, prTypeExclusiveRegistrants, key, 0), prOut(0x00, 0, key, 0)} {
		res, err := d.sg.ExecuteCDB(ctx, c)
		if err != nil {
			return fmt.Errorf("linuxst: %s: release persistent reservation: %w", d.path, err)
		}
		if res.Status != tape.StatusGood {
			return fmt.Errorf("linuxst: %s: release persistent reservation: SCSI status %#02x", d.path, res.Status)
		}
	}
	return nil
}

var _ tape.ReservationReleaser = (*Drive)(nil)
