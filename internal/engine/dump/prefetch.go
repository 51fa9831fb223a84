package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
)

// Phase IV runs as a pipeline: a prefetch goroutine opens the next files in
// the image's inode order, reads their attributes, extended attributes and,
// for small files, their data into a bounded pool of buffers, while the
// backup's goroutine encodes the file before them and a third goroutine
// (asyncWriter) writes the image.
const (
	// prefetchBuf is the size of a prefetch buffer: regular files up to
	// this size are read whole by the prefetcher, larger ones by the
	// writing goroutine from the descriptor the prefetcher opened.
	prefetchBuf = 64 << 10
	// prefetchDepth is the number of files the prefetcher may be ahead,
	// and the number of its buffers (4 MiB in all).
	prefetchDepth = 64
)

// fetched is one file of phase IV as the prefetcher hands it over.
type fetched struct {
	ref    *fileRef
	n      *node
	err    error
	xattrs []dump.Xattr // all extended attributes, unsplit
	target string       // symbolic link target
	// data is all the data of a small regular file (n.size bytes, padded
	// with zeros if the file shrank); buf is the pool buffer behind it.
	data []byte
	buf  []byte
	// f is the open regular file when the writing goroutine reads the data
	// itself (large or sparse files), else -1; ext are the data extents of
	// a sparse file.
	f      fdFile
	sparse bool
	ext    []dump.Extent
	nd     node // n points here unless the file went the general way
}

// prefetcher is the goroutine that prepares phase IV files ahead.
type prefetcher struct {
	w      *walker
	ctx    context.Context
	cancel context.CancelFunc
	out    chan *fetched
	free   chan []byte
	items  chan *fetched // used items, to be filled again
	done   chan struct{}

	dir   string // directory of the last file opened ("" none)
	dirfd int    // descriptor of dir, or -1
}

// startPrefetch starts the prefetcher over the files of w to be dumped.
func (w *walker) startPrefetch(ctx context.Context) *prefetcher {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetcher{
		w: w, ctx: ctx, cancel: cancel,
		out:   make(chan *fetched, prefetchDepth),
		free:  make(chan []byte, prefetchDepth),
		items: make(chan *fetched, prefetchDepth+2),
		done:  make(chan struct{}),
		dirfd: -1,
	}
	for i := 0; i < prefetchDepth; i++ {
		p.free <- nil // buffers are made when first needed
	}
	go p.run()
	return p
}

func (p *prefetcher) run() {
	defer close(p.done)
	defer close(p.out)
	defer p.closeDir()
	for i := range p.w.files {
		ref := &p.w.files[i]
		if !ref.dump {
			continue
		}
		if p.ctx.Err() != nil {
			return
		}
		it := p.fetch(ref)
		failed := it.err != nil // it belongs to the receiver once sent
		select {
		case p.out <- it:
		case <-p.ctx.Done():
			p.release(it)
			return
		}
		if failed {
			return
		}
	}
}

// stop ends the prefetcher and releases what it prepared but was not
// used. Calling it twice is harmless.
func (p *prefetcher) stop() {
	p.cancel()
	for it := range p.out {
		p.release(it)
	}
	<-p.done
}

// drop closes the descriptor of an item and gives back its buffer.
func (p *prefetcher) drop(it *fetched) {
	if it.f >= 0 {
		it.f.Close()
		it.f = -1
	}
	if it.buf != nil {
		p.free <- it.buf
		it.buf, it.data = nil, nil
	}
}

// release drops an item the writing goroutine is done with and keeps it
// for a next file; nothing of it may be used afterwards.
func (p *prefetcher) release(it *fetched) {
	p.drop(it)
	*it = fetched{f: -1}
	select {
	case p.items <- it:
	default:
	}
}

// item returns an empty item for ref.
func (p *prefetcher) item(ref *fileRef) *fetched {
	var it *fetched
	select {
	case it = <-p.items:
	default:
		it = &fetched{f: -1}
	}
	it.ref = ref
	return it
}

// fullPath returns the host path of the file of it, for messages.
func (p *prefetcher) fullPath(it *fetched) string {
	return p.w.full(path.Join(p.w.src.rel, it.ref.path))
}

func (p *prefetcher) closeDir() {
	if p.dirfd >= 0 {
		unix.Close(p.dirfd)
	}
	p.dir, p.dirfd = "", -1
}

// at returns a directory descriptor and a name to open the file rel by:
// consecutive files are mostly in one directory, which is then opened once.
func (p *prefetcher) at(rel string) (int, string) {
	dir, name := path.Split(rel)
	if dir != p.dir || p.dirfd < 0 {
		p.closeDir()
		fd, err := unix.Open(p.w.full(path.Join(p.w.src.rel, dir)), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return unix.AT_FDCWD, p.w.full(path.Join(p.w.src.rel, rel))
		}
		p.dir, p.dirfd = dir, fd
	}
	return p.dirfd, name
}

// openAt opens a regular file of the tree for reading relative to dirfd,
// not following a link, not waiting on a FIFO put in its place and without
// changing its access time where permitted.
func openAt(dirfd int, name string) (fdFile, error) {
	const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
		if errors.Is(err, unix.EPERM) {
			fd, err = unix.Openat(dirfd, name, flags, 0)
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, err
		}
		return fdFile(fd), nil
	}
}

