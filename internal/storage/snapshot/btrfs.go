package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// btrfs ioctl numbers and structures, from linux/btrfs.h.
const (
	btrfsIocSnapCreateV2  = 0x50009417 // _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)
	btrfsIocSnapDestroy   = 0x5000940f // _IOW(0x94, 15, struct btrfs_ioctl_vol_args)
	btrfsIocSubvolGetflag = 0x80089419 // _IOR(0x94, 25, __u64)
	btrfsIocSubvolSetflag = 0x4008941a // _IOW(0x94, 26, __u64)
	btrfsSubvolRdonly     = 1 << 1
	btrfsFirstFreeObjID   = 256 // inode number of every subvolume's root
	btrfsPathNameMax      = 4087
	btrfsSubvolNameMax    = 4039
)

// btrfsVolArgs is struct btrfs_ioctl_vol_args (4096 bytes).
type btrfsVolArgs struct {
	fd   int64
	name [btrfsPathNameMax + 1]byte
}

// btrfsVolArgsV2 is struct btrfs_ioctl_vol_args_v2 (4096 bytes).
type btrfsVolArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	unused  [4]uint64
	name    [btrfsSubvolNameMax + 1]byte
}

// Btrfs is the provider that takes read-only btrfs subvolume snapshots. The
// volume must be the root of a btrfs subvolume (the top-level subvolume,
// that is the mount point, counts). A snapshot shares every inode number
// with the live volume, so its identity map is the identity.
type Btrfs struct{}

// Name returns "btrfs".
func (Btrfs) Name() string { return "btrfs" }

// Supported reports whether volumePath is the root of a btrfs subvolume.
func (Btrfs) Supported(volumePath string) error {
	var sfs unix.Statfs_t
	if err := unix.Statfs(volumePath, &sfs); err != nil {
		return fmt.Errorf("snapshot: btrfs: statfs %s: %w", volumePath, err)
	}
	if sfs.Type != unix.BTRFS_SUPER_MAGIC {
		return fmt.Errorf("snapshot: btrfs: %s is not on a btrfs file system", volumePath)
	}
	if !isSubvolume(volumePath) {
		return fmt.Errorf("snapshot: btrfs: %s is a plain directory, not the root of a btrfs subvolume (make the volume with \"btrfs subvolume create\")", volumePath)
	}
	return nil
}

// isSubvolume reports whether path is the root directory of a btrfs
// subvolume.
func isSubvolume(path string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return false
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Ino != btrfsFirstFreeObjID {
		return false
	}
	var sfs unix.Statfs_t
	return unix.Statfs(path, &sfs) == nil && sfs.Type == unix.BTRFS_SUPER_MAGIC
}

// Create takes a writable snapshot of the subvolume under a temporary name,
// removes the .snapshot directory from it (a snapshot holds nested
// subvolumes as empty directories), makes it read-only and renames it into
// place.
func (b Btrfs) Create(ctx context.Context, volumePath, name string) (*Info, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := b.Supported(volumePath); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: btrfs: create %s: %w", name, err)
	}
	sdir, err := snapshotDir(volumePath)
	if err != nil {
		return nil, err
	}
	final := filepath.Join(sdir, name)
	if _, err := os.Lstat(final); err == nil {
		return nil, fmt.Errorf("snapshot: btrfs: create %s in %s: %w", name, volumePath, ErrExists)
	}
	tmpName := tempName("create")
	tmp := filepath.Join(sdir, tmpName)

	src, err := unix.Open(volumePath, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("snapshot: btrfs: open %s: %w", volumePath, err)
	}
	defer unix.Close(src)
	dst, err := unix.Open(sdir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("snapshot: btrfs: open %s: %w", sdir, err)
	}
	defer unix.Close(dst)

	args := &btrfsVolArgsV2{fd: int64(src)}
	copy(args.name[:], tmpName)
	if err := ioctlPtr(dst, btrfsIocSnapCreateV2, unsafe.Pointer(args)); err != nil {
		return nil, fmt.Errorf("snapshot: btrfs: snapshot %s: %w", volumePath, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = destroySubvolume(dst, tmpName)
		}
	}()
	// The .snapshot directory came along (with a placeholder for every
	// older snapshot); a snapshot never holds it. Removing it must not
	// move the root's times.
	var rootSt unix.Stat_t
	if err := unix.Lstat(tmp, &rootSt); err != nil {
		return nil, fmt.Errorf("snapshot: btrfs: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(tmp, Dir)); err != nil {
		return nil, fmt.Errorf("snapshot: btrfs: clean %s: %w", tmp, err)
	}
	ts := []unix.Timespec{rootSt.Atim, rootSt.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, tmp, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, fmt.Errorf("snapshot: btrfs: restore times of %s: %w", tmp, err)
	}
	if err := setReadOnly(tmp); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: btrfs: create %s: %w", name, err)
	}
	if err := unix.Renameat2(dst, tmpName, dst, name, unix.RENAME_NOREPLACE); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("snapshot: btrfs: create %s in %s: %w", name, volumePath, ErrExists)
		}
		return nil, fmt.Errorf("snapshot: btrfs: rename %s to %s: %w", tmp, final, err)
	}
	ok = true
	return &Info{Name: name, Path: final, Provider: "btrfs"}, nil
}

// setReadOnly sets the read-only flag of the subvolume at path.
func setReadOnly(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("snapshot: btrfs: open %s: %w", path, err)
	}
	defer unix.Close(fd)
	var flags uint64
	if err := ioctlPtr(fd, btrfsIocSubvolGetflag, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("snapshot: btrfs: get flags of %s: %w", path, err)
	}
	flags |= btrfsSubvolRdonly
	if err := ioctlPtr(fd, btrfsIocSubvolSetflag, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("snapshot: btrfs: make %s read-only: %w", path, err)
	}
	return nil
}

// destroySubvolume deletes the subvolume name in the directory dirfd.
func destroySubvolume(dirfd int, name string) error {
	args := &btrfsVolArgs{}
	copy(args.name[:], name)
	return ioctlPtr(dirfd, btrfsIocSnapDestroy, unsafe.Pointer(args))
}

func ioctlPtr(fd int, req uint, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

// Delete deletes the snapshot subvolume.
func (Btrfs) Delete(ctx context.Context, volumePath, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("snapshot: btrfs: delete %s: %w", name, err)
	}
	sdir := filepath.Join(volumePath, Dir)
	path := filepath.Join(sdir, name)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot: btrfs: delete %s of %s: %w", name, volumePath, ErrNotFound)
	}
	if !isSubvolume(path) {
		return fmt.Errorf("snapshot: btrfs: delete %s: %s is not a btrfs subvolume", name, path)
	}
	fd, err := unix.Open(sdir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("snapshot: btrfs: open %s: %w", sdir, err)
	}
	defer unix.Close(fd)
	if err := destroySubvolume(fd, name); err != nil {
		return fmt.Errorf("snapshot: btrfs: delete subvolume %s: %w", path, err)
	}
	return nil
}

// Identity returns the identity map: a btrfs snapshot keeps the inode
// numbers of the live volume.
func (Btrfs) Identity(volumePath, name string) (IdentityMap, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(volumePath, Dir, name)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("snapshot: btrfs: identity of %s of %s: %w", name, volumePath, ErrNotFound)
	}
	if !isSubvolume(path) {
		return nil, fmt.Errorf("snapshot: btrfs: %s is not a btrfs subvolume", path)
	}
	return sameInode{}, nil
}

// sameInode is the identity map of a btrfs snapshot.
type sameInode struct{}

func (sameInode) Live(snapIno uint64) (uint64, bool) { return snapIno, true }
