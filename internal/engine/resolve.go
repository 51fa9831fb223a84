package engine

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// Messages of the volume checks of Resolve, as the specification words
// them (D14).
const (
	MsgReadOnlyVolume = "Destination volume is read-only"
	MsgDumpsDisabled  = "Dumps temporarily disabled on volume, try again"
	MsgTransitional   = "Volume is temporarily in a transitional state"
)

// Access is what a job does with the volume a path names; Resolve checks
// the volume's state and type for it.
type Access int

const (
	// ReadFiles is a file-level backup: it reads the volume, or one of its
	// snapshots, below the path. The volume must be online (RW or DP):
	// a restricted one (a mirror destination being initialised, broken or
	// resynchronised) is refused with MsgDumpsDisabled, any other state
	// with MsgTransitional, and so is a volume whose directory is not on
	// the host (its file system is not mounted).
	ReadFiles Access = iota + 1
	// WriteFiles is a file-level restore: it writes below the path, which
	// must be in a read/write volume and not in a snapshot
	// (MsgReadOnlyVolume), and the volume must be online
	// (MsgTransitional).
	WriteFiles
)

// Resolve maps a backup path /svm/volume[/path] (N15) onto the host, as
// storage.Service.Resolve does, and checks its volume for access. A path
// that does not resolve gives the storage error; a volume that fails the
// check gives an *Error with the specification's message.
func Resolve(ctx context.Context, svc *storage.Service, backupPath string, access Access) (storage.Location, error) {
	loc, err := svc.Resolve(ctx, backupPath)
	if err != nil {
		if access == ReadFiles {
			if gone := volumeDirGone(ctx, svc, backupPath); gone != nil {
				return storage.Location{}, gone
			}
		}
		return storage.Location{}, err
	}
	switch access {
	case ReadFiles:
		err = checkReadable(loc.Volume)
	case WriteFiles:
		err = checkWritable(loc)
	default:
		err = fmt.Errorf("resolve %s: unknown access %d", backupPath, access)
	}
	if err != nil {
		return storage.Location{}, err
	}
	return loc, nil
}

// checkReadable checks the state of a volume a backup reads.
func checkReadable(vol storage.Volume) error {
	switch vol.State {
	case storage.StateOnline:
		return nil
	case storage.StateRestricted:
		return &Error{Msg: MsgDumpsDisabled, Err: fmt.Errorf("volume %s is restricted", vol.Name)}
	}
	return &Error{Msg: MsgTransitional, Err: fmt.Errorf("volume %s is %s", vol.Name, vol.State)}
}

// checkWritable checks the type and state of the volume a restore writes.
func checkWritable(loc storage.Location) error {
	if loc.Snapshot != nil || loc.Volume.ReadOnly() {
		return &Error{Msg: MsgReadOnlyVolume}
	}
	if loc.Volume.State != storage.StateOnline {
		return &Error{Msg: MsgTransitional, Err: fmt.Errorf("volume %s is %s", loc.Volume.Name, loc.Volume.State)}
	}
	return nil
}

// volumeDirGone returns the D14 transitional-state error when the backup
// path names a registered volume whose directory is not on the host (its
// file system is not mounted), else nil.
func volumeDirGone(ctx context.Context, svc *storage.Service, backupPath string) error {
	svm, name, _, err := storage.SplitBackupPath(backupPath)
	if err != nil {
		return nil
	}
	vol, err := svc.GetVolume(ctx, svm, name)
	if err != nil {
		return nil
	}
	st, err := os.Stat(vol.HostPath)
	if err == nil && st.IsDir() {
		return nil
	}
	if err == nil {
		err = errors.New("not a directory")
	}
	return &Error{Msg: MsgTransitional, Err: fmt.Errorf("volume %s: %w", vol.Name, err)}
}
