package filedump

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// destFS performs every file operation of a restore beneath one directory.
// Paths are slash-separated and relative to the root; each component has
// been checked by validName. Parents are opened with openat2 and
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so neither ".." nor a symbolic link
// (planted by the image or by anyone else) can lead outside the root, and
// the final component is never followed.
//
// A destFS is used by one goroutine at a time; clone gives another
// goroutine its own (sharing the root descriptor).
type destFS struct {
	root    int
	rootDir string
	shared  bool // root belongs to the destFS this one was cloned from
	// one cached parent directory
	cacheRel  string
	cacheFd   int
	cacheInfo *parentInfo // nil until asked for
}

// parentInfo is what decides the owner and mode a new file gets from the
// kernel in a directory.
type parentInfo struct {
	gid    uint32 // group of the directory
	setgid bool   // the directory's set-group-ID bit (new files take its group)
	defACL bool   // the directory may have a default ACL (new modes do not follow the umask)
}

func openDestFS(dir string) (*destFS, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open restore destination %s: %w", dir, err)
	}
	return &destFS{root: fd, rootDir: dir, cacheFd: -1}, nil
}

// clone returns a destFS for another goroutine: same root, its own cached
// parent. Closing it leaves the root open.
func (d *destFS) clone() *destFS {
	return &destFS{root: d.root, rootDir: d.rootDir, shared: true, cacheFd: -1}
}

// Close releases the destination directory.
func (d *destFS) Close() error {
	d.dropCache()
	if d.shared {
		return nil
	}
	return unix.Close(d.root)
}

func (d *destFS) dropCache() {
	if d.cacheFd >= 0 {
		unix.Close(d.cacheFd)
	}
	d.cacheFd = -1
	d.cacheRel = ""
	d.cacheInfo = nil
}

// info returns what a file created in the cached parent pfd (as returned
// by parent) inherits from it. It asks the kernel once per directory.
func (d *destFS) info(pfd int) (*parentInfo, error) {
	if d.cacheInfo != nil && pfd == d.cacheFd {
		return d.cacheInfo, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, err
	}
	pi := &parentInfo{gid: st.Gid, setgid: st.Mode&unix.S_ISGID != 0, defACL: true}
	_, err := unix.Fgetxattr(pfd, "system.posix_acl_default", nil)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP) {
		pi.defACL = false
	}
	if pfd == d.cacheFd {
		d.cacheInfo = pi
	}
	return pi, nil
}

const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// maxResolve is the most bytes of a path one openat2 resolves. Deeper
// paths (beyond PATH_MAX) are opened a piece at a time, each piece beneath
// the directory the previous one opened, so the same rules hold throughout.
const maxResolve = 2048

// openDir opens the directory rel beneath the root ("" is the root).
func (d *destFS) openDir(rel string) (int, error) {
	if rel == "" {
		return unix.Dup(d.root)
	}
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: resolveFlags,
	}
	dirfd := d.root
	for {
		piece := rel
		rel = ""
		if len(piece) > maxResolve {
			if i := strings.LastIndexByte(piece[:maxResolve], '/'); i > 0 {
				piece, rel = piece[:i], piece[i+1:]
			}
		}
		fd, err := unix.Openat2(dirfd, piece, how)
		if dirfd != d.root {
			unix.Close(dirfd)
		}
		if err != nil || rel == "" {
			return fd, err
		}
		dirfd = fd
	}
}

// parent returns a descriptor of rel's parent directory (valid until the next
// call or an invalidate) and rel's last component.
func (d *destFS) parent(rel string) (int, string, error) {
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if base == "" || base == "." || base == ".." {
		return -1, "", fmt.Errorf("restore: bad path %q", rel)
	}
	if d.cacheFd >= 0 && d.cacheRel == dir {
		return d.cacheFd, base, nil
	}
	d.dropCache()
	fd, err := d.openDir(dir)
	if err != nil {
		return -1, "", fmt.Errorf("restore: open directory %q: %w", dir, err)
	}
	d.cacheFd, d.cacheRel = fd, dir
	return fd, base, nil
}

// lstat returns the type bits of rel, or 0 when it does not exist.
func (d *destFS) lstat(rel string) (uint32, error) {
	pfd, base, err := d.parent(rel)
	if err != nil {
		return 0, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, nil
		}
		return 0, err
	}
	return st.Mode & unix.S_IFMT, nil
}

