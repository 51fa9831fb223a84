package filedump

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
)

// The walk of phases I and II runs in two parts: a lister goroutine opens
// the directories, reads and sorts their names and statx's the entries
// relative to the open directory (half of each batch in a second
// goroutine), and the walker's goroutine turns the results into nodes,
// hands out dump inode numbers and builds the directory entries. Both go
// depth first through the same tree in the same order, so the lister
// streams chunks of entries that the walker takes in exactly that order:
// the entries of a directory up to and including a subdirectory, then
// everything of that subdirectory, then the rest.

// statBatch is the number of directory entries statx'ed at a time;
// parallelStat is the batch size from which a second goroutine statx'es
// half of a batch; walkAhead is the number of chunks the lister may be
// ahead of the walker.
const (
	statBatch    = 256
	parallelStat = 64
	walkAhead    = 16
)

// entryStat is the result of statx'ing one directory entry. In a quick
// walk (walker.quick) a non-directory is not statx'ed: sx then holds only
// the file type bits of Mode, Ino and the device of its directory, from
// the directory entry, and quick is set.
type entryStat struct {
	sx    unix.Statx_t
	err   error
	quick bool
}

// dirent is one entry of a directory as getdents returns it.
type dirent struct {
	path string // relative to the dump root
	ino  uint64
	off  uint32 // the name is path[off:]
	typ  uint8  // DT_* type, DT_UNKNOWN when the file system does not tell
}

// name returns the name of the entry in its directory.
func (e *dirent) name() string { return e.path[e.off:] }

// statEntries statx'es the entries ents of the open directory dirfd into
// out, half of them in a second goroutine when there are many. With quick,
// only directories and entries of unknown type are statx'ed; the others
// get their type and inode number from the entry and dev as device.
func statEntries(dirfd int, ents []dirent, out []entryStat, quick bool, dev uint64) {
	one := func(i int) {
		out[i].err = unix.Statx(dirfd, ents[i].name(), unix.AT_SYMLINK_NOFOLLOW, statxMask, &out[i].sx)
	}
	todo := make([]int, 0, len(ents))
	for i := range ents {
		if quick {
			if m, ok := dtMode(ents[i].typ); ok && m != unix.S_IFDIR {
				out[i] = entryStat{quick: true}
				out[i].sx.Mode = uint16(m)
				out[i].sx.Ino = ents[i].ino
				out[i].sx.Dev_major, out[i].sx.Dev_minor = unix.Major(dev), unix.Minor(dev)
				continue
			}
		}
		todo = append(todo, i)
	}
	if len(todo) < parallelStat {
		for _, i := range todo {
			one(i)
		}
		return
	}
	half := len(todo) / 2
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, i := range todo[half:] {
			one(i)
		}
	}()
	for _, i := range todo[:half] {
		one(i)
	}
	<-done
}

// dtMode returns the file type bits of a directory entry type; false for
// DT_UNKNOWN and anything else it does not know.
func dtMode(t uint8) (uint32, bool) {
	switch t {
	case unix.DT_REG:
		return unix.S_IFREG, true
	case unix.DT_DIR:
		return unix.S_IFDIR, true
	case unix.DT_LNK:
		return unix.S_IFLNK, true
	case unix.DT_FIFO:
		return unix.S_IFIFO, true
	case unix.DT_SOCK:
		return unix.S_IFSOCK, true
	case unix.DT_CHR:
		return unix.S_IFCHR, true
	case unix.DT_BLK:
		return unix.S_IFBLK, true
	}
	return 0, false
}

// readDirents reads all entries of the open directory fd but "." and "..",
// using buf for getdents; the path of each is prefix and its name.
func readDirents(fd int, buf []byte, prefix string) ([]dirent, error) {
	var ents []dirent
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return ents, nil
		}
		for off := 0; off < n; {
			// struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name.
			if off+19 > n {
				return nil, errors.New("getdents: short record")
			}
			rec := buf[off:n]
			reclen := int(binary.NativeEndian.Uint16(rec[16:]))
			if reclen < 19 || reclen > len(rec) {
				return nil, errors.New("getdents: bad record length")
			}
			name := rec[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			off += reclen
			ino := binary.NativeEndian.Uint64(rec)
			if ino == 0 || string(name) == "." || string(name) == ".." {
				continue
			}
			p := prefix + string(name)
			ents = append(ents, dirent{path: p, off: uint32(len(prefix)), ino: ino, typ: rec[18]})
		}
	}
}

// walkChunk is a run of entries of one directory, in walk order.
type walkChunk struct {
	names []dirent
	stats []entryStat
	// entries is the number of entries of the directory in all chunks.
	entries int
	last    bool  // the directory has no more entries
	err     error // the directory could not be read: the walk ends
}

