package ndmpcopy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// Exit statuses of ndmpcopy.
const (
	ExitOK          = 0 // the copy succeeded
	ExitFailed      = 1 // the copy started but failed, or another error
	ExitUsage       = 2 // bad command line
	ExitUnreachable = 3 // a server could not be reached or refused the session
	ExitAuth        = 4 // a server refused the authentication
	ExitRefused     = 5 // a server refused the backup or restore (for example a missing path)
)

// Error is an error of a copy with the exit status it maps to.
type Error struct {
	Code int
	Msg  string
	Err  error
}

// Error returns the message, followed by the cause when there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ExitCode returns the exit status for err: ExitOK for nil, the Code of an
// *Error, ExitUsage for a *UsageError, else ExitFailed.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitFailed
}

// Butype is the backup type ndmpcopy uses; SMTapeButype with -smtape.
const (
	Butype       = "dump"
	SMTapeButype = "smtape"
)

// butype returns the backup type of o.
func butype(o *Options) string {
	if o.SMTape {
		return SMTapeButype
	}
	return Butype
}

// Config tells Copy where to report.
type Config struct {
	// Messages receives the servers' log messages and notices, one line
	// each (nil: discarded).
	Messages io.Writer
	// Progress, if not nil, receives a progress line (bytes, rate, ETA)
	// rewritten in place with a carriage return: give it a terminal.
	Progress io.Writer
	// ProgressInterval is how often progress is polled (1 s if 0).
	ProgressInterval time.Duration
	// Log is the debug log (nil: none).
	Log *DebugLog
	// HaltTimeout bounds the wait for a data service to halt after an abort
	// (30 s if 0).
	HaltTimeout time.Duration
}

// Result describes a finished copy.
type Result struct {
	// Bytes is the number of image bytes the source data service sent.
	Bytes uint64
	// Elapsed is the time from the start of the backup to the end.
	Elapsed time.Duration
	// DataFamily is the address family the data connection used.
	DataFamily Family
	// Env is the environment the source returned after the backup
	// (DUMP_DATE and friends), if it returned one.
	Env []ndmp.Pval
}

// BackupEnv returns the environment of the source's DATA_START_BACKUP.
func BackupEnv(o *Options) []ndmp.Pval {
	if o.SMTape {
		return smtapeBackupEnv(o)
	}
	env := []ndmp.Pval{
		{Name: "TYPE", Value: Butype},
		{Name: "FILESYSTEM", Value: o.Source.Path},
		{Name: "LEVEL", Value: strconv.Itoa(o.Level)},
		{Name: "UPDATE", Value: "Y"},
		{Name: "HIST", Value: "N"},
	}
	if o.Exclude != "" {
		env = append(env, ndmp.Pval{Name: "EXCLUDE", Value: o.Exclude})
	}
	return env
}

// smtapeBackupEnv is the source's environment of an SMTape copy: the
// snapshot, kept after the copy (the next update starts from it), and
// for an incremental the earlier image's DUMP_DATE and backup set.
func smtapeBackupEnv(o *Options) []ndmp.Pval {
	env := []ndmp.Pval{
		{Name: "TYPE", Value: SMTapeButype},
		{Name: "FILESYSTEM", Value: o.Source.Path},
		{Name: "SMTAPE_SNAPSHOT_NAME", Value: o.Snapshot},
		{Name: "SMTAPE_DELETE_SNAPSHOT", Value: "N"},
	}
	if o.BaseDate != "" {
		env = append(env, ndmp.Pval{Name: "BASE_DATE", Value: o.BaseDate}, ndmp.Pval{Name: "SMTAPE_BACKUP_SET_ID", Value: o.SetID})
	}
	return env
}

// RecoverEnv returns the environment of the destination's
// DATA_START_RECOVER: FILESYSTEM and PREFIX name the destination path.
func RecoverEnv(o *Options) []ndmp.Pval {
	if o.SMTape {
		return []ndmp.Pval{{Name: "TYPE", Value: SMTapeButype}, {Name: "FILESYSTEM", Value: o.Dest.Path}}
	}
	return []ndmp.Pval{
		{Name: "TYPE", Value: Butype},
		{Name: "FILESYSTEM", Value: o.Dest.Path},
		{Name: "PREFIX", Value: o.Dest.Path},
		{Name: "LEVEL", Value: strconv.Itoa(o.Level)},
		{Name: "HIST", Value: "N"},
	}
}

