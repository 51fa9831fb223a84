// Package server is Tapestry's NDMP version 4 server: it listens on the
// LIFs of the node, runs one session per control connection and serves the
// CONNECT, CONFIG, SCSI, TAPE, MOVER and DATA interfaces of the NDMP v4
// draft with the state machines the draft describes.
//
// A Server is built with New from the node's storage, authentication,
// catalog and tape services and runs until its context ends:
//
//	srv, err := server.New(server.Options{Storage: st, Auth: au, Catalog: cat, Tapes: reg, Node: nodeName})
//	...
//	err = srv.Serve(ctx) // returns when ctx is canceled, all sessions closed
//
// Serve listens on every LIF's address and port (default 10000) and, for
// SVMs whose settings enable the secure control connection, on port 30000
// with TLS (a self-signed certificate is made in the data directory on
// first use).
//
// The NDMP settings of SVMs and nodes are kept in the catalog under
// "ndmp/"; LoadSVMSettings, ModifySVMSettings, LoadNodeSettings and
// ModifyNodeSettings are the API of the administration commands. Running
// sessions are listed, probed and killed through Server.Sessions,
// Server.Session, Server.Kill and Server.KillAll.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/engine/filedump"
	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// DefaultTLSPort is the port of the secure control connection ("ndmps",
// N8).
const DefaultTLSPort = 30000

// Product identification reported by CONFIG_GET_SERVER_INFO.
const (
	VendorName  = "Tapestry"
	ProductName = "Tapestry NDMP Server"
)

// Options configures a Server.
type Options struct {
	// Storage resolves SVMs, LIFs and volumes (required).
	Storage *storage.Service
	// Auth checks NDMP users and passwords (required).
	Auth *auth.Service
	// Catalog holds the NDMP settings, dump dates and inode maps
	// (required).
	Catalog catalog.Store
	// Tapes holds the node's tape drives and changers; nil means none.
	Tapes *tape.Registry
	// Node is the name of this node.
	Node string
	// DataDir is where the TLS certificate is kept (tls/ndmp-cert.pem,
	// tls/ndmp-key.pem) and where restores keep their state, outside every
	// volume (restore-state/); empty disables TLS and keeps the state in
	// the destination.
	DataDir string
	// Version is the revision reported by CONFIG_GET_SERVER_INFO.
	Version string
	// TLSPort is the secure control connection port; 0 means 30000.
	TLSPort int
	// MaxSessions overrides the session limit computed from the system
	// memory (N12) when above zero.
	MaxSessions int
	// EventLog, if not nil, receives backup event log lines.
	EventLog *eventlog.Log
	// OnOperation, if not nil, is called when a backup or restore ends,
	// however it ends (issue 17 item 2: metrics by outcome). It must not
	// block.
	OnOperation func(Operation)
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
	// Hostname overrides the host name of CONFIG_GET_HOST_INFO.
	Hostname string
	// DumpLimiter bounds the dumps and restores running at once on the
	// node (D13); nil means one sized by the system memory.
	DumpLimiter *engine.Limiter
	// ProgressInterval is the time between LOG_MESSAGE progress reports of
	// a running backup or restore; 0 means ProgressInterval (30 s).
	ProgressInterval time.Duration
	// RescanInterval is how often Serve looks for LIF and setting changes;
	// 0 means DefaultRescanInterval.
	RescanInterval time.Duration
	// AuthGuard bounds password guessing; zero fields take the values of
	// DefaultAuthGuardConfig.
	AuthGuard AuthGuardConfig
}

// DefaultRescanInterval is how often Serve looks for new, moved or deleted
// LIFs by default.
const DefaultRescanInterval = 5 * time.Second

