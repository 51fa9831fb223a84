package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	imgdump "github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/engine/filedump"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// ProgressInterval is the longest time between two LOG_MESSAGE progress
// reports of a running backup or restore.
const ProgressInterval = 30 * time.Second

// dataService is the DATA service of a session (draft 3.5).
type dataService struct {
	ss *session
	mu sync.Mutex

	st     ndmp.DataState
	op     ndmp.DataOperation
	halt   ndmp.DataHaltReason
	addr   ndmp.Addr
	env    []ndmp.Pval
	bytes  atomic.Uint64
	ln     net.Listener
	dc     net.Conn
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// netMsg is the ONTAP message for a failure of the data connection
	// (N18), set by the stream wrappers.
	netMsg atomic.Pointer[string]
	// dmaAbort is set by DATA_ABORT: the operation's failure is the DMA's
	// wish, not an error to log.
	dmaAbort atomic.Bool
	// op describes the running operation for monitoring (ops.go).
	opInfo opProgress
}

// abortedByDMA reports whether the running operation was stopped with
// DATA_ABORT.
func (d *dataService) abortedByDMA() bool { return d.dmaAbort.Load() }

// noteNet records the ONTAP message for a data connection failure (the
// first one wins).
func (d *dataService) noteNet(msg string) {
	d.netMsg.CompareAndSwap(nil, &msg)
}

func newDataService(ss *session) *dataService {
	return &dataService{ss: ss, st: ndmp.DataStateIdle}
}

func (d *dataService) getState() ndmp.DataGetStateReply {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := ndmp.DataGetStateReply{
		Unsupported:        ndmp.DataStateEstBytesRemainUns | ndmp.DataStateEstTimeRemainUns,
		Operation:          d.op,
		State:              d.st,
		BytesProcessed:     d.bytes.Load(),
		DataConnectionAddr: d.addr,
	}
	if d.st == ndmp.DataStateHalted {
		r.HaltReason = d.halt
	}
	return r
}

func (d *dataService) checkConnect(t ndmp.AddrType, op string) ndmp.Error {
	if d.st != ndmp.DataStateIdle {
		return ndmp.ErrIllegalState
	}
	if e := d.ss.validConnType(t); e != ndmp.NoErr {
		return e
	}
	return d.ss.checkCAB(op, t)
}

// listen handles DATA_LISTEN.
func (d *dataService) listen(ctx context.Context, t ndmp.AddrType) (ndmp.Body, ndmp.Error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e := d.checkConnect(t, "DATA LISTEN"); e != ndmp.NoErr {
		return nil, e
	}
	if t == ndmp.AddrLocal {
		d.st, d.addr = ndmp.DataStateListen, ndmp.Addr{AddrType: ndmp.AddrLocal}
		return &ndmp.DataListenReply{ConnectAddr: d.addr}, ndmp.NoErr
	}
	ln, a, e := d.ss.listenData(ctx, t)
	if e != ndmp.NoErr {
		return nil, e
	}
	d.st, d.ln, d.addr = ndmp.DataStateListen, ln, a
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		c, err := ln.Accept()
		d.mu.Lock()
		if d.st != ndmp.DataStateListen || d.ln != ln {
			d.mu.Unlock()
			if c != nil {
				_ = c.Close()
			}
			return
		}
		_ = ln.Close()
		d.ln = nil
		if err != nil {
			d.haltAndNotifyLocked(ndmp.DataHaltConnectError)
			return
		}
		d.dc, d.st = c, ndmp.DataStateConnected
		d.mu.Unlock()
	}()
	return &ndmp.DataListenReply{ConnectAddr: a}, ndmp.NoErr
}

// acceptLocal connects a mover to a data service listening LOCAL and
// returns the mover's end.
func (d *dataService) acceptLocal() (net.Conn, ndmp.Error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st != ndmp.DataStateListen || d.addr.AddrType != ndmp.AddrLocal {
		return nil, ndmp.ErrIllegalState
	}
	a, b := newLocalPipe()
	d.dc, d.st = a, ndmp.DataStateConnected
	return b, ndmp.NoErr
}

