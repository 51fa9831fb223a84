// Package snapshot makes read-only point-in-time copies of a volume's
// directory tree. Three providers exist: btrfs (a read-only subvolume
// snapshot; the volume must be a subvolume), reflink (a clone tree made with
// FICLONE on XFS or btrfs) and copy (a full copy, any file system). Auto
// picks the best one the volume's file system supports.
//
// Snapshots of a volume live in the volume's ".snapshot" directory, which is
// never part of a walk of the volume (see Walk) nor of another snapshot.
//
// For every file in a snapshot a provider can tell the identity (inode
// number) of the same file in the live volume: the dump engine uses it to
// keep dump inode numbers stable across backup levels.
package snapshot

import "context"

// Dir is the name of the directory, at a volume's root, that holds its
// snapshots.
const Dir = ".snapshot"

// Provider makes and removes snapshots.
type Provider interface {
	// Name is "btrfs", "reflink" or "copy".
	Name() string
	// Supported reports, with a reason when it is not, whether the provider
	// can snapshot the volume rooted at volumePath.
	Supported(volumePath string) error
	// Create makes a read-only point-in-time copy of the tree at volumePath
	// (without its .snapshot directory) at volumePath/.snapshot/name. Writes
	// to the volume after Create returns never change the snapshot.
	Create(ctx context.Context, volumePath, name string) (*Info, error)
	// Delete removes the snapshot volumePath/.snapshot/name and anything the
	// provider recorded for it.
	Delete(ctx context.Context, volumePath, name string) error
	// Identity returns the live-identity map of an existing snapshot.
	Identity(volumePath, name string) (IdentityMap, error)
}

// Info describes a snapshot that was made.
type Info struct {
	// Name of the snapshot.
	Name string
	// Path is the snapshot's root on the host.
	Path string
	// Provider that made it.
	Provider string
	// Files and Bytes count what the snapshot holds (0 when the provider
	// does not count, as btrfs does not).
	Files, Bytes int64
}

// IdentityMap tells, for an inode number in a snapshot, the inode number of
// the same file in the live volume.
type IdentityMap interface {
	// Live returns the live inode number of the file whose inode number in
	// the snapshot is snapIno, and false when the snapshot does not know it.
	Live(snapIno uint64) (uint64, bool)
}