// Server is an NDMP server. Its methods are safe for concurrent use.
type Server struct {
	o   Options
	log *slog.Logger

	nextID atomic.Uint64
	// recoverIDs numbers the SNAP_RECOVER operations of class 0x2050.
	recoverIDs atomic.Uint64

	mu       sync.Mutex
	sessions map[uint64]*session
	addrs    []net.Addr
	serving  bool
	wg       sync.WaitGroup
	tlsCfg   *tls.Config

	// dumpSeq numbers the dumps of the event log's identifiers.
	dumpSeq atomic.Uint64

	// Node-wide counters (Stats).
	fhDepth      atomic.Int64
	fhStalls     atomic.Uint64
	moverRecords atomic.Uint64
	// dataBytes and moverBytes add every byte the DATA and MOVER services
	// move, where they move it (issue 17 item 2).
	dataBytes  atomic.Uint64
	moverBytes atomic.Uint64

	// snapNames numbers the snapshot_for_backup.<n> copies of this node's
	// backups: from 0, one more per backup, back to 0 on restart (D1).
	snapNames filedump.SnapshotNamer
	// inodeMaps shares a volume's dump inode map between the backups of
	// the volume that run at the same time (issue 11).
	inodeMaps filedump.InodeMaps

	// Connection counts, guarded by mu (admission.go): authenticated
	// sessions (the session limit), unauthenticated connections in total
	// and per client address.
	authedCount  int
	unauthCount  int
	unauthByAddr map[netip.Addr]int

	// guard counts failed authentications (authguard.go).
	guard *authGuard

	// Security counters (Stats).
	refused           atomic.Uint64
	evicted           atomic.Uint64
	authTimeouts      atomic.Uint64
	authFailures      atomic.Uint64
	authLockouts      atomic.Uint64
	authRefusedLocked atomic.Uint64

	// assumeAuthed makes new sessions start authenticated (tests and the
	// fuzz target reach the post-authentication handlers with it).
	assumeAuthed bool
}

// New returns a server; Serve starts it.
func New(o Options) (*Server, error) {
	if o.Storage == nil || o.Auth == nil || o.Catalog == nil {
		return nil, errors.New("server: storage, auth and catalog are required")
	}
	if o.Node == "" {
		return nil, errors.New("server: node name is required")
	}
	if o.TLSPort == 0 {
		o.TLSPort = DefaultTLSPort
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	limits, _ := engine.SystemLimits() // unknown memory: the smallest limits
	if o.DumpLimiter == nil {
		o.DumpLimiter = engine.NewDumpLimiter(limits.DumpRestore)
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = ProgressInterval
	}
	if o.RescanInterval <= 0 {
		o.RescanInterval = DefaultRescanInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = limits.NDMPSessions
	}
	s := &Server{o: o, log: o.Logger, sessions: map[uint64]*session{},
		unauthByAddr: map[netip.Addr]int{}, guard: newAuthGuard(o.AuthGuard)}
	if o.Tapes != nil {
		o.Tapes.SetSessionCheck(s.sessionAlive)
	}
	return s, nil
}

// MaxSessions returns the session limit in force.
func (s *Server) MaxSessions() int { return s.o.MaxSessions }

// Addrs returns the addresses Serve listens on (empty before Serve).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

type listener struct {
	ln  net.Listener
	lif storage.LIF
	tls bool
}

// spec is a listener Serve should have.
type spec struct {
	addr string // host:port
	lif  storage.LIF
	tls  bool
}

func (p spec) key() string {
	return fmt.Sprintf("%s|%v|%s|%s|%s", p.addr, p.tls, p.lif.SVM, p.lif.Name, p.lif.Role)
}

// Serve listens on every LIF of the cluster that belongs to this node (or
// has no home node), and on port 30000 with TLS for the LIFs of SVMs whose
// secure control connection is enabled, and serves sessions until ctx
// ends. It looks at the LIFs and settings again every RescanInterval, so
// LIFs created, moved or deleted while it runs are served or dropped. At
// the end it closes the listeners and all sessions and returns once every
// goroutine it started has ended. It returns an error when no listener
// could be opened at the start.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("server: already serving")
	}
	s.serving = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.addrs, s.serving = nil, false
		s.mu.Unlock()
	}()
	active := map[string]listener{}
	failed := map[string]bool{}
	var acceptWG sync.WaitGroup
	reconcile := func() error {
		specs, err := s.specs(ctx)
		if err != nil {
			return err
		}
		want := map[string]spec{}
		for _, p := range specs {
			want[p.key()] = p
		}
		for k, l := range active {
			if _, ok := want[k]; !ok {
				s.log.Info("NDMP listener closed", "addr", l.ln.Addr().String(), "lif", l.lif.Name)
				_ = l.ln.Close()
				delete(active, k)
			}
		}
		var errs []error
		for k, p := range want {
			if _, ok := active[k]; ok {
				continue
			}
			l, err := s.open(p)
			if err != nil {
				if !failed[k] {
					s.log.Error(err.Error())
				}
				failed[k] = true
				errs = append(errs, err)
				continue
			}
			delete(failed, k)
			active[k] = l
			acceptWG.Add(1)
			go func() {
				defer acceptWG.Done()
				s.accept(ctx, l)
			}()
		}
		addrs := make([]net.Addr, 0, len(active))
		for _, l := range active {
			addrs = append(addrs, l.ln.Addr())
		}
		s.mu.Lock()
		s.addrs = addrs
		s.mu.Unlock()
		if len(active) == 0 {
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
			return errors.New("server: no LIF to listen on")
		}
		return nil
	}
	if err := reconcile(); err != nil {
		for _, l := range active {
			_ = l.ln.Close()
		}
		acceptWG.Wait()
		return err
	}
	t := time.NewTicker(s.o.RescanInterval)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			if err := reconcile(); err != nil && ctx.Err() == nil {
				s.log.Warn("NDMP listeners", "err", err)
			}
		}
	}
	for _, l := range active {
		_ = l.ln.Close()
	}
	acceptWG.Wait()
	s.KillAll()
	s.wg.Wait()
	return nil
}