// connect handles DATA_CONNECT.
func (d *dataService) connect(ctx context.Context, a ndmp.Addr) ndmp.Error {
	d.mu.Lock()
	e := d.checkConnect(a.AddrType, "DATA CONNECT")
	d.mu.Unlock()
	if e != ndmp.NoErr {
		return e
	}
	c, e := d.ss.openData(ctx, a, d.ss.mover.acceptLocal)
	if e != ndmp.NoErr {
		return e
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st != ndmp.DataStateIdle {
		_ = c.Close()
		return ndmp.ErrIllegalState
	}
	d.dc, d.addr, d.st = c, a, ndmp.DataStateConnected
	return ndmp.NoErr
}

// haltAndNotifyLocked moves to HALTED and posts NOTIFY_DATA_HALTED. Call
// with d.mu held; it returns with d.mu released.
func (d *dataService) haltAndNotifyLocked(r ndmp.DataHaltReason) {
	if !d.haltLocked(r) {
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	d.ss.postQuiet(&ndmp.NotifyDataHaltedPost{Reason: r})
}

func (d *dataService) haltLocked(r ndmp.DataHaltReason) bool {
	if d.st == ndmp.DataStateHalted || d.st == ndmp.DataStateIdle {
		return false
	}
	d.st, d.halt = ndmp.DataStateHalted, r
	if d.ln != nil {
		_ = d.ln.Close()
		d.ln = nil
	}
	if d.dc != nil {
		_ = d.dc.Close()
	}
	if d.cancel != nil {
		d.cancel()
	}
	return true
}

func (d *dataService) abort() ndmp.Error {
	d.mu.Lock()
	switch d.st {
	case ndmp.DataStateIdle:
		d.mu.Unlock()
		return ndmp.ErrIllegalState
	case ndmp.DataStateHalted:
		d.mu.Unlock()
		return ndmp.NoErr
	}
	d.dmaAbort.Store(true)
	d.haltAndNotifyLocked(ndmp.DataHaltAborted)
	return ndmp.NoErr
}

func (d *dataService) stop() ndmp.Error {
	d.mu.Lock()
	if d.st != ndmp.DataStateHalted {
		d.mu.Unlock()
		return ndmp.ErrIllegalState
	}
	d.mu.Unlock()
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st, d.op, d.halt = ndmp.DataStateIdle, ndmp.DataOpNoaction, ndmp.DataHaltNA
	d.addr, d.env, d.ln, d.dc, d.cancel = ndmp.Addr{}, nil, nil, nil, nil
	d.bytes.Store(0)
	d.netMsg.Store(nil)
	d.dmaAbort.Store(false)
	return ndmp.NoErr
}

func (d *dataService) getEnv() (ndmp.Body, ndmp.Error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st != ndmp.DataStateActive && d.st != ndmp.DataStateHalted {
		return nil, ndmp.ErrIllegalState
	}
	env := append([]ndmp.Pval(nil), d.env...)
	for i := range env {
		env[i].Value = d.ss.svmPaths(d.ss.ctx, env[i].Value)
	}
	return &ndmp.DataGetEnvReply{Env: env}, ndmp.NoErr
}

func (d *dataService) shutdown() {
	d.mu.Lock()
	d.haltLocked(ndmp.DataHaltAborted)
	d.mu.Unlock()
	d.wg.Wait()
}

// isYes reads an NDMP Y/N variable (N16: T also means Y).
func isYes(v string) bool {
	v = strings.ToUpper(strings.TrimSpace(v))
	return v == "Y" || v == "T" || v == "YES" || v == "TRUE"
}

// volumeVisible checks that the backup path lies in a volume the session
// may use (N6, N15).
func (d *dataService) resolve(ctx context.Context, path string) (storage.Location, error) {
	loc, err := d.ss.srv.o.Storage.Resolve(ctx, path)
	if err != nil {
		return loc, err
	}
	vols, err := d.ss.visibleVolumes(ctx)
	if err != nil {
		return loc, err
	}
	for _, v := range vols {
		if v.SVM == loc.Volume.SVM && v.Name == loc.Volume.Name {
			return loc, nil
		}
	}
	return loc, fmt.Errorf("volume %s of %s is not available on this LIF", loc.Volume.Name, loc.Volume.SVM)
}

// checkVolume refuses a backup path whose volume is not available on this
// LIF, with ONTAP's message naming the volume.
func (d *dataService) checkVolume(ctx context.Context, path string) ndmp.Error {
	_, err := d.resolve(ctx, path)
	if err == nil {
		return ndmp.NoErr
	}
	vol := path
	if _, v, _, e := storage.SplitBackupPath(path); e == nil {
		vol = v
	}
	msg := "Could not obtain vol ref for Volume " + vol
	d.ss.log.Warn(msg, "err", err)
	d.ss.logMessage(ndmp.LogError, msg)
	return ndmp.ErrIllegalArgs
}

// checkButype accepts the one backup type this server has, "dump" (an
// empty name means it too), and logs any other to the DMA.
func (d *dataService) checkButype(bt string) ndmp.Error {
	if bt == "" || bt == "dump" {
		return ndmp.NoErr
	}
	d.ss.logMessage(ndmp.LogError, "backup type "+bt+" is not supported by this server")
	return ndmp.ErrIllegalArgs
}

// startBackup handles DATA_START_BACKUP with the dump engine.
func (d *dataService) startBackup(ctx context.Context, req *ndmp.DataStartBackupRequest) ndmp.Error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st != ndmp.DataStateConnected {
		return ndmp.ErrIllegalState
	}
	if e := d.checkButype(req.ButypeName); e != ndmp.NoErr {
		return e
	}
	env := ndmp.Env(req.Env)
	if t, ok := env["TYPE"]; ok && t != "" && t != "dump" {
		return ndmp.ErrIllegalArgs
	}
	path := env["FILESYSTEM"]
	if path == "" {
		d.ss.logMessage(ndmp.LogError, "FILESYSTEM is not set")
		return ndmp.ErrIllegalArgs
	}
	if e := d.checkVolume(ctx, path); e != ndmp.NoErr {
		return e
	}
	bctx, cancel := context.WithCancel(d.ss.ctx)
	d.cancel, d.st, d.op = cancel, ndmp.DataStateActive, ndmp.DataOpBackup
	d.opInfo.start(path)
	dc := d.dc
	rs := int(d.ss.mover.state().RecordSize)
	if rs == 0 {
		rs = 10240
	}
	var fh *fhQueue
	if isYes(env["HIST"]) {
		fh = newFHQueue(d.ss)
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer cancel()
		stopProgress := d.progress(bctx, "backup")
		// The engine writes one tape record at a time (10 KB in a
		// three-way copy); a larger buffer makes far fewer writes to the
		// data connection. It is flushed before the connection closes.
		w := bufio.NewWriterSize(&countWriter{w: dc, n: &d.bytes, d: d}, dataConnBuffer)
		br := filedump.BackupRequest{
			Storage:    d.ss.srv.o.Storage,
			Path:       path,
			Catalog:    d.ss.srv.o.Catalog,
			Env:        filedump.Env(env),
			Output:     w,
			RecordSize: rs,
			Host:       d.ss.srv.o.Hostname,
			Limiter:    d.ss.srv.o.DumpLimiter,
			Snapshots:  &d.ss.srv.snapNames,
			InodeMaps:  &d.ss.srv.inodeMaps,
			Progress:   d.opInfo.set,
		}
		if fh != nil {
			br.History = fh
		}
		if l := d.ss.sessionEvents(); l != nil {
			// ONTAP names a dump "/vs1/vol1/(7)": the path with a slash,
			// then the dump's id, one per dump of the node (a session may
			// make several).
			dev, _ := d.ss.deviceNames()
			br.Log = &dumpEvents{DumpLog: l.Dump(strings.TrimSuffix(path, "/")+"/", d.ss.srv.dumpSeq.Add(1)), opts: eventOptions(env), device: dev, aborted: d.abortedByDMA}
		}
		res, err := filedump.Backup(bctx, br)
		if err == nil {
			if ferr := w.Flush(); ferr != nil {
				err = fmt.Errorf("dump backup: write: %w", ferr)
			}
		}
		if fh != nil {
			if ferr := fh.close(); err == nil && ferr != nil {
				err = ferr
			}
		}
		stopProgress()
		// Closing the data connection lets the mover write the last record
		// and halt.
		_ = dc.Close()
		d.finish(res.Env, err, "backup")
	}()
	return ndmp.NoErr
}

// finish halts the data service after an operation.
func (d *dataService) finish(env map[string]string, err error, what string) {
	d.noteOperation(what, err)
	d.mu.Lock()
	for k, v := range env {
		d.env = append(d.env, ndmp.Pval{Name: k, Value: v})
	}
	if d.st != ndmp.DataStateActive {
		d.mu.Unlock()
		return
	}
	reason := ndmp.DataHaltSuccessful
	if err != nil {
		reason = ndmp.DataHaltInternalError
		if errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed) {
			reason = ndmp.DataHaltConnectError
		}
		msg := filedump.Message(err)
		if msg == "" {
			msg = err.Error()
		}
		d.mu.Unlock()
		d.ss.log.Warn(what+" failed", "err", err)
		if nm := d.netMsg.Load(); nm != nil {
			d.ss.log.Warn(*nm)
			d.ss.logMessage(ndmp.LogError, *nm)
		}
		d.ss.logMessage(ndmp.LogError, msg)
		d.mu.Lock()
	} else {
		d.mu.Unlock()
		d.ss.logMessage(ndmp.LogNormal, fmt.Sprintf("%s finished: %d bytes", what, d.bytes.Load()))
		d.mu.Lock()
	}
	d.haltAndNotifyLocked(reason)
}

