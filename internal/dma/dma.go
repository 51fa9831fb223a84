// Package dma is a small NDMP data management application (DMA): it drives
// one backup or one restore on one NDMP v4 server whose data and tape
// services share the session (the local topology of the NDMP draft).
//
// A backup opens the tape device, positions it to the requested tape file,
// sets the mover's record size, makes the mover listen on a LOCAL data
// connection, connects the data service to it and starts a dump backup. The
// DMA then waits for NOTIFY_DATA_HALTED and NOTIFY_MOVER_HALTED, reads the
// environment the backup returned (DUMP_DATE and friends), stops both
// services, writes a file mark after the image and closes the tape:
//
//	res, err := dma.Backup(ctx, dma.Job{
//		Addr: "127.0.0.1:10000", User: "backup", Password: pw,
//		Device: "nrst0l", FileSystem: "/vs1/vol1", Level: 0, TapeFile: 0,
//	})
//
// A restore positions the tape to the tape file of the image, makes the
// mover listen in WRITE mode, starts the recovery into Dest and answers the
// data service's NOTIFY_DATA_READ with MOVER_READ.
//
// End of medium during a backup (NOTIFY_MOVER_PAUSED with reason EOM) ends
// the job with ErrEndOfMedium: this DMA does not change cartridges.
// Progress is reported through Job.Progress from the server's LOG_MESSAGE
// posts and from polling the data service.
package dma

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// Defaults of a Job.
const (
	// DefaultRecordSize is the tape record size when Job.RecordSize is 0.
	DefaultRecordSize = 64 << 10
	// DefaultProgressInterval is how often the data service is polled for
	// progress when Job.ProgressInterval is 0.
	DefaultProgressInterval = time.Second
	// DefaultHaltTimeout bounds the wait for the services to halt after an
	// abort when Job.HaltTimeout is 0.
	DefaultHaltTimeout = 30 * time.Second
	// Butype is the backup type the DMA asks for.
	Butype = "dump"
)

// ErrEndOfMedium is returned (wrapped) when the tape fills up during a
// backup: the mover paused with NDMP_MOVER_PAUSE_EOM.
var ErrEndOfMedium = errors.New("end of medium: the cartridge is full")

// invalidQuad is NDMP's "no value" for node and fh_info.
const invalidQuad = math.MaxUint64

// Job describes one backup or restore.
type Job struct {
	// Addr is the NDMP server, host:port.
	Addr string
	// User and Password log in; AuthType is ndmp.AuthMD5 (the zero value
	// ndmp.AuthNone also means MD5) or ndmp.AuthText.
	User, Password string
	AuthType       ndmp.AuthType
	// Device is the tape device, for example "nrst0l".
	Device string
	// FileSystem is the backup path /svm/volume[/path] (backup only).
	FileSystem string
	// Level is the dump level 0-9 (backup only).
	Level int
	// Env holds more environment variables for DATA_START_BACKUP or
	// DATA_START_RECOVER; they override the ones the job sets.
	Env []ndmp.Pval
	// RecordSize is the tape record size in bytes (DefaultRecordSize if 0).
	// A restore must use the record size of the backup.
	RecordSize uint32
	// Hist asks the backup for file history (HIST=Y).
	Hist bool
	// TapeFile is the tape file to position to before the job, counted
	// from 0 at the beginning of the tape: the tape is rewound and spaced
	// forward over TapeFile file marks. A negative value leaves the tape
	// where it is.
	TapeFile int
	// Dest is the restore destination /svm/volume[/path] (restore only).
	Dest string
	// Names are the paths of the image to restore, relative to its root;
	// empty restores everything (restore only).
	Names []string
	// Progress, if not nil, receives progress reports, one at a time.
	Progress func(Progress)
	// ProgressInterval is how often progress is polled
	// (DefaultProgressInterval if 0).
	ProgressInterval time.Duration
	// HaltTimeout bounds the wait for the services to halt after an abort
	// (DefaultHaltTimeout if 0).
	HaltTimeout time.Duration
}