// specs lists the listeners the LIFs and settings ask for.
func (s *Server) specs(ctx context.Context) ([]spec, error) {
	svms, err := s.o.Storage.ListSVMs(ctx)
	if err != nil {
		return nil, fmt.Errorf("server: list SVMs: %w", err)
	}
	var out []spec
	for _, svm := range svms {
		lifs, err := s.o.Storage.ListLIFs(ctx, svm.Name)
		if err != nil {
			return nil, fmt.Errorf("server: list LIFs of %s: %w", svm.Name, err)
		}
		set, err := LoadSVMSettings(ctx, s.o.Catalog, svm.Name)
		if err != nil {
			return nil, err
		}
		for _, lif := range lifs {
			if lif.HomeNode != "" && lif.HomeNode != s.o.Node {
				continue
			}
			out = append(out, spec{addr: lif.AddrPort().String(), lif: lif})
			if set.SecureControlConnection && s.o.DataDir != "" {
				ap := netip.AddrPortFrom(lif.Address, uint16(s.o.TLSPort))
				out = append(out, spec{addr: ap.String(), lif: lif, tls: true})
			}
		}
	}
	return out, nil
}

// open opens the listener of p.
func (s *Server) open(p spec) (listener, error) {
	var cfg *tls.Config
	if p.tls {
		var err error
		if cfg, err = s.tlsConfig(); err != nil {
			return listener{}, err
		}
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return listener{}, fmt.Errorf("server: listen on LIF %s (%s): %w", p.lif.Name, p.addr, err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	s.log.Info("NDMP listening", "addr", ln.Addr().String(), "lif", p.lif.Name, "vserver", p.lif.SVM, "tls", p.tls)
	return listener{ln: ln, lif: p.lif, tls: p.tls}, nil
}

func (s *Server) accept(ctx context.Context, l listener) {
	var delay time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (for example too many open files): back off.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			s.log.Warn("ndmp accept failed", "lif", l.lif.Name, "err", err)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			continue
		}
		delay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.startSession(ctx, nc, l.lif, l.tls)
		}()
	}
}

