package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
	"github.com/tapestry-ndmp/tapestry/internal/options"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
)

// MaxBodyBytes bounds the size of a request body.
const MaxBodyBytes = 1 << 20

// ServerConfig holds what the API server works on.
type ServerConfig struct {
	Store   catalog.Store
	Storage *storage.Service
	Auth    *auth.Service
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Version is reported by GET /api/cluster.
	Version string
	// Tapes and VTL are the node's tape devices and virtual library
	// (storage tape commands, tape.go); nil when the node has none.
	Tapes *tape.Registry
	VTL   *vtl.Library
	// VTLs creates and deletes the node's extra virtual libraries
	// (storage tape vtl create|delete); nil refuses them.
	VTLs VTLManager
	// TapeRescan looks for real tape devices added to or removed from
	// the node and reloads the tape configuration files (storage tape
	// rescan); nil refuses it.
	TapeRescan func(context.Context) (TapeRescanResult, error)
	// Node is the name of the node this API serves (the daemon's
	// --node-name, kept in its data directory); GET /api/cluster reports
	// it and the node-scoped commands act on it.
	Node string
	// NDMP is the node's NDMP server (vserver/system services ndmp
	// session commands, ndmp.go); nil when it does not run.
	NDMP NDMPService
	// EventLog is the node's backup event log (rdfile,
	// backup.log.enable, eventlog.go).
	EventLog *eventlog.Log
	// Metrics, when not nil, is served at GET /metrics (metrics.go).
	Metrics http.Handler
	// SMTape runs the node's system smtape sessions (smtape.go); nil
	// refuses them.
	SMTape SMTapeService
}

// Server is the admin API as an http.Handler.
type Server struct {
	cfg   ServerConfig
	mux   *http.ServeMux
	log   *slog.Logger
	cache *authCache
}

// principal is the authenticated user of a request.
type principal struct {
	SVM, Name string
}

// request is what a route handler gets.
type request struct {
	*http.Request
	who  principal
	priv string
}

// handlerFunc implements one route. It returns the status and body of a
// successful answer, or an error.
type handlerFunc func(ctx context.Context, r *request) (int, any, error)

// route describes how a path is guarded.
type route struct {
	// cmd is the command directory Authorize checks; "" means the handler
	// authorises itself.
	cmd      string
	write    bool
	advanced bool
}

// NewServer returns the API server over cfg.
func NewServer(cfg ServerConfig) *Server {
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, cache: newAuthCache()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.routes()
	return s
}

// ServeHTTP serves one API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	s.handle("GET /api/cluster", route{cmd: "cluster show"}, s.getCluster)

	s.handle("GET /api/svm/svms", route{cmd: "vserver show"}, s.listSVMs)
	s.handle("POST /api/svm/svms", route{cmd: "vserver create", write: true}, withBody(s.createSVM))
	s.handle("PATCH /api/svm/svms/{name}", route{}, withBody(s.modifySVM))
	s.handle("DELETE /api/svm/svms/{name}", route{cmd: "vserver delete", write: true}, s.deleteSVM)

	s.handle("GET /api/protocols/nfs/services", route{cmd: "vserver nfs show"}, s.listNFS)
	s.handle("PATCH /api/protocols/nfs/services/{svm}", route{cmd: "vserver nfs modify", write: true}, withBody(s.modifyNFS))

	s.handle("GET /api/network/ip/interfaces", route{cmd: "network interface show"}, s.listLIFs)
	s.handle("POST /api/network/ip/interfaces", route{cmd: "network interface create", write: true}, withBody(s.createLIF))
	s.handle("DELETE /api/network/ip/interfaces/{uuid}", route{cmd: "network interface delete", write: true}, s.deleteLIF)

	s.handle("GET /api/storage/volumes", route{cmd: "volume show"}, s.listVolumes)
	s.handle("POST /api/storage/volumes", route{cmd: "volume create", write: true}, withBody(s.createVolume))
	s.handle("PATCH /api/storage/volumes/{uuid}", route{}, withBody(s.modifyVolume))
	s.handle("DELETE /api/storage/volumes/{uuid}", route{cmd: "volume delete", write: true}, s.deleteVolume)

	s.handle("GET /api/storage/volumes/{uuid}/snapshots", route{cmd: "volume snapshot show"}, s.listSnapshots)
	s.handle("POST /api/storage/volumes/{uuid}/snapshots", route{cmd: "volume snapshot create", write: true}, withBody(s.createSnapshot))
	s.handle("DELETE /api/storage/volumes/{uuid}/snapshots/{name}", route{cmd: "volume snapshot delete", write: true}, s.deleteSnapshot)
	s.handle("POST /api/private/cli/volume/snapshot/lock", route{cmd: "volume snapshot lock", write: true, advanced: true}, s.lockSnapshot(true))
	s.handle("POST /api/private/cli/volume/snapshot/unlock", route{cmd: "volume snapshot unlock", write: true, advanced: true}, s.lockSnapshot(false))

	s.handle("GET /api/storage/qtrees", route{cmd: "volume qtree show"}, s.listQtrees)
	s.handle("POST /api/storage/qtrees", route{cmd: "volume qtree create", write: true}, withBody(s.createQtree))
	s.handle("PATCH /api/storage/qtrees/{uuid}/{name}", route{cmd: "volume qtree modify", write: true}, withBody(s.modifyQtree))
	s.handle("DELETE /api/storage/qtrees/{uuid}/{name}", route{cmd: "volume qtree delete", write: true}, s.deleteQtree)

	s.handle("GET /api/security/accounts", route{cmd: "security login show"}, s.listAccounts)
	s.handle("POST /api/security/accounts", route{cmd: "security login create", write: true}, withBody(s.createAccount))
	s.handle("PATCH /api/security/accounts/{svm}/{name}", route{}, withBody(s.modifyAccount))
	s.handle("DELETE /api/security/accounts/{svm}/{name}", route{cmd: "security login delete", write: true}, s.deleteAccount)

	s.handle("GET /api/security/roles", route{cmd: "security login role show"}, s.listRoles)
	s.handle("POST /api/security/roles", route{cmd: "security login role create", write: true}, withBody(s.createRole))
	s.handle("PATCH /api/security/roles/{svm}/{name}", route{cmd: "security login role modify", write: true}, withBody(s.modifyRole))
	s.handle("DELETE /api/security/roles/{svm}/{name}", route{cmd: "security login role delete", write: true}, s.deleteRole)

	s.handle("POST /api/private/cli/vserver/services/ndmp/generate-password", route{}, withBody(s.generateNDMPPassword))

	s.handle("GET /api/private/cli/options", route{cmd: "options"}, s.listOptions)
	s.handle("POST /api/private/cli/options", route{cmd: "options", write: true}, s.setOption)

	s.tapeRoutes()
	s.smtapeRoutes()

	s.ndmpRoutes()
	s.eventLogRoutes()
	s.metricsRoute()

	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not-found", fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
	})
}

