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
// the image's inode order and reads their attributes, extended attributes
// and, for small files, their data into batches, while the backup's
// goroutine encodes the batch before and a third goroutine (asyncWriter)
// writes the image. Batches keep the hand-overs between the goroutines
// few; a bounded number of them bounds the memory.
const (
	// batchData is the data buffer of a batch: regular files that fit in
	// what is left of it are read whole by the prefetcher, others by the
	// writing goroutine from the descriptor the prefetcher opened.
	batchData = 256 << 10
	// batchFiles is the most files in a batch.
	batchFiles = 128
	// batches is the number of batches (1 MiB of data in all): one being
	// filled, one being written, the others ready.
	batches = 4
)

// fetched is one file of phase IV as the prefetcher hands it over.
type fetched struct {
	ref    *fileRef
	n      *node
	err    error
	xattrs []dump.Xattr // all extended attributes, unsplit
	target string       // symbolic link target
	// data is all the data of a small regular file (n.size bytes, padded
	// with zeros if the file shrank), in the batch's buffer.
	data []byte
	// f is the open regular file when the writing goroutine reads the data
	// itself (large or sparse files), else -1; ext are the data extents of
	// a sparse file.
	f      fdFile
	sparse bool
	ext    []dump.Extent
	nd     node // n points here unless the file went the general way
}

// fetchBatch is a run of consecutive files of phase IV.
type fetchBatch struct {
	items []fetched // never grows beyond batchFiles: items stay in place
	buf   []byte    // data of the small files
	used  int       // bytes of buf in use
}

// prefetcher is the goroutine that prepares phase IV files ahead.
type prefetcher struct {
	w      *walker
	ctx    context.Context
	cancel context.CancelFunc
	out    chan *fetchBatch
	free   chan *fetchBatch

	done chan struct{}

	dir   string // directory of the last file opened ("" none)
	dirfd int    // descriptor of dir, or -1
}

// startPrefetch starts the prefetcher over the files of w to be dumped.
func (w *walker) startPrefetch(ctx context.Context) *prefetcher {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetcher{
		w: w, ctx: ctx, cancel: cancel,
		out:   make(chan *fetchBatch, batches),
		free:  make(chan *fetchBatch, batches),
		done:  make(chan struct{}),
		dirfd: -1,
	}
	for i := 0; i < batches; i++ {
		p.free <- &fetchBatch{}
	}
	go p.run()
	return p
}

func (p *prefetcher) run() {
	defer close(p.done)
	defer close(p.out)
	defer p.closeDir()
	var b *fetchBatch
	// send hands the batch over; false when the backup is cancelled.
	send := func() bool {
		select {
		case p.out <- b:
			b = nil
			return true
		case <-p.ctx.Done():
			p.recycle(b)
			b = nil
			return false
		}
	}
	for i := range p.w.files {
		ref := &p.w.files[i]
		if !ref.dump {
			continue
		}
		if b == nil {
			select {
			case b = <-p.free:
			case <-p.ctx.Done():
				return
			}
			if b.buf == nil {
				b.buf = make([]byte, batchData)
				b.items = make([]fetched, 0, batchFiles)
			}
		}
		if p.ctx.Err() != nil {
			p.recycle(b)
			return
		}
		b.items = append(b.items, fetched{ref: ref, f: -1})
		it := &b.items[len(b.items)-1]
		p.fetch(it, b)
		// A file the writing goroutine reads itself ends a batch: reading
		// it takes a while, and the next batch gets ready meanwhile.
		if it.err != nil || it.f >= 0 || len(b.items) == batchFiles || b.used == len(b.buf) {
			failed := it.err != nil // b belongs to the receiver once sent
			if !send() || failed {
				return
			}
		}
	}
	if b != nil && len(b.items) > 0 {
		send()
	} else if b != nil {
		p.recycle(b)
	}
}

// stop ends the prefetcher and releases what it prepared but was not
// used. Calling it twice is harmless.
func (p *prefetcher) stop() {
	p.cancel()
	for b := range p.out {
		p.recycle(b)
	}
	<-p.done
}