// SessionInfo describes a running session (vserver services ndmp status
// and probe, N13).
type SessionInfo struct {
	ID         uint64    `json:"session-id"`
	Node       string    `json:"node"`
	SVM        string    `json:"vserver"`
	LIF        string    `json:"lif"`
	LIFRole    string    `json:"lif-role"`
	ClientAddr string    `json:"client-addr"`
	ServerAddr string    `json:"server-addr"`
	Secure     bool      `json:"is-secure-control-connection"`
	NodeScope  bool      `json:"node-scope"`
	User       string    `json:"user-id,omitempty"`
	AuthType   string    `json:"auth-type,omitempty"`
	Started    time.Time `json:"session-start-time"`
	Tape       string    `json:"tape-device,omitempty"`
	SCSI       string    `json:"scsi-device,omitempty"`
	DataState  string    `json:"data-state"`
	DataOp     string    `json:"data-operation"`
	DataBytes  uint64    `json:"data-bytes-processed"`
	MoverState string    `json:"mover-state"`
	MoverMode  string    `json:"mover-mode"`
	MoverBytes uint64    `json:"mover-bytes-moved"`
	// FHQueueDepth is the number of file history posts waiting to be sent
	// to the DMA; FHStalls counts the times the backup waited because
	// that queue was full (the DMA reads posts slower than the dump walks).
	FHQueueDepth int    `json:"fh-queue-depth"`
	FHStalls     uint64 `json:"fh-stalls"`
	// Extensions lists the negotiated extension classes as "0x2052 v1".
	Extensions []string `json:"extensions,omitempty"`
	// OpStarted is when the running (or last) backup or restore started;
	// Phase is its engine phase ("I" ... "V" for a dump), Files the
	// inodes done and FilesTotal those it will do (0 when not known).
	OpStarted  time.Time `json:"operation-start-time,omitzero"`
	Phase      string    `json:"phase,omitempty"`
	Files      int64     `json:"files,omitempty"`
	FilesTotal int64     `json:"files-total,omitempty"`
}

// Stats are node-wide counters of the NDMP server, for monitoring.
type Stats struct {
	// FHQueueDepth is the number of file history posts queued in all
	// sessions and not yet sent to their DMAs.
	FHQueueDepth int
	// FHStalls counts the times a backup waited because its file history
	// queue was full (back pressure from a DMA that reads posts slowly).
	FHStalls uint64
	// MoverRecords counts the tape records the mover wrote (backup) or
	// read (restore) since the server was made.
	MoverRecords uint64
	// Unauthenticated is the number of connections that have not
	// authenticated yet.
	Unauthenticated int
	// Refused counts connections refused with NOTIFY_CONNECTION_STATUS
	// REFUSED (service off, protocol disallowed, limits).
	Refused uint64
	// Evicted counts unauthenticated connections closed to make room for
	// new ones (MaxUnauthenticated reached).
	Evicted uint64
	// AuthTimeouts counts connections closed for not authenticating in
	// time.
	AuthTimeouts uint64
	// AuthFailures counts failed CONNECT_CLIENT_AUTH requests.
	AuthFailures uint64
	// AuthLockouts counts the lockouts started (address or user).
	AuthLockouts uint64
	// AuthRefusedLocked counts authentications refused during a lockout.
	AuthRefusedLocked uint64
	// DataBytes and MoverBytes count every byte the DATA services
	// (backup and restore streams) and the MOVERs (tape records, data
	// connection) moved since the server was made, counted as they move.
	DataBytes  uint64
	MoverBytes uint64
}

// Operation is a backup or restore that ended (Options.OnOperation).
type Operation struct {
	// Kind is "backup" or "restore".
	Kind string
	// Path is the backup path (backup) or the restore destination
	// (restore), /svm/volume[/path].
	Path string
	// Started and Ended bound the operation; Bytes is what its data
	// stream carried.
	Started, Ended time.Time
	Bytes          uint64
	// Err is why it failed, nil when it succeeded; Aborted is set when
	// the DMA aborted it or an administrator killed its session.
	Err     error
	Aborted bool
}

// Outcome is "success", "aborted" or "failed".
func (o Operation) Outcome() string {
	switch {
	case o.Aborted:
		return "aborted"
	case o.Err != nil:
		return "failed"
	}
	return "success"
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	d := s.fhDepth.Load()
	if d < 0 {
		d = 0
	}
	s.mu.Lock()
	unauth := s.unauthCount
	s.mu.Unlock()
	return Stats{FHQueueDepth: int(d), FHStalls: s.fhStalls.Load(), MoverRecords: s.moverRecords.Load(),
		Unauthenticated: unauth, Refused: s.refused.Load(), Evicted: s.evicted.Load(),
		AuthTimeouts: s.authTimeouts.Load(), AuthFailures: s.authFailures.Load(),
		AuthLockouts: s.authLockouts.Load(), AuthRefusedLocked: s.authRefusedLocked.Load(),
		DataBytes: s.dataBytes.Load(), MoverBytes: s.moverBytes.Load()}
}

