package storage

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the Service returns for a refused request
// wraps exactly one of them (test with errors.Is) and reads like the
// message ONTAP prints after "Error: command failed: ".
var (
	// ErrNotFound: the cluster, node, SVM, LIF, volume, qtree, snapshot or
	// path does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: an object of that name (or that address, path or junction)
	// already exists.
	ErrExists = errors.New("already exists")
	// ErrInvalidArgument: a name, path, address or value is malformed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInvalidState: the object is not in a state that allows the
	// request (for example deleting an online volume).
	ErrInvalidState = errors.New("invalid state")
	// ErrInUse: the object is still referenced (an SVM that owns volumes,
	// a non-empty qtree, ...).
	ErrInUse = errors.New("in use")
	// ErrLocked: the snapshot is locked by an owner.
	ErrLocked = errors.New("locked")
	// ErrLimit: a limit (such as the maximum number of snapshots of a
	// volume) would be exceeded.
	ErrLimit = errors.New("limit exceeded")
	// ErrReadOnly: the volume is of type DP and cannot be written.
	ErrReadOnly = errors.New("read-only")
	// ErrDisallowed: the protocol is on the SVM's disallowed list.
	ErrDisallowed = errors.New("protocol disallowed")
	// ErrNotInitialized: Init has not run on this catalog.
	ErrNotInitialized = errors.New("cluster not initialized")
)

// Error is a refused request: Kind is one of the sentinel errors above and
// Msg the message shown to the administrator.
type Error struct {
	Kind error
	Msg  string
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel kind.
func (e *Error) Unwrap() error { return e.Kind }

func errf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

func svmNotFound(name string) error {
	return errf(ErrNotFound, "Vserver %q does not exist", name)
}

func volNotFound(svm, vol string) error {
	return errf(ErrNotFound, "volume %q in Vserver %q does not exist", vol, svm)
}

// Message returns the administrator-facing message of err: the Msg of the
// first *Error in its chain (without the context that wrapping added), or
// err.Error() when there is none. The command line prints it after
// "Error: command failed: ".
func Message(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return err.Error()
}
