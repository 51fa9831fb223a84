package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// NDMPVersion is the only NDMP version Tapestry speaks (N1); vserver
// services ndmp version and system services ndmp version report it.
const NDMPVersion = 4

// NDMPSVMSettings is one record of vserver services ndmp show: the SVM's
// name and its NDMP settings (those of internal/server.SVMSettings).
type NDMPSVMSettings struct {
	SVM string `json:"vserver"`
	// Enabled is the NDMP service state of the SVM.
	Enabled bool `json:"enable"`
	// AuthTypes lists the accepted authentication methods (AuthPlaintext,
	// AuthChallenge).
	AuthTypes []string `json:"authtype"`
	// SecureControlConnection accepts NDMP over TLS (N8).
	SecureControlConnection bool `json:"is-secure-control-connection-enabled"`
	// DataPortRange is "all" or "LOW-HIGH".
	DataPortRange string `json:"data-port-range"`
	// PreferredInterfaceRole lists the LIF roles a data connection may
	// use, in order (N7); the SVM type's default when not set.
	PreferredInterfaceRole []storage.LIFRole `json:"preferred-interface-role"`
	DebugEnable            bool              `json:"debug-enable"`
	DebugFilter            string            `json:"debug-filter"`
	// ExtensionsEnabled offers the NetApp extensions (N9).
	ExtensionsEnabled bool `json:"is-extension-enabled"`
	BackupLogEnable   bool `json:"backup-log-enable"`
	// The restore mapping (issue 10, docs/security.md): the user and
	// group ids whose files the SVM's restores keep, the owner and group
	// of the others (65534 unless set), and whether every owner is kept.
	RestoreUIDs       string `json:"restore-uid-range"`
	RestoreGIDs       string `json:"restore-gid-range"`
	RestoreDefaultUID uint32 `json:"restore-default-uid"`
	RestoreDefaultGID uint32 `json:"restore-default-gid"`
	RestoreAnyOwner   bool   `json:"restore-allow-any-owner"`
	// DataConnectAllow lists the addresses outside the cluster's LIFs the
	// SVM users' data connections may reach.
	DataConnectAllow []string `json:"data-connect-allow"`
}

// The NDMP authentication methods of NDMPSVMSettings.AuthTypes.
const (
	AuthPlaintext = "plaintext"
	AuthChallenge = "challenge"
)

// NDMPSVMModify is the body of PATCH
// /api/private/cli/vserver/services/ndmp/{vserver}; nil fields stay.
type NDMPSVMModify struct {
	Enabled                 *bool     `json:"enable,omitempty"`
	AuthTypes               *[]string `json:"authtype,omitempty"`
	SecureControlConnection *bool     `json:"is-secure-control-connection-enabled,omitempty"`
	DataPortRange           *string   `json:"data-port-range,omitempty"`
	PreferredInterfaceRole  *[]string `json:"preferred-interface-role,omitempty"`
	DebugEnable             *bool     `json:"debug-enable,omitempty"`
	DebugFilter             *string   `json:"debug-filter,omitempty"`
	ExtensionsEnabled       *bool     `json:"is-extension-enabled,omitempty"`
	BackupLogEnable         *bool     `json:"backup-log-enable,omitempty"`
	// The restore mapping and the data connection allow list (issue 10):
	// cluster administrators only.
	RestoreUIDs       *string   `json:"restore-uid-range,omitempty"`
	RestoreGIDs       *string   `json:"restore-gid-range,omitempty"`
	RestoreDefaultUID *uint32   `json:"restore-default-uid,omitempty"`
	RestoreDefaultGID *uint32   `json:"restore-default-gid,omitempty"`
	RestoreAnyOwner   *bool     `json:"restore-allow-any-owner,omitempty"`
	DataConnectAllow  *[]string `json:"data-connect-allow,omitempty"`
}

// tenantFields reports whether m changes a field that contains the SVM's
// users (restore mapping, data connection allow list).
func (m NDMPSVMModify) tenantFields() bool {
	return m.RestoreUIDs != nil || m.RestoreGIDs != nil || m.RestoreDefaultUID != nil || m.RestoreDefaultGID != nil ||
		m.RestoreAnyOwner != nil || m.DataConnectAllow != nil
}

