package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dataMode tells how the tree copier duplicates regular file data.
type dataMode int

const (
	dataClone dataMode = iota // FICLONE: share the extents
	dataCopy                  // read and write, holes kept
)

// chunkSize is how many directory entries one task handles; larger
// directories are split so workers can share them.
const chunkSize = 256

// copyBufSize is the buffer of the copy provider.
const copyBufSize = 1 << 20

// treeCopier copies the tree of a volume into a new snapshot directory,
// keeping every file's metadata and hard links, and records the identity
// map. Directories and chunks of directory entries are tasks run by a
// small pool of goroutines.
type treeCopier struct {
	ctx  context.Context
	mode dataMode
	dev  uint64 // device of the volume: other file systems are not entered
	sem  chan struct{}
	wg   sync.WaitGroup

	failed atomic.Bool
	errMu  sync.Mutex
	err    error

	mu      sync.Mutex
	links   map[uint64]string // live inode of a multiply linked file -> its first copy
	pending []hardLink        // further names of those files, linked at the end
	dirs    []dirMeta         // directories whose metadata is set at the end
	ids     []idPair

	files, bytes, skipped atomic.Int64
	bufs                  sync.Pool
}

type hardLink struct{ target, name string }

type dirMeta struct {
	src, dst string
	st       unix.Stat_t
}

func newTreeCopier(ctx context.Context, mode dataMode, dev uint64) *treeCopier {
	workers := 2 * runtime.GOMAXPROCS(0)
	if workers > 16 {
		workers = 16
	}
	c := &treeCopier{
		ctx:   ctx,
		mode:  mode,
		dev:   dev,
		sem:   make(chan struct{}, workers-1),
		links: make(map[uint64]string),
	}
	c.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	return c
}

// fail records the first error and stops the other tasks.
func (c *treeCopier) fail(err error) {
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
	c.failed.Store(true)
}

// spawn runs f on a free worker, or on the calling goroutine when all
// workers are busy.
func (c *treeCopier) spawn(f func()) {
	select {
	case c.sem <- struct{}{}:
		c.wg.Add(1)
		go func() {
			defer func() { <-c.sem; c.wg.Done() }()
			f()
		}()
	default:
		f()
	}
}

// run copies the tree at src (the volume root, whose .snapshot directory is
// left out) into the existing empty directory dst.
func (c *treeCopier) run(src, dst string, rootSt *unix.Stat_t) error {
	var dstSt unix.Stat_t
	if err := unix.Lstat(dst, &dstSt); err != nil {
		return fmt.Errorf("stat %s: %w", dst, err)
	}
	c.ids = append(c.ids, idPair{snap: dstSt.Ino, live: rootSt.Ino, ctime: rootSt.Ctim.Nano()})
	c.dirs = append(c.dirs, dirMeta{src: src, dst: dst, st: *rootSt})
	c.processDir(src, dst, true)
	c.wg.Wait()
	if c.failed.Load() {
		return c.err
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	for _, l := range c.pending {
		if err := os.Link(l.target, l.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("hard link: %w", err)
		}
	}
	for i := len(c.dirs) - 1; i >= 0; i-- {
		d := &c.dirs[i]
		if err := setMetaPath(d.src, d.dst, &d.st); err != nil {
			return err
		}
	}
	return nil
}

// processDir reads the directory src and copies its entries into dst.
func (c *treeCopier) processDir(src, dst string, root bool) {
	if c.failed.Load() {
		return
	}
	// O_NOATIME: reading a directory must not move its access time.
	f, err := os.OpenFile(src, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		f, err = os.Open(src)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return // removed while we work: it was there, empty, at its stat
		}
		c.fail(fmt.Errorf("open directory: %w", err))
		return
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		c.fail(fmt.Errorf("read directory %s: %w", src, err))
		return
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if root && e.Name() == Dir {
			continue
		}
		names = append(names, e.Name())
	}
	for len(names) > chunkSize {
		chunk := names[:chunkSize]
		names = names[chunkSize:]
		c.spawn(func() { c.processEntries(src, dst, chunk) })
	}
	c.processEntries(src, dst, names)
}

