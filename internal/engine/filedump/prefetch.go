package filedump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
)

// Phase IV runs as a pipeline: prefetch goroutines open the next files in
// the image's inode order and read their attributes, extended attributes
// and, for small files, their data into batches, while the backup's
// goroutine encodes the batch before and a third goroutine (asyncWriter)
// writes the image. The files are cut into runs of runFiles consecutive
// files of the walk; prefetch goroutine k of fetchWorkers takes the runs
// k, k+fetchWorkers, ... and the backup's goroutine takes the batches of
// the runs in turn, so the image keeps the order of the walk. Batches keep
// the hand-overs between the goroutines few; each goroutine has a bounded
// number of them, which bounds the memory.
const (
	// batchData is the data buffer of a batch: regular files that fit in
	// what is left of it are read whole by the prefetcher, others by the
	// writing goroutine from the descriptor the prefetcher opened.
	batchData = 256 << 10
	// batchFiles is the most files in a batch.
	batchFiles = 128
	// runFiles is the number of files of the walk in a run.
	runFiles = batchFiles
	// fetchWorkers is the number of prefetch goroutines: opening and
	// reading many small files is mostly system calls, which two CPUs
	// make in parallel.
	fetchWorkers = 2
	// workerBatches is the number of batches of each prefetch goroutine
	// (1.5 MiB of data in all): one being filled, one being written, one
	// ready.
	workerBatches = 3
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
	// end: the last batch of its run (it may hold no file at all).
	end   bool
	owner *fetchWorker
}

// prefetcher hands out the batches of phase IV in order.
type prefetcher struct {
	ctx     context.Context
	cancel  context.CancelFunc
	workers []*fetchWorker
	wg      sync.WaitGroup
	runs    int // runs of files in all
	run     int // run of the next batch
}

// fetchWorker is one prefetch goroutine.
type fetchWorker struct {
	w     *walker
	ctx   context.Context
	out   chan *fetchBatch // batches of its runs, in order
	free  chan *fetchBatch
	dir   string // directory of the last file opened ("" none)
	dirfd int    // descriptor of dir, or -1
}

// startPrefetch starts the prefetchers over the files of w to be dumped.
func (w *walker) startPrefetch(ctx context.Context) *prefetcher {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetcher{ctx: ctx, cancel: cancel, runs: (len(w.files) + runFiles - 1) / runFiles}
	for k := 0; k < fetchWorkers; k++ {
		fw := &fetchWorker{
			w: w, ctx: ctx,
			out:   make(chan *fetchBatch, workerBatches),
			free:  make(chan *fetchBatch, workerBatches),
			dirfd: -1,
		}
		for i := 0; i < workerBatches; i++ {
			fw.free <- &fetchBatch{owner: fw}
		}
		p.workers = append(p.workers, fw)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			fw.run(k, fetchWorkers, p.runs)
		}()
	}
	return p
}

// next returns the next batch in the order of the walk, nil after the
// last one. The caller gives each batch back with recycle before it asks
// for the next.
func (p *prefetcher) next() (*fetchBatch, error) {
	if p.run >= p.runs {
		return nil, nil
	}
	b, ok := <-p.workers[p.run%len(p.workers)].out
	if !ok {
		if err := p.ctx.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("dump backup: internal error: a prefetch goroutine ended early")
	}
	if b.end {
		p.run++
	}
	return b, nil
}

// stop ends the prefetchers and releases what they prepared but was not
// used. Calling it twice is harmless.
func (p *prefetcher) stop() {
	p.cancel()
	for _, fw := range p.workers {
		for b := range fw.out {
			p.recycle(b)
		}
	}
	p.wg.Wait()
}

// recycle closes the descriptors a batch still holds and gives it back to
// its prefetcher empty; nothing of it may be used afterwards.
func (p *prefetcher) recycle(b *fetchBatch) { b.owner.recycle(b) }

// run prepares the runs first, first+step, ... of the files below runs.
func (fw *fetchWorker) run(first, step, runs int) {
	defer close(fw.out)
	defer fw.closeDir()
	// take gets an empty batch; nil when the backup is cancelled.
	take := func() *fetchBatch {
		select {
		case b := <-fw.free:
			if b.buf == nil {
				b.buf = make([]byte, batchData)
				b.items = make([]fetched, 0, batchFiles)
			}
			return b
		case <-fw.ctx.Done():
			return nil
		}
	}
	// send hands a batch over; false when the backup is cancelled.
	send := func(b *fetchBatch) bool {
		select {
		case fw.out <- b:
			return true
		case <-fw.ctx.Done():
			fw.recycle(b)
			return false
		}
	}
	files := fw.w.files
	for r := first; r < runs; r += step {
		var b *fetchBatch
		for i := r * runFiles; i < min(len(files), (r+1)*runFiles); i++ {
			ref := &files[i]
			if !ref.dump {
				continue
			}
			if b == nil {
				if b = take(); b == nil {
					return
				}
			}
			if fw.ctx.Err() != nil {
				fw.recycle(b)
				return
			}
			b.items = append(b.items, fetched{ref: ref, f: -1})
			it := &b.items[len(b.items)-1]
			fw.fetch(it, b)
			if it.err != nil {
				// The backup ends at this file: nothing more to prepare.
				b.end = true
				send(b)
				return
			}
			// A file the writing goroutine reads itself ends a batch:
			// reading it takes a while, and the next batch gets ready
			// meanwhile.
			if it.f >= 0 || len(b.items) == batchFiles || b.used == len(b.buf) {
				if !send(b) {
					return
				}
				b = nil
			}
		}
		if b == nil {
			if b = take(); b == nil {
				return
			}
		}
		b.end = true
		if !send(b) {
			return
		}
	}
}

// recycle closes the descriptors a batch still holds and makes it empty for
// the next files.
func (fw *fetchWorker) recycle(b *fetchBatch) {
	for i := range b.items {
		if f := b.items[i].f; f >= 0 {
			f.Close()
		}
		b.items[i] = fetched{}
	}
	b.items, b.used, b.end = b.items[:0], 0, false
	fw.free <- b
}

// fullPath returns the host path of the file of it, for messages.
func (p *fetchWorker) fullPath(it *fetched) string {
	return p.w.full(path.Join(p.w.src.rel, it.ref.path))
}

func (p *fetchWorker) closeDir() {
	if p.dirfd >= 0 {
		unix.Close(p.dirfd)
	}
	p.dir, p.dirfd = "", -1
}

// at returns a directory descriptor and a name to open the file rel by:
// consecutive files are mostly in one directory, which is then opened once.
func (p *fetchWorker) at(rel string) (int, string) {
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
func (p *fetchWorker) fetch(it *fetched, b *fetchBatch) {
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
func (p *fetchWorker) fetchRegular(it *fetched, b *fetchBatch, blocks int64) {
	if err := p.readRegular(it, b, blocks); err != nil {
		it.f.Close()
		it.f = -1
		it.err = err
	}
}

func (p *fetchWorker) readRegular(it *fetched, b *fetchBatch, blocks int64) error {
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
func (p *fetchWorker) fetchPath(it *fetched, b *fetchBatch) {
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