// checkTenantFields refuses a change of the containment fields by anyone
// but a cluster user: the SVM's own administrators (vsadmin,
// vsadmin-backup) may run vserver services ndmp modify, and must not lift
// the limits set on them. Root as the default owner is refused.
func (s *Server) checkTenantFields(r *request, in NDMPSVMModify) error {
	if !in.tenantFields() {
		return nil
	}
	if r.who.SVM != s.cfg.Auth.AdminSVM() {
		return &auth.Error{Kind: auth.ErrDenied, Msg: "only cluster administrators can change the restore mapping and -data-connect-allow of a Vserver"}
	}
	for _, id := range []*uint32{in.RestoreDefaultUID, in.RestoreDefaultGID} {
		if id != nil && *id == 0 {
			return badf("command failed: root (0) cannot be the default owner of restored files; use -restore-allow-any-owner true to keep the image's owners")
		}
	}
	return nil
}

// NDMPNodeSettings is one record of system services ndmp show: the node's
// settings and its node-scope NDMP account.
type NDMPNodeSettings struct {
	Node string `json:"node"`
	NDMPNodeOptions
	// User is the node-scope NDMP user (default root).
	User string `json:"user-id"`
	// PasswordSet is false until system services ndmp password has run.
	PasswordSet bool `json:"password-set"`
	// ServiceRunning tells whether this node's NDMP server is serving.
	ServiceRunning bool `json:"service-running"`
}

// NDMPNodeOptions are the node-scope NDMP settings of a node (those of
// internal/server.NodeSettings).
type NDMPNodeOptions struct {
	// Enabled is the node's NDMP service state.
	Enabled bool `json:"enable"`
	// NodeScopeMode makes every session of the node use node-scope rules.
	NodeScopeMode bool `json:"node-scope-mode"`
	// Plaintext allows plaintext authentication in node scope (N3).
	Plaintext     bool   `json:"clear-text"`
	DataPortRange string `json:"data-port-range"`
	DebugEnable   bool   `json:"debug-enable"`
	// LogSessions names the sessions whose protocol log is on.
	LogSessions []string `json:"log-sessions,omitempty"`
	// AuthTimeout (seconds), MaxUnauthenticated and
	// MaxUnauthenticatedPerAddress are the limits in force on connections
	// that have not authenticated (issue 10), defaults applied.
	AuthTimeout                  int `json:"auth-timeout"`
	MaxUnauthenticated           int `json:"max-unauthenticated"`
	MaxUnauthenticatedPerAddress int `json:"max-unauthenticated-per-address"`
}