// progress posts a LOG_MESSAGE every ProgressInterval until stopped.
func (d *dataService) progress(ctx context.Context, what string) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d.ss.srv.o.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				d.ss.logMessage(ndmp.LogNormal, fmt.Sprintf("%s in progress: %d KB done", what, d.bytes.Load()>>10))
			}
		}
	}()
	return func() { cancel(); <-done }
}

// dataConnBuffer is the size of the buffer between the dump engine and
// the data connection of a backup.
const dataConnBuffer = 256 << 10

type countWriter struct {
	w io.Writer
	n *atomic.Uint64
	d *dataService
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(uint64(n))
	c.d.ss.srv.dataBytes.Add(uint64(n))
	if err != nil {
		c.d.noteNet("Message from Write Dirnet: " + err.Error())
	}
	return n, err
}

// startRecover handles DATA_START_RECOVER and
// DATA_START_RECOVER_FILEHIST with the dump engine. The destination is the
// nlist's destination_dir (a backup path /svm/volume[/path]) or, without
// one, FILESYSTEM; each nlist entry names a path of the image
// (original_path) and optionally a new name; LOG_FILE reports every name of
// the list when the restore ends, and every file that fails (logFiles).
func (d *dataService) startRecover(ctx context.Context, req *ndmp.DataStartRecoverRequest, op ndmp.DataOperation) ndmp.Error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st != ndmp.DataStateConnected {
		return ndmp.ErrIllegalState
	}
	if e := d.checkButype(req.ButypeName); e != ndmp.NoErr {
		return e
	}
	env := ndmp.Env(req.Env)
	d.ss.log.Debug("start recover", "op", op.String(), "env", req.Env, "nlist", req.Nlist)
	dest := env["FILESYSTEM"]
	if dest == "" {
		dest = env["PREFIX"]
	}
	if dest == "" && len(req.Nlist) > 0 {
		// The nlist's destination paths name where each entry goes; restore
		// relative to the volume that holds the first.
		dest = req.Nlist[0].DestinationDir
		if svm, vol, _, err := storage.SplitBackupPath(dest); err == nil {
			dest = "/" + svm + "/" + vol
		}
	}
	var names []filedump.RestoreName
	for _, n := range req.Nlist {
		fh := int64(-1)
		if n.FHInfo != math.MaxUint64 && n.FHInfo <= math.MaxInt64 {
			fh = int64(n.FHInfo)
		}
		names = append(names, filedump.RestoreName{Original: strings.TrimPrefix(n.OriginalPath, "/"), Dest: nameDest(dest, n), FHInfo: fh})
	}
	lf := newLogFiles(d.ss, req.Nlist, names)
	listOnly := op == ndmp.DataOpRecoverFilehist
	if !listOnly && dest != "" {
		if names = lf.refuseOutside(dest, req.Nlist, names); len(names) == 0 && len(req.Nlist) > 0 {
			// Every name was refused: restoring none must not become
			// restoring everything.
			lf.finish(nil)
			return ndmp.ErrIllegalArgs
		}
	}
	if len(names) == 1 && names[0].Original == "" && names[0].Dest == "" {
		// One name for the whole image, restored onto the restore root, is a
		// full restore: incremental images then apply deletions and renames
		// and restore the root's own attributes (as ndmpcopy asks).
		names = nil
	}
	if dest == "" && !listOnly {
		d.ss.logMessage(ndmp.LogError, "no restore destination: set FILESYSTEM or the destination directory")
		return ndmp.ErrIllegalArgs
	}
	if listOnly {
		// RECOVER_FILEHIST lists the image as file history and writes
		// nothing.
		env["LIST"] = "Y"
	} else if e := d.checkVolume(ctx, dest); e != ndmp.NoErr {
		return e
	}
	var policy *filedump.RestorePolicy
	if !listOnly {
		var e ndmp.Error
		if policy, e = d.restorePolicy(ctx, dest); e != ndmp.NoErr {
			return e
		}
	}
	rctx, cancel := context.WithCancel(d.ss.ctx)
	d.cancel, d.st, d.op = cancel, ndmp.DataStateActive, op
	d.opInfo.start(dest)
	dc := d.dc
	d.wg.Add(1)
	direct := isYes(env["DIRECT"]) && !listOnly && len(names) > 0
	go func() {
		defer d.wg.Done()
		defer cancel()
		stopProgress := d.progress(rctx, "restore")
		rr := filedump.RestoreRequest{
			Env:      filedump.Env(env),
			Names:    names,
			Policy:   policy,
			Limiter:  d.ss.srv.o.DumpLimiter,
			OnName:   lf.onName,
			Progress: d.opInfo.set,
			// The engine reads ndmpd.offset_map.enable from it.
			Catalog: d.ss.srv.o.Catalog,
		}
		if direct {
			// Direct access recovery: every read of the engine becomes a
			// NOTIFY_DATA_READ for the DMA to turn into MOVER_READ.
			rr.InputAt = &darReader{d: d, r: dc}
		} else {
			// Ask the DMA to have the mover send the whole image.
			d.ss.postQuiet(&ndmp.NotifyDataReadPost{Offset: 0, Length: math.MaxUint64})
			rr.Input = &countReader{r: dc, n: &d.bytes, d: d}
		}
		var fh *fhQueue
		var rev *restoreEvents
		if listOnly {
			tmp, err := os.MkdirTemp("", "tapestry-list-")
			if err != nil {
				lf.finish(err)
				stopProgress()
				_ = dc.Close()
				d.finish(nil, err, "restore")
				return
			}
			defer os.RemoveAll(tmp)
			rr.Dest = tmp
			fh = newFHQueue(d.ss)
			rr.OnList = func(e filedump.ListEntry) { _ = fh.addFile(e) }
		} else {
			rr.Storage, rr.Path = d.ss.srv.o.Storage, dest
			var err error
			if rr.StateDir, err = d.ss.srv.restoreStateDir(rctx, dest); err != nil {
				lf.finish(err)
				stopProgress()
				_ = dc.Close()
				d.finish(nil, err, "restore")
				return
			}
			if l := d.ss.sessionEvents(); l != nil {
				dev, _ := d.ss.deviceNames()
				rev = &restoreEvents{RestoreLog: l.Restore(dest), opts: eventOptions(env), device: dev, aborted: d.abortedByDMA}
				rr.Log = rev
			}
		}
		res, err := filedump.Restore(rctx, rr)
		lf.finish(err)
		if rev != nil {
			rev.failed(err)
		}
		if fh != nil {
			if ferr := fh.close(); err == nil && ferr != nil {
				err = ferr
			}
		}
		stopProgress()
		_ = dc.Close()
		if err == nil && res.Errors > 0 {
			d.ss.logMessage(ndmp.LogWarning, fmt.Sprintf("%d names could not be restored", res.Errors))
		}
		if err == nil && !listOnly {
			// Issue 17 item 5: the DMA's summary counts files, not names.
			d.ss.logMessage(ndmp.LogNormal, fmt.Sprintf(RestoredFilesFormat, res.Files))
		}
		d.finish(nil, err, "restore")
	}()
	return ndmp.NoErr
}