// fetch prepares one file. A regular file is opened first and everything
// else is read from the descriptor; anything else, or a file that is no
// longer what the walk saw, goes the general way (fetchPath).
func (p *prefetcher) fetch(ref *fileRef) *fetched {
	if ref.typ != unix.S_IFREG {
		return p.fetchPath(ref)
	}
	w := p.w
	it := p.item(ref)
	dirfd, name := p.at(ref.path)
	f, err := openAt(dirfd, name)
	if err != nil {
		if errors.Is(err, unix.ENOENT) && w.src.snapName == "" {
			it.n = vanishedNode(ref)
			return it
		}
		return p.fetchPath(ref)
	}
	var sx unix.Statx_t
	if err := unix.Statx(int(f), "", unix.AT_EMPTY_PATH, statxMask, &sx); err != nil {
		f.Close()
		it.err = fmt.Errorf("dump backup: stat %s: %w", p.fullPath(it), err)
		return it
	}
	if uint32(sx.Mode)&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return p.fetchPath(ref)
	}
	it.n = &it.nd
	if err := w.fillNode(it.n, &sx, ref.path, ref.ino); err != nil {
		f.Close()
		it.err = err
		return it
	}
	it.f = f
	if err := p.fetchRegular(it, int64(sx.Blocks)); err != nil {
		p.drop(it)
		it.err = err
	}
	return it
}

// fetchRegular reads the extended attributes and the allocation of the
// open regular file of it, and the data of a small file that has no holes.
func (p *prefetcher) fetchRegular(it *fetched, blocks int64) error {
	// Most files have no extended attributes: one call tells.
	if sz, err := unix.Flistxattr(int(it.f), nil); err != nil || sz > 0 {
		var err error
		if it.xattrs, err = listXattrsFd(int(it.f), p.fullPath(it)); err != nil {
			return fmt.Errorf("dump backup: %w", err)
		}
	}
	size := it.n.size
	if size > 0 && blocks*512 < size {
		// It may have holes (or be stored inline or compressed): ask.
		if ext, ok := dataExtents(int(it.f), size); ok {
			var total int64
			for _, e := range ext {
				total += e.Length
			}
			if total < size {
				it.sparse, it.ext = true, ext
				return nil
			}
		}
	}
	if size > prefetchBuf {
		_ = unix.Fadvise(int(it.f), 0, 0, unix.FADV_SEQUENTIAL)
		return nil
	}
	var buf []byte
	select {
	case buf = <-p.free:
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	if buf == nil {
		buf = make([]byte, prefetchBuf)
	}
	it.buf = buf
	data := buf[:size]
	done := 0
	for done < len(data) {
		n, err := it.f.Read(data[done:])
		if n == 0 || err != nil {
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("dump backup: write %s: dump: reading data of inode %d: %w", it.ref.path, it.n.ino, err)
			}
			break
		}
		done += n
	}
	clear(data[done:]) // the file shrank: zeros, as before
	it.data = data
	it.f.Close()
	it.f = -1
	return nil
}

// vanishedNode is the inode written for a file removed from a live
// directory after the walk: its name is on the image already, so it goes
// there empty.
func vanishedNode(ref *fileRef) *node {
	now := time.Now().UnixNano()
	return &node{ino: ref.ino, path: ref.path, mode: unix.S_IFREG, nlink: 1, mtime: now, ctime: now, atime: now, vanished: true}
}

// fetchPath prepares a file by its path: attributes first, then what its
// type needs.
func (p *prefetcher) fetchPath(ref *fileRef) *fetched {
	w := p.w
	it := p.item(ref)
	full := w.full(path.Join(w.src.rel, ref.path))
	n, err := w.stat(path.Join(w.src.rel, ref.path), ref.ino)
	if err != nil && errors.Is(err, fs.ErrNotExist) && w.src.snapName == "" {
		it.n = vanishedNode(ref)
		return it
	}
	if err != nil {
		it.err = err
		return it
	}
	n.path = ref.path
	it.n = n
	switch n.mode & unix.S_IFMT {
	case unix.S_IFDIR:
		it.err = fmt.Errorf("dump backup: %s became a directory during the backup", ref.path)
	case unix.S_IFREG:
		f, err := openFile(full)
		if err != nil && errors.Is(err, os.ErrNotExist) && w.src.snapName == "" {
			n.size = 0 // removed since it was looked at: written empty
			return it
		}
		if err != nil {
			it.err = fmt.Errorf("dump backup: %w", err)
			return it
		}
		it.f = f
		var st unix.Stat_t
		blocks := int64(0)
		if unix.Fstat(int(f), &st) == nil {
			blocks = st.Blocks
		}
		if err := p.fetchRegular(it, blocks); err != nil {
			p.drop(it)
			it.err = err
		}
	default:
		all, err := listXattrs(full)
		if err != nil && errors.Is(err, os.ErrNotExist) && w.src.snapName == "" {
			all, err = nil, nil // removed from a live directory meanwhile
		}
		if err != nil {
			it.err = fmt.Errorf("dump backup: %w", err)
			return it
		}
		it.xattrs = all
		if n.mode&unix.S_IFMT == unix.S_IFLNK {
			if it.target, err = os.Readlink(full); err != nil {
				it.err = fmt.Errorf("dump backup: %w", err)
			}
		}
	}
	return it
}