// NDMPSession is one record of the ndmp status and probe commands: a
// session of the node's NDMP server (internal/server.SessionInfo).
type NDMPSession struct {
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
	// FHQueueDepth and FHStalls describe the file history queue.
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

// NDMPService is the node's NDMP server as the admin API uses it: its
// sessions and its settings. Package ndmpadmin implements it over
// internal/server, so that this package, and the CLI that links it, do not
// link the NDMP server.
type NDMPService interface {
	// Serving reports whether the server listens.
	Serving() bool
	// Sessions lists the running sessions, oldest first; Session returns
	// one, Kill ends one and SetSessionLog switches its protocol log. They
	// return an error wrapping ErrSessionNotActive for an unknown id.
	Sessions() []NDMPSession
	Session(id uint64) (NDMPSession, error)
	Kill(id uint64) error
	SetSessionLog(id uint64, on bool) error
	// SVMSettings returns an SVM's settings, with the default preferred
	// interface roles of its type (adminSVM: the cluster's admin SVM)
	// when none are set. ModifySVMSettings applies the non-nil fields
	// of in; a value the server refuses is an *InvalidSettingsError.
	SVMSettings(ctx context.Context, svm string, adminSVM bool) (NDMPSVMSettings, error)
	ModifySVMSettings(ctx context.Context, svm string, adminSVM bool, in NDMPSVMModify) (NDMPSVMSettings, error)
	// NodeSettings and ModifyNodeSettings are the same for a node's
	// settings (in.User is not a setting and is left alone).
	NodeSettings(ctx context.Context, node string) (NDMPNodeOptions, error)
	ModifyNodeSettings(ctx context.Context, node string, in NDMPNodeModify) error
	// CheckPortRange checks a -data-port-range value, with an
	// *InvalidSettingsError if the server refuses it.
	CheckPortRange(r string) error
	// CheckNodeModify checks the settings of in the same way, before
	// anything is stored.
	CheckNodeModify(in NDMPNodeModify) error
	// ReleaseOrphans frees the tape devices held by sessions that no
	// longer exist and returns how many such sessions it found (issue 10).
	ReleaseOrphans() int
}

// ErrSessionNotActive is wrapped by NDMPService's errors for a session
// that is not running.
var ErrSessionNotActive = errors.New("session not active")

// InvalidSettingsError is an NDMP setting value the server refuses; its
// message follows "command failed: ".
type InvalidSettingsError struct{ Err error }

func (e *InvalidSettingsError) Error() string { return e.Err.Error() }

// Unwrap returns the server's error.
func (e *InvalidSettingsError) Unwrap() error { return e.Err }

// NDMPNodeModify is the body of PATCH
// /api/private/cli/system/services/ndmp/{node}; nil fields stay.
type NDMPNodeModify struct {
	Enabled       *bool   `json:"enable,omitempty"`
	NodeScopeMode *bool   `json:"node-scope-mode,omitempty"`
	Plaintext     *bool   `json:"clear-text,omitempty"`
	DataPortRange *string `json:"data-port-range,omitempty"`
	DebugEnable   *bool   `json:"debug-enable,omitempty"`
	User          *string `json:"user-id,omitempty"`
	// AuthTimeout, MaxUnauthenticated and MaxUnauthenticatedPerAddress
	// bound connections that have not authenticated (issue 10); 0 sets
	// the default back.
	AuthTimeout                  *int `json:"auth-timeout,omitempty"`
	MaxUnauthenticated           *int `json:"max-unauthenticated,omitempty"`
	MaxUnauthenticatedPerAddress *int `json:"max-unauthenticated-per-address,omitempty"`
}

// NDMPNodePassword is the body of POST
// /api/private/cli/system/services/ndmp/password.
type NDMPNodePassword struct {
	Node     string `json:"node,omitempty"`
	Password string `json:"password"`
}

// NDMPVersionInfo is one record of the version commands.
type NDMPVersionInfo struct {
	SVM     string `json:"vserver,omitempty"`
	Node    string `json:"node,omitempty"`
	Version int    `json:"version"`
}

// NDMPKill is the body of the kill, kill-all and log start|stop requests.
// SVM limits kill-all to one SVM's sessions; SessionFilter ("all" or a
// session id) selects the sessions of log start|stop.
type NDMPKill struct {
	SVM           string `json:"vserver,omitempty"`
	Node          string `json:"node,omitempty"`
	SessionID     string `json:"session-id,omitempty"`
	SessionFilter string `json:"session-filter,omitempty"`
}

// NDMPKillResult is the answer of kill, kill-all and log start|stop: the
// sessions acted on.
type NDMPKillResult struct {
	Sessions []uint64 `json:"sessions"`
}

// ndmpCmd is the command directory of the SVM-scope commands.
const ndmpCmd = "vserver services ndmp"

// nodeNDMPCmd is the command directory of the node-scope commands.
const nodeNDMPCmd = "system services ndmp"

// ndmpRoutes registers the NDMP administration endpoints (N2, N3, N7-N9,
// N13).
func (s *Server) ndmpRoutes() {
	const v, n = "/api/private/cli/vserver/services/ndmp", "/api/private/cli/system/services/ndmp"
	s.handle("GET "+v, route{cmd: ndmpCmd + " show"}, s.listNDMPSVM)
	s.handle("PATCH "+v+"/settings/{vserver}", route{cmd: ndmpCmd + " modify", write: true}, s.modifyNDMPSVM)
	s.handle("GET "+v+"/version", route{cmd: ndmpCmd + " version"}, s.ndmpSVMVersion)
	s.handle("GET "+v+"/sessions", route{cmd: ndmpCmd + " status"}, s.listNDMPSessions(false))
	s.handle("POST "+v+"/kill", route{cmd: ndmpCmd + " kill", write: true}, s.killNDMP(false))
	s.handle("POST "+v+"/kill-all", route{cmd: ndmpCmd + " kill-all", write: true}, s.killAllNDMP(false))
	s.handle("POST "+v+"/log/start", route{cmd: ndmpCmd + " log start", write: true, advanced: true}, s.ndmpLog(false, true))
	s.handle("POST "+v+"/log/stop", route{cmd: ndmpCmd + " log stop", write: true, advanced: true}, s.ndmpLog(false, false))

	s.handle("GET "+n, route{cmd: nodeNDMPCmd + " show"}, s.listNDMPNode)
	s.handle("PATCH "+n+"/settings/{node}", route{cmd: nodeNDMPCmd + " modify", write: true}, s.modifyNDMPNode)
	s.handle("PATCH "+n+"/settings", route{cmd: nodeNDMPCmd + " modify", write: true}, s.modifyNDMPNode)
	s.handle("GET "+n+"/version", route{cmd: nodeNDMPCmd + " version"}, s.ndmpNodeVersion)
	s.handle("GET "+n+"/sessions", route{cmd: nodeNDMPCmd + " status"}, s.listNDMPSessions(true))
	s.handle("POST "+n+"/kill", route{cmd: nodeNDMPCmd + " kill", write: true}, s.killNDMP(true))
	s.handle("POST "+n+"/kill-all", route{cmd: nodeNDMPCmd + " kill-all", write: true}, s.killAllNDMP(true))
	s.handle("POST "+n+"/password", route{cmd: nodeNDMPCmd + " password", write: true}, s.setNodeNDMPPassword)
	s.handle("POST "+n+"/log/start", route{cmd: nodeNDMPCmd + " log start", write: true, advanced: true}, s.ndmpLog(true, true))
	s.handle("POST "+n+"/log/stop", route{cmd: nodeNDMPCmd + " log stop", write: true, advanced: true}, s.ndmpLog(true, false))
}

// node returns the name of the node this API serves.
func (s *Server) node() string { return s.cfg.Node }

// ndmpServer returns the node's NDMP server or an error saying it is not
// running.
func (s *Server) ndmpServer() (NDMPService, error) {
	if s.cfg.NDMP == nil {
		return nil, &storage.Error{Kind: storage.ErrInvalidArgument, Msg: fmt.Sprintf("the NDMP server of node %s is not running", s.node())}
	}
	return s.cfg.NDMP, nil
}

// checkNode refuses a node name other than this API's node (empty means
// this node).
func (s *Server) checkNode(node string) error {
	if node != "" && node != s.node() {
		return &storage.Error{Kind: storage.ErrNotFound, Msg: fmt.Sprintf("node %q does not exist", node)}
	}
	return nil
}

// settingsErr turns a settings validation failure into a bad request.
func settingsErr(err error) error {
	var ie *InvalidSettingsError
	if errors.As(err, &ie) {
		return badf("command failed: %s", err)
	}
	return err
}

func (s *Server) listNDMPSVM(ctx context.Context, r *request) (int, any, error) {
	svm, err := s.listScope(r, r.URL.Query().Get("vserver"))
	if err != nil {
		return 0, nil, err
	}
	svms, err := s.cfg.Storage.ListSVMs(ctx)
	if err != nil {
		return 0, nil, err
	}
	srv, err := s.ndmpServer()
	if err != nil {
		return 0, nil, err
	}
	out := []NDMPSVMSettings{}
	found := false
	for _, v := range svms {
		if svm != "" && v.Name != svm {
			continue
		}
		found = true
		set, err := srv.SVMSettings(ctx, v.Name, v.Name == s.cfg.Auth.AdminSVM())
		if err != nil {
			return 0, nil, err
		}
		out = append(out, set)
	}
	if svm != "" && !found {
		return 0, nil, &storage.Error{Kind: storage.ErrNotFound, Msg: fmt.Sprintf("Vserver %q does not exist", svm)}
	}
	return http.StatusOK, records(out), nil
}

func (s *Server) modifyNDMPSVM(ctx context.Context, r *request) (int, any, error) {
	svm := r.PathValue("vserver")
	if err := s.scope(r, svm); err != nil {
		return 0, nil, err
	}
	if _, err := s.cfg.Storage.GetSVM(ctx, svm); err != nil {
		return 0, nil, err
	}
	var in NDMPSVMModify
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if err := s.checkTenantFields(r, in); err != nil {
		return 0, nil, err
	}
	srv, err := s.ndmpServer()
	if err != nil {
		return 0, nil, err
	}
	var roles []storage.LIFRole
	if in.PreferredInterfaceRole != nil {
		for _, name := range *in.PreferredInterfaceRole {
			role, err := storage.ParseLIFRole(name)
			if err != nil {
				return 0, nil, badf("command failed: invalid value %q for -preferred-interface-role: use intercluster, cluster-mgmt, node-mgmt or data", name)
			}
			if slices.Contains(roles, role) {
				return 0, nil, badf("command failed: -preferred-interface-role lists %q twice", name)
			}
			roles = append(roles, role)
		}
	}
	if in.AuthTypes != nil {
		for _, a := range *in.AuthTypes {
			if a != AuthPlaintext && a != AuthChallenge {
				return 0, nil, badf("command failed: invalid value %q for -authtype: use plaintext or challenge", a)
			}
		}
		if len(*in.AuthTypes) == 0 {
			return 0, nil, badf("command failed: -authtype needs at least one of plaintext, challenge")
		}
	}
	set, err := srv.ModifySVMSettings(ctx, svm, svm == s.cfg.Auth.AdminSVM(), in)
	if err != nil {
		return 0, nil, settingsErr(err)
	}
	s.log.Info("NDMP settings modified", "vserver", svm, "user", r.who.Name)
	return http.StatusOK, set, nil
}

func (s *Server) ndmpSVMVersion(ctx context.Context, r *request) (int, any, error) {
	svm, err := s.listScope(r, r.URL.Query().Get("vserver"))
	if err != nil {
		return 0, nil, err
	}
	svms, err := s.cfg.Storage.ListSVMs(ctx)
	if err != nil {
		return 0, nil, err
	}
	out := []NDMPVersionInfo{}
	for _, v := range svms {
		if svm == "" || v.Name == svm {
			out = append(out, NDMPVersionInfo{SVM: v.Name, Version: NDMPVersion})
		}
	}
	if svm != "" && len(out) == 0 {
		return 0, nil, &storage.Error{Kind: storage.ErrNotFound, Msg: fmt.Sprintf("Vserver %q does not exist", svm)}
	}
	return http.StatusOK, records(out), nil
}

func (s *Server) ndmpNodeVersion(_ context.Context, r *request) (int, any, error) {
	if err := s.checkNode(r.URL.Query().Get("node")); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, records([]NDMPVersionInfo{{Node: s.node(), Version: NDMPVersion}}), nil
}

// parseSessionID parses a session id parameter.
func parseSessionID(v string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, badf("command failed: invalid session id %q: must be a number", v)
	}
	return id, nil
}