// RestoredFilesFormat is the LOG_MESSAGE a successful restore posts before
// it halts: how many files (inodes: files, directories, links, ...) it
// restored. Tapestry's DMAs read it for their summaries.
const RestoredFilesFormat = "%d files restored"

// logFiles reports a recovery to the DMA with LOG_FILE posts (draft 4.2.2):
// one for each name of the name list (or for "/", the whole image, when the
// list is empty), named by its original_path as the DMA sent it, once the
// restore has ended, failed when any file or directory restored for it
// failed; and one for each file or directory that fails, as it fails, named
// by its path below the restore root, so that the DMA learns which one. A
// file restored without trouble is not reported on its own: the draft asks
// servers not to, and a full restore of many small files would otherwise
// send one post per file (ndmpcopy's restores).
type logFiles struct {
	ss      *session
	mu      sync.Mutex
	entries []logFileEntry
}

// logFileEntry is one name of the name list.
type logFileEntry struct {
	name   string // original_path as the DMA sent it
	orig   string // the original path as the engine reports a name it cannot find
	prefix string // where its files go, relative to the restore root ("": everywhere)
	status ndmp.RecoveryStatus
}

// newLogFiles prepares the reports of the name list nlist, whose entries the
// engine restores as names (same order). An empty list asks for the whole
// image, which is reported as one name, "/".
func newLogFiles(ss *session, nlist []ndmp.Name, names []filedump.RestoreName) *logFiles {
	lf := &logFiles{ss: ss}
	if len(nlist) == 0 {
		lf.entries = []logFileEntry{{name: "/", status: ndmp.RecoverySuccessful}}
		return lf
	}
	for i, n := range nlist {
		e := logFileEntry{name: n.OriginalPath, orig: names[i].Original, status: ndmp.RecoverySuccessful}
		p := names[i].Dest
		if p == "" {
			p = names[i].Original
		}
		e.prefix = strings.Trim(path.Clean("/"+p), "/")
		lf.entries = append(lf.entries, e)
	}
	return lf
}