// Progress is one progress report of a running job.
type Progress struct {
	// Bytes is the number of bytes the data service processed so far.
	Bytes uint64
	// Elapsed is the time since the job started.
	Elapsed time.Duration
	// Message is a log message of the server (empty for a poll report);
	// Type tells its kind.
	Message string
	Type    ndmp.LogType
	// DataState and MoverState are the states last seen.
	DataState  ndmp.DataState
	MoverState ndmp.MoverState
}

// Result describes a finished job.
type Result struct {
	// Bytes is the number of bytes the data service processed.
	Bytes uint64
	// TapeFile is the tape file the image starts at (the tape's file
	// number before the job), or -1 when the server does not report it.
	TapeFile int
	// RecordSize is the tape record size used.
	RecordSize uint32
	// DumpDate is the DUMP_DATE the backup returned.
	DumpDate string
	// Env is the environment the backup returned (DATA_GET_ENV).
	Env []ndmp.Pval
	// FileHistory is the number of file history entries received (files,
	// directory entries and nodes).
	FileHistory int
	// Files is the number of LOG_FILE reports of a restore, and Failed how
	// many of them reported a failure.
	Files, Failed int
	// Elapsed is the time from the start of the data operation to the end.
	Elapsed time.Duration
}

// session is one control connection and what its posts told.
type session struct {
	job *Job
	c   *ndmp.Client

	dataHalted  chan ndmp.DataHaltReason
	moverHalted chan ndmp.MoverHaltReason
	moverPaused chan ndmp.MoverPauseReason

	mu       sync.Mutex
	lastErr  string
	fh       int
	files    int
	failed   int
	start    time.Time
	lastData ndmp.DataState
	lastMove ndmp.MoverState
	progMu   sync.Mutex
}

func (s *session) report(p Progress) {
	if s.job.Progress == nil {
		return
	}
	s.progMu.Lock()
	defer s.progMu.Unlock()
	s.mu.Lock()
	if !s.start.IsZero() {
		p.Elapsed = time.Since(s.start)
	}
	p.DataState, p.MoverState = s.lastData, s.lastMove
	s.mu.Unlock()
	s.job.Progress(p)
}

// post handles the server's posts.
func (s *session) post(ctx context.Context, m *ndmp.Message) {
	switch p := m.Body.(type) {
	case *ndmp.NotifyDataHaltedPost:
		select {
		case s.dataHalted <- p.Reason:
		default:
		}
	case *ndmp.NotifyMoverHaltedPost:
		select {
		case s.moverHalted <- p.Reason:
		default:
		}
	case *ndmp.NotifyMoverPausedPost:
		select {
		case s.moverPaused <- p.Reason:
		default:
		}
	case *ndmp.NotifyDataReadPost:
		// The restore asks for image bytes: the mover reads them from tape.
		if err := s.c.MoverRead(ctx, p.Offset, p.Length); err != nil {
			s.setErr(fmt.Sprintf("MOVER_READ %d+%d: %v", p.Offset, p.Length, err))
		}
	case *ndmp.LogMessagePost:
		entry := strings.TrimRight(p.Entry, "\n")
		if p.LogType == ndmp.LogError {
			s.setErr(entry)
		}
		s.report(Progress{Message: entry, Type: p.LogType})
	case *ndmp.LogFilePost:
		s.mu.Lock()
		s.files++
		if p.RecoveryStatus != ndmp.RecoverySuccessful {
			s.failed++
			s.lastErr = fmt.Sprintf("%s: %v", p.Name, p.RecoveryStatus)
		}
		s.mu.Unlock()
	case *ndmp.FHAddFilePost:
		s.addFH(len(p.Files))
	case *ndmp.FHAddDirPost:
		s.addFH(len(p.Dirs))
	case *ndmp.FHAddNodePost:
		s.addFH(len(p.Nodes))
	}
}

func (s *session) addFH(n int) {
	s.mu.Lock()
	s.fh += n
	s.mu.Unlock()
}

func (s *session) setErr(msg string) {
	s.mu.Lock()
	s.lastErr = msg
	s.mu.Unlock()
}

