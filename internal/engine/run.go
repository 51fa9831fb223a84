package engine

import (
	"fmt"
	"runtime/debug"
)

// PanicError is a panic recovered by Run or Go: the work it ended failed
// with an internal error instead of taking the daemon down (issue 12 item
// 2).
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the goroutine's stack where it panicked.
	Stack []byte
}

// Error returns the message and the panic value.
func (e *PanicError) Error() string { return fmt.Sprintf("%s: %v", e.Message(), e.Value) }

// Message is the LOG_MESSAGE text of a panic.
func (e *PanicError) Message() string {
	return "Internal error: the operation stopped on a software fault"
}

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Run calls f and returns its error, or a *PanicError when f panics. Every
// call of an engine and every goroutine of an operation goes through Run
// (or Go), so that a fault in an engine, a format package or the mover
// halts one operation and leaves the daemon serving.
func Run(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}

// Go runs f in a new goroutine through Run and calls done with its result
// (a *PanicError when f panicked) in that goroutine.
func Go(f func() error, done func(error)) {
	go func() { done(Run(f)) }()
}