// processEntries copies the named entries of the directory src into dst.
func (c *treeCopier) processEntries(src, dst string, names []string) {
	if len(names) == 0 || c.failed.Load() {
		return
	}
	sfd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return
		}
		c.fail(fmt.Errorf("open %s: %w", src, err))
		return
	}
	defer unix.Close(sfd)
	dfd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		c.fail(fmt.Errorf("open %s: %w", dst, err))
		return
	}
	defer unix.Close(dfd)
	ids := make([]idPair, 0, len(names))
	var xbuf []byte
	for i, name := range names {
		if c.failed.Load() {
			return
		}
		if i%32 == 0 {
			if err := c.ctx.Err(); err != nil {
				c.fail(err)
				return
			}
		}
		if err := c.copyEntry(sfd, dfd, src, dst, name, &ids, &xbuf); err != nil {
			c.fail(err)
			return
		}
	}
	c.mu.Lock()
	c.ids = append(c.ids, ids...)
	c.mu.Unlock()
}

// copyEntry copies one directory entry.
func (c *treeCopier) copyEntry(sfd, dfd int, src, dst, name string, ids *[]idPair, xbuf *[]byte) error {
	var st unix.Stat_t
	if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // removed since the directory was read
		}
		return fmt.Errorf("stat %s: %w", filepath.Join(src, name), err)
	}
	typ := st.Mode & unix.S_IFMT
	srcPath, dstPath := filepath.Join(src, name), filepath.Join(dst, name)
	switch typ {
	case unix.S_IFSOCK:
		c.skipped.Add(1)
		return nil
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return fmt.Errorf("mkdir %s: %w", dstPath, err)
		}
		var dst unix.Stat_t
		if err := unix.Fstatat(dfd, name, &dst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat %s: %w", dstPath, err)
		}
		*ids = append(*ids, idPair{snap: dst.Ino, live: st.Ino, ctime: st.Ctim.Nano()})
		c.files.Add(1)
		c.mu.Lock()
		c.dirs = append(c.dirs, dirMeta{src: srcPath, dst: dstPath, st: st})
		c.mu.Unlock()
		if st.Dev == c.dev { // a mount point stays an empty directory
			c.spawn(func() { c.processDir(srcPath, dstPath, false) })
		}
		return nil
	}
	if st.Nlink > 1 {
		c.mu.Lock()
		first, seen := c.links[st.Ino]
		if seen {
			c.pending = append(c.pending, hardLink{target: first, name: dstPath})
		} else {
			c.links[st.Ino] = dstPath
		}
		c.mu.Unlock()
		if seen {
			return nil
		}
	}
	var snapIno uint64
	var err error
	switch typ {
	case unix.S_IFREG:
		snapIno, err = c.copyFile(sfd, dfd, srcPath, dstPath, name, &st, xbuf)
	case unix.S_IFLNK:
		snapIno, err = c.copySpecial(sfd, dfd, srcPath, dstPath, name, &st, xbuf)
	case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK:
		snapIno, err = c.copySpecial(sfd, dfd, srcPath, dstPath, name, &st, xbuf)
	default:
		c.skipped.Add(1)
		return nil
	}
	if err != nil {
		return err
	}
	if snapIno != 0 {
		*ids = append(*ids, idPair{snap: snapIno, live: st.Ino, ctime: st.Ctim.Nano()})
		c.files.Add(1)
	}
	return nil
}