// mkdir makes directory rel (mode 0700 until the attributes are set); an
// existing directory is kept (D10), anything else in the way is removed.
func (d *destFS) mkdir(rel string) error {
	pfd, base, err := d.parent(rel)
	if err != nil {
		return err
	}
	err = unix.Mkdirat(pfd, base, 0o700)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil
		}
		if err := unix.Unlinkat(pfd, base, 0); err != nil {
			return err
		}
		err = unix.Mkdirat(pfd, base, 0o700)
	}
	return err
}

// clear removes a non-directory at rel (an existing file is overwritten, D10).
// A directory in the way is an error: directories are not overwritten.
func (d *destFS) clear(pfd int, base string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if errors.Is(err, unix.EISDIR) {
		return fmt.Errorf("a directory is in the way")
	}
	return err
}

// create makes a new regular file at rel with permission bits perm (0600
// when the caller sets the mode later) and returns its descriptor, open for
// writing, and the descriptor of its parent (valid until the next call).
func (d *destFS) create(rel string, perm uint32) (fd, pfd int, err error) {
	pfd, base, err := d.parent(rel)
	if err != nil {
		return -1, -1, err
	}
	// Most names are new: try the create first and clear the way only
	// when something is there.
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err = unix.Openat(pfd, base, flags, perm)
	if errors.Is(err, unix.EEXIST) {
		if err := d.clear(pfd, base); err != nil {
			return -1, -1, err
		}
		fd, err = unix.Openat(pfd, base, flags, perm)
	}
	if err != nil {
		return -1, -1, err
	}
	return fd, pfd, nil
}

func (d *destFS) symlink(rel, target string) error {
	pfd, base, err := d.parent(rel)
	if err != nil {
		return err
	}
	if err := d.clear(pfd, base); err != nil {
		return err
	}
	return unix.Symlinkat(target, pfd, base)
}

func (d *destFS) mknod(rel string, mode uint32, dev uint64) error {
	pfd, base, err := d.parent(rel)
	if err != nil {
		return err
	}
	if err := d.clear(pfd, base); err != nil {
		return err
	}
	return unix.Mknodat(pfd, base, mode, int(dev))
}

// link makes rel another name of the existing file at old (not following
// symbolic links).
func (d *destFS) link(old, rel string) error {
	return d.twoNames(old, rel, func(ofd int, obase string, pfd int, base string) error {
		if err := d.clear(pfd, base); err != nil {
			return err
		}
		return unix.Linkat(ofd, obase, pfd, base, 0)
	})
}

// rename moves old to rel.
func (d *destFS) rename(old, rel string) error {
	return d.twoNames(old, rel, func(ofd int, obase string, pfd int, base string) error {
		err := unix.Renameat(ofd, obase, pfd, base)
		d.dropCache() // a directory may have moved
		return err
	})
}

// twoNames opens the parent directories of old and rel and calls fn with
// both. The parent of old is duplicated because looking up the parent of
// rel may close the cached descriptor.
func (d *destFS) twoNames(old, rel string, fn func(ofd int, obase string, pfd int, base string) error) error {
	ofd, obase, err := d.parent(old)
	if err != nil {
		return err
	}
	ofd, err = unix.Dup(ofd)
	if err != nil {
		return err
	}
	defer unix.Close(ofd)
	pfd, base, err := d.parent(rel)
	if err != nil {
		return err
	}
	return fn(ofd, obase, pfd, base)
}

// remove deletes rel; a directory is removed with everything in it.
func (d *destFS) remove(rel string) error {
	pfd, base, err := d.parent(rel)
	if err != nil {
		return err
	}
	err = unix.Unlinkat(pfd, base, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if errors.Is(err, unix.EISDIR) {
		err = d.removeAll(rel)
		d.dropCache()
	}
	return err
}

func (d *destFS) removeAll(rel string) error {
	fd, err := d.openDir(rel)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), rel)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := d.remove(rel + "/" + n); err != nil {
			return err
		}
	}
	pfd, base, err := d.parent(rel)
	if err != nil {
		return err
	}
	return unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
}

// procPath returns a path through /proc for an xattr call on a special
// file (FIFOs and devices cannot be opened safely).
func procPath(pfd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
}

// chmodNoFollow sets the mode of base in the directory pfd without following
// a symbolic link: fchmodat cannot refuse links on Linux, so the name is
// opened with O_PATH|O_NOFOLLOW and changed through that descriptor. A link
// (which has no mode of its own) is left alone.
func chmodNoFollow(pfd int, base string, mode uint32) error {
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil
	}
	return unix.Fchmodat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), mode, 0)
}
