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
// A job whose Job.Data names another server is a three-way job (the
// three-way topology of the NDMP draft): the data service runs on Data and
// the tape and mover services on Addr. The DMA holds one control
// connection to each, makes the mover listen on TCP (NDMP_ADDR_TCP, or
// NDMP_ADDR_TCP_IPV6 of the NetApp connection address extension when
// Job.IPv6 is set) and connects the data service to it, for the backup and
// for the restore; it relays the data server's NOTIFY_DATA_READ to the
// tape server as MOVER_READ.
//
// End of medium during a backup (NOTIFY_MOVER_PAUSED with reason EOM) ends
// the job with ErrEndOfMedium unless Job.ChangeMedia is set: then the DMA
// closes the tape, lets ChangeMedia load the next cartridge (MoveMedium
// does it through the server's medium changer), opens the tape again and
// sends MOVER_CONTINUE. A restore whose image goes on past the end of a
// cartridge (the mover pauses with EOF or EOM while the data service still
// waits for data) changes cartridges the same way, then sets the mover
// window from the pause's seek position before MOVER_CONTINUE.
// Progress is reported through Job.Progress from the server's LOG_MESSAGE
// posts and from polling the data service.
package dma

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"regexp"
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

// ErrNoMoreMedia is what a Job.ChangeMedia callback returns when it has no
// further cartridge to load; the job then fails as if ChangeMedia were nil.
var ErrNoMoreMedia = errors.New("no further cartridge")

// ErrEndOfMedium is returned (wrapped) when the tape fills up during a
// backup: the mover paused with NDMP_MOVER_PAUSE_EOM.
var ErrEndOfMedium = errors.New("end of medium: the cartridge is full")

// Agent is an NDMP server the DMA logs in to.
type Agent struct {
	// Addr is the server's host:port.
	Addr string
	// User and Password log in; AuthType is ndmp.AuthMD5 (the zero value
	// ndmp.AuthNone also means MD5) or ndmp.AuthText.
	User, Password string
	AuthType       ndmp.AuthType
}

// Job describes one backup or restore.
type Job struct {
	// Addr is the NDMP server, host:port: the tape server of a three-way
	// job, the only server otherwise.
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
	// Data, if not nil, is the data server of a three-way job; FileSystem
	// and Dest are paths of that server.
	Data *Agent
	// IPv6 makes the data connection of a three-way job use
	// NDMP_ADDR_TCP_IPV6; the DMA selects the NetApp connection address
	// extension (class 0x2051) on both sessions first.
	IPv6 bool
	// ChangeMedia, if not nil, loads the next cartridge into Device when
	// the current one ends during the job; change counts the changes from
	// 1. The DMA calls it with the tape device closed on c, the tape
	// server's session, and opens the device again afterwards. Returning
	// ErrNoMoreMedia, or any error, ends the job.
	ChangeMedia func(ctx context.Context, c *ndmp.Client, change int) error
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
	// Files is the number of LOG_FILE reports of a restore (one for each
	// name asked for, or one for the whole image), and Failed how many of
	// them reported a failure.
	Files, Failed int
	// Restored is the number of files a restore restored, as the server
	// reported it ("N files restored"); -1 when it did not say.
	Restored int64
	// Elapsed is the time from the start of the data operation to the end.
	Elapsed time.Duration
	// MediaChanges is the number of cartridge changes during the job.
	MediaChanges int
	// Reads counts the NOTIFY_DATA_READ requests of a restore and
	// ReadBytes adds up their lengths (what the data service asked the
	// mover for; a direct access restore asks for less than the image).
	Reads     int
	ReadBytes uint64
	// MoverAddr is the address the mover listened on and the data service
	// connected to: host:port for TCP, "local" for a local job.
	MoverAddr string
}