// onName takes the engine's result for one restored name.
func (lf *logFiles) onName(nr filedump.NameResult) {
	if nr.Err == nil {
		return
	}
	st := recoveryStatus(nr.Err)
	lf.mu.Lock()
	for i := range lf.entries {
		if e := &lf.entries[i]; e.status == ndmp.RecoverySuccessful && e.covers(nr.Path) {
			e.status = st
		}
	}
	lf.mu.Unlock()
	lf.ss.postQuiet(&ndmp.LogFilePost{Name: nr.Path, RecoveryStatus: st})
}

// covers reports whether the name p the engine reported belongs to e.
func (e *logFileEntry) covers(p string) bool {
	if p == e.orig {
		return true
	}
	p = strings.Trim(p, "/")
	return e.prefix == "" || p == e.prefix || strings.HasPrefix(p, e.prefix+"/")
}

// finish posts the report of every name of the name list; err is how the
// restore ended (a name not reported as failed fails with it).
func (lf *logFiles) finish(err error) {
	lf.mu.Lock()
	entries := append([]logFileEntry(nil), lf.entries...)
	lf.mu.Unlock()
	for _, e := range entries {
		st := e.status
		if err != nil && st == ndmp.RecoverySuccessful {
			st = recoveryStatus(err)
		}
		lf.ss.postQuiet(&ndmp.LogFilePost{Name: e.name, RecoveryStatus: st})
	}
}