// lister is the goroutine that reads the directories ahead of the walk.
type lister struct {
	w        *walker
	ctx      context.Context
	cancel   context.CancelFunc
	out      chan walkChunk
	done     chan struct{}
	include  map[string]bool
	subtrees []string
	buf      []byte // for getdents
}

// startLister starts listing the tree from the dump root.
func (w *walker) startLister(include map[string]bool, subtrees []string) *lister {
	ctx, cancel := context.WithCancel(w.ctx)
	l := &lister{w: w, ctx: ctx, cancel: cancel, out: make(chan walkChunk, walkAhead),
		done: make(chan struct{}), include: include, subtrees: subtrees}
	go func() {
		defer close(l.done)
		defer close(l.out)
		_ = l.list("")
	}()
	return l
}

// stop ends the lister and waits for it (its directories are closed then).
func (l *lister) stop() {
	l.cancel()
	for range l.out {
	}
	<-l.done
}

// next returns the next chunk of the walk.
func (l *lister) next() (walkChunk, error) {
	select {
	case c, ok := <-l.out:
		if !ok {
			if err := l.w.ctx.Err(); err != nil {
				return c, err
			}
			return c, errors.New("dump backup: internal error: the directory lister ended early")
		}
		return c, c.err
	case <-l.w.ctx.Done():
		return walkChunk{}, l.w.ctx.Err()
	}
}

// send hands a chunk to the walker; an error means the walk is over.
func (l *lister) send(c walkChunk) error {
	select {
	case l.out <- c:
		return c.err
	case <-l.ctx.Done():
		return l.ctx.Err()
	}
}

// entries returns the entries of the open directory fd (rel below the
// dump root) that the backup takes, sorted by name.
func (l *lister) entries(fd int, rel string) ([]dirent, error) {
	w := l.w
	if l.buf == nil {
		l.buf = make([]byte, 32<<10)
	}
	prefix := ""
	if rel != "" {
		prefix = rel + "/"
	}
	ents, err := readDirents(fd, l.buf, prefix)
	if err != nil {
		return nil, fmt.Errorf("dump backup: read directory %s: %w", rel, err)
	}
	// One directory: the same prefix on every path.
	slices.SortFunc(ents, func(a, b dirent) int { return strings.Compare(a.path, b.path) })
	kept := ents[:0]
	for _, e := range ents {
		name := e.name()
		if rel == "" && name == snapshot.Dir && w.src.rel == "" {
			continue // never back up the snapshots
		}
		if l.include != nil {
			if !l.include[e.path] && !underAny(e.path, l.subtrees) {
				continue
			}
		}
		if w.opt.exclude.Match(name) {
			continue
		}
		if rel == "" && w.opt.nonQuotaTree {
			if _, isQ := w.src.qtrees[name]; isQ {
				continue
			}
		}
		kept = append(kept, e)
	}
	return kept, nil
}

// list sends the chunks of directory rel and of everything below it.
func (l *lister) list(rel string) error {
	w := l.w
	if err := l.ctx.Err(); err != nil {
		return err
	}
	dp := w.full(path.Join(w.src.rel, rel))
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	dirfd, err := unix.Open(dp, flags|unix.O_NOATIME, 0)
	if err != nil && errors.Is(err, unix.EPERM) {
		dirfd, err = unix.Open(dp, flags, 0)
	}
	if err != nil {
		return l.send(walkChunk{err: fmt.Errorf("dump backup: %w", &os.PathError{Op: "open", Path: dp, Err: err})})
	}
	// The directory stays open while its entries are statx'ed by name
	// relative to it, across the listing of its subdirectories.
	defer unix.Close(dirfd)
	var dev uint64
	if w.quick {
		// Files are on the file system of their directory.
		var st unix.Stat_t
		if err := unix.Fstat(dirfd, &st); err != nil {
			return l.send(walkChunk{err: fmt.Errorf("dump backup: stat %s: %w", dp, err)})
		}
		dev = st.Dev
	}
	names, err := l.entries(dirfd, rel)
	if err != nil {
		return l.send(walkChunk{err: err})
	}
	for start := 0; start < len(names); start += statBatch {
		batch := names[start:min(len(names), start+statBatch)]
		stats := make([]entryStat, len(batch))
		statEntries(dirfd, batch, stats, w.quick, dev)
		from := 0
		for i := range batch {
			if stats[i].err != nil || stats[i].sx.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue
			}
			// A subdirectory: the entries up to it, then all of it.
			if err := l.send(walkChunk{names: batch[from : i+1], stats: stats[from : i+1], entries: len(names)}); err != nil {
				return err
			}
			from = i + 1
			if err := l.list(batch[i].path); err != nil {
				return err
			}
		}
		if from < len(batch) {
			if err := l.send(walkChunk{names: batch[from:], stats: stats[from:], entries: len(names)}); err != nil {
				return err
			}
		}
	}
	return l.send(walkChunk{last: true})
}