// copyFile copies a regular file: data by clone or copy, then owner,
// extended attributes, mode and times. It returns the new inode number, 0
// when the file vanished.
func (c *treeCopier) copyFile(sfd, dfd int, srcPath, dstPath, name string, st *unix.Stat_t, xbuf *[]byte) (uint64, error) {
	s, err := unix.Openat(sfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		s, err = unix.Openat(sfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, nil
		}
		return 0, fmt.Errorf("open %s: %w", srcPath, err)
	}
	defer unix.Close(s)
	// The new file is made with its permission bits (the umask may take
	// some away; fchmod restores them below); the snapshot's directory is
	// private to root until it is complete.
	d, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, st.Mode&0o777)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", dstPath, err)
	}
	defer unix.Close(d)
	switch c.mode {
	case dataClone:
		if err := unix.IoctlFileClone(d, s); err != nil {
			return 0, fmt.Errorf("clone %s: %w", srcPath, err)
		}
	case dataCopy:
		if err := c.copyData(d, s, st.Size); err != nil {
			return 0, fmt.Errorf("copy %s: %w", srcPath, err)
		}
	}
	// A write between the stat and the copy may be in the copy: the live
	// ctime after the copy is then the one the identity map records, so an
	// incremental backup of this snapshot sees the change.
	var after unix.Stat_t
	if err := unix.Fstat(s, &after); err == nil && after.Ctim.Nano() > st.Ctim.Nano() {
		st.Ctim = after.Ctim
	}
	// Every call left out here counts: 100,000 files are 100,000 calls.
	var dst unix.Stat_t
	if err := unix.Fstat(d, &dst); err != nil {
		return 0, fmt.Errorf("stat %s: %w", dstPath, err)
	}
	if dst.Size != st.Size {
		// The file changed size since its stat (or was cloned whole).
		if err := unix.Ftruncate(d, st.Size); err != nil {
			return 0, fmt.Errorf("truncate %s: %w", dstPath, err)
		}
	}
	chowned := false
	if dst.Uid != st.Uid || dst.Gid != st.Gid {
		if err := unix.Fchown(d, int(st.Uid), int(st.Gid)); err != nil {
			return 0, fmt.Errorf("chown %s: %w", dstPath, err)
		}
		chowned = true
	}
	if err := copyXattrs(fdXattrs(s), fdXattrs(d), xbuf); err != nil {
		return 0, fmt.Errorf("xattrs of %s: %w", srcPath, err)
	}
	// fchown clears set-user-ID and set-group-ID, so those need fchmod again.
	if dst.Mode&0o7777 != st.Mode&0o7777 || (chowned && st.Mode&0o6000 != 0) {
		if err := unix.Fchmod(d, st.Mode&0o7777); err != nil {
			return 0, fmt.Errorf("chmod %s: %w", dstPath, err)
		}
	}
	ts := [2]unix.Timespec{st.Atim, st.Mtim}
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(d), 0, uintptr(unsafe.Pointer(&ts)), 0, 0, 0); e != 0 {
		return 0, fmt.Errorf("set times of %s: %w", dstPath, e)
	}
	c.bytes.Add(st.Size)
	return dst.Ino, nil
}

