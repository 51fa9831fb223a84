package dump

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"

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

// entryStat is the result of statx'ing one directory entry.
type entryStat struct {
	sx  unix.Statx_t
	err error
}

// statEntries statx'es names relative to the open directory dirfd into
// out, half of them in a second goroutine when there are many.
func statEntries(dirfd int, names []string, out []entryStat) {
	one := func(i int) {
		out[i].err = unix.Statx(dirfd, names[i], unix.AT_SYMLINK_NOFOLLOW, statxMask, &out[i].sx)
	}
	if len(names) < parallelStat {
		for i := range names {
			one(i)
		}
		return
	}
	half := len(names) / 2
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := half; i < len(names); i++ {
			one(i)
		}
	}()
	for i := 0; i < half; i++ {
		one(i)
	}
	<-done
}

// walkChunk is a run of entries of one directory, in walk order.
type walkChunk struct {
	names []string
	stats []entryStat
	last  bool  // the directory has no more entries
	err   error // the directory could not be read: the walk ends
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

// names returns the entries of the open directory f (rel below the dump
// root) that the backup takes, sorted.
func (l *lister) names(f *os.File, rel string) ([]string, error) {
	w := l.w
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("dump backup: read directory %s: %w", rel, err)
	}
	sort.Strings(names)
	kept := names[:0]
	for _, name := range names {
		if rel == "" && name == snapshot.Dir && w.src.rel == "" {
			continue // never back up the snapshots
		}
		if l.include != nil {
			crel := name
			if rel != "" {
				crel = rel + "/" + name
			}
			if !l.include[crel] && !underAny(crel, l.subtrees) {
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
		kept = append(kept, name)
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
	f, err := os.OpenFile(dp, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NOATIME, 0)
	if err != nil && errors.Is(err, unix.EPERM) {
		f, err = os.OpenFile(dp, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return l.send(walkChunk{err: fmt.Errorf("dump backup: %w", err)})
	}
	// The directory stays open while its entries are statx'ed by name
	// relative to it, across the listing of its subdirectories.
	defer f.Close()
	names, err := l.names(f, rel)
	if err != nil {
		return l.send(walkChunk{err: err})
	}
	dirfd := int(f.Fd())
	for start := 0; start < len(names); start += statBatch {
		batch := names[start:min(len(names), start+statBatch)]
		stats := make([]entryStat, len(batch))
		statEntries(dirfd, batch, stats)
		from := 0
		for i := range batch {
			if stats[i].err != nil || stats[i].sx.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue
			}
			// A subdirectory: the entries up to it, then all of it.
			if err := l.send(walkChunk{names: batch[from : i+1], stats: stats[from : i+1]}); err != nil {
				return err
			}
			from = i + 1
			crel := batch[i]
			if rel != "" {
				crel = rel + "/" + batch[i]
			}
			if err := l.list(crel); err != nil {
				return err
			}
		}
		if from < len(batch) {
			if err := l.send(walkChunk{names: batch[from:], stats: stats[from:]}); err != nil {
				return err
			}
		}
	}
	return l.send(walkChunk{last: true})
}
