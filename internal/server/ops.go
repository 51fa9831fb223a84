package server

import (
	"sync"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/engine/filedump"
)

// opProgress is what monitoring sees of a data service's operation: when
// it started, what it works on and the engine's last progress report
// (issue 17: the web view's phase and ETA, the metrics' durations).
type opProgress struct {
	mu      sync.Mutex
	started time.Time
	path    string
	last    filedump.Progress
}

// start records the start of an operation on path.
func (o *opProgress) start(path string) {
	o.mu.Lock()
	o.started, o.path, o.last = time.Now(), path, filedump.Progress{}
	o.mu.Unlock()
}

// set is the engine's Progress callback. A report without a total (the
// start of a phase) keeps the total known.
func (o *opProgress) set(p filedump.Progress) {
	o.mu.Lock()
	if p.Total == 0 {
		p.Total = o.last.Total
	}
	o.last = p
	o.mu.Unlock()
}

func (o *opProgress) get() (time.Time, string, filedump.Progress) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.started, o.path, o.last
}

// progressInfo fills the operation fields of a SessionInfo.
func (d *dataService) progressInfo(in *SessionInfo) {
	started, _, p := d.opInfo.get()
	in.OpStarted = started
	if p.Phase != 0 {
		in.Phase = p.Phase.String()
	}
	in.Files, in.FilesTotal = p.Files, p.Total
}

// addBytes counts n bytes of the data stream, for the session and the
// server.
func (d *dataService) addBytes(n int) {
	d.bytes.Add(uint64(n))
	d.ss.srv.dataBytes.Add(uint64(n))
}

// noteOperation tells Options.OnOperation that an operation ended.
func (d *dataService) noteOperation(kind string, err error) {
	fn := d.ss.srv.o.OnOperation
	if fn == nil {
		return
	}
	started, path, _ := d.opInfo.get()
	fn(Operation{Kind: kind, Path: path, Started: started, Ended: time.Now(), Bytes: d.bytes.Load(),
		Err: err, Aborted: d.dmaAbort.Load() || d.ss.wasKilled()})
}

// wasKilled reports whether an administrator killed the session.
func (ss *session) wasKilled() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.killed
}