func (s *session) lastError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// dial connects and logs in.
func dial(ctx context.Context, job *Job) (*session, error) {
	if job.Addr == "" {
		return nil, errors.New("dma: no NDMP server address")
	}
	if job.Device == "" {
		return nil, errors.New("dma: no tape device")
	}
	s := &session{
		job:         job,
		dataHalted:  make(chan ndmp.DataHaltReason, 4),
		moverHalted: make(chan ndmp.MoverHaltReason, 4),
		moverPaused: make(chan ndmp.MoverPauseReason, 16),
		lastData:    ndmp.DataStateIdle,
		lastMove:    ndmp.MoverStateIdle,
	}
	c, err := ndmp.Dial(ctx, job.Addr, &ndmp.ClientConfig{PostHandler: s.post})
	if err != nil {
		return nil, fmt.Errorf("dma: cannot reach the NDMP server %s: %w", job.Addr, err)
	}
	s.c = c
	if err := c.Connect(ctx); err != nil {
		c.Conn().Close()
		return nil, fmt.Errorf("dma: no NDMP session with %s: %w", job.Addr, err)
	}
	switch job.AuthType {
	case ndmp.AuthText:
		err = c.AuthText(ctx, job.User, job.Password)
	case ndmp.AuthMD5, ndmp.AuthNone:
		err = c.AuthMD5(ctx, job.User, job.Password)
	default:
		err = fmt.Errorf("unknown authentication type %v", job.AuthType)
	}
	if err != nil {
		c.Close(context.WithoutCancel(ctx))
		if errors.Is(err, ndmp.ErrNotAuthorized) {
			return nil, fmt.Errorf("dma: %s refused the login of user %q: wrong user name or password: %w", job.Addr, job.User, err)
		}
		return nil, fmt.Errorf("dma: login to %s as %q: %w", job.Addr, job.User, err)
	}
	return s, nil
}

// openTape opens the device and positions it; it returns the tape file
// number the job starts at (-1 if unknown).
func (s *session) openTape(ctx context.Context, mode ndmp.TapeOpenMode) (int, error) {
	dev := s.job.Device
	if err := s.c.TapeOpen(ctx, dev, mode); err != nil {
		msg := fmt.Sprintf("dma: cannot open tape device %q", dev)
		switch {
		case errors.Is(err, ndmp.ErrNoDevice):
			msg += ": no such device on the server"
		case errors.Is(err, ndmp.ErrDeviceBusy):
			msg += ": the device is in use by another session"
		case errors.Is(err, ndmp.ErrNoTapeLoaded):
			msg += ": no tape loaded"
		case errors.Is(err, ndmp.ErrWriteProtect):
			msg += ": the cartridge is write-protected"
		}
		return -1, fmt.Errorf("%s: %w", msg, err)
	}
	if s.job.TapeFile >= 0 {
		if _, err := s.c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
			return -1, fmt.Errorf("dma: rewind %s: %w", dev, err)
		}
		if s.job.TapeFile > 0 {
			resid, err := s.c.TapeMTIO(ctx, ndmp.MTIOFSF, uint32(s.job.TapeFile))
			if err != nil || resid != 0 {
				return -1, fmt.Errorf("dma: position %s to tape file %d: only %d file marks on the tape: %v", dev, s.job.TapeFile, s.job.TapeFile-int(resid), errOr(err, "end of data"))
			}
		}
	}
	st, err := s.c.TapeGetState(ctx)
	if err != nil || st.Unsupported&ndmp.TapeStateFileNumUns != 0 {
		return s.job.TapeFile, nil
	}
	return int(st.FileNum), nil
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// recordSize returns the job's record size.
func (j *Job) recordSize() uint32 {
	if j.RecordSize == 0 {
		return DefaultRecordSize
	}
	return j.RecordSize
}

// mergeEnv appends extra to base, replacing variables of the same name.
func mergeEnv(base, extra []ndmp.Pval) []ndmp.Pval {
	out := make([]ndmp.Pval, 0, len(base)+len(extra))
	for _, b := range base {
		replaced := false
		for _, e := range extra {
			if e.Name == b.Name {
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, b)
		}
	}
	return append(out, extra...)
}

