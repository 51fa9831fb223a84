package smtape

import "errors"

// Error is a failure with one of the messages of the spec's SMTape error
// list. Message is that sentence exactly, as a DMA or the event log shows
// it; Detail says what the reader found.
type Error struct {
	Message string
	Detail  string
}

// Error returns the message, and the detail in parentheses when there is one.
func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Message
	}
	return e.Message + " (" + e.Detail + ")"
}

// Is reports whether target is an *Error with the same message, so that
// errors.Is(err, ErrChunksOutOfOrder) holds whatever the detail.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == e.Message
}

// The spec's SMTape messages that reading or writing an image can produce.
var (
	ErrChunksOutOfOrder  = &Error{Message: "Chunks out of order"}
	ErrChunkFormat       = &Error{Message: "Chunk format not supported"}
	ErrHeader            = &Error{Message: "Image header missing or corrupted"}
	ErrMagic             = &Error{Message: "Invalid backup image magic number"}
	ErrChecksum          = &Error{Message: "Invalid backup image checksum"}
	ErrReadImage         = &Error{Message: "Failed to read backup image"}
	ErrSetIDMismatch     = &Error{Message: "Mismatch in backup set ID"}
	ErrTimeStampMismatch = &Error{Message: "Mismatch in backup time stamp"}
	ErrTapesOutOfOrder   = &Error{Message: "Tapes out of order"}
	ErrInternal          = &Error{Message: "Internal assertion"}
)

// fail returns a copy of e with a detail.
func fail(e *Error, detail string) *Error {
	return &Error{Message: e.Message, Detail: detail}
}

// Message returns the spec's sentence for err: the Message of the *Error it
// wraps, or "" when it wraps none.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return ""
}
