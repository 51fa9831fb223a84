package tape

import (
	"context"
	"errors"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
)

// OpenMode is how a drive is opened (NDMP's TAPE_OPEN modes).
type OpenMode int

// Open modes, with NDMP's values. They are package vtl's values, which
// VTLDrive passes on unconverted.
const (
	ReadMode      = OpenMode(vtl.ReadMode)      // read only
	ReadWriteMode = OpenMode(vtl.ReadWriteMode) // read and write; a tape must be loaded
	RawMode       = OpenMode(vtl.RawMode)       // read and write; opens with no tape loaded
)

// OpenOptions tell a Drive how to open: the mode and what the device name
// asked for (rewind type and compression type).
type OpenOptions struct {
	Mode        OpenMode
	Rewind      Rewind
	Compression Compression
	// Density is the drive's setting for Compression from its tape
	// configuration file; drives that cannot set densities ignore it.
	Density Density
	// Reservation is the tape.reservations method in force (T6): real
	// drives send RESERVE(6) at open and RELEASE(6) at close with scsi,
	// and register ReservationKey and take a persistent reservation with
	// persistent. The virtual library's drives ignore them (the Registry
	// keeps their reservations).
	Reservation    Reservations
	ReservationKey uint64
}

// ReservationReleaser is implemented by devices that hold a persistent
// reservation (T6) after they are closed; the Registry calls it with the
// node's key (Registry.ReservationKey) when the session that reserved the
// device ends.
type ReservationReleaser interface {
	ReleaseReservation(ctx context.Context, key uint64) error
}

// SpaceOp is a tape movement of Drive.Space.
type SpaceOp int

// Space operations, with NDMP_TAPE_MTIO's values.
const (
	SpaceFSF SpaceOp = 0 // forward over file marks
	SpaceBSF SpaceOp = 1 // backward over file marks
	SpaceFSR SpaceOp = 2 // forward over records
	SpaceBSR SpaceOp = 3 // backward over records
)

// String returns fsf, bsf, fsr or bsr.
func (op SpaceOp) String() string {
	switch op {
	case SpaceFSF:
		return "fsf"
	case SpaceBSF:
		return "bsf"
	case SpaceFSR:
		return "fsr"
	case SpaceBSR:
		return "bsr"
	}
	return "unknown"
}

// Bits of State.Flags (NDMP's tape state flags). They are package vtl's
// bits, as VTLDrive.State copies a vtl.State as it is.
const (
	StateNoRewind = vtl.StateNoRewind
	StateWrProt   = vtl.StateWrProt
	StateError    = vtl.StateError
	StateUnload   = vtl.StateUnload
)

// Bits of State.Unsupported: the fields a drive cannot report.
const (
	StateFileNumUns     = 0x01
	StateSoftErrorsUns  = 0x02
	StateBlockSizeUns   = 0x04
	StateBlockNoUns     = 0x08
	StateTotalSpaceUns  = 0x10
	StateSpaceRemainUns = 0x20
)

// Unknown is the value of a State field that is not known.
const Unknown = vtl.Unknown

// State is what NDMP_TAPE_GET_STATE reports about an open drive.
type State struct {
	Unsupported uint32 // fields not known (NDMP_TAPE_STATE_*_UNS bits)
	Flags       uint32
	FileNum     uint32
	SoftErrors  uint32
	BlockSize   uint32 // 0: variable block size
	BlockNo     uint32
	TotalSpace  uint64
	SpaceRemain uint64
}