// nameDest is where an nlist entry goes, relative to the restore root:
// its destination_dir (the full destination path of the entry, as NDMJOB
// and ONTAP send it) below root, joined with name when one is given.
func nameDest(root string, n ndmp.Name) string {
	d := path.Clean("/" + n.DestinationDir)
	r := path.Clean("/" + root)
	rel := ""
	switch {
	case n.DestinationDir == "" || d == r:
	case strings.HasPrefix(d, r+"/"):
		rel = strings.TrimPrefix(d, r+"/")
	case r == "/":
		rel = strings.TrimPrefix(d, "/")
	}
	if n.Name != "" {
		rel = path.Join(rel, strings.TrimPrefix(n.Name, "/"))
	}
	return rel
}

// recoveryStatus maps a restore error to LOG_FILE's recovery status.
func recoveryStatus(err error) ndmp.RecoveryStatus {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return ndmp.RecoveryFailedPermission
	case errors.Is(err, fs.ErrNotExist):
		return ndmp.RecoveryFailedNotFound
	case errors.Is(err, fs.ErrExist):
		return ndmp.RecoveryFailedFilePathExists
	}
	return ndmp.RecoveryFailedIoError
}

// darReader reads the image at any offset through the mover: it posts
// NOTIFY_DATA_READ(offset, length) and reads that many bytes from the data
// connection (draft 3.5, direct access recovery).
type darReader struct {
	d  *dataService
	mu sync.Mutex
	r  io.Reader
}