// RecoverNlist returns the name list of the destination's
// DATA_START_RECOVER: the whole image (original path "/") goes to the
// destination path; node and fh_info are unknown, so no direct access
// recovery is attempted.
func RecoverNlist(o *Options) []ndmp.Name {
	if o.SMTape {
		return nil // a whole volume
	}
	return []ndmp.Name{{
		OriginalPath:   "/",
		DestinationDir: o.Dest.Path,
		Node:           ndmp.InvalidQuad,
		FHInfo:         ndmp.InvalidQuad,
	}}
}

// console serializes the messages and the progress line.
type console struct {
	mu       sync.Mutex
	msg      io.Writer
	progress io.Writer
	shown    bool
}

func (c *console) message(format string, a ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shown {
		fmt.Fprint(c.progress, "\r\033[K")
		c.shown = false
	}
	if c.msg != nil {
		fmt.Fprintf(c.msg, format+"\n", a...)
	}
}

func (c *console) showProgress(line string) {
	if c.progress == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprint(c.progress, "\r\033[K"+line)
	c.shown = true
}

func (c *console) endProgress() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shown {
		fmt.Fprint(c.progress, "\r\033[K")
		c.shown = false
	}
}

// session is one NDMP control connection. Its client delivers the
// server's NOTIFY_DATA_HALTED and keeps its last error LOG_MESSAGE; post
// prints and logs the posts.
type session struct {
	side string // "source" or "destination"
	ep   Endpoint
	c    *ndmp.Client
	ctl  netip.Addr // the server's address on the control connection
	cae  bool       // connection address extension (IPv6 data) selected
	con  *console
	log  *DebugLog

	mu      sync.Mutex
	oldErr  *ndmp.LogMessagePost // the last error log message when release was called
	holding bool                 // log messages are held back, not printed
	held    []string             // the messages held back
}

func (s *session) name() string { return s.side + " " + s.ep.Address() }

// post handles the server's posts.
func (s *session) post(_ context.Context, m *ndmp.Message) {
	switch p := m.Body.(type) {
	case *ndmp.NotifyDataHaltedPost:
		s.log.Printf("%s: NOTIFY_DATA_HALTED %v", s.side, p.Reason)
	case *ndmp.LogMessagePost:
		s.log.Printf("%s: LOG_MESSAGE %v %q", s.side, p.LogType, p.Entry)
		entry := strings.TrimRight(p.Entry, "\n")
		var line string
		switch p.LogType {
		case ndmp.LogError:
			line = fmt.Sprintf("ndmpcopy: %s: error: %s", s.side, entry)
		case ndmp.LogWarning:
			line = fmt.Sprintf("ndmpcopy: %s: warning: %s", s.side, entry)
		case ndmp.LogNormal:
			line = fmt.Sprintf("ndmpcopy: %s: %s", s.side, entry)
		default:
			return
		}
		s.mu.Lock()
		holding := s.holding
		if holding {
			s.held = append(s.held, line)
		}
		s.mu.Unlock()
		if !holding {
			s.con.message("%s", line)
		}
	case *ndmp.LogFilePost:
		s.log.Printf("%s: LOG_FILE %q %v", s.side, p.Name, p.RecoveryStatus)
		if p.RecoveryStatus != ndmp.RecoverySuccessful {
			s.con.message("ndmpcopy: %s: %s: %v", s.side, p.Name, p.RecoveryStatus)
		}
	case *ndmp.NotifyConnectionStatusPost:
		s.log.Printf("%s: NOTIFY_CONNECTION_STATUS %v %q", s.side, p.Reason, p.TextReason)
		if p.Reason != ndmp.Connected {
			s.con.message("ndmpcopy: %s: connection %v %s", s.side, p.Reason, p.TextReason)
		}
	default:
		s.log.Printf("%s: %v", s.side, m)
	}
}

// hold holds the server's log messages back until release.
func (s *session) hold() {
	s.mu.Lock()
	s.holding = true
	s.mu.Unlock()
}

// release prints the messages held back when show is set, drops them
// otherwise, and prints later messages again. The error messages that came
// before are no longer the last error (lastError).
func (s *session) release(show bool) {
	s.mu.Lock()
	held := s.held
	s.holding, s.held = false, nil
	s.oldErr = s.c.LastLogMessage(ndmp.LogError)
	s.mu.Unlock()
	if show {
		for _, line := range held {
			s.con.message("%s", line)
		}
	}
}