// Drive is a tape drive as the NDMP TAPE service and the engines use it:
// an MTIO-like device that reads and writes variable-size records.
//
// Errors wrap the sentinels of this package (ErrEOF, ErrEOM, ...) so that
// errors.Is maps them to NDMP error codes; Message extracts the ONTAP
// message (T10) an error carries, if any. When a method returns an *Error
// directly, the Registry sets its Device to the physical path name the
// drive was reached through.
type Drive interface {
	// Open opens the drive. Without a tape only RawMode succeeds.
	Open(ctx context.Context, o OpenOptions) error
	// Close closes the drive, writing a file mark after written records
	// and rewinding or unloading as the rewind type asks.
	Close() error
	// Read reads one record into p. A longer record is cut to len(p).
	Read(p []byte) (int, error)
	// Write writes p as one record.
	Write(p []byte) (int, error)
	// WriteFilemarks writes n file marks and returns how many were not
	// written.
	WriteFilemarks(n uint32) (resid uint32, err error)
	// Space moves the tape and returns the count not done.
	Space(op SpaceOp, count uint32) (resid uint32, err error)
	// Rewind rewinds the tape to the beginning.
	Rewind() error
	// Unload rewinds and unloads (ejects) the tape.
	Unload() error
	// State reports position and status.
	State() (State, error)
	// ExecuteCDB passes a SCSI command to the drive (TAPE_EXECUTE_CDB).
	ExecuteCDB(ctx context.Context, req CDB) (CDBResult, error)
}

// Resetter is implemented by devices that can be reset
// (storage tape reset).
type Resetter interface {
	Reset(ctx context.Context) error
}

// Releaser is implemented by devices that hold resources (open device
// nodes) after their last use; the Registry calls Release when it removes
// their path.
type Releaser interface {
	Release() error
}

// Direction is the data direction of a SCSI command.
type Direction uint32

// Data directions, with NDMP's EXECUTE_CDB flag values (package vtl's,
// which the VTL adapters pass on unconverted).
const (
	DirNone = Direction(vtl.DirNone)
	DirIn   = Direction(vtl.DirIn)  // from the device
	DirOut  = Direction(vtl.DirOut) // to the device
)

// CDB is a SCSI command to execute.
type CDB struct {
	CDB       []byte
	Dir       Direction
	DataOut   []byte        // the data sent with DirOut
	DataInLen int           // the most bytes accepted with DirIn
	Timeout   time.Duration // 0: the device's default
}

// CDBResult is the outcome of a SCSI command. Sense holds the sense data
// returned with CHECK CONDITION.
type CDBResult struct {
	Status uint8
	DataIn []byte
	Sense  []byte
}

// SCSI status codes.
const (
	StatusGood                = vtl.StatusGood
	StatusCheckCondition      = vtl.StatusCheckCondition
	StatusReservationConflict = 0x18
)

// Changer is a SCSI medium changer: it only executes commands
// (SCSI_EXECUTE_CDB). The error is for transport failures; a command the
// device refuses returns a CDBResult with CHECK CONDITION and sense data.
type Changer interface {
	ExecuteCDB(ctx context.Context, req CDB) (CDBResult, error)
}

// Errors of drives and of the Registry. Each matches an NDMP error code.
var (
	ErrNotOpen      = errors.New("tape: device not open")          // NDMP_DEV_NOT_OPEN_ERR
	ErrBusy         = errors.New("tape: device busy")              // NDMP_DEVICE_BUSY_ERR
	ErrNoTape       = errors.New("tape: no tape loaded")           // NDMP_NO_TAPE_LOADED_ERR
	ErrWriteProtect = errors.New("tape: tape write protected")     // NDMP_WRITE_PROTECT_ERR
	ErrPermission   = errors.New("tape: device opened read only")  // NDMP_PERMISSION_ERR
	ErrEOF          = errors.New("tape: file mark")                // NDMP_EOF_ERR
	ErrEOM          = errors.New("tape: end of medium")            // NDMP_EOM_ERR
	ErrIO           = errors.New("tape: I/O error")                // NDMP_IO_ERR
	ErrIllegalArgs  = errors.New("tape: illegal argument")         // NDMP_ILLEGAL_ARGS_ERR
	ErrNotSupported = errors.New("tape: operation not supported")  // NDMP_NOT_SUPPORTED_ERR
	ErrReserved     = errors.New("tape: device reserved")          // NDMP_DEVICE_BUSY_ERR
	ErrNoDevice     = errors.New("tape: no such device")           // NDMP_NO_DEVICE_ERR
	ErrOffline      = errors.New("tape: device offline")           // NDMP_NO_DEVICE_ERR
	ErrNotQualified = errors.New("tape: tape drive not qualified") // NDMP_NO_DEVICE_ERR
	ErrLimit        = errors.New("tape: device limit reached")
	// ErrPathDown is the cause of an error on a path that no longer
	// reaches its device (the transport failed, T7), as opposed to an
	// error the device reported. The Registry moves an open drive with
	// another path to it (Failover).
	ErrPathDown = errors.New("tape: the path to the device failed")
)

