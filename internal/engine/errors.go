package engine

import "errors"

// Error is an engine error whose Msg is the exact text the ONTAP
// documentation gives; Err, when set, is the underlying cause.
type Error struct {
	Msg string
	Err error
}

// Error returns the message, followed by the cause when there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Message returns the documented message of err when it is (or wraps) an
// *Error, else err's text.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return err.Error()
}