// lastError returns the last error LOG_MESSAGE of the server since
// release, or "". A LOG_MESSAGE the server sent before a reply is there
// when the call returns (ndmp.Client.LastLogMessage).
func (s *session) lastError() string {
	p := s.c.LastLogMessage(ndmp.LogError)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p == nil || p == s.oldErr || s.holding {
		return ""
	}
	return strings.TrimRight(p.Entry, "\n")
}

// connect opens and authenticates one session.
func connect(ctx context.Context, side string, ep Endpoint, auth ndmp.AuthType, fam Family, timeout time.Duration, con *console, log *DebugLog) (*session, error) {
	opt := map[string]string{"source": "-mcs", "destination": "-mcd"}[side]
	if a, err := netip.ParseAddr(ep.Host); err == nil && fam != FamilyAny && familyOf(a) != fam {
		return nil, &Error{Code: ExitUsage, Msg: fmt.Sprintf("%s %s does not fit the %s address %s", opt, fam, side, ep.Host)}
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s := &session{side: side, ep: ep, con: con, log: log}
	log.Printf("%s: connecting to %s (%s)", side, ep.Address(), fam.network())
	var d net.Dialer
	nc, err := d.DialContext(dctx, fam.network(), ep.Address())
	if err != nil {
		return nil, &Error{Code: ExitUnreachable, Msg: fmt.Sprintf("cannot reach the %s %s", side, ep.Address()), Err: err}
	}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		s.ctl = ap.Addr().Unmap()
	}
	s.c = ndmp.NewClient(nc, &ndmp.ClientConfig{PostHandler: s.post})
	if err := s.c.Connect(dctx); err != nil {
		s.c.Conn().Close()
		var ce *ndmp.ConnectError
		if errors.As(err, &ce) {
			return nil, &Error{Code: ExitUnreachable, Msg: fmt.Sprintf("the %s %s refused the NDMP session", side, ep.Address()), Err: err}
		}
		return nil, &Error{Code: ExitUnreachable, Msg: fmt.Sprintf("no NDMP session with the %s %s", side, ep.Address()), Err: err}
	}
	log.Printf("%s: connected, control connection to %v", side, s.ctl)
	if info, err := s.c.GetServerInfo(dctx); err == nil && len(info.AuthType) > 0 {
		ok := false
		var names []string
		for _, t := range info.AuthType {
			ok = ok || t == auth
			names = append(names, authName(t))
		}
		if !ok {
			s.c.Close(ctx)
			return nil, &Error{Code: ExitAuth, Msg: fmt.Sprintf("the %s %s does not accept %s authentication (it accepts: %s)", side, ep.Address(), authName(auth), strings.Join(names, ", "))}
		}
	}
	switch auth {
	case ndmp.AuthText:
		err = s.c.AuthText(dctx, ep.User, ep.Password)
	default:
		err = s.c.AuthMD5(dctx, ep.User, ep.Password)
	}
	if err != nil {
		s.c.Close(ctx)
		switch {
		case errors.Is(err, ndmp.ErrNotAuthorized):
			return nil, &Error{Code: ExitAuth, Msg: fmt.Sprintf("authentication failed on the %s %s for user %s (%s): wrong user name or password", side, ep.Address(), ep.User, authName(auth)), Err: err}
		case errors.Is(err, ndmp.ErrIllegalArgs) || errors.Is(err, ndmp.ErrNotSupported):
			return nil, &Error{Code: ExitAuth, Msg: fmt.Sprintf("the %s %s does not accept %s authentication", side, ep.Address(), authName(auth)), Err: err}
		}
		return nil, &Error{Code: ExitAuth, Msg: fmt.Sprintf("authentication on the %s %s failed", side, ep.Address()), Err: err}
	}
	log.Printf("%s: authenticated as %s with %s", side, ep.User, authName(auth))
	return s, nil
}

func authName(t ndmp.AuthType) string {
	switch t {
	case ndmp.AuthMD5:
		return "md5"
	case ndmp.AuthText:
		return "text"
	case ndmp.AuthNone:
		return "none"
	}
	return t.String()
}

