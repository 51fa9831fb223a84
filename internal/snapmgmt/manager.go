// Package snapmgmt serves the snapshot management of NDMP extension class
// 0x2050 (docs/ndmp-extensions.md): create, delete and list the snapshots of
// a volume, browse them page by page with cursors that a change of the
// volume invalidates, and recover files or a whole volume from a snapshot.
//
// It works on volumes already named by SVM and volume; the NDMP server maps
// a DMA's paths onto them (and an SVM's scope onto its own volumes) and
// turns the *Error results into replies.
package snapmgmt

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// Flags of a snapshot in a SNAP_GET_SNAPSHOT_NAMES reply.
const (
	FlagLocked     = 0x1 // a backup or a restartable context holds it
	FlagForBackup  = 0x2 // a backup made it for itself
	DefaultPage    = 1000
	maxPageEntries = 10000
)

// Error is a refused or failed request: Code is the NDMP error the reply
// carries, Msg the sentence for the LOG_MESSAGE and the event log.
type Error struct {
	Code ndmp.Error
	Msg  string
	Err  error
}

// Error returns the sentence.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Code returns the NDMP error for err: its *Error's code, or
// NDMP_SNAP_INTERNAL_ERR when it carries none.
func Code(err error) ndmp.Error {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ndmp.NoErr
	}
	return ndmp.ErrSnapInternal
}

// Manager serves the class's snapshot requests over the storage service.
type Manager struct {
	storage  *storage.Service
	pageSize int
}

// New returns a Manager over st. pageSize bounds a SNAP_DIR_LIST page when
// the DMA asks for none (0: DefaultPage).
func New(st *storage.Service, pageSize int) *Manager {
	if pageSize <= 0 {
		pageSize = DefaultPage
	}
	return &Manager{storage: st, pageSize: pageSize}
}

// Create makes snapshot name of a volume (SNAP_CREATE).
func (m *Manager) Create(ctx context.Context, svm, vol, name string) error {
	if _, err := m.storage.CreateSnapshot(ctx, svm, vol, name); err != nil {
		return classify(err, ndmp.ErrSnapInvalidPath)
	}
	return nil
}

// Delete deletes snapshot name of a volume (SNAP_DELETE).
func (m *Manager) Delete(ctx context.Context, svm, vol, name string) error {
	if _, err := m.storage.GetVolume(ctx, svm, vol); err != nil {
		return classify(err, ndmp.ErrSnapInvalidPath)
	}
	if err := m.storage.DeleteSnapshot(ctx, svm, vol, name); err != nil {
		return classify(err, ndmp.ErrSnapNotFound)
	}
	return nil
}

// Names lists a volume's snapshots, oldest first (SNAP_GET_SNAPSHOT_NAMES).
func (m *Manager) Names(ctx context.Context, svm, vol string) ([]ndmp.SnapInfo, error) {
	snaps, err := m.storage.ListSnapshots(ctx, svm, vol)
	if err != nil {
		return nil, classify(err, ndmp.ErrSnapInvalidPath)
	}
	out := make([]ndmp.SnapInfo, len(snaps))
	for i, p := range snaps {
		out[i] = ndmp.SnapInfo{Snapname: p.Name, CreateTime: uint64(p.CreatedAt.Unix()), Flags: flagsOf(p)}
	}
	return out, nil
}

func flagsOf(p storage.Snapshot) uint32 {
	var f uint32
	if p.Locked() {
		f |= FlagLocked
	}
	if p.CreatedFor != "" {
		f |= FlagForBackup
	}
	return f
}

// classify maps a storage or system error onto the class's errors; a
// missing object is reported as notFound.
func classify(err error, notFound ndmp.Error) *Error {
	code := ndmp.ErrSnapInternal
	switch {
	case errors.Is(err, storage.ErrNotFound):
		code = notFound
	case errors.Is(err, storage.ErrExists):
		code = ndmp.ErrSnapExists
	case errors.Is(err, storage.ErrLocked):
		code = ndmp.ErrSnapBusy
	case errors.Is(err, storage.ErrLimit):
		code = ndmp.ErrSnapNoSpace
	case errors.Is(err, storage.ErrReadOnly):
		code = ndmp.ErrSnapReadOnlyFS
	case errors.Is(err, storage.ErrInvalidArgument):
		code = ndmp.ErrIllegalArgs
	case errors.Is(err, storage.ErrInvalidState):
		code = ndmp.ErrIllegalState
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		code = ndmp.ErrSnapNoDiskSpace
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		code = ndmp.ErrPermission
	case errors.Is(err, syscall.EIO):
		code = ndmp.ErrIo
	}
	return &Error{Code: code, Msg: err.Error(), Err: err}
}

// refuse returns an *Error with a sentence of its own.
func refuse(code ndmp.Error, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}