// Failover is implemented by drives whose open session can move to
// another path of the same drive (T7) at a safe point between records:
// the Registry asks the failed path where the head was before the
// operation that failed (TrackedPosition), opens the other path with the
// same options, asks it where the head is now (ReadPosition: the drive
// answers for itself) and so knows whether the operation was done.
type Failover interface {
	// TrackedPosition is the logical position (records and file marks
	// from BOT) before the last operation, and whether it is known.
	TrackedPosition() (int64, bool)
	// ReadPosition asks the drive for its logical position.
	ReadPosition() (int64, error)
	// Abandon closes the path without any tape I/O.
	Abandon() error
}

// Tape error messages, exactly as ONTAP lists them (T10). Message returns
// the one an error carries.
const (
	MsgNoAvailableThread        = vtl.MsgNoAvailableThread
	MsgReservationPreempted     = vtl.MsgReservationPreempted
	MsgCouldNotInitializeMedia  = vtl.MsgCouldNotInitializeMedia
	MsgMediaErrorOnWrite        = vtl.MsgMediaErrorOnWrite
	MsgWriteFailed              = vtl.MsgWriteFailed
	MsgWriteFailedNewMediaError = vtl.MsgWriteFailedNewMediaError
	MsgWriteFailedNewBroken     = vtl.MsgWriteFailedNewBroken
	MsgWriteFailedNewAtEnd      = vtl.MsgWriteFailedNewAtEnd
	MsgMediaErrorOnRead         = vtl.MsgMediaErrorOnRead
	MsgReadError                = vtl.MsgReadError
	MsgAlreadyAtEnd             = vtl.MsgAlreadyAtEnd
	MsgRecordSizeTooSmall       = vtl.MsgRecordSizeTooSmall
	MsgRecordSizeRange          = vtl.MsgRecordSizeRange
	// MsgInUse is SMTape's message for a drive another job is using.
	MsgInUse = "Tape is currently in use by other operations"
)

// Error is a tape error: a sentinel of this package for errors.Is, the
// ONTAP message when there is one, and the device's own error.
type Error struct {
	Op     string // what was being done
	Device string // the device (alias, device name or path)
	Err    error  // one of the sentinels above
	Msg    string // ONTAP message, may be empty
	Cause  error  // the underlying error, may be nil
}

// Error returns "tape: <device>: <op>: <message or sentinel>: <cause>".
func (e *Error) Error() string {
	s := "tape: "
	if e.Device != "" {
		s += e.Device + ": "
	}
	s += e.Op + ": "
	if e.Msg != "" {
		s += e.Msg
	} else {
		s += trimPrefix(e.Err.Error())
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func trimPrefix(s string) string {
	const p = "tape: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// Unwrap returns the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// Message returns the ONTAP message an error carries (T10), or "".
func Message(err error) string {
	switch e := err.(type) {
	case nil:
		return ""
	case *Error:
		if e.Msg != "" {
			return e.Msg
		}
	case *vtl.Error:
		if e.Msg != "" {
			return e.Msg
		}
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return Message(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if m := Message(e); m != "" {
				return m
			}
		}
	}
	return ""
}