// sessionVisible reports whether a session may be shown to or acted on by
// the requester in the given scope: node scope shows every session of the
// node (cluster users only), SVM scope the sessions of svm (or of every SVM
// in the requester's scope when svm is empty).
func (s *Server) sessionVisible(r *request, nodeScope bool, svm string, si NDMPSession) bool {
	if !nodeScope && svm != "" && si.SVM != svm {
		return false
	}
	return s.scope(r, si.SVM) == nil
}

// sessionScope checks the scope parameters of a session request and
// returns the SVM filter.
func (s *Server) sessionScope(r *request, nodeScope bool, svm, node string) (string, error) {
	if nodeScope {
		if err := s.scope(r, s.cfg.Auth.AdminSVM()); err != nil {
			return "", err
		}
		return "", s.checkNode(node)
	}
	return s.listScope(r, svm)
}

func (s *Server) listNDMPSessions(nodeScope bool) handlerFunc {
	return func(_ context.Context, r *request) (int, any, error) {
		q := r.URL.Query()
		svm, err := s.sessionScope(r, nodeScope, q.Get("vserver"), q.Get("node"))
		if err != nil {
			return 0, nil, err
		}
		srv, err := s.ndmpServer()
		if err != nil {
			return 0, nil, err
		}
		if idText := q.Get("session-id"); idText != "" {
			id, err := parseSessionID(idText)
			if err != nil {
				return 0, nil, err
			}
			si, err := srv.Session(id)
			if err != nil || !s.sessionVisible(r, nodeScope, svm, si) {
				return 0, nil, notActive(id)
			}
			return http.StatusOK, records([]NDMPSession{si}), nil
		}
		out := []NDMPSession{}
		for _, si := range srv.Sessions() {
			if s.sessionVisible(r, nodeScope, svm, si) {
				out = append(out, si)
			}
		}
		return http.StatusOK, records(out), nil
	}
}