func (s *Server) handle(pattern string, rt route, fn handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, hr *http.Request) {
		start := time.Now()
		status, who := s.serve(w, hr, rt, fn)
		// Reads are logged at debug level, changes and refusals at info.
		level := slog.LevelInfo
		if hr.Method == http.MethodGet && status < 400 {
			level = slog.LevelDebug
		}
		s.log.Log(hr.Context(), level, "api request", "method", hr.Method, "path", hr.URL.Path, "user", who,
			"status", status, "duration", time.Since(start).Round(time.Microsecond))
	})
}

// principalKey is the context key of WithPrincipal.
type principalKey struct{}

// WithPrincipal returns a context under which a request served in the
// same process (the web view, package web) acts as the user svm/name
// without HTTP basic authentication: the caller has checked the user's
// password itself. Requests from the network cannot carry it. Every
// request is still authorised by the user's role, and refused when the
// account is locked.
func WithPrincipal(ctx context.Context, svm, name string) context.Context {
	return context.WithValue(ctx, principalKey{}, principal{SVM: svm, Name: name})
}

// authenticate returns the user of a request: the principal of
// WithPrincipal, or the checked HTTP basic credentials. On failure it has
// written the answer.
func (s *Server) authenticate(w http.ResponseWriter, hr *http.Request) (principal, string, int, bool) {
	if p, ok := hr.Context().Value(principalKey{}).(principal); ok {
		return p, p.Name, 0, true
	}
	user, pass, ok := hr.BasicAuth()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="tapestry"`)
		writeError(w, http.StatusUnauthorized, "authentication-failed", "authentication required")
		return principal{}, "", http.StatusUnauthorized, false
	}
	// Cluster users log in with their name, SVM users as SVM/name.
	svm, name := s.cfg.Auth.AdminSVM(), user
	if i := strings.IndexByte(user, '/'); i >= 0 {
		svm, name = user[:i], user[i+1:]
	}
	if err := s.login(hr.Context(), svm, name, pass); err != nil {
		s.log.Warn("api authentication failed", "user", user, "err", err)
		w.Header().Set("WWW-Authenticate", `Basic realm="tapestry"`)
		status, code := http.StatusUnauthorized, "authentication-failed"
		msg := "authentication failed: wrong user name or password"
		if errors.Is(err, auth.ErrLocked) {
			status, code, msg = http.StatusForbidden, "locked", auth.Message(err)
		}
		writeError(w, status, code, msg)
		return principal{}, user, status, false
	}
	return principal{SVM: svm, Name: name}, user, 0, true
}

func (s *Server) serve(w http.ResponseWriter, hr *http.Request, rt route, fn handlerFunc) (int, string) {
	ctx := hr.Context()
	who, user, status, ok := s.authenticate(w, hr)
	if !ok {
		return status, user
	}
	req := &request{Request: hr, who: who, priv: PrivAdmin}
	if p := hr.Header.Get(PrivilegeHeader); p != "" {
		if p != PrivAdmin && p != PrivAdvanced {
			writeError(w, http.StatusBadRequest, "invalid-argument", fmt.Sprintf("%q is not a privilege level; use admin or advanced", p))
			return http.StatusBadRequest, user
		}
		req.priv = p
	}
	if rt.advanced && req.priv != PrivAdvanced {
		msg := fmt.Sprintf("command %q is available only at the advanced privilege level; use -privilege advanced", rt.cmd)
		writeError(w, http.StatusForbidden, "privilege", msg)
		return http.StatusForbidden, user
	}
	if rt.cmd != "" {
		if err := s.authorize(ctx, req, rt.cmd, rt.write); err != nil {
			status, code, msg := classify(err)
			writeError(w, status, code, msg)
			return status, user
		}
	}
	hr.Body = http.MaxBytesReader(w, hr.Body, MaxBodyBytes)
	status, body, err := fn(ctx, req)
	if err != nil {
		status, code, msg := classify(err)
		if status == http.StatusInternalServerError {
			s.log.Error("api request failed", "method", hr.Method, "path", hr.URL.Path, "err", err)
		}
		writeError(w, status, code, msg)
		return status, user
	}
	writeJSON(w, status, body)
	return status, user
}

// login checks a user's password, through the cache of recent logins.
// Locked accounts are refused by Authorize on every request, cached or not.
func (s *Server) login(ctx context.Context, svm, user, pass string) error {
	if u, err := s.cfg.Auth.GetUser(ctx, svm, user); err == nil && !u.Locked && u.HasPassword &&
		s.cache.valid(svm, user, pass, authStamp{u.CreatedAt, u.PasswordChangedAt}) {
		return nil
	}
	u, err := s.cfg.Auth.CheckPassword(ctx, svm, user, pass)
	if err != nil {
		return err
	}
	s.cache.add(svm, user, pass, authStamp{u.CreatedAt, u.PasswordChangedAt})
	return nil
}

func (s *Server) authorize(ctx context.Context, r *request, cmd string, write bool) error {
	return s.cfg.Auth.Authorize(ctx, r.who.SVM, r.who.Name, cmd, write)
}

// badRequest is an error in the request itself.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badRequest{msg: fmt.Sprintf(format, args...)} }

// decode reads a JSON body into v, refusing unknown fields and trailing
// data.
func decode(r *request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return badf("request body is larger than %d bytes", MaxBodyBytes)
		}
		if errors.Is(err, io.EOF) {
			return badf("request body is empty")
		}
		return badf("invalid request body: %v", err)
	}
	if dec.More() {
		return badf("invalid request body: trailing data")
	}
	return nil
}

// classify maps an error onto a status, a code and the message printed after
// "Error: ".
func classify(err error) (int, string, string) {
	var br *badRequest
	if errors.As(err, &br) {
		return http.StatusBadRequest, "invalid-argument", br.msg
	}
	if errors.Is(err, options.ErrUnknown) || errors.Is(err, options.ErrBadValue) {
		return http.StatusBadRequest, "invalid-argument", "command failed: " + err.Error()
	}
	var se *storage.Error
	if errors.As(err, &se) {
		status, code := kindStatus(se.Kind)
		return status, code, "command failed: " + se.Msg
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		status, code := kindStatus(ae.Kind)
		msg := ae.Msg
		if !strings.Contains(msg, " failed: ") {
			msg = "command failed: " + msg
		}
		return status, code, msg
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, "canceled", "command failed: " + err.Error()
	}
	return http.StatusInternalServerError, "internal", "command failed: internal error: " + err.Error()
}

func kindStatus(kind error) (int, string) {
	switch kind {
	case storage.ErrNotFound, auth.ErrNotFound:
		return http.StatusNotFound, "not-found"
	case storage.ErrExists, auth.ErrExists:
		return http.StatusConflict, "exists"
	case storage.ErrInvalidArgument, auth.ErrInvalidArgument:
		return http.StatusBadRequest, "invalid-argument"
	case auth.ErrDenied:
		return http.StatusForbidden, "not-authorized"
	case auth.ErrAuthFailed:
		return http.StatusUnauthorized, "authentication-failed"
	case storage.ErrLocked, auth.ErrLocked:
		return http.StatusConflict, "locked"
	case storage.ErrInUse, auth.ErrInUse:
		return http.StatusConflict, "in-use"
	case storage.ErrLimit:
		return http.StatusConflict, "limit"
	case storage.ErrReadOnly:
		return http.StatusConflict, "read-only"
	case storage.ErrDisallowed:
		return http.StatusConflict, "disallowed"
	case auth.ErrNoPassword:
		return http.StatusConflict, "no-password"
	default:
		return http.StatusConflict, "invalid-state"
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v == nil {
		v = struct{}{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, ErrorBody{Error: ErrorInfo{Code: code, Message: msg}})
}

func records[T any](v []T) Records[T] {
	if v == nil {
		v = []T{}
	}
	return Records[T]{Records: v, NumRecords: len(v)}
}
