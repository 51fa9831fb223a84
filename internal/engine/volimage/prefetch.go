package volimage

import (
	"fmt"
	"path/filepath"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"golang.org/x/sys/unix"
)

// Read-ahead: the entries of a directory are probed by workers ahead of
// the scanner, which writes their records in order. A cold snapshot of
// small files costs a few random reads per file (inode, attributes, extent
// map, data); done one after the other they leave the disk idle most of
// the time.
const (
	probeWindow = 64       // entries probed ahead of the writer
	smallFile   = 64 << 10 // data read ahead whole when the image needs it
)

// probe is what the scanner needs of one entry.
type probe struct {
	path   string
	st     unix.Stat_t
	ino    uint64        // canonical number
	rec    *smtape.Inode // attributes
	attrs  [16]byte      // digest of rec
	digest [16]byte      // digest of a regular file's extents
	fd     *fileData     // a regular file whose data the image needs: open, mapped
	data   []byte        // the whole data of such a file when it is small
	err    error
	done   chan struct{}
}

// release closes what a probe holds open.
func (p *probe) release() {
	if p.fd != nil {
		p.fd.f.Close()
		p.fd = nil
	}
}

// probeEntry fills p; it runs on a worker, where a panic becomes the
// probe's error (engine.Run) instead of ending the daemon.
func (s *scanner) probeEntry(p *probe) {
	defer close(p.done)
	if err := engine.Run(func() error { return s.probeAll(p) }); err != nil {
		p.release()
		p.err = err
	}
}

func (s *scanner) probeAll(p *probe) error {
	if err := unix.Lstat(p.path, &p.st); err != nil {
		return fmt.Errorf("stat %s: %w", p.path, err)
	}
	p.ino = s.canonical(p.st.Ino)
	var err error
	if p.rec, err = inodeRecord(p.path, &p.st, p.ino); err != nil {
		return err
	}
	p.attrs = attrDigest(p.rec)
	if p.st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil
	}
	fd, err := readExtents(p.path, p.st.Ino, s.btrfs)
	if err != nil {
		return err
	}
	if p.digest, err = dataDigest(fd, &p.st); err != nil || s.dry || s.sameData(p.ino, p.digest) {
		fd.f.Close()
		return err
	}
	p.fd = fd
	if p.st.Size <= smallFile && !hasEncoded(fd.exts) {
		p.data = make([]byte, p.st.Size)
		if _, err := fd.f.ReadAt(p.data, 0); err != nil && p.st.Size > 0 {
			p.data = nil // read again, and fail there, by the writer
		}
	}
	return nil
}

// sameData reports whether the previous snapshot held the same data for
// the inode; workers only read s.prev, which nothing writes meanwhile.
func (s *scanner) sameData(ino uint64, digest [16]byte) bool {
	if s.prev == nil {
		return false
	}
	old, ok := s.prev.inodes[ino]
	return ok && old.data == digest
}

func hasEncoded(exts []extent) bool {
	for _, e := range exts {
		if e.Flags&extentEncoded != 0 {
			return true
		}
	}
	return false
}

// prefetch starts probing the entries names of directory dir, at most
// probeWindow ahead of the consumer, which calls next for each in order
// and stop when it is done (or gives up).
func (s *scanner) prefetch(dir string, names []string) *window {
	w := &window{probes: make([]*probe, len(names)), tokens: make(chan struct{}, probeWindow), quit: make(chan struct{})}
	for i, n := range names {
		w.probes[i] = &probe{path: filepath.Join(dir, n), done: make(chan struct{})}
	}
	go w.feed(s)
	return w
}

// window is the read-ahead of one directory.
type window struct {
	probes  []*probe
	next    int
	tokens  chan struct{} // one per probe started and not yet consumed
	quit    chan struct{}
	stopped bool
}

// feed starts the probes in order as the window allows.
func (w *window) feed(s *scanner) {
	for i, p := range w.probes {
		select {
		case w.tokens <- struct{}{}:
			go s.probeEntry(p)
		case <-w.quit:
			w.abandon(i)
			return
		case <-s.ctx.Done():
			w.abandon(i)
			return
		}
	}
}

// abandon ends the probes from i on without starting them.
func (w *window) abandon(i int) {
	for _, p := range w.probes[i:] {
		p.err = fmt.Errorf("read-ahead stopped before %s", p.path)
		close(p.done)
	}
}

// take waits for the next probe.
func (w *window) take() *probe {
	p := w.probes[w.next]
	w.next++
	<-p.done
	return p
}

// consumed frees the window slot of a probe the consumer is done with.
func (w *window) consumed(p *probe) {
	p.release()
	select {
	case <-w.tokens:
	default: // an abandoned probe held no slot
	}
}

// stop ends the read-ahead: probes not yet taken are waited for and
// closed, so no goroutine or file outlives the directory.
func (w *window) stop() {
	if w.stopped {
		return
	}
	w.stopped = true
	close(w.quit)
	for w.next < len(w.probes) {
		w.consumed(w.take())
	}
}