// notActive is ONTAP's error for an unknown session (N13).
func notActive(id uint64) error {
	return &badRequest{msg: fmt.Sprintf("ndmpd session %d not active", id)}
}

func (s *Server) killNDMP(nodeScope bool) handlerFunc {
	return func(_ context.Context, r *request) (int, any, error) {
		var in NDMPKill
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		svm, err := s.sessionScope(r, nodeScope, in.SVM, in.Node)
		if err != nil {
			return 0, nil, err
		}
		if in.SessionID == "" {
			return 0, nil, badf("missing required parameter -session-id")
		}
		id, err := parseSessionID(in.SessionID)
		if err != nil {
			return 0, nil, err
		}
		srv, err := s.ndmpServer()
		if err != nil {
			return 0, nil, err
		}
		si, err := srv.Session(id)
		if err != nil && s.scope(r, s.cfg.Auth.AdminSVM()) == nil && srv.Kill(id) == nil {
			// The session ended but left a tape device held (issue 10):
			// a cluster administrator's kill frees it.
			s.log.Info("tape devices of an ended NDMP session freed", "session", id, "user", r.who.Name)
			return http.StatusOK, NDMPKillResult{Sessions: []uint64{id}}, nil
		}
		if err != nil || !s.sessionVisible(r, nodeScope, svm, si) {
			return 0, nil, notActive(id)
		}
		if err := srv.Kill(id); err != nil {
			if errors.Is(err, ErrSessionNotActive) {
				return 0, nil, notActive(id)
			}
			return 0, nil, err
		}
		s.log.Info("NDMP session killed", "session", id, "user", r.who.Name)
		return http.StatusOK, NDMPKillResult{Sessions: []uint64{id}}, nil
	}
}

