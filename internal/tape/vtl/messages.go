package vtl

import "fmt"

// Tape error messages exactly as ONTAP's "Error messages for tape backup
// and restore of FlexVol volumes" list gives them (requirement T10). The
// NDMP layer and the engines reuse these strings; Message extracts the one
// an error carries.
const (
	MsgNoAvailableThread        = "Resource limitation: no available thread"
	MsgReservationPreempted     = "Tape reservation preempted"
	MsgCouldNotInitializeMedia  = "Could not initialize media"
	MsgMediaErrorOnWrite        = "Media error on tape write"
	MsgWriteFailed              = "Tape write failed"
	MsgWriteFailedNewMediaError = "Tape write failed - new tape encountered media error"
	MsgWriteFailedNewBroken     = "Tape write failed - new tape is broken or write protected"
	MsgWriteFailedNewAtEnd      = "Tape write failed - new tape is already at the end of media"
	MsgMediaErrorOnRead         = "Media error on tape read"
	MsgReadError                = "Tape read error"
	MsgAlreadyAtEnd             = "Already at the end of tape"
	MsgRecordSizeTooSmall       = "Tape record size is too small. Try a larger size."
	MsgRecordSizeRange          = "Tape record size must be in the range between 4KB and 256KB"
)

// MsgMinimumCapacity returns the "Tape write error" message for a tape
// that had less than sizeMB megabytes, the minimum a tape operation needs.
func MsgMinimumCapacity(sizeMB int64) string {
	return fmt.Sprintf("Tape write error - The previous tape had less than the required minimum capacity, %d MB, for this tape operation, The operation should be restarted from the beginning", sizeMB)
}

// MsgRecordSizeShould returns the message for a local restore whose
// record size (blocking factor) is wrong: want is the size the tape was
// written with, got the one asked for.
func MsgRecordSizeShould(want, got int) string {
	return fmt.Sprintf("Tape record size should be %d and not %d", want, got)
}

// Record size limits of a backup or restore (4 KB to 256 KB, multiples of
// 4 KB).
const (
	MinRecordSize = 4 << 10
	MaxRecordSize = 256 << 10
)

// CheckRecordSize validates a record size (blocking factor) given for a
// backup or restore, returning an error carrying MsgRecordSizeRange.
func CheckRecordSize(n int) error {
	if n < MinRecordSize || n > MaxRecordSize || n%(4<<10) != 0 {
		return &Error{Err: ErrIllegalArgs, Msg: MsgRecordSizeRange, Op: fmt.Sprintf("record size %d", n)}
	}
	return nil
}

// CheckRestoreRecordSize compares the record size a restore asked for
// (asked) with the size of the records on tape (onTape). A smaller size
// gives MsgRecordSizeTooSmall; for a local restore (local true) any other
// difference gives MsgRecordSizeShould.
func CheckRestoreRecordSize(asked, onTape int, local bool) error {
	switch {
	case asked < onTape:
		return &Error{Err: ErrIllegalArgs, Msg: MsgRecordSizeTooSmall, Op: fmt.Sprintf("record size %d, tape has %d", asked, onTape)}
	case local && asked != onTape:
		return &Error{Err: ErrIllegalArgs, Msg: MsgRecordSizeShould(onTape, asked), Op: "record size"}
	}
	return nil
}
