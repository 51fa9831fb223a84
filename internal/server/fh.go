package server

import (
	"context"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tapestry-ndmp/tapestry/internal/engine/filedump"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// File history batching: entries are posted in FH_ADD_DIR and FH_ADD_NODE
// messages of up to FHBatch entries, through a queue of FHQueueLength
// messages; a full queue makes the backup wait (back pressure) rather than
// buffer without bound.
const (
	FHBatch       = 512
	FHQueueLength = 16
)

// fhQueue turns the dump engine's file history into batched posts. It
// implements filedump.FileHistory.
type fhQueue struct {
	ss    *session
	mu    sync.Mutex
	dirs  []ndmp.Dir
	nodes []ndmp.Node
	files []ndmp.File
	q     chan ndmp.Body
	done  chan struct{}
	err   error
	root  bool // the root entry "." was sent

	depth  atomic.Int64  // posts queued and not yet sent
	stalls atomic.Uint64 // sends that found the queue full
}

func newFHQueue(ss *session) *fhQueue {
	f := &fhQueue{ss: ss, q: make(chan ndmp.Body, FHQueueLength), done: make(chan struct{})}
	ss.fh.Store(f)
	go f.run()
	return f
}

func (f *fhQueue) run() {
	defer close(f.done)
	for b := range f.q {
		f.depth.Add(-1)
		f.ss.srv.fhDepth.Add(-1)
		if f.getErr() != nil {
			continue
		}
		if err := f.ss.conn.Post(f.ss.ctx, b); err != nil {
			f.mu.Lock()
			f.err = err
			f.mu.Unlock()
		}
	}
}

func (f *fhQueue) getErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// send queues b, waiting while the queue is full (counted as a stall).
func (f *fhQueue) send(b ndmp.Body) error {
	// Count before the post is in the channel, so the sender never
	// drops the depth below zero.
	f.depth.Add(1)
	f.ss.srv.fhDepth.Add(1)
	select {
	case f.q <- b:
		return f.getErr()
	default:
	}
	f.stalls.Add(1)
	f.ss.srv.fhStalls.Add(1)
	select {
	case f.q <- b:
		return f.getErr()
	case <-f.ss.ctx.Done():
		f.depth.Add(-1)
		f.ss.srv.fhDepth.Add(-1)
		return context.Cause(f.ss.ctx)
	}
}

func (f *fhQueue) flushDirs() error {
	if len(f.dirs) == 0 {
		return nil
	}
	b := &ndmp.FHAddDirPost{Dirs: f.dirs}
	f.dirs = nil
	return f.send(b)
}

func (f *fhQueue) flushNodes() error {
	if len(f.nodes) == 0 {
		return nil
	}
	b := &ndmp.FHAddNodePost{Nodes: f.nodes}
	f.nodes = nil
	return f.send(b)
}

// AddDir queues one directory entry (filedump.FileHistory).
func (f *fhQueue) AddDir(h filedump.DirHistory) error {
	if err := f.flushNodes(); err != nil {
		return err
	}
	if !f.root {
		// DMAs expect the first entry to name the root directory "." with
		// itself as parent; the engine walks the root first.
		f.root = true
		f.dirs = append(f.dirs, ndmp.Dir{
			Name: []ndmp.FileName{{FSType: ndmp.FSUnix, UnixName: "."}},
			Node: uint64(h.Parent), Parent: uint64(h.Parent),
		})
	}
	f.dirs = append(f.dirs, ndmp.Dir{
		Name:   []ndmp.FileName{{FSType: ndmp.FSUnix, UnixName: h.Name}},
		Node:   uint64(h.Ino),
		Parent: uint64(h.Parent),
	})
	if len(f.dirs) >= FHBatch {
		return f.flushDirs()
	}
	return nil
}

func (f *fhQueue) flushFiles() error {
	if len(f.files) == 0 {
		return nil
	}
	b := &ndmp.FHAddFilePost{Files: f.files}
	f.files = nil
	return f.send(b)
}

// addFile queues one name of a listing (file history of
// DATA_START_RECOVER_FILEHIST) with the attributes the image holds for its
// inode and the position of the inode's header. A name whose inode the
// image does not hold (an incremental image's directory lists every name)
// is left out, as Linux restore -t leaves it out: the listing reports what
// the image holds.
func (f *fhQueue) addFile(e filedump.ListEntry) error {
	if e.Inode == nil {
		return nil
	}
	file := ndmp.File{
		Name:   []ndmp.FileName{{FSType: ndmp.FSUnix, UnixName: "/" + strings.TrimPrefix(e.Path, "/")}},
		Stat:   []ndmp.FileStat{inodeStat(e.Inode)},
		Node:   uint64(e.Ino),
		FHInfo: math.MaxUint64,
	}
	if e.Offset >= 0 {
		file.FHInfo = uint64(e.Offset)
	}
	f.files = append(f.files, file)
	if len(f.files) >= FHBatch {
		return f.flushFiles()
	}
	return nil
}

// AddNode queues one inode (filedump.FileHistory).
func (f *fhQueue) AddNode(h filedump.NodeHistory) error {
	if err := f.flushDirs(); err != nil {
		return err
	}
	f.nodes = append(f.nodes, ndmp.Node{
		Stats:  []ndmp.FileStat{fileStat(&h)},
		Node:   uint64(h.Inode.Ino),
		FHInfo: uint64(h.FHInfo),
	})
	if len(f.nodes) >= FHBatch {
		return f.flushNodes()
	}
	return nil
}

// close flushes the batches, waits until everything is posted and returns
// the first post error.
func (f *fhQueue) close() error {
	err := f.flushDirs()
	if err == nil {
		err = f.flushNodes()
	}
	if err == nil {
		err = f.flushFiles()
	}
	close(f.q)
	<-f.done
	if err != nil {
		return err
	}
	return f.getErr()
}