func (s *Server) killAllNDMP(nodeScope bool) handlerFunc {
	return func(_ context.Context, r *request) (int, any, error) {
		var in NDMPKill
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		svm, err := s.sessionScope(r, nodeScope, in.SVM, in.Node)
		if err != nil {
			return 0, nil, err
		}
		srv, err := s.ndmpServer()
		if err != nil {
			return 0, nil, err
		}
		res := NDMPKillResult{Sessions: []uint64{}}
		for _, si := range srv.Sessions() {
			if !s.sessionVisible(r, nodeScope, svm, si) {
				continue
			}
			// A session that ended meanwhile needs no killing.
			if err := srv.Kill(si.ID); err == nil {
				res.Sessions = append(res.Sessions, si.ID)
			} else if !errors.Is(err, ErrSessionNotActive) {
				return 0, nil, err
			}
		}
		if s.scope(r, s.cfg.Auth.AdminSVM()) == nil {
			// Devices held by sessions that ended (issue 10).
			if n := srv.ReleaseOrphans(); n > 0 {
				s.log.Info("tape devices of ended NDMP sessions freed", "sessions", n, "user", r.who.Name)
			}
		}
		s.log.Info("NDMP sessions killed", "count", len(res.Sessions), "vserver", svm, "user", r.who.Name)
		return http.StatusOK, res, nil
	}
}

