package vtl

import (
	"errors"
	"strings"
)

// Errors of drives and the library. Each drive error matches one NDMP
// error code, named in its comment, so the NDMP layer maps them with
// errors.Is.
var (
	ErrNotOpen      = errors.New("vtl: drive not open")               // NDMP_DEV_NOT_OPEN_ERR
	ErrBusy         = errors.New("vtl: device busy")                  // NDMP_DEVICE_BUSY_ERR
	ErrNoTape       = errors.New("vtl: no tape loaded")               // NDMP_NO_TAPE_LOADED_ERR
	ErrWriteProtect = errors.New("vtl: tape write protected")         // NDMP_WRITE_PROTECT_ERR
	ErrPermission   = errors.New("vtl: drive opened for reading")     // NDMP_PERMISSION_ERR
	ErrEOF          = errors.New("vtl: file mark")                    // NDMP_EOF_ERR
	ErrEOM          = errors.New("vtl: end of medium")                // NDMP_EOM_ERR
	ErrIO           = errors.New("vtl: I/O error")                    // NDMP_IO_ERR
	ErrIllegalArgs  = errors.New("vtl: illegal argument")             // NDMP_ILLEGAL_ARGS_ERR
	ErrNotSupported = errors.New("vtl: operation not supported")      // NDMP_NOT_SUPPORTED_ERR
	ErrPreempted    = errors.New("vtl: reservation preempted")        // NDMP_IO_ERR
	ErrNoCartridge  = errors.New("vtl: no such cartridge")            // library operations
	ErrExists       = errors.New("vtl: cartridge already exists")     // library operations
	ErrBadBarcode   = errors.New("vtl: invalid barcode")              // library operations
	ErrBadElement   = errors.New("vtl: invalid element address")      // SCSI 5/21/01
	ErrSourceEmpty  = errors.New("vtl: source element empty")         // SCSI 5/3B/0E
	ErrDestFull     = errors.New("vtl: destination element full")     // SCSI 5/3B/0D
	ErrPrevented    = errors.New("vtl: medium removal prevented")     // SCSI 5/53/02
	ErrNoSpace      = errors.New("vtl: no free slot")                 // library operations
	ErrInDrive      = errors.New("vtl: cartridge is loaded in drive") // library operations
)

// Error is a drive or library error. Err is one of the sentinel errors
// above; Msg, when set, is the exact ONTAP message (T10) to show.
type Error struct {
	Op    string // what was being done
	Err   error  // sentinel, for errors.Is
	Msg   string // ONTAP message, may be empty
	Cause error  // underlying error, may be nil
}

// Error formats the sentinel, the operation, the ONTAP message and the cause.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	if e.Op != "" {
		b.WriteString(" (" + e.Op + ")")
	}
	if e.Msg != "" {
		b.WriteString(": " + e.Msg)
	}
	if e.Cause != nil {
		b.WriteString(": " + e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// Message returns the ONTAP message an error carries, or "" if none.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return ""
}

func newErr(op string, sentinel error, msg string, cause error) error {
	return &Error{Op: op, Err: sentinel, Msg: msg, Cause: cause}
}