// Sessions returns the running sessions, oldest first.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	out := make([]SessionInfo, 0, len(list))
	for _, ss := range list {
		out = append(out, ss.info())
	}
	sortInfos(out)
	return out
}

func sortInfos(in []SessionInfo) {
	for i := 1; i < len(in); i++ {
		for j := i; j > 0 && in[j].ID < in[j-1].ID; j-- {
			in[j], in[j-1] = in[j-1], in[j]
		}
	}
}

// ErrSessionNotActive is wrapped by the errors for unknown session ids.
var ErrSessionNotActive = errors.New("session not active")

// notActive returns ONTAP's message for an unknown session (N13).
func notActive(id uint64) error {
	return fmt.Errorf("ndmpd session %d not active: %w", id, ErrSessionNotActive)
}

// SessionNotActiveMessage returns the ONTAP message for an unknown session
// id: "ndmpd session <id> not active".
func SessionNotActiveMessage(id uint64) string {
	return fmt.Sprintf("ndmpd session %d not active", id)
}

// Session returns the details of session id (probe), or an error wrapping
// ErrSessionNotActive.
func (s *Server) Session(id uint64) (SessionInfo, error) {
	s.mu.Lock()
	ss, ok := s.sessions[id]
	s.mu.Unlock()
	if !ok {
		return SessionInfo{}, notActive(id)
	}
	return ss.info(), nil
}

// Kill ends session id: its data and mover operations are aborted, its
// devices closed and its connection closed after NOTIFY_CONNECTION_STATUS
// SHUTDOWN. An unknown id gives an error wrapping ErrSessionNotActive whose
// text is "ndmpd session <id> not active".
func (s *Server) Kill(id uint64) error {
	s.mu.Lock()
	ss, ok := s.sessions[id]
	s.mu.Unlock()
	if !ok {
		if s.releaseOrphan(sessionName(id)) {
			return nil
		}
		return notActive(id)
	}
	ss.kill("session killed by administrator")
	return nil
}

// SetSessionLog switches the protocol log of session id on or off (ndmp
// log start|stop): every request and error reply is logged at debug
// level. An unknown id gives an error wrapping ErrSessionNotActive.
func (s *Server) SetSessionLog(id uint64, on bool) error {
	s.mu.Lock()
	ss, ok := s.sessions[id]
	s.mu.Unlock()
	if !ok {
		return notActive(id)
	}
	ss.mu.Lock()
	ss.logOn = on
	ss.mu.Unlock()
	return nil
}

// KillAll ends every session and returns how many it ended.
func (s *Server) KillAll() int {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	for _, ss := range list {
		ss.kill("NDMP service shutting down")
	}
	s.ReleaseOrphans()
	return len(list)
}

// sessionName is the name of session id in the tape registry.
func sessionName(id uint64) string { return "ndmp-" + strconv.FormatUint(id, 10) }

// sessionAlive tells the tape registry whether the session it knows as
// name still exists.
func (s *Server) sessionAlive(name string) bool {
	id, err := strconv.ParseUint(strings.TrimPrefix(name, "ndmp-"), 10, 64)
	if err != nil || !strings.HasPrefix(name, "ndmp-") {
		return true // not one of this server's sessions
	}
	s.mu.Lock()
	_, ok := s.sessions[id]
	s.mu.Unlock()
	return ok
}

// releaseOrphan frees the tape devices held by the session named name if
// that session no longer exists; it reports whether it held any.
func (s *Server) releaseOrphan(name string) bool {
	r := s.o.Tapes
	if r == nil || s.sessionAlive(name) || !slices.Contains(r.Holders(), name) {
		return false
	}
	if err := r.ReleaseSession(name); err != nil {
		s.log.Warn("release tape devices of an ended session", "session", name, "err", err)
	}
	s.log.Warn("tape devices of an ended session released", "session", name)
	return true
}

// ReleaseOrphans frees the tape devices held by sessions that no longer
// exist (issue 10: whatever holds a device, kill-all frees it) and
// returns how many such sessions it found.
func (s *Server) ReleaseOrphans() int {
	if s.o.Tapes == nil {
		return 0
	}
	n := 0
	for _, name := range s.o.Tapes.Holders() {
		if s.releaseOrphan(name) {
			n++
		}
	}
	return n
}
