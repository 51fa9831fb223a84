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
// keep dump inode numbers stable across backup levels. The files of a
// reflink or copy snapshot are new files with new change times, so those
// providers also record each live file's change time as it was when copied;
// their identity maps implement LiveCtimer, which incremental backups use
// in place of the snapshot file's own ctime.
//
// The reflink and copy providers keep every file's type, permission bits
// (set-user-ID, set-group-ID and sticky included), owner, access and
// modification times to the nanosecond and extended attributes (user,
// trusted, security and the POSIX ACLs), keep hard links as hard links and
// holes as holes, and leave out sockets and whatever lies on another file
// system below the volume (a mount point, a nested btrfs subvolume), which
// appears as an empty directory. A btrfs snapshot holds what btrfs keeps:
// everything, sockets included, except nested subvolumes (empty
// directories).
//
// A snapshot is built under a temporary name in .snapshot and renamed into
// place when complete; an error or a cancelled context removes what was
// built.
//
// Walk is how everyone walks a volume (it leaves .snapshot out); Space
// reports a file system's free space and inodes.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

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

// maxName is the longest snapshot name: the identity map file
// ".<name>.idmap" must fit in a file name of 255 bytes.
const maxName = 240

// ErrNotFound is returned (wrapped) by Delete and Identity when the named
// snapshot does not exist.
var ErrNotFound = errors.New("snapshot does not exist")

// ErrExists is returned (wrapped) by Create when a snapshot of that name
// already exists.
var ErrExists = errors.New("snapshot already exists")

// ByName returns the provider called name: "btrfs", "reflink" or "copy".
// "auto" returns a provider that picks, for each volume, what Auto would
// pick.
func ByName(name string) (Provider, error) {
	switch name {
	case "btrfs":
		return Btrfs{}, nil
	case "reflink":
		return Reflink{}, nil
	case "copy":
		return Copy{}, nil
	case "auto":
		return autoProvider{}, nil
	}
	return nil, fmt.Errorf("snapshot: unknown provider %q (want auto, btrfs, reflink or copy)", name)
}

// Auto picks the provider for the volume rooted at volumePath: btrfs when
// the volume is a btrfs subvolume root, else reflink when the file system
// can clone files (probed with a temporary file in the volume's .snapshot
// directory), else copy.
func Auto(volumePath string) (Provider, error) {
	if err := (Copy{}).Supported(volumePath); err != nil {
		return nil, err
	}
	if (Btrfs{}).Supported(volumePath) == nil {
		return Btrfs{}, nil
	}
	if (Reflink{}).Supported(volumePath) == nil {
		return Reflink{}, nil
	}
	return Copy{}, nil
}

// autoProvider resolves Auto on every call, so one value serves volumes on
// different file systems.
type autoProvider struct{}

func (autoProvider) Name() string { return "auto" }

func (autoProvider) Supported(volumePath string) error {
	_, err := Auto(volumePath)
	return err
}

func (autoProvider) Create(ctx context.Context, volumePath, name string) (*Info, error) {
	p, err := Auto(volumePath)
	if err != nil {
		return nil, err
	}
	return p.Create(ctx, volumePath, name)
}

// Delete and Identity look at what is on disk rather than at what Auto would
// pick today: a btrfs subvolume snapshot is a btrfs one, anything else a
// tree made by reflink or copy (both handled the same way).
func (autoProvider) Delete(ctx context.Context, volumePath, name string) error {
	return providerOf(volumePath, name).Delete(ctx, volumePath, name)
}

func (autoProvider) Identity(volumePath, name string) (IdentityMap, error) {
	return providerOf(volumePath, name).Identity(volumePath, name)
}

// providerOf tells which provider made an existing snapshot.
func providerOf(volumePath, name string) Provider {
	if isSubvolume(filepath.Join(volumePath, Dir, name)) {
		return Btrfs{}
	}
	return Copy{}
}

// List returns the names of the snapshots of the volume rooted at
// volumePath, sorted. A volume without a .snapshot directory has none.
func List(volumePath string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(volumePath, Dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: list: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && checkName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// checkName rejects names that cannot be a snapshot: empty, too long,
// holding a slash or a NUL, or starting with a dot (names that start with a
// dot are the providers' own working files).
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("snapshot: empty snapshot name")
	case len(name) > maxName:
		return fmt.Errorf("snapshot: snapshot name of %d bytes is longer than %d", len(name), maxName)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("snapshot: snapshot name %q holds a slash or NUL", name)
	case name[0] == '.':
		return fmt.Errorf("snapshot: snapshot name %q starts with a dot", name)
	}
	return nil
}