func (r *darReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.d.ss.log.Debug("dar read", "offset", off, "length", len(p))
	if err := r.d.ss.conn.Post(r.d.ss.ctx, &ndmp.NotifyDataReadPost{Offset: uint64(off), Length: uint64(len(p))}); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(r.r, p)
	r.d.addBytes(n)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

type countReader struct {
	r io.Reader
	n *atomic.Uint64
	d *dataService
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(uint64(n))
	c.d.ss.srv.dataBytes.Add(uint64(n))
	switch {
	case errors.Is(err, io.EOF):
		c.d.noteNet("Read Socket received EOF")
	case err != nil:
		c.d.noteNet("Message from Read Socket: " + err.Error())
	}
	return n, err
}

// fileStat converts a dump inode to an NDMP file_stat.
func fileStat(in *filedump.NodeHistory) ndmp.FileStat { return inodeStat(&in.Inode) }

// inodeStat converts inode attributes to an NDMP file_stat: type, mode
// bits, owner, group, size, links and times; an access or change time the
// inode lacks is flagged unsupported.
func inodeStat(i *imgdump.Inode) ndmp.FileStat {
	ft := ndmp.FileOther
	switch i.FileMode().Type() {
	case 0:
		ft = ndmp.FileReg
	case fs.ModeDir:
		ft = ndmp.FileDir
	case fs.ModeSymlink:
		ft = ndmp.FileSlink
	case fs.ModeNamedPipe:
		ft = ndmp.FileFifo
	case fs.ModeSocket:
		ft = ndmp.FileSock
	case fs.ModeDevice:
		ft = ndmp.FileBspec
	case fs.ModeDevice | fs.ModeCharDevice:
		ft = ndmp.FileCspec
	}
	st := ndmp.FileStat{
		FSType: ndmp.FSUnix,
		Ftype:  ft,
		Mtime:  unixSeconds(i.Mtime),
		Atime:  unixSeconds(i.Atime),
		Ctime:  unixSeconds(i.Ctime),
		Owner:  i.UID,
		Group:  i.GID,
		Fattr:  i.Mode & 0o7777,
		Size:   uint64(i.Size),
		Links:  uint32(i.Nlink),
	}
	if i.Atime.IsZero() {
		st.Unsupported |= ndmp.FileStatAtimeUns
	}
	if i.Ctime.IsZero() {
		st.Unsupported |= ndmp.FileStatCtimeUns
	}
	return st
}

// unixSeconds is t in seconds since 1970 as file_stat holds it: 0 for no
// time or one before 1970.
func unixSeconds(t time.Time) uint32 {
	if t.IsZero() || t.Unix() < 0 {
		return 0
	}
	return uint32(t.Unix())
}