// recycle closes the descriptors a batch still holds and makes it empty for
// the next files; nothing of it may be used afterwards.
func (p *prefetcher) recycle(b *fetchBatch) {
	for i := range b.items {
		if f := b.items[i].f; f >= 0 {
			f.Close()
		}
		b.items[i] = fetched{}
	}
	b.items, b.used = b.items[:0], 0
	p.free <- b
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

// fetch prepares the file of it, a new item of batch b. A regular file is
// opened first and everything else is read from the descriptor; anything
// else, or a file that is no longer what the walk saw, goes the general
// way (fetchPath).
func (p *prefetcher) fetch(it *fetched, b *fetchBatch) {
	ref := it.ref
	if ref.typ != unix.S_IFREG {
		p.fetchPath(it, b)
		return
	}
	w := p.w
	dirfd, name := p.at(ref.path)
	f, err := openAt(dirfd, name)
	if err != nil {
		if errors.Is(err, unix.ENOENT) && w.src.snapName == "" {
			it.n = vanishedNode(&it.nd, ref)
			return
		}
		p.fetchPath(it, b)
		return
	}
	var sx unix.Statx_t
	if err := unix.Statx(int(f), "", unix.AT_EMPTY_PATH, statxMask, &sx); err != nil {
		f.Close()
		it.err = fmt.Errorf("dump backup: stat %s: %w", p.fullPath(it), err)
		return
	}
	if uint32(sx.Mode)&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		p.fetchPath(it, b)
		return
	}
	it.n = &it.nd
	if err := w.fillNode(it.n, &sx, ref.path, ref.ino); err != nil {
		f.Close()
		it.err = err
		return
	}
	it.f = f
	p.fetchRegular(it, b, int64(sx.Blocks))
}

// fetchRegular reads the extended attributes and the allocation of the
// open regular file of it, and the data of a small file that has no holes
// when it fits in the batch.
func (p *prefetcher) fetchRegular(it *fetched, b *fetchBatch, blocks int64) {
	if err := p.readRegular(it, b, blocks); err != nil {
		it.f.Close()
		it.f = -1
		it.err = err
	}
}

func (p *prefetcher) readRegular(it *fetched, b *fetchBatch, blocks int64) error {
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
	if size > int64(len(b.buf)-b.used) {
		if size > batchData/4 {
			_ = unix.Fadvise(int(it.f), 0, 0, unix.FADV_SEQUENTIAL)
		}
		return nil
	}
	data := b.buf[b.used : b.used+int(size)]
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
	b.used += len(data)
	it.data = data
	it.f.Close()
	it.f = -1
	return nil
}

// vanishedNode makes n the inode written for a file removed from a live
// directory after the walk: its name is on the image already, so it goes
// there empty.
func vanishedNode(n *node, ref *fileRef) *node {
	now := time.Now().UnixNano()
	*n = node{ino: ref.ino, path: ref.path, mode: unix.S_IFREG, nlink: 1, mtime: now, ctime: now, atime: now, vanished: true}
	return n
}

// fetchPath prepares the file of it by its path: attributes first, then
// what its type needs.
func (p *prefetcher) fetchPath(it *fetched, b *fetchBatch) {
	w := p.w
	ref := it.ref
	full := w.full(path.Join(w.src.rel, ref.path))
	n, err := w.stat(path.Join(w.src.rel, ref.path), ref.ino)
	if err != nil && errors.Is(err, fs.ErrNotExist) && w.src.snapName == "" {
		it.n = vanishedNode(&it.nd, ref)
		return
	}
	if err != nil {
		it.err = err
		return
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
			return
		}
		if err != nil {
			it.err = fmt.Errorf("dump backup: %w", err)
			return
		}
		it.f = f
		var st unix.Stat_t
		blocks := int64(0)
		if unix.Fstat(int(f), &st) == nil {
			blocks = st.Blocks
		}
		p.fetchRegular(it, b, blocks)
	default:
		all, err := listXattrs(full)
		if err != nil && errors.Is(err, os.ErrNotExist) && w.src.snapName == "" {
			all, err = nil, nil // removed from a live directory meanwhile
		}
		if err != nil {
			it.err = fmt.Errorf("dump backup: %w", err)
			return
		}
		it.xattrs = all
		if n.mode&unix.S_IFMT == unix.S_IFLNK {
			if it.target, err = os.Readlink(full); err != nil {
				it.err = fmt.Errorf("dump backup: %w", err)
			}
		}
	}
}