// BackupEnv returns the environment of the job's DATA_START_BACKUP.
func BackupEnv(job *Job) []ndmp.Pval {
	hist := "N"
	if job.Hist {
		hist = "Y"
	}
	env := []ndmp.Pval{
		{Name: "TYPE", Value: Butype},
		{Name: "FILESYSTEM", Value: job.FileSystem},
		{Name: "LEVEL", Value: strconv.Itoa(job.Level)},
		{Name: "UPDATE", Value: "Y"},
		{Name: "HIST", Value: hist},
	}
	return mergeEnv(env, job.Env)
}

// RecoverEnv returns the environment of the job's DATA_START_RECOVER.
func RecoverEnv(job *Job) []ndmp.Pval {
	env := []ndmp.Pval{
		{Name: "TYPE", Value: Butype},
		{Name: "FILESYSTEM", Value: job.Dest},
		{Name: "HIST", Value: "N"},
	}
	return mergeEnv(env, job.Env)
}

// RecoverNlist returns the name list of the job's DATA_START_RECOVER: nil
// for the whole image, else one entry per name, restored under Dest with
// the same relative path.
func RecoverNlist(job *Job) []ndmp.Name {
	var nl []ndmp.Name
	for _, n := range job.Names {
		rel := strings.Trim(n, "/")
		nl = append(nl, ndmp.Name{
			OriginalPath:   "/" + rel,
			DestinationDir: strings.TrimSuffix(job.Dest, "/") + "/" + rel,
			Node:           invalidQuad,
			FHInfo:         invalidQuad,
		})
	}
	return nl
}

// Backup runs a dump backup of job.FileSystem to job.Device.
func Backup(ctx context.Context, job Job) (*Result, error) {
	if job.FileSystem == "" {
		return nil, errors.New("dma: no path to back up")
	}
	if job.Level < 0 || job.Level > 9 {
		return nil, fmt.Errorf("dma: dump level %d is not 0-9", job.Level)
	}
	return run(ctx, &job, true)
}

// Restore restores the image at job.TapeFile of job.Device into job.Dest.
func Restore(ctx context.Context, job Job) (*Result, error) {
	if job.Dest == "" {
		return nil, errors.New("dma: no restore destination")
	}
	return run(ctx, &job, false)
}

func run(ctx context.Context, job *Job, backup bool) (res *Result, err error) {
	s, err := dial(ctx, job)
	if err != nil {
		return nil, err
	}
	defer s.c.Close(context.WithoutCancel(ctx))
	mode := ndmp.TapeReadMode
	if backup {
		mode = ndmp.TapeRDWRMode
	}
	res = &Result{RecordSize: job.recordSize()}
	if res.TapeFile, err = s.openTape(ctx, mode); err != nil {
		_ = s.c.TapeClose(context.WithoutCancel(ctx))
		return nil, err
	}
	defer func() {
		if cerr := s.c.TapeClose(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = fmt.Errorf("dma: close %s: %w", job.Device, cerr)
		}
	}()
	if err := s.c.MoverSetRecordSize(ctx, res.RecordSize); err != nil {
		return nil, fmt.Errorf("dma: set the record size to %d: %w", res.RecordSize, err)
	}
	if err := s.c.MoverSetWindow(ctx, 0, math.MaxUint64); err != nil {
		return nil, fmt.Errorf("dma: set the mover window: %w", err)
	}
	mmode := ndmp.MoverModeWrite
	if backup {
		mmode = ndmp.MoverModeRead
	}
	if _, err := s.c.MoverListen(ctx, mmode, ndmp.AddrLocal); err != nil {
		return nil, fmt.Errorf("dma: MOVER_LISTEN (local): %w", err)
	}
	if err := s.c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}); err != nil {
		s.stopMover(ctx)
		return nil, fmt.Errorf("dma: DATA_CONNECT (local): %w", err)
	}
	s.mu.Lock()
	s.start = time.Now()
	s.mu.Unlock()
	if backup {
		err = s.c.DataStartBackup(ctx, Butype, BackupEnv(job))
	} else {
		err = s.c.DataStartRecover(ctx, Butype, RecoverEnv(job), RecoverNlist(job))
	}
	if err != nil {
		s.cleanup(ctx)
		return nil, s.refused(backup, err)
	}
	waitErr := s.wait(ctx, backup)
	res.Elapsed = time.Since(s.start)
	if st, err := s.c.DataGetState(context.WithoutCancel(ctx)); err == nil {
		res.Bytes = st.BytesProcessed
	}
	if backup && waitErr == nil {
		if env, err := s.c.DataGetEnv(ctx); err == nil {
			res.Env = env
			res.DumpDate = ndmp.Env(env)["DUMP_DATE"]
		}
	}
	s.cleanup(ctx)
	s.mu.Lock()
	res.FileHistory, res.Files, res.Failed = s.fh, s.files, s.failed
	s.mu.Unlock()
	if waitErr != nil {
		return res, waitErr
	}
	if backup {
		// The mover does not end the tape file; the DMA does.
		if _, err := s.c.TapeMTIO(ctx, ndmp.MTIOEOF, 1); err != nil {
			return res, fmt.Errorf("dma: write the file mark after the image: %w", err)
		}
	}
	return res, nil
}