// session is the control connection to the tape server (c) and to the
// data server (d, the same as c for a local job) and what their posts
// told. The clients deliver the halts and pauses (ndmp.Client.DataHalted
// and friends); post counts what the other posts tell.
type session struct {
	job *Job
	c   *ndmp.Client
	d   *ndmp.Client

	mu        sync.Mutex
	reads     int
	readBytes uint64
	lastErr   string
	changes   int
	fh        int
	files     int
	failed    int
	restored  int64
	start     time.Time
	lastData  ndmp.DataState
	lastMove  ndmp.MoverState
	progMu    sync.Mutex
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

// restoredFiles matches the server's count of restored files (Tapestry's
// server posts it as LOG_MESSAGE "N files restored").
var restoredFiles = regexp.MustCompile(`^(\d+) files restored$`)

// post handles the server's posts other than the halts and pauses, which
// the clients deliver on their channels.
func (s *session) post(ctx context.Context, m *ndmp.Message) {
	switch p := m.Body.(type) {
	case *ndmp.NotifyDataReadPost:
		// The restore asks for image bytes: the mover reads them from tape.
		s.mu.Lock()
		s.reads++
		s.readBytes += p.Length
		s.mu.Unlock()
		if err := s.c.MoverRead(ctx, p.Offset, p.Length); err != nil {
			s.setErr(fmt.Sprintf("MOVER_READ %d+%d: %v", p.Offset, p.Length, err))
		}
	case *ndmp.LogMessagePost:
		entry := strings.TrimRight(p.Entry, "\n")
		if p.LogType == ndmp.LogError {
			s.setErr(entry)
		}
		if m := restoredFiles.FindStringSubmatch(entry); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			s.mu.Lock()
			s.restored = n
			s.mu.Unlock()
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

// dial connects to the job's servers and logs in.
func dial(ctx context.Context, job *Job) (*session, error) {
	if job.Addr == "" {
		return nil, errors.New("dma: no NDMP server address")
	}
	if job.Device == "" {
		return nil, errors.New("dma: no tape device")
	}
	if job.Data != nil && job.Data.Addr == "" {
		return nil, errors.New("dma: no data server address for the three-way job")
	}
	s := &session{
		job:      job,
		lastData: ndmp.DataStateIdle,
		lastMove: ndmp.MoverStateIdle,
		restored: -1,
	}
	c, err := login(ctx, Agent{Addr: job.Addr, User: job.User, Password: job.Password, AuthType: job.AuthType}, s.post)
	if err != nil {
		return nil, err
	}
	s.c, s.d = c, c
	if job.Data != nil {
		if s.d, err = login(ctx, *job.Data, s.post); err != nil {
			c.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return s, nil
}

// close ends the control connections.
func (s *session) close(ctx context.Context) {
	bg := context.WithoutCancel(ctx)
	if s.d != s.c {
		s.d.Close(bg)
	}
	s.c.Close(bg)
}

// login connects to one server and logs in.
func login(ctx context.Context, a Agent, post func(context.Context, *ndmp.Message)) (*ndmp.Client, error) {
	c, err := ndmp.Dial(ctx, a.Addr, &ndmp.ClientConfig{PostHandler: post})
	if err != nil {
		return nil, fmt.Errorf("dma: cannot reach the NDMP server %s: %w", a.Addr, err)
	}
	if err := c.Connect(ctx); err != nil {
		c.Conn().Close()
		return nil, fmt.Errorf("dma: no NDMP session with %s: %w", a.Addr, err)
	}
	switch a.AuthType {
	case ndmp.AuthText:
		err = c.AuthText(ctx, a.User, a.Password)
	case ndmp.AuthMD5, ndmp.AuthNone:
		err = c.AuthMD5(ctx, a.User, a.Password)
	default:
		err = fmt.Errorf("unknown authentication type %v", a.AuthType)
	}
	if err != nil {
		c.Close(context.WithoutCancel(ctx))
		if errors.Is(err, ndmp.ErrNotAuthorized) {
			return nil, fmt.Errorf("dma: %s refused the login of user %q: wrong user name or password: %w", a.Addr, a.User, err)
		}
		return nil, fmt.Errorf("dma: login to %s as %q: %w", a.Addr, a.User, err)
	}
	return c, nil
}

// selectCAE selects the NetApp connection address extension on c.
func selectCAE(ctx context.Context, c *ndmp.Client, addr string) error {
	if _, err := c.GetExtList(ctx); err != nil {
		return fmt.Errorf("dma: %s: NDMP_CONFIG_GET_EXT_LIST: %w", addr, err)
	}
	if err := c.SetExtList(ctx, []ndmp.ClassVersion{{ExtClassID: ndmp.ExtClassNetAppCAE, ExtVersion: 1}}); err != nil {
		return fmt.Errorf("dma: %s does not offer IPv6 data connections (extension class 0x2051): %w", addr, err)
	}
	return nil
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
			Node:           ndmp.InvalidQuad,
			FHInfo:         ndmp.InvalidQuad,
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
	defer s.close(ctx)
	if job.IPv6 {
		if job.Data == nil {
			return nil, errors.New("dma: IPv6 data connections are for three-way jobs (set Job.Data)")
		}
		if err := selectCAE(ctx, s.c, job.Addr); err != nil {
			return nil, err
		}
		if err := selectCAE(ctx, s.d, job.Data.Addr); err != nil {
			return nil, err
		}
	}
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
	atype := ndmp.AddrLocal
	switch {
	case job.IPv6:
		atype = ndmp.AddrTCPIPv6
	case job.Data != nil:
		atype = ndmp.AddrTCP
	}
	maddr, err := s.c.MoverListen(ctx, mmode, atype)
	if err != nil {
		return nil, fmt.Errorf("dma: MOVER_LISTEN (%v) on %s: %w", atype, job.Addr, err)
	}
	res.MoverAddr = "local"
	if eps := maddr.AddrPorts(); len(eps) > 0 {
		res.MoverAddr = eps[0].String()
	}
	if err := s.d.DataConnect(ctx, *maddr); err != nil {
		s.stopMover(ctx)
		return nil, fmt.Errorf("dma: DATA_CONNECT (%v) to the mover of %s: %w", atype, job.Addr, err)
	}
	s.mu.Lock()
	s.start = time.Now()
	s.mu.Unlock()
	if backup {
		err = s.d.DataStartBackup(ctx, Butype, BackupEnv(job))
	} else {
		err = s.d.DataStartRecover(ctx, Butype, RecoverEnv(job), RecoverNlist(job))
	}
	if err != nil {
		s.cleanup(ctx)
		return nil, s.refused(backup, err)
	}
	waitErr := s.wait(ctx, backup)
	res.Elapsed = time.Since(s.start)
	if st, err := s.d.DataGetState(context.WithoutCancel(ctx)); err == nil {
		res.Bytes = st.BytesProcessed
	}
	if backup && waitErr == nil {
		if env, err := s.d.DataGetEnv(ctx); err == nil {
			res.Env = env
			res.DumpDate = ndmp.Env(env)["DUMP_DATE"]
		}
	}
	s.cleanup(ctx)
	s.waitPosts(ctx)
	s.mu.Lock()
	res.FileHistory, res.Files, res.Failed, res.Restored = s.fh, s.files, s.failed, s.restored
	res.MediaChanges, res.Reads, res.ReadBytes = s.changes, s.reads, s.readBytes
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
	what := "the backup of " + s.job.FileSystem
	server := s.job.Addr
	if s.job.Data != nil {
		server = s.job.Data.Addr
	}
	if !backup {
		what = "the restore into " + s.job.Dest
	}
	msg := fmt.Sprintf("dma: %s refused %s", server, what)
	// The LOG_MESSAGE that explains the refusal came before the reply.
	if p := s.d.LastLogMessage(ndmp.LogError); p != nil {
		msg += ": " + strings.TrimRight(p.Entry, "\n")
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
	haltTimeout := s.job.haltTimeout()
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
		pause               *ndmp.NotifyMoverPausedPost
	)
	abort := func(cause error) {
		if failure == nil {
			failure = cause
		}
		bg := context.WithoutCancel(ctx)
		if !dataDone {
			_ = s.d.DataAbort(bg)
		}
		if !moverDone {
			_ = s.c.MoverAbort(bg)
		}
		if abortBy == nil {
			abortBy = time.After(haltTimeout)
		}
	}
	ctxDone := ctx.Done()
	// A local job has one control connection, watched by the case of c;
	// a second case on the same channel would report its loss as the loss
	// of a data server that the job does not have (Job.Data is nil).
	dataConnDone := s.d.Conn().Done()
	if s.d == s.c {
		dataConnDone = nil
	}
	// A restore needs only the data service to end; the mover is stopped
	// afterwards. A backup ends when both have halted.
	for !dataDone || (backup && !moverDone) {
		select {
		case p := <-s.d.DataHalted():
			r := p.Reason
			dataDone, dataReason = true, r
			s.setState(ndmp.DataStateHalted, 0)
			if r != ndmp.DataHaltSuccessful && backup && !moverDone {
				abort(nil)
			}
		case p := <-s.c.MoverHalted():
			r := p.Reason
			moverDone, moverReason = true, r
			s.setState(0, ndmp.MoverStateHalted)
			if r != ndmp.MoverHaltConnectClosed && !dataDone {
				s.waitPosts(ctx)
				msg := fmt.Sprintf("dma: the mover halted: %v", r)
				if e := s.lastError(); e != "" {
					msg += ": " + e
				}
				abort(errors.New(msg))
			}
		case p := <-s.c.MoverPaused():
			r := p.Reason
			s.setState(0, ndmp.MoverStatePaused)
			switch {
			case failure != nil:
				// Aborting already.
			case backup && r == ndmp.MoverPauseEOM && s.job.ChangeMedia != nil:
				if err := s.changeMedia(ctx, ndmp.TapeRDWRMode, nil); err != nil {
					abort(err)
				}
			case backup && r == ndmp.MoverPauseEOM:
				abort(fmt.Errorf("dma: backup to %s: %w (the backup was aborted; use a larger cartridge or another tape)", s.job.Device, ErrEndOfMedium))
			case !backup && (r == ndmp.MoverPauseEOF || r == ndmp.MoverPauseEOM):
				// The mover read up to the file mark; the data service
				// should end at once. If it still waits, the image goes
				// on on the next cartridge, or is cut.
				pause = p
				wait := 10 * time.Second
				if s.job.ChangeMedia != nil {
					wait = changeDelay
				}
				if eofGrace == nil {
					eofGrace = time.After(wait)
				}
			default:
				abort(fmt.Errorf("dma: the mover paused unexpectedly: %v", r))
			}
		case <-eofGrace:
			eofGrace = nil
			if dataDone || failure != nil {
				break
			}
			if s.job.ChangeMedia != nil {
				err := s.changeMedia(ctx, ndmp.TapeReadMode, pause)
				if err == nil {
					break
				}
				if !errors.Is(err, ErrNoMoreMedia) {
					abort(err)
					break
				}
			}
			abort(fmt.Errorf("dma: tape file %d of %s ended before the end of the dump image", s.job.TapeFile, s.job.Device))
		case <-s.c.Conn().Done():
			return fmt.Errorf("dma: lost the control connection to %s: %w", s.job.Addr, errOrClosed(s.c.Conn().Err()))
		case <-dataConnDone:
			return fmt.Errorf("dma: lost the control connection to the data server %s: %w", s.job.Data.Addr, errOrClosed(s.d.Conn().Err()))
		case <-ctxDone:
			ctxDone = nil
			abort(fmt.Errorf("dma: interrupted: %w", ctx.Err()))
		case <-abortBy:
			return errors.Join(failure, fmt.Errorf("dma: the server did not halt within %v of the abort", haltTimeout))
		case <-tick.C:
			if st, err := s.d.DataGetState(ctx); err == nil {
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
		s.waitPosts(ctx)
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
	if st, err := s.d.DataGetState(bg); err == nil && st.State != ndmp.DataStateIdle {
		if st.State != ndmp.DataStateHalted {
			_ = s.d.DataAbort(bg)
			awaitHalt(s, s.d, s.d.DataHalted())
		}
		_ = s.d.DataStop(bg)
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
		awaitHalt(s, s.c, s.c.MoverHalted())
	}
	_ = s.c.MoverStop(ctx)
}

// awaitHalt waits for the halt notification of an aborted service on
// halted (ndmp.Client.DataHalted or MoverHalted of c): a service leaves
// HALTED only when the DMA stops it, so any notification there tells it
// has halted. It gives up after the job's halt timeout or when c's
// connection closes.
func awaitHalt[T any](s *session, c *ndmp.Client, halted <-chan T) {
	t := time.NewTimer(s.job.haltTimeout())
	defer t.Stop()
	select {
	case <-halted:
	case <-c.Conn().Done():
	case <-t.C:
	}
}

// waitPosts waits until post has handled every post the servers sent so
// far, so that the counts and the last error are complete: the clients
// deliver halts as soon as they read them, possibly before post has seen
// the posts that came first. The job's halt timeout bounds the wait.
func (s *session) waitPosts(ctx context.Context) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.job.haltTimeout())
	defer cancel()
	_ = s.c.WaitPosts(wctx)
	if s.d != s.c {
		_ = s.d.WaitPosts(wctx)
	}
}

// haltTimeout returns the job's halt timeout.
func (j *Job) haltTimeout() time.Duration {
	if j.HaltTimeout <= 0 {
		return DefaultHaltTimeout
	}
	return j.HaltTimeout
}

// changeDelay is how long a restore whose mover paused at the end of a
// tape file waits for the data service to end before it takes the image
// to go on on the next cartridge.
const changeDelay = time.Second

// changeMedia closes the tape, has Job.ChangeMedia load the next
// cartridge, opens the tape in mode and continues the mover. For a
// restore, pause is the mover's pause: the window is set from its seek
// position first.
func (s *session) changeMedia(ctx context.Context, mode ndmp.TapeOpenMode, pause *ndmp.NotifyMoverPausedPost) error {
	dev := s.job.Device
	s.mu.Lock()
	s.changes++
	n := s.changes
	s.mu.Unlock()
	if err := s.c.TapeClose(ctx); err != nil {
		return fmt.Errorf("dma: close %s for cartridge change %d: %w", dev, n, err)
	}
	if err := s.job.ChangeMedia(ctx, s.c, n); err != nil {
		// Leave the device open for the cleanup, when a cartridge is there.
		_ = s.c.TapeOpen(context.WithoutCancel(ctx), dev, mode)
		return fmt.Errorf("dma: cartridge change %d on %s: %w", n, dev, err)
	}
	if err := s.c.TapeOpen(ctx, dev, mode); err != nil {
		return fmt.Errorf("dma: open %s after cartridge change %d: %w", dev, n, err)
	}
	if pause != nil {
		if err := s.c.MoverSetWindow(ctx, pause.SeekPosition, math.MaxUint64-pause.SeekPosition); err != nil {
			return fmt.Errorf("dma: set the mover window at %d after cartridge change %d: %w", pause.SeekPosition, n, err)
		}
	}
	if err := s.c.MoverContinue(ctx); err != nil {
		return fmt.Errorf("dma: MOVER_CONTINUE after cartridge change %d: %w", n, err)
	}
	s.setState(0, ndmp.MoverStateActive)
	return nil
}

// MoveMedium moves a cartridge from element src to element dst of the
// medium changer device changer (for example "mc0") with a SCSI MOVE
// MEDIUM command through NDMP_SCSI_EXECUTE_CDB. The session must have no
// tape device open; the changer is closed again afterwards.
func MoveMedium(ctx context.Context, c *ndmp.Client, changer string, src, dst uint16) error {
	if err := c.SCSIOpen(ctx, changer); err != nil {
		return fmt.Errorf("dma: open the medium changer %q: %w", changer, err)
	}
	cdb := make([]byte, 12)
	cdb[0] = 0xA5 // MOVE MEDIUM
	binary.BigEndian.PutUint16(cdb[4:], src)
	binary.BigEndian.PutUint16(cdb[6:], dst)
	r, err := c.SCSIExecuteCDB(ctx, &ndmp.SCSIExecuteCDBRequest{Timeout: 300000, CDB: cdb})
	cerr := c.SCSIClose(context.WithoutCancel(ctx))
	switch {
	case err != nil:
		return fmt.Errorf("dma: MOVE MEDIUM %d to %d on %q: %w", src, dst, changer, err)
	case r.Status != 0:
		return fmt.Errorf("dma: MOVE MEDIUM %d to %d on %q: SCSI status %#x, sense %x", src, dst, changer, r.Status, r.ExtSense)
	case cerr != nil:
		return fmt.Errorf("dma: close the medium changer %q: %w", changer, cerr)
	}
	return nil
}
