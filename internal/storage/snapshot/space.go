package snapshot

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SpaceInfo is what a file system has in space and inodes.
type SpaceInfo struct {
	// TotalBytes is the size of the file system's data area.
	TotalBytes uint64
	// FreeBytes is what is free, including what only root may use.
	FreeBytes uint64
	// AvailableBytes is what an unprivileged user may still use.
	AvailableBytes uint64
	// TotalInodes and FreeInodes count inodes (file slots); some file
	// systems (btrfs) report 0 as they have no fixed number.
	TotalInodes, FreeInodes uint64
}

// Space reports the space of the file system that holds path, from
// statfs(2).
func Space(path string) (SpaceInfo, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return SpaceInfo{}, fmt.Errorf("snapshot: statfs %s: %w", path, err)
	}
	bs := uint64(s.Frsize)
	if bs == 0 {
		bs = uint64(s.Bsize)
	}
	return SpaceInfo{
		TotalBytes:     s.Blocks * bs,
		FreeBytes:      s.Bfree * bs,
		AvailableBytes: s.Bavail * bs,
		TotalInodes:    s.Files,
		FreeInodes:     s.Ffree,
	}, nil
}