// ndmpLog implements log start|stop: the protocol log of the sessions the
// filter names ("all", a session id or "session-id=<id>") is switched on or
// off.
func (s *Server) ndmpLog(nodeScope, on bool) handlerFunc {
	return func(_ context.Context, r *request) (int, any, error) {
		var in NDMPKill
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		svm, err := s.sessionScope(r, nodeScope, in.SVM, in.Node)
		if err != nil {
			return 0, nil, err
		}
		filter := in.SessionFilter
		if filter == "" {
			filter = in.SessionID
		}
		if filter == "" {
			return 0, nil, badf("missing required parameter -session-filter")
		}
		srv, err := s.ndmpServer()
		if err != nil {
			return 0, nil, err
		}
		res := NDMPKillResult{Sessions: []uint64{}}
		if filter == "all" {
			for _, si := range srv.Sessions() {
				if s.sessionVisible(r, nodeScope, svm, si) && srv.SetSessionLog(si.ID, on) == nil {
					res.Sessions = append(res.Sessions, si.ID)
				}
			}
			return http.StatusOK, res, nil
		}
		id, err := parseSessionID(strings.TrimPrefix(filter, "session-id="))
		if err != nil {
			return 0, nil, badf("command failed: invalid -session-filter %q: use all, a session id or session-id=<id>", filter)
		}
		si, err := srv.Session(id)
		if err != nil || !s.sessionVisible(r, nodeScope, svm, si) {
			return 0, nil, notActive(id)
		}
		if err := srv.SetSessionLog(id, on); err != nil {
			if errors.Is(err, ErrSessionNotActive) {
				return 0, nil, notActive(id)
			}
			return 0, nil, err
		}
		res.Sessions = append(res.Sessions, id)
		return http.StatusOK, res, nil
	}
}

func (s *Server) nodeRecord(ctx context.Context) (NDMPNodeSettings, error) {
	srv, err := s.ndmpServer()
	if err != nil {
		return NDMPNodeSettings{}, err
	}
	set, err := srv.NodeSettings(ctx, s.node())
	if err != nil {
		return NDMPNodeSettings{}, err
	}
	acct, err := s.cfg.Auth.NodeNDMPAccount(ctx, s.node())
	if err != nil {
		return NDMPNodeSettings{}, err
	}
	return NDMPNodeSettings{Node: s.node(), NDMPNodeOptions: set, User: acct.User, PasswordSet: acct.PasswordSet,
		ServiceRunning: srv.Serving()}, nil
}

func (s *Server) listNDMPNode(ctx context.Context, r *request) (int, any, error) {
	if err := s.scope(r, s.cfg.Auth.AdminSVM()); err != nil {
		return 0, nil, err
	}
	if err := s.checkNode(r.URL.Query().Get("node")); err != nil {
		return 0, nil, err
	}
	rec, err := s.nodeRecord(ctx)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, records([]NDMPNodeSettings{rec}), nil
}

func (s *Server) modifyNDMPNode(ctx context.Context, r *request) (int, any, error) {
	if err := s.scope(r, s.cfg.Auth.AdminSVM()); err != nil {
		return 0, nil, err
	}
	if err := s.checkNode(r.PathValue("node")); err != nil {
		return 0, nil, err
	}
	var in NDMPNodeModify
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	srv, err := s.ndmpServer()
	if err != nil {
		return 0, nil, err
	}
	// The user is stored apart from the settings: check the settings
	// first, so that a refused request changes nothing.
	if err := srv.CheckNodeModify(in); err != nil {
		return 0, nil, settingsErr(err)
	}
	if in.User != nil {
		if err := s.cfg.Auth.SetNodeNDMPUser(ctx, s.node(), *in.User); err != nil {
			return 0, nil, err
		}
	}
	if err := srv.ModifyNodeSettings(ctx, s.node(), in); err != nil {
		return 0, nil, settingsErr(err)
	}
	rec, err := s.nodeRecord(ctx)
	if err != nil {
		return 0, nil, err
	}
	s.log.Info("node NDMP settings modified", "node", s.node(), "user", r.who.Name)
	return http.StatusOK, rec, nil
}

func (s *Server) setNodeNDMPPassword(ctx context.Context, r *request) (int, any, error) {
	if err := s.scope(r, s.cfg.Auth.AdminSVM()); err != nil {
		return 0, nil, err
	}
	var in NDMPNodePassword
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if err := s.checkNode(in.Node); err != nil {
		return 0, nil, err
	}
	if err := s.cfg.Auth.SetNodeNDMPPassword(ctx, s.node(), in.Password); err != nil {
		return 0, nil, err
	}
	rec, err := s.nodeRecord(ctx)
	return reply(http.StatusOK, rec, err)
}