// refused builds the error of a refused DATA_START_BACKUP or
// DATA_START_RECOVER, with the server's explanation when it sent one.
func (s *session) refused(backup bool, err error) error {
	// The LOG_MESSAGE that explains the refusal is posted before the
	// reply, but posts are handled on another goroutine: give it a moment.
	for i := 0; i < 20 && s.lastError() == ""; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	what := "the backup of " + s.job.FileSystem
	if !backup {
		what = "the restore into " + s.job.Dest
	}
	msg := fmt.Sprintf("dma: %s refused %s", s.job.Addr, what)
	if e := s.lastError(); e != "" {
		msg += ": " + e
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// wait waits until the data service halts (and, for a backup, the mover),
// polling for progress. It aborts on end of medium, on cancellation and
// when the control connection is lost.
func (s *session) wait(ctx context.Context, backup bool) error {
	interval := s.job.ProgressInterval
	if interval <= 0 {
		interval = DefaultProgressInterval
	}
	haltTimeout := s.job.HaltTimeout
	if haltTimeout <= 0 {
		haltTimeout = DefaultHaltTimeout
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	// A first report at once, so that even a short job shows progress.
	s.setState(ndmp.DataStateActive, ndmp.MoverStateActive)
	s.report(Progress{})
	var (
		dataDone, moverDone bool
		dataReason          ndmp.DataHaltReason
		moverReason         ndmp.MoverHaltReason
		failure             error
		abortBy             <-chan time.Time
		eofGrace            <-chan time.Time
	)
	abort := func(cause error) {
		if failure == nil {
			failure = cause
		}
		bg := context.WithoutCancel(ctx)
		if !dataDone {
			_ = s.c.DataAbort(bg)
		}
		if !moverDone {
			_ = s.c.MoverAbort(bg)
		}
		if abortBy == nil {
			abortBy = time.After(haltTimeout)
		}
	}
	ctxDone := ctx.Done()
	// A restore needs only the data service to end; the mover is stopped
	// afterwards. A backup ends when both have halted.
	for !dataDone || (backup && !moverDone) {
		select {
		case r := <-s.dataHalted:
			dataDone, dataReason = true, r
			s.setState(ndmp.DataStateHalted, 0)
			if r != ndmp.DataHaltSuccessful && backup && !moverDone {
				abort(nil)
			}
		case r := <-s.moverHalted:
			moverDone, moverReason = true, r
			s.setState(0, ndmp.MoverStateHalted)
			if r != ndmp.MoverHaltConnectClosed && !dataDone {
				msg := fmt.Sprintf("dma: the mover halted: %v", r)
				if e := s.lastError(); e != "" {
					msg += ": " + e
				}
				abort(errors.New(msg))
			}
		case r := <-s.moverPaused:
			s.setState(0, ndmp.MoverStatePaused)
			switch {
			case backup && r == ndmp.MoverPauseEOM:
				abort(fmt.Errorf("dma: backup to %s: %w (the backup was aborted; use a larger cartridge or another tape)", s.job.Device, ErrEndOfMedium))
			case !backup && (r == ndmp.MoverPauseEOF || r == ndmp.MoverPauseEOM):
				// The mover read up to the file mark; the data service
				// should end at once. If it still waits, the image is cut.
				if eofGrace == nil {
					eofGrace = time.After(10 * time.Second)
				}
			default:
				abort(fmt.Errorf("dma: the mover paused unexpectedly: %v", r))
			}
		case <-eofGrace:
			eofGrace = nil
			if !dataDone {
				abort(fmt.Errorf("dma: tape file %d of %s ended before the end of the dump image", s.job.TapeFile, s.job.Device))
			}
		case <-s.c.Conn().Done():
			return fmt.Errorf("dma: lost the control connection to %s: %w", s.job.Addr, errOrClosed(s.c.Conn().Err()))
		case <-ctxDone:
			ctxDone = nil
			abort(fmt.Errorf("dma: interrupted: %w", ctx.Err()))
		case <-abortBy:
			return errors.Join(failure, fmt.Errorf("dma: the server did not halt within %v of the abort", haltTimeout))
		case <-tick.C:
			if st, err := s.c.DataGetState(ctx); err == nil {
				s.setState(st.State, 0)
				if !dataDone {
					s.report(Progress{Bytes: st.BytesProcessed})
				}
			}
			if ms, err := s.c.MoverGetState(ctx); err == nil {
				s.setState(0, ms.State)
			}
		}
	}
	if failure != nil {
		return failure
	}
	what := "backup"
	if !backup {
		what = "restore"
	}
	if dataReason != ndmp.DataHaltSuccessful {
		msg := fmt.Sprintf("dma: the %s failed: data service halted with %v", what, dataReason)
		if backup {
			msg += fmt.Sprintf(", mover with %v", moverReason)
		}
		if e := s.lastError(); e != "" {
			msg += ": " + e
		}
		return errors.New(msg)
	}
	return nil
}

func errOrClosed(err error) error {
	if err == nil {
		return ndmp.ErrClosed
	}
	return err
}

// setState records the states last seen; zero values leave a state alone
// (both zero values are the IDLE states).
func (s *session) setState(d ndmp.DataState, m ndmp.MoverState) {
	s.mu.Lock()
	if d != 0 {
		s.lastData = d
	}
	if m != 0 {
		s.lastMove = m
	}
	s.mu.Unlock()
}

// cleanup brings the data and mover services back to IDLE.
func (s *session) cleanup(ctx context.Context) {
	bg := context.WithoutCancel(ctx)
	if st, err := s.c.DataGetState(bg); err == nil && st.State != ndmp.DataStateIdle {
		if st.State != ndmp.DataStateHalted {
			_ = s.c.DataAbort(bg)
			s.waitData(bg, ndmp.DataStateHalted)
		}
		_ = s.c.DataStop(bg)
	}
	s.stopMover(bg)
}

// stopMover halts the mover if needed and stops it.
func (s *session) stopMover(ctx context.Context) {
	ms, err := s.c.MoverGetState(ctx)
	if err != nil || ms.State == ndmp.MoverStateIdle {
		return
	}
	if ms.State != ndmp.MoverStateHalted {
		_ = s.c.MoverAbort(ctx)
		for i := 0; i < 200; i++ {
			if ms, err = s.c.MoverGetState(ctx); err != nil || ms.State == ndmp.MoverStateHalted {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	_ = s.c.MoverStop(ctx)
}

// waitData polls until the data service reaches want (at most 10 s).
func (s *session) waitData(ctx context.Context, want ndmp.DataState) {
	for i := 0; i < 1000; i++ {
		st, err := s.c.DataGetState(ctx)
		if err != nil || st.State == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
