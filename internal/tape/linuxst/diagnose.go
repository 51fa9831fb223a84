//go:build linux

package linuxst

import (
	"context"
	"errors"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// TapeAlert flags (SSC-3, LOG SENSE page 2Eh) that choose a message.
const (
	alertHardError    = 3
	alertMedia        = 4
	alertReadFailure  = 5
	alertWriteFailure = 6
	alertWriteProtect = 9
)

// ErrPathDown is the cause of an error on a path that no longer reaches
// its device (the SCSI transport failed), as opposed to an error the
// device reported (tape.ErrPathDown).
var ErrPathDown = tape.ErrPathDown

// diagnosis is what the drive says, through its sg node, about an
// operation that failed with EIO or EBUSY. The st driver consumes the
// sense data of the failed command, so Tapestry asks what survives it:
// TEST UNIT READY tells a reservation conflict and a dead path apart, and
// the TapeAlert log page says whether the medium or the drive failed.
type diagnosis struct {
	conflict bool   // TEST UNIT READY answered RESERVATION CONFLICT
	pathDown bool   // the command did not reach the device
	alerts   uint64 // TapeAlert flags, bit n-1 for flag n
}

func (g diagnosis) alert(flag int) bool { return g.alerts&(1<<(flag-1)) != 0 }

// diagnose asks the drive's sg node; without one it knows nothing.
func (d *Drive) diagnose() diagnosis {
	var g diagnosis
	if d.sg == nil {
		return g
	}
	ctx := context.Background()
	res, err := d.sg.ExecuteCDB(ctx, tape.CDB{CDB: []byte{0x00, 0, 0, 0, 0, 0}, Dir: tape.DirNone})
	switch {
	case err != nil:
		g.pathDown = true
		return g
	case res.Status == tape.StatusReservationConflict:
		g.conflict = true
		return g
	}
	const alloc = 4 + 64*5
	res, err = d.sg.ExecuteCDB(ctx, tape.CDB{CDB: []byte{0x4D, 0, 0x40 | 0x2E, 0, 0, 0, 0, alloc >> 8, alloc & 0xFF, 0},
		Dir: tape.DirIn, DataInLen: alloc})
	if err != nil || res.Status != tape.StatusGood {
		return g
	}
	g.alerts = parseTapeAlert(res.DataIn)
	return g
}

// parseTapeAlert reads the flags of a TapeAlert log page: parameters of
// a 2-byte code, a control byte, a length and a value whose bit 0 is the
// flag.
func parseTapeAlert(b []byte) uint64 {
	if len(b) < 4 || b[0]&0x3F != 0x2E {
		return 0
	}
	end := min(len(b), 4+int(b[2])<<8|int(b[3]))
	var flags uint64
	for i := 4; i+4 <= end; {
		code := int(b[i])<<8 | int(b[i+1])
		n := int(b[i+3])
		if i+4+n > end {
			break
		}
		if n > 0 && code >= 1 && code <= 64 && b[i+4]&1 == 1 {
			flags |= 1 << (code - 1)
		}
		i += 4 + n
	}
	return flags
}

// writeMessage is the ONTAP message of a failed write (T10); atBOT tells
// that the write was the first on the cartridge (a "new tape").
func writeMessage(g diagnosis, atBOT bool) string {
	switch {
	case g.alert(alertWriteProtect) && atBOT:
		return tape.MsgWriteFailedNewBroken
	case g.alert(alertMedia) && atBOT:
		return tape.MsgWriteFailedNewMediaError
	case g.alert(alertMedia):
		return tape.MsgMediaErrorOnWrite
	case g.alert(alertHardError), g.alert(alertWriteFailure), g.alert(alertWriteProtect):
		return tape.MsgWriteFailed
	}
	return tape.MsgMediaErrorOnWrite
}

// readMessage is the ONTAP message of a failed read (T10).
func readMessage(g diagnosis) string {
	if g.alert(alertMedia) {
		return tape.MsgMediaErrorOnRead
	}
	return tape.MsgReadError
}

// failure builds the error of an operation that failed with errno err
// after the drive was asked why: a reservation conflict is
// tape.ErrReserved with MsgReservationPreempted, a dead path tape.ErrIO
// with ErrPathDown, anything else sentinel with msg(g).
func (d *Drive) failure(op string, sentinel, err error, msg func(diagnosis) string) error {
	g := d.diagnose()
	switch {
	case g.conflict:
		return &tape.Error{Op: op, Device: d.path, Err: tape.ErrReserved, Msg: tape.MsgReservationPreempted, Cause: err}
	case g.pathDown:
		return &tape.Error{Op: op, Device: d.path, Err: tape.ErrIO, Cause: errors.Join(ErrPathDown, err)}
	}
	m := ""
	if msg != nil {
		m = msg(g)
	}
	return &tape.Error{Op: op, Device: d.path, Err: sentinel, Msg: m, Cause: err}
}

// atBOT tells whether the head is at the beginning of the tape.
func (d *Drive) atBOT() bool {
	g, err := d.mtget()
	return err == nil && uint32(g.Gstat)&GmtBOT != 0
}