// negotiateCAE selects the connection address extension (class 0x2051
// version 1) when the server offers it; IPv6 data connections need it.
func (s *session) negotiateCAE(ctx context.Context) {
	list, err := s.c.GetExtList(ctx)
	if err != nil {
		s.log.Printf("%s: no extension list: %v", s.side, err)
		return
	}
	for _, cl := range list {
		if cl.ExtClassID != ndmp.ExtClassNetAppCAE {
			continue
		}
		for _, v := range cl.ExtVersion {
			if v == 1 {
				err := s.c.SetExtList(ctx, []ndmp.ClassVersion{{ExtClassID: ndmp.ExtClassNetAppCAE, ExtVersion: 1}})
				s.cae = err == nil
				s.log.Printf("%s: select extension 0x2051 v1: %v", s.side, errString(err))
				return
			}
		}
	}
	s.log.Printf("%s: the server does not offer extension 0x2051 v1", s.side)
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// fixAddr replaces unspecified addresses in a listen reply with the address
// the DMA reaches the server at.
func fixAddr(a *ndmp.Addr, ctl netip.Addr) {
	switch a.AddrType {
	case ndmp.AddrTCP:
		if !ctl.Is4() {
			return
		}
		b := ctl.As4()
		for i := range a.TCPAddr {
			if a.TCPAddr[i].IPAddr == 0 {
				a.TCPAddr[i].IPAddr = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			}
		}
	case ndmp.AddrTCPIPv6:
		if !ctl.Is6() {
			return
		}
		for i := range a.TCPIPv6Addr {
			if netip.AddrFrom16(a.TCPIPv6Addr[i].IPv6Addr).IsUnspecified() {
				a.TCPIPv6Addr[i].IPv6Addr = ctl.As16()
			}
		}
	}
}

// waitState polls the data service until it reaches want or halts.
func (s *session) waitState(ctx context.Context, want ndmp.DataState, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	delay := 5 * time.Millisecond
	for {
		st, err := s.c.DataGetState(ctx)
		if err != nil {
			return err
		}
		if st.State == want {
			return nil
		}
		if st.State == ndmp.DataStateHalted || st.State == ndmp.DataStateIdle {
			return fmt.Errorf("data service is %v (%v), not %v", st.State, st.HaltReason, want)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("data service still %v after %v, not %v", st.State, limit, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

// reset brings the data service back to IDLE after a failed attempt.
func (s *session) reset(ctx context.Context, haltTimeout time.Duration) {
	st, err := s.c.DataGetState(ctx)
	if err != nil {
		return
	}
	switch st.State {
	case ndmp.DataStateIdle:
		return
	case ndmp.DataStateListen, ndmp.DataStateConnected, ndmp.DataStateActive:
		if err := s.c.DataAbort(ctx); err != nil {
			s.log.Printf("%s: DATA_ABORT: %v", s.side, err)
		}
		t := time.NewTimer(haltTimeout)
		select {
		case <-s.c.DataHalted():
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	// Drain the halt notifications already delivered.
	for len(s.c.DataHalted()) > 0 {
		<-s.c.DataHalted()
	}
	if err := s.c.DataStop(ctx); err != nil {
		s.log.Printf("%s: DATA_STOP: %v", s.side, err)
	}
}

// waitPosts waits (at most limit) until post has handled every post the
// sessions' servers sent so far: the clients deliver halts and the last
// error as soon as they read them, and the messages printed for the posts
// before them must not come after ndmpcopy has moved on.
func waitPosts(ctx context.Context, limit time.Duration, ss ...*session) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	defer cancel()
	for _, s := range ss {
		if err := s.c.WaitPosts(wctx); err != nil {
			s.log.Printf("%s: waiting for the posts to be handled: %v", s.side, err)
		}
	}
}

// connectData sets up the data connection of one family: the destination
// listens and the source connects to it.
func connectData(ctx context.Context, src, dst *session, fam Family) error {
	t := ndmp.AddrTCP
	if fam == FamilyInet6 {
		for _, s := range []*session{dst, src} {
			if !s.cae {
				return fmt.Errorf("the %s does not offer the NDMP connection address extension (0x2051) that IPv6 data connections need", s.name())
			}
		}
		t = ndmp.AddrTCPIPv6
	}
	addr, err := dst.c.DataListen(ctx, t)
	if err != nil {
		return fmt.Errorf("DATA_LISTEN (%v) on the %s: %w", t, dst.name(), err)
	}
	fixAddr(addr, dst.ctl)
	dst.log.Printf("destination: listening at %v", addr.AddrPorts())
	if err := src.c.DataConnect(ctx, *addr); err != nil {
		return fmt.Errorf("DATA_CONNECT of the %s to %v: %w", src.name(), addr.AddrPorts(), err)
	}
	src.log.Printf("source: connected to %v", addr.AddrPorts())
	if err := dst.waitState(ctx, ndmp.DataStateConnected, 30*time.Second); err != nil {
		return fmt.Errorf("destination data connection: %w", err)
	}
	return nil
}

// Copy runs one copy: it connects to both servers, sets up the data
// connection, runs the backup into the restore and waits until both data
// services halt. Errors are *Error values with the exit status to use.
func Copy(ctx context.Context, o *Options, cfg *Config) (*Result, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	haltTimeout := cfg.HaltTimeout
	if haltTimeout <= 0 {
		haltTimeout = 30 * time.Second
	}
	interval := cfg.ProgressInterval
	if interval <= 0 {
		interval = time.Second
	}
	con := &console{msg: cfg.Messages, progress: cfg.Progress}
	log := cfg.Log
	log.Printf("copy %s -> %s level %d exclude %q force %v", o.Source, o.Dest, o.Level, o.Exclude, o.Force)

	src, err := connect(ctx, "source", o.Source, o.SourceAuth, o.MCS, o.ConnectTimeout, con, log)
	if err != nil {
		return nil, err
	}
	defer src.c.Close(context.WithoutCancel(ctx))
	dst, err := connect(ctx, "destination", o.Dest, o.DestAuth, o.MCD, o.ConnectTimeout, con, log)
	if err != nil {
		return nil, err
	}
	defer dst.c.Close(context.WithoutCancel(ctx))
	defer waitPosts(ctx, haltTimeout, src, dst)

	fams := DataFamilies(o.MD, src.ctl, dst.ctl)
	for _, f := range fams {
		if f == FamilyInet6 {
			src.negotiateCAE(ctx)
			dst.negotiateCAE(ctx)
		}
	}
	res := &Result{}
	var lastErr error
	// While the data connection is set up, the servers' log messages are
	// held back: once it works, the complaints about a refused attempt
	// (IPv6 before IPv4) are of no interest and stay in the debug log;
	// if it fails, they explain why.
	src.hold()
	dst.hold()
	for i, f := range fams {
		lastErr = connectData(ctx, src, dst, f)
		if lastErr == nil {
			res.DataFamily = f
			break
		}
		log.Printf("data connection over %s failed: %v", f, lastErr)
		dst.reset(ctx, haltTimeout)
		src.reset(ctx, haltTimeout)
		if i+1 < len(fams) {
			log.Printf("trying the data connection over %s", fams[i+1])
		}
	}
	waitPosts(ctx, haltTimeout, src, dst)
	src.release(lastErr != nil)
	dst.release(lastErr != nil)
	if lastErr != nil {
		return nil, &Error{Code: ExitFailed, Msg: "cannot set up the data connection between the servers", Err: lastErr}
	}
	log.Printf("data connection over %s", res.DataFamily)

	// The backup starts first, so that a source that refuses it (a
	// missing path, say) leaves the destination untouched. Its image
	// waits in the data connection until the restore reads it.
	start := time.Now()
	if err := src.c.DataStartBackup(ctx, butype(o), BackupEnv(o)); err != nil {
		dst.reset(ctx, haltTimeout)
		src.reset(ctx, haltTimeout)
		return nil, refused(src, "backup of", o.Source.Path, err)
	}
	if err := dst.c.DataStartRecover(ctx, butype(o), RecoverEnv(o), RecoverNlist(o)); err != nil {
		src.reset(ctx, haltTimeout)
		dst.reset(ctx, haltTimeout)
		return nil, refused(dst, "restore into", o.Dest.Path, err)
	}
	log.Printf("backup and restore started")

	srcReason, dstReason, err := waitHalts(ctx, src, dst, con, interval, haltTimeout, start)
	res.Elapsed = time.Since(start)
	con.endProgress()
	if st, err := src.c.DataGetState(context.WithoutCancel(ctx)); err == nil {
		res.Bytes = st.BytesProcessed
	}
	if err != nil {
		return res, err
	}
	if env, err := src.c.DataGetEnv(ctx); err == nil {
		res.Env = env
		log.Printf("source environment after the backup: %v", env)
	}
	for _, s := range []*session{src, dst} {
		if err := s.c.DataStop(ctx); err != nil {
			log.Printf("%s: DATA_STOP: %v", s.side, err)
		}
	}
	log.Printf("source halted %v, destination halted %v, %d bytes in %v", srcReason, dstReason, res.Bytes, res.Elapsed)
	if srcReason != ndmp.DataHaltSuccessful || dstReason != ndmp.DataHaltSuccessful {
		msg := fmt.Sprintf("the copy failed: the source backup ended with %v, the destination restore with %v", srcReason, dstReason)
		var details []string
		for _, s := range []*session{src, dst} {
			if e := s.lastError(); e != "" {
				details = append(details, s.side+": "+e)
			}
		}
		if len(details) > 0 {
			msg += " (" + strings.Join(details, "; ") + ")"
		}
		return res, &Error{Code: ExitFailed, Msg: msg}
	}
	return res, nil
}

// refused builds the error for a refused START_BACKUP or START_RECOVER.
func refused(s *session, what, path string, err error) error {
	msg := fmt.Sprintf("the %s refused the %s %s", s.name(), what, path)
	if e := s.lastError(); e != "" {
		msg += " (" + e + ")"
	}
	if errors.Is(err, ndmp.ErrFileNotFound) {
		msg += ": no such path"
	}
	return &Error{Code: ExitRefused, Msg: msg, Err: err}
}

// abortGrace is how long a data service may go on after its peer failed
// before ndmpcopy aborts it.
const abortGrace = 2 * time.Second

// waitHalts waits until both data services halt, showing progress. When one
// halts without success, it aborts the other.
func waitHalts(ctx context.Context, src, dst *session, con *console, interval, haltTimeout time.Duration, start time.Time) (ndmp.DataHaltReason, ndmp.DataHaltReason, error) {
	var srcReason, dstReason ndmp.DataHaltReason
	srcDone, dstDone := false, false
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var abortDeadline <-chan time.Time
	abort := func(s *session) {
		if err := s.c.DataAbort(context.WithoutCancel(ctx)); err != nil {
			s.log.Printf("%s: DATA_ABORT: %v", s.side, err)
		}
		if abortDeadline == nil {
			abortDeadline = time.After(haltTimeout)
		}
	}
	// When one side fails, the other usually fails on its own a moment
	// later (its data connection closes) and reports its own reason; it is
	// aborted only if it has not halted within abortGrace.
	var grace <-chan time.Time
	ctxDone := ctx.Done()
	for !srcDone || !dstDone {
		select {
		case p := <-src.c.DataHalted():
			r := p.Reason
			srcReason, srcDone = r, true
			if r != ndmp.DataHaltSuccessful && !dstDone && grace == nil {
				grace = time.After(abortGrace)
			}
		case p := <-dst.c.DataHalted():
			r := p.Reason
			dstReason, dstDone = r, true
			if r != ndmp.DataHaltSuccessful && !srcDone && grace == nil {
				grace = time.After(abortGrace)
			}
		case <-grace:
			if !srcDone {
				abort(src)
			}
			if !dstDone {
				abort(dst)
			}
		case <-src.c.Conn().Done():
			if !srcDone {
				return srcReason, dstReason, &Error{Code: ExitFailed, Msg: fmt.Sprintf("lost the control connection to the %s", src.name()), Err: src.c.Conn().Err()}
			}
		case <-dst.c.Conn().Done():
			if !dstDone {
				return srcReason, dstReason, &Error{Code: ExitFailed, Msg: fmt.Sprintf("lost the control connection to the %s", dst.name()), Err: dst.c.Conn().Err()}
			}
		case <-ctxDone:
			ctxDone = nil
			con.message("ndmpcopy: interrupted, aborting the copy")
			if !srcDone {
				abort(src)
			}
			if !dstDone {
				abort(dst)
			}
		case <-abortDeadline:
			return srcReason, dstReason, &Error{Code: ExitFailed, Msg: fmt.Sprintf("a data service did not halt within %v of the abort", haltTimeout)}
		case <-ticker.C:
			if con.progress == nil || srcDone {
				continue
			}
			st, err := src.c.DataGetState(ctx)
			if err != nil {
				continue
			}
			remain := time.Duration(st.EstTimeRemain) * time.Second
			timeOK := st.Unsupported&ndmp.DataStateEstTimeRemainUns == 0 && st.EstTimeRemain != 0
			bytesOK := st.Unsupported&ndmp.DataStateEstBytesRemainUns == 0 && st.EstBytesRemain != 0
			con.showProgress(ProgressLine(st.BytesProcessed, time.Since(start), remain, timeOK, st.EstBytesRemain, bytesOK))
		}
	}
	if ctx.Err() != nil {
		return srcReason, dstReason, &Error{Code: ExitFailed, Msg: "the copy was interrupted", Err: ctx.Err()}
	}
	return srcReason, dstReason, nil
}