// copyData copies size bytes of s to d, leaving holes where s has them.
func (c *treeCopier) copyData(d, s int, size int64) error {
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	buf := *bp
	copyRange := func(from, to int64) error {
		for from < to {
			if err := c.ctx.Err(); err != nil {
				return err
			}
			n := int64(len(buf))
			if to-from < n {
				n = to - from
			}
			r, err := unix.Pread(s, buf[:n], from)
			if err != nil {
				return err
			}
			if r == 0 {
				return nil // the file shrank
			}
			for w := 0; w < r; {
				k, err := unix.Pwrite(d, buf[w:r], from+int64(w))
				if err != nil {
					return err
				}
				w += k
			}
			from += int64(r)
		}
		return nil
	}
	for off := int64(0); off < size; {
		data, err := unix.Seek(s, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil { // no SEEK_DATA here: copy all
			if err := copyRange(off, size); err != nil {
				return err
			}
			break
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(s, data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		if hole > size {
			hole = size
		}
		if err := copyRange(data, hole); err != nil {
			return err
		}
		off = hole
	}
	return unix.Ftruncate(d, size)
}

// copySpecial makes a symbolic link, FIFO or device node like the source
// and copies its metadata.
func (c *treeCopier) copySpecial(sfd, dfd int, srcPath, dstPath, name string, st *unix.Stat_t, xbuf *[]byte) (uint64, error) {
	typ := st.Mode & unix.S_IFMT
	if typ == unix.S_IFLNK {
		target, err := readlinkat(sfd, name)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return 0, nil
			}
			return 0, fmt.Errorf("read link %s: %w", srcPath, err)
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return 0, fmt.Errorf("symlink %s: %w", dstPath, err)
		}
	} else if err := unix.Mknodat(dfd, name, typ|0o600, int(st.Rdev)); err != nil {
		return 0, fmt.Errorf("mknod %s: %w", dstPath, err)
	}
	if err := unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, fmt.Errorf("chown %s: %w", dstPath, err)
	}
	if err := copyXattrs(pathXattrs(srcPath), pathXattrs(dstPath), xbuf); err != nil {
		return 0, fmt.Errorf("xattrs of %s: %w", srcPath, err)
	}
	if typ != unix.S_IFLNK {
		if err := unix.Fchmodat(dfd, name, st.Mode&0o7777, 0); err != nil {
			return 0, fmt.Errorf("chmod %s: %w", dstPath, err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, fmt.Errorf("set times of %s: %w", dstPath, err)
	}
	var dst unix.Stat_t
	if err := unix.Fstatat(dfd, name, &dst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, fmt.Errorf("stat %s: %w", dstPath, err)
	}
	return dst.Ino, nil
}

// readlinkat reads a symbolic link of any length.
func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// setMetaPath gives the directory dst the owner, extended attributes, mode
// and times of src (whose stat is st).
func setMetaPath(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown %s: %w", dst, err)
	}
	var xbuf []byte
	if err := copyXattrs(pathXattrs(src), pathXattrs(dst), &xbuf); err != nil {
		return fmt.Errorf("xattrs of %s: %w", src, err)
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, dst, st.Mode&0o7777, 0); err != nil {
		return fmt.Errorf("chmod %s: %w", dst, err)
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", dst, err)
	}
	return nil
}

// xattrOps reads or writes the extended attributes of one file, by
// descriptor or by path (without following a symbolic link).
type xattrOps struct {
	list func(buf []byte) (int, error)
	get  func(name string, buf []byte) (int, error)
	set  func(name string, val []byte) error
}

func fdXattrs(fd int) xattrOps {
	return xattrOps{
		list: func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		get:  func(n string, b []byte) (int, error) { return unix.Fgetxattr(fd, n, b) },
		set:  func(n string, v []byte) error { return unix.Fsetxattr(fd, n, v, 0) },
	}
}

func pathXattrs(path string) xattrOps {
	return xattrOps{
		list: func(b []byte) (int, error) { return unix.Llistxattr(path, b) },
		get:  func(n string, b []byte) (int, error) { return unix.Lgetxattr(path, n, b) },
		set:  func(n string, v []byte) error { return unix.Lsetxattr(path, n, v, 0) },
	}
}

// copyXattrs copies every extended attribute of src to dst. buf is a
// scratch buffer kept by the caller between calls.
func copyXattrs(src, dst xattrOps, buf *[]byte) error {
	if len(*buf) == 0 {
		*buf = make([]byte, 4096)
	}
	var n int
	for {
		var err error
		n, err = src.list(*buf)
		if errors.Is(err, unix.ERANGE) {
			*buf = make([]byte, 2*len(*buf))
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		break
	}
	if n == 0 {
		return nil
	}
	names := string((*buf)[:n])
	val := make([]byte, 4096)
	for len(names) > 0 {
		i := 0
		for i < len(names) && names[i] != 0 {
			i++
		}
		name := names[:i]
		if i < len(names) {
			i++
		}
		names = names[i:]
		if name == "" {
			continue
		}
		var vn int
		for {
			var err error
			vn, err = src.get(name, val)
			if errors.Is(err, unix.ERANGE) {
				val = make([]byte, 2*len(val))
				continue
			}
			if errors.Is(err, unix.ENODATA) {
				vn = -1 // removed meanwhile
				break
			}
			if err != nil {
				return fmt.Errorf("get %s: %w", name, err)
			}
			break
		}
		if vn < 0 {
			continue
		}
		if err := dst.set(name, val[:vn]); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}

// snapshotDir returns the volume's .snapshot directory, made when missing.
func snapshotDir(volumePath string) (string, error) {
	sdir := filepath.Join(volumePath, Dir)
	if err := os.Mkdir(sdir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("snapshot: make %s: %w", sdir, err)
	}
	st, err := os.Lstat(sdir)
	if err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("snapshot: %s is not a directory", sdir)
	}
	return sdir, nil
}

// lockDir takes an exclusive flock on the directory dir (other processes
// included) and returns its release.
func lockDir(dir string) (func(), error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("snapshot: lock %s: %w", dir, err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("snapshot: lock %s: %w", dir, err)
	}
	return func() { unix.Close(fd) }, nil
}

// tempName returns a fresh hidden name for work in progress in .snapshot.
func tempName(kind string) string {
	return fmt.Sprintf(".tapestry-%s-%016x", kind, rand.Uint64())
}

// idMapPath is where the identity map of a reflink or copy snapshot lives.
func idMapPath(volumePath, name string) string {
	return filepath.Join(volumePath, Dir, "."+name+".idmap")
}

// createTree is Create for the reflink and copy providers.
func createTree(ctx context.Context, provider string, mode dataMode, volumePath, name string) (*Info, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: %s: create %s: %w", provider, name, err)
	}
	var rootSt unix.Stat_t
	if err := unix.Stat(volumePath, &rootSt); err != nil {
		return nil, fmt.Errorf("snapshot: %s: volume: %w", provider, err)
	}
	if rootSt.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("snapshot: %s: volume %s is not a directory", provider, volumePath)
	}
	sdir, err := snapshotDir(volumePath)
	if err != nil {
		return nil, err
	}
	final := filepath.Join(sdir, name)
	if _, err := os.Lstat(final); err == nil {
		return nil, fmt.Errorf("snapshot: %s: create %s in %s: %w", provider, name, volumePath, ErrExists)
	}
	tmp := filepath.Join(sdir, tempName("create"))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot: %s: %w", provider, err)
	}
	tmpMap := tmp + ".idmap"
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
			_ = os.Remove(tmpMap)
		}
	}()
	c := newTreeCopier(ctx, mode, rootSt.Dev)
	if err := c.run(volumePath, tmp, &rootSt); err != nil {
		return nil, fmt.Errorf("snapshot: %s: create %s of %s: %w", provider, name, volumePath, err)
	}
	enc, err := encodeIDMap(c.ids)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(tmpMap, enc, 0o600); err != nil {
		return nil, fmt.Errorf("snapshot: %s: write identity map: %w", provider, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: %s: create %s: %w", provider, name, err)
	}
	// The identity map and the tree go into place together, under the
	// lock, so a racing Create of the same name cannot swap maps.
	unlock, err := lockDir(sdir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Lstat(final); err == nil {
		return nil, fmt.Errorf("snapshot: %s: create %s in %s: %w", provider, name, volumePath, ErrExists)
	}
	if err := os.Rename(tmpMap, idMapPath(volumePath, name)); err != nil {
		return nil, fmt.Errorf("snapshot: %s: %w", provider, err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE); err != nil {
		_ = os.Remove(idMapPath(volumePath, name))
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("snapshot: %s: create %s in %s: %w", provider, name, volumePath, ErrExists)
		}
		return nil, fmt.Errorf("snapshot: %s: rename into place: %w", provider, err)
	}
	ok = true
	return &Info{Name: name, Path: final, Provider: provider, Files: c.files.Load(), Bytes: c.bytes.Load()}, nil
}

// deleteTree is Delete for the reflink and copy providers. The snapshot is
// first renamed away, so a half-removed tree is never seen under its name.
func deleteTree(ctx context.Context, provider, volumePath, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("snapshot: %s: delete %s: %w", provider, name, err)
	}
	sdir := filepath.Join(volumePath, Dir)
	path := filepath.Join(sdir, name)
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot: %s: delete %s of %s: %w", provider, name, volumePath, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("snapshot: %s: delete: %w", provider, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("snapshot: %s: delete: %s is not a snapshot directory", provider, path)
	}
	if isSubvolume(path) {
		return fmt.Errorf("snapshot: %s: delete: %s is a btrfs subvolume: delete it with the btrfs provider", provider, path)
	}
	unlock, err := lockDir(sdir)
	if err != nil {
		return err
	}
	gone := filepath.Join(sdir, tempName("delete"))
	if err := os.Rename(path, gone); err != nil {
		unlock()
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("snapshot: %s: delete %s of %s: %w", provider, name, volumePath, ErrNotFound)
		}
		return fmt.Errorf("snapshot: %s: delete %s: %w", provider, name, err)
	}
	err = os.Remove(idMapPath(volumePath, name))
	unlock()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot: %s: delete identity map: %w", provider, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("snapshot: %s: delete %s: %w", provider, name, err)
	}
	return nil
}

// identityTree is Identity for the reflink and copy providers.
func identityTree(provider, volumePath, name string) (IdentityMap, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(filepath.Join(volumePath, Dir, name)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("snapshot: %s: identity of %s of %s: %w", provider, name, volumePath, ErrNotFound)
	}
	b, err := os.ReadFile(idMapPath(volumePath, name))
	if err != nil {
		return nil, fmt.Errorf("snapshot: %s: identity map of %s: %w", provider, name, err)
	}
	m, err := decodeIDMap(b)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, idMapPath(volumePath, name))
	}
	return m, nil
}
