package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
)

// LUN flag extended attributes. The trusted namespace (root only) is used
// when it can be written, else the user namespace; either marks a LUN.
const (
	LUNXattrTrusted = "trusted.tapestry.lun"
	LUNXattrUser    = "user.tapestry.lun"
)

// SetLUN flags (on) or unflags the regular file at path as a LUN. It does
// not follow a symbolic link.
func SetLUN(path string, on bool) error {
	st, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("set LUN flag: %w", err)
	}
	if !st.Mode().IsRegular() {
		return errf(ErrInvalidArgument, "%s is not a regular file and cannot be a LUN", path)
	}
	if !on {
		for _, name := range []string{LUNXattrTrusted, LUNXattrUser} {
			if err := unix.Lremovexattr(path, name); err != nil && !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
				return fmt.Errorf("clear LUN flag of %s: %w", path, err)
			}
		}
		return nil
	}
	err = unix.Lsetxattr(path, LUNXattrTrusted, []byte("1"), 0)
	if err == nil {
		return nil
	}
	if err2 := unix.Lsetxattr(path, LUNXattrUser, []byte("1"), 0); err2 != nil {
		return fmt.Errorf("set LUN flag of %s: %v; %w", path, err, err2)
	}
	return nil
}

// IsLUN reports whether the file at path is flagged as a LUN.
func IsLUN(path string) (bool, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return false, fmt.Errorf("LUN flag: %w", err)
	}
	if !st.Mode().IsRegular() {
		return false, nil
	}
	var buf [8]byte
	for _, name := range []string{LUNXattrTrusted, LUNXattrUser} {
		_, err := unix.Lgetxattr(path, name, buf[:])
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.ERANGE) {
			return false, fmt.Errorf("LUN flag of %s: %w", path, err)
		}
		if errors.Is(err, unix.ERANGE) {
			return true, nil
		}
	}
	return false, nil
}

// SetVolumeLUN flags or unflags the file at rel (slash-separated, below
// the volume's root) as a LUN. The volume must be online and RW.
func (s *Service) SetVolumeLUN(ctx context.Context, svm, vol, rel string, on bool) error {
	loc, err := s.Resolve(ctx, "/"+svm+"/"+vol+"/"+rel)
	if err != nil {
		return err
	}
	if loc.Snapshot != nil {
		return errf(ErrReadOnly, "Snapshot copies are read-only")
	}
	if loc.Volume.State != StateOnline {
		return errf(ErrInvalidState, "volume %q in Vserver %q is %s", vol, svm, loc.Volume.State)
	}
	if loc.Volume.ReadOnly() {
		return errf(ErrReadOnly, "volume %q in Vserver %q is read-only (type DP)", vol, svm)
	}
	if loc.RelPath == "" {
		return errf(ErrInvalidArgument, "a LUN must be a file inside the volume")
	}
	return SetLUN(filepath.Clean(loc.HostPath), on)
}

// Space is the capacity of the file system that holds a volume.
type Space struct {
	Total, Free, Avail uint64 // bytes; Avail is what an unprivileged writer may use
	Files, FreeFiles   uint64 // inodes
}

// VolumeSpace reports the space of the file system holding the volume.
func (s *Service) VolumeSpace(ctx context.Context, svm, vol string) (Space, error) {
	v, err := s.GetVolume(ctx, svm, vol)
	if err != nil {
		return Space{}, err
	}
	sp, err := snapshot.Space(v.HostPath)
	if err != nil {
		return Space{}, fmt.Errorf("space of volume %q: %w", vol, err)
	}
	return Space{Total: sp.TotalBytes, Free: sp.FreeBytes, Avail: sp.AvailableBytes, Files: sp.TotalInodes, FreeFiles: sp.FreeInodes}, nil
}
