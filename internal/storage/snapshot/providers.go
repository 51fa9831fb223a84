package snapshot

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Reflink is the provider that builds a snapshot as a tree of clones: every
// regular file is cloned with FICLONE (its extents are shared until either
// side is written), every other file is made anew, and all metadata is
// copied. It needs a file system that can clone files, such as XFS with
// reflink=1 or btrfs. The identity map is stored beside the snapshot in
// .snapshot/.<name>.idmap.
type Reflink struct{}

// Name returns "reflink".
func (Reflink) Name() string { return "reflink" }

// Supported reports whether FICLONE works on the volume's file system. It
// probes with two temporary files in the volume's .snapshot directory,
// which it makes when missing.
func (Reflink) Supported(volumePath string) error {
	if err := (Copy{}).Supported(volumePath); err != nil {
		return err
	}
	sdir, err := snapshotDir(volumePath)
	if err != nil {
		return err
	}
	src, err := os.CreateTemp(sdir, ".tapestry-probe-*")
	if err != nil {
		return fmt.Errorf("snapshot: reflink: probe: %w", err)
	}
	defer os.Remove(src.Name())
	defer src.Close()
	dst, err := os.CreateTemp(sdir, ".tapestry-probe-*")
	if err != nil {
		return fmt.Errorf("snapshot: reflink: probe: %w", err)
	}
	defer os.Remove(dst.Name())
	defer dst.Close()
	if _, err := src.Write(make([]byte, 4096)); err != nil {
		return fmt.Errorf("snapshot: reflink: probe: %w", err)
	}
	if err := unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())); err != nil {
		return fmt.Errorf("snapshot: reflink: the file system of %s cannot clone files (FICLONE: %w)", volumePath, err)
	}
	return nil
}

// Create clones the volume's tree into .snapshot/name.
func (Reflink) Create(ctx context.Context, volumePath, name string) (*Info, error) {
	if err := (Reflink{}).Supported(volumePath); err != nil {
		return nil, err
	}
	return createTree(ctx, "reflink", dataClone, volumePath, name)
}

// Delete removes the snapshot tree and its identity map.
func (Reflink) Delete(ctx context.Context, volumePath, name string) error {
	return deleteTree(ctx, "reflink", volumePath, name)
}

// Identity loads the snapshot's identity map.
func (Reflink) Identity(volumePath, name string) (IdentityMap, error) {
	return identityTree("reflink", volumePath, name)
}

// Copy is the provider that builds a snapshot as a full copy of the
// volume's tree, on any file system: data is read and written (holes are
// kept with SEEK_DATA and SEEK_HOLE) and all metadata is copied. It takes
// as much space and time as the data. The identity map is stored beside the
// snapshot in .snapshot/.<name>.idmap.
type Copy struct{}

// Name returns "copy".
func (Copy) Name() string { return "copy" }

// Supported reports whether volumePath is a directory.
func (Copy) Supported(volumePath string) error {
	st, err := os.Stat(volumePath)
	if err != nil {
		return fmt.Errorf("snapshot: volume: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("snapshot: volume %s is not a directory", volumePath)
	}
	return nil
}

// Create copies the volume's tree into .snapshot/name.
func (Copy) Create(ctx context.Context, volumePath, name string) (*Info, error) {
	return createTree(ctx, "copy", dataCopy, volumePath, name)
}

// Delete removes the snapshot tree and its identity map.
func (Copy) Delete(ctx context.Context, volumePath, name string) error {
	return deleteTree(ctx, "copy", volumePath, name)
}

// Identity loads the snapshot's identity map.
func (Copy) Identity(volumePath, name string) (IdentityMap, error) {
	return identityTree("copy", volumePath, name)
}
