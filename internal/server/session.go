package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// session is one NDMP control connection and the services it drives.
type session struct {
	srv     *Server
	id      uint64
	sid     string // id as text, the tape registry's session name
	lif     storage.LIF
	secure  bool
	started time.Time
	local   netip.AddrPort
	remote  netip.AddrPort
	log     *slog.Logger
	conn    *ndmp.Conn    // set once by setConn, before ready is closed
	ready   chan struct{} // closed when conn is set
	ctx     context.Context
	cancel  context.CancelFunc

	nodeScope bool
	nodeSet   NodeSettings
	svmSet    SVMSettings

	// counted and evicted are guarded by srv.mu: the session holds a
	// session slot (authenticated), or was chosen to be closed to make
	// room for a new unauthenticated connection.
	counted bool
	evicted bool

	mu           sync.Mutex
	versioned    bool   // CONNECT_OPEN with version 4 succeeded
	authFailures int    // failed CONNECT_CLIENT_AUTH requests
	closeAfter   string // why to close the connection after this reply
	authed       bool
	user         string
	authType     string
	challenge    *[ndmp.ChallengeSize]byte
	killed       bool
	logOn        bool // protocol log switched on by "ndmp log start"

	// Extension negotiation (draft 2.5.4.3, 3.2.9-10).
	extListed bool
	extSet    bool
	extUsed   bool
	ext       map[uint16]uint16
	cabAddr   *ndmp.AddrType // set by CAB_DATA_CONN_PREPARE

	dev   devState
	mover *mover
	data  *dataService
	fh    atomic.Pointer[fhQueue] // file history queue of the last operation
}

// startSession runs a session on nc until it ends.
func (s *Server) startSession(ctx context.Context, nc net.Conn, lif storage.LIF, secure bool) {
	ss := &session{
		srv:     s,
		id:      s.nextID.Add(1),
		lif:     lif,
		secure:  secure,
		started: time.Now(),
		authed:  s.assumeAuthed,
		ready:   make(chan struct{}),
		// Sessions that start authenticated start versioned too.
		versioned: s.assumeAuthed,
	}
	ss.sid = sessionName(ss.id)
	if ap, err := netip.ParseAddrPort(nc.LocalAddr().String()); err == nil {
		ss.local = ap
	}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		ss.remote = ap
	}
	ss.log = s.log.With("session", ss.id, "lif", lif.Name, "client", ss.remote.String())
	ss.ctx, ss.cancel = context.WithCancel(ctx)
	defer ss.cancel()
	ss.mover = newMover(ss)
	ss.data = newDataService(ss)

	if refusal := ss.admit(ctx); refusal != "" {
		ss.log.Warn("NDMP session refused", "reason", refusal)
		s.refuse(nc, refusal)
		return
	}
	refusal, evict := s.admitConn(ss)
	if refusal != "" {
		ss.log.Warn("NDMP session refused", "reason", refusal)
		s.refuse(nc, refusal)
		return
	}
	defer s.unregister(ss)
	if evict != nil {
		s.evicted.Add(1)
		evict.log.Warn("NDMP connection closed: too many unauthenticated connections")
		go evict.kill("too many unauthenticated NDMP connections")
	}
	// The greeting goes out before the connection reads anything.
	conn := ndmp.NewConn(nc, &ndmp.Config{
		Handler:  ss,
		ErrorLog: func(err error) { ss.log.Debug("ndmp connection", "err", err) },
		Greeting: &ndmp.NotifyConnectionStatusPost{Reason: ndmp.Connected, ProtocolVersion: ndmp.ProtocolVersion},
	})
	ss.setConn(conn)
	defer conn.Close()
	defer ss.cleanup()
	ss.log.Info("NDMP session started", "svm", lif.SVM, "role", lif.Role, "node-scope", ss.nodeScope, "secure", secure)
	if !s.assumeAuthed {
		defer ss.authDeadline(ss.nodeSet.AuthDeadline())()
	}
	select {
	case <-conn.Done():
	case <-ss.ctx.Done():
		// The server stops, or the session was killed (perhaps before
		// its connection existed: the deferred Close ends it then).
		ss.kill("NDMP service shutting down")
	}
	ss.log.Info("NDMP session ended")
}

// setConn publishes the session's connection: the handler waits for it
// (ready) and kill reads it under mu. A session killed before it had a
// connection gets its connection closed at once.
func (ss *session) setConn(c *ndmp.Conn) {
	ss.mu.Lock()
	ss.conn = c
	killed := ss.killed
	ss.mu.Unlock()
	close(ss.ready)
	if killed {
		_ = c.Close()
	}
}

// admit loads the settings and returns why the session is refused, or "".
func (ss *session) admit(ctx context.Context) string {
	s := ss.srv
	ns, err := LoadNodeSettings(ctx, s.o.Catalog, s.o.Node)
	if err != nil {
		return "internal error: " + err.Error()
	}
	ss.nodeSet, ss.nodeScope = ns, ns.NodeScopeMode
	if !ns.Enabled {
		return "NDMP service is disabled on node " + s.o.Node
	}
	set, err := LoadSVMSettings(ctx, s.o.Catalog, ss.lif.SVM)
	if err != nil {
		return "internal error: " + err.Error()
	}
	if len(set.PreferredInterfaceRole) == 0 {
		admin, err := s.o.Storage.AdminSVM(ctx)
		set.PreferredInterfaceRole = DefaultPreferredRoles(err == nil && admin == ss.lif.SVM)
	}
	ss.svmSet = set
	if ss.nodeScope {
		return ""
	}
	if !set.Enabled {
		return "NDMP service is disabled on Vserver " + ss.lif.SVM
	}
	if err := s.o.Storage.NDMPAllowed(ctx, ss.lif.SVM); err != nil {
		return storage.Message(err)
	}
	if ss.secure && !set.SecureControlConnection {
		return "secure control connection is disabled on Vserver " + ss.lif.SVM
	}
	return ""
}

// kill ends the session after NOTIFY_CONNECTION_STATUS SHUTDOWN.
func (ss *session) kill(reason string) {
	ss.mu.Lock()
	if ss.killed {
		ss.mu.Unlock()
		return
	}
	ss.killed = true
	conn := ss.conn
	ss.mu.Unlock()
	if conn != nil {
		// A DMA that stopped reading (file history back pressure) keeps
		// the connection's writer blocked: the SHUTDOWN notice gets a
		// short time, then closing the connection frees the writer.
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			_ = conn.Post(context.Background(), &ndmp.NotifyConnectionStatusPost{Reason: ndmp.Shutdown, ProtocolVersion: ndmp.ProtocolVersion, TextReason: reason})
		}()
		t := time.NewTimer(killNoticeWait)
		select {
		case <-sent:
		case <-t.C:
		}
		t.Stop()
		ss.cancel()
		_ = conn.Close()
		<-sent
	}
	ss.cancel()
}

// killNoticeWait bounds the wait for the SHUTDOWN notice of a killed
// session to be written.
const killNoticeWait = 2 * time.Second

// cleanup stops the services and releases the devices of an ended session.
func (ss *session) cleanup() {
	ss.cancel()
	ss.data.shutdown()
	ss.mover.shutdown()
	ss.closeDevice()
	if r := ss.srv.o.Tapes; r != nil {
		if err := r.ReleaseSession(ss.sid); err != nil {
			ss.log.Warn("release tape devices", "err", err)
		}
	}
}

// info returns the status of the session.
func (ss *session) info() SessionInfo {
	ss.mu.Lock()
	in := SessionInfo{
		ID:         ss.id,
		Node:       ss.srv.o.Node,
		SVM:        ss.lif.SVM,
		LIF:        ss.lif.Name,
		LIFRole:    string(ss.lif.Role),
		ClientAddr: ss.remote.String(),
		ServerAddr: ss.local.String(),
		Secure:     ss.secure,
		NodeScope:  ss.nodeScope,
		User:       ss.user,
		AuthType:   ss.authType,
		Started:    ss.started,
	}
	for c, v := range ss.ext {
		in.Extensions = append(in.Extensions, fmt.Sprintf("%#x v%d", c, v))
	}
	ss.mu.Unlock()
	in.Tape, in.SCSI = ss.deviceNames()
	ms := ss.mover.state()
	in.MoverState, in.MoverMode, in.MoverBytes = ms.State.String(), ms.Mode.String(), ms.BytesMoved
	ds := ss.data.getState()
	in.DataState, in.DataOp, in.DataBytes = ds.State.String(), ds.Operation.String(), ds.BytesProcessed
	ss.data.progressInfo(&in)
	if f := ss.fh.Load(); f != nil {
		in.FHQueueDepth, in.FHStalls = int(max(f.depth.Load(), 0)), f.stalls.Load()
	}
	return in
}

// preAuth lists the requests allowed before authentication (draft 2.11.3).
var preAuth = map[ndmp.MessageCode]bool{
	ndmp.ConnectOpen:         true,
	ndmp.ConnectClientAuth:   true,
	ndmp.ConnectClose:        true,
	ndmp.ConfigGetServerInfo: true,
	ndmp.ConfigGetAuthAttr:   true,
}

// errReply returns the reply body of code with its error field set to e.
// Every NDMP v4 reply body has one (ndmp.ErrorReply).
func errReply(code ndmp.MessageCode, e ndmp.Error) (ndmp.Body, error) {
	b, err := ndmp.NewErrorReply(code, e)
	if err != nil {
		return nil, e
	}
	return b, nil
}

// ServeNDMP serves one request of the session (ndmp.Handler).
func (ss *session) ServeNDMP(ctx context.Context, c *ndmp.Conn, m *ndmp.Message) (ndmp.Body, error) {
	<-ss.ready // ss.conn is set
	code := m.Header.MessageCode
	if code.IsPost() {
		return nil, nil // a DMA sends no posts; ignore them
	}
	if m.Body == nil {
		return nil, ndmp.ErrXDRDecode
	}
	if ss.debug() {
		ss.log.Debug("ndmp request", "msg", m.String())
	}
	ss.mu.Lock()
	versioned, authed := ss.versioned, ss.authed
	ss.mu.Unlock()
	if !versioned && !preConnect[code] {
		// N1, issue 10: nothing is served before CONNECT_OPEN agreed on
		// version 4, in particular not after a refused version.
		return errReply(code, ndmp.ErrIllegalState)
	}
	if !authed && !preAuth[code] {
		return errReply(code, ndmp.ErrNotAuthorized)
	}
	body, e := ss.serve(ctx, m)
	if e != ndmp.NoErr && ss.debug() {
		ss.log.Debug("ndmp reply error", "msg", code.String(), "err", e.String())
	}
	if body == nil {
		body, err := errReply(code, e)
		return ss.replyThenClose(c, m, body, err)
	}
	return ss.replyThenClose(c, m, body, nil)
}

// preConnect lists the requests served before CONNECT_OPEN succeeded.
// The draft (2.11.2) lets a DMA that accepts the version of the
// NOTIFY_CONNECTION_STATUS greeting omit CONNECT_OPEN; Tapestry does not
// (issue 10): every DMA it knows sends it, and a DMA that asked for
// another version must not go on as if it had agreed to version 4.
var preConnect = map[ndmp.MessageCode]bool{
	ndmp.ConnectOpen:  true,
	ndmp.ConnectClose: true,
}

// replyThenClose returns body and err as the reply of m, unless the
// request asked for the connection to be closed (too many failed
// authentications, a lockout): the reply is then sent here and the
// session killed after it.
func (ss *session) replyThenClose(c *ndmp.Conn, m *ndmp.Message, body ndmp.Body, err error) (ndmp.Body, error) {
	ss.mu.Lock()
	reason := ss.closeAfter
	ss.mu.Unlock()
	if reason == "" {
		return body, err
	}
	code, e := m.Header.MessageCode, ndmp.NoErr
	if err != nil && !errors.As(err, &e) {
		e = ndmp.ErrUndefined
	}
	if rerr := c.Reply(m.Header.Sequence, code, e, body); rerr != nil {
		ss.log.Debug("reply before close", "err", rerr)
	}
	ss.kill(reason)
	return nil, ndmp.ErrReplyLater
}

func (ss *session) debug() bool {
	ss.mu.Lock()
	on := ss.logOn
	ss.mu.Unlock()
	if on {
		return true
	}
	if ss.nodeScope {
		return ss.nodeSet.DebugEnable
	}
	return ss.svmSet.DebugEnable
}

// serve dispatches m; it returns a reply body, or nil and the error to
// report in the body.
func (ss *session) serve(ctx context.Context, m *ndmp.Message) (ndmp.Body, ndmp.Error) {
	if snapRequest(m.Body) {
		return ss.serveSnap(ctx, m.Body)
	}
	switch req := m.Body.(type) {
	case *ndmp.ConnectOpenRequest:
		return ss.connectOpen(req)
	case *ndmp.ConnectClientAuthRequest:
		return ss.clientAuth(ctx, req)
	case *ndmp.ConnectCloseRequest:
		go ss.kill("connection closed by the DMA")
		return nil, ndmp.NoErr
	case *ndmp.ConnectServerAuthRequest:
		return ss.serverAuth(ctx, req)
	case *ndmp.ConfigGetAuthAttrRequest:
		return ss.getAuthAttr(req)
	case *ndmp.ConfigGetServerInfoRequest:
		return ss.serverInfo(), ndmp.NoErr
	case *ndmp.ConfigGetHostInfoRequest:
		return ss.hostInfo(), ndmp.NoErr
	case *ndmp.ConfigGetConnectionTypeRequest:
		return &ndmp.ConfigGetConnectionTypeReply{AddrTypes: ss.connTypes()}, ndmp.NoErr
	case *ndmp.ConfigGetButypeInfoRequest:
		return &ndmp.ConfigGetButypeInfoReply{ButypeInfo: butypeInfo()}, ndmp.NoErr
	case *ndmp.ConfigGetFSInfoRequest:
		return ss.fsInfo(ctx)
	case *ndmp.ConfigGetTapeInfoRequest:
		return ss.tapeInfo(ctx)
	case *ndmp.ConfigGetSCSIInfoRequest:
		return ss.scsiInfo(ctx)
	case *ndmp.ConfigGetExtListRequest:
		return ss.getExtList()
	case *ndmp.ConfigSetExtListRequest:
		return ss.setExtList(req)
	case *ndmp.TestEchoRequest:
		// Using an extension ends extension negotiation (draft 2.5.4.3).
		ss.mu.Lock()
		ss.extUsed = true
		ss.mu.Unlock()
		return &ndmp.TestEchoReply{EchoMsg: req.EchoMsg}, ndmp.NoErr
	case *ndmp.CABDataConnPrepareRequest:
		return ss.cabPrepare(ctx, req)

	case *ndmp.SCSIOpenRequest:
		return nil, ss.scsiOpen(ctx, req.Device)
	case *ndmp.SCSICloseRequest:
		return nil, ss.scsiClose()
	case *ndmp.SCSIGetStateRequest:
		return ss.scsiGetState()
	case *ndmp.SCSIResetDeviceRequest:
		return nil, ss.scsiReset(ctx)
	case *ndmp.SCSIExecuteCDBRequest:
		return ss.scsiExecuteCDB(ctx, (*ndmp.ExecuteCDBRequest)(req), ndmp.SCSIExecuteCDB)

	case *ndmp.TapeOpenRequest:
		return nil, ss.tapeOpen(ctx, req)
	case *ndmp.TapeCloseRequest:
		return nil, ss.tapeClose()
	case *ndmp.TapeGetStateRequest:
		return ss.tapeGetState()
	case *ndmp.TapeMTIORequest:
		return ss.tapeMTIO(req)
	case *ndmp.TapeReadRequest:
		return ss.tapeRead(req)
	case *ndmp.TapeWriteRequest:
		return ss.tapeWrite(req)
	case *ndmp.TapeExecuteCDBRequest:
		return ss.tapeExecuteCDB(ctx, (*ndmp.ExecuteCDBRequest)(req))

	case *ndmp.MoverGetStateRequest:
		st := ss.mover.state()
		return &st, ndmp.NoErr
	case *ndmp.MoverSetRecordSizeRequest:
		return nil, ss.mover.setRecordSize(req.Len)
	case *ndmp.MoverSetWindowRequest:
		return nil, ss.mover.setWindow(req.Offset, req.Length)
	case *ndmp.MoverListenRequest:
		return ss.mover.listen(ctx, req.Mode, req.AddrType)
	case *ndmp.MoverConnectRequest:
		return nil, ss.mover.connect(ctx, req.Mode, req.Addr)
	case *ndmp.MoverReadRequest:
		return nil, ss.mover.read(req.Offset, req.Length)
	case *ndmp.MoverContinueRequest:
		return nil, ss.mover.cont()
	case *ndmp.MoverAbortRequest:
		return nil, ss.mover.abort()
	case *ndmp.MoverStopRequest:
		return nil, ss.mover.stop()
	case *ndmp.MoverCloseRequest:
		return nil, ss.mover.closeReq()

	case *ndmp.DataGetStateRequest:
		st := ss.data.getState()
		return &st, ndmp.NoErr
	case *ndmp.DataListenRequest:
		return ss.data.listen(ctx, req.AddrType)
	case *ndmp.DataConnectRequest:
		return nil, ss.data.connect(ctx, req.Addr)
	case *ndmp.DataStartBackupRequest:
		return nil, ss.data.startBackup(ctx, req)
	case *ndmp.DataStartRecoverRequest:
		return nil, ss.data.startRecover(ctx, req, ndmp.DataOpRecover)
	case *ndmp.DataStartRecoverFilehistRequest:
		return nil, ss.data.startRecover(ctx, (*ndmp.DataStartRecoverRequest)(req), ndmp.DataOpRecoverFilehist)
	case *ndmp.DataAbortRequest:
		return nil, ss.data.abort()
	case *ndmp.DataStopRequest:
		return nil, ss.data.stop()
	case *ndmp.DataGetEnvRequest:
		return ss.data.getEnv()
	}
	return nil, ndmp.ErrNotSupported
}

// connectOpen handles CONNECT_OPEN (draft 3.1.1, N1).
func (ss *session) connectOpen(req *ndmp.ConnectOpenRequest) (ndmp.Body, ndmp.Error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.versioned {
		return nil, ndmp.ErrIllegalState
	}
	if req.ProtocolVersion != ndmp.ProtocolVersion {
		// The DMA may try another version (draft 3.1.1); until one is
		// agreed nothing else is served (ServeNDMP).
		ss.log.Error(fmt.Sprintf("ndmpd invalid version number: %d", req.ProtocolVersion))
		return nil, ndmp.ErrIllegalArgs
	}
	ss.versioned = true
	return nil, ndmp.NoErr
}

// getAuthAttr handles CONFIG_GET_AUTH_ATTR: a fresh random challenge for
// every MD5 request; the latest one is used by CONNECT_CLIENT_AUTH.
func (ss *session) getAuthAttr(req *ndmp.ConfigGetAuthAttrRequest) (ndmp.Body, ndmp.Error) {
	switch req.AuthType {
	case ndmp.AuthText:
		if !ss.allows(AuthPlaintext) {
			return nil, ndmp.ErrIllegalArgs
		}
		return &ndmp.ConfigGetAuthAttrReply{ServerAttr: ndmp.AuthAttr{AuthType: ndmp.AuthText}}, ndmp.NoErr
	case ndmp.AuthMD5:
		if !ss.allows(AuthChallenge) {
			return nil, ndmp.ErrIllegalArgs
		}
		var ch [ndmp.ChallengeSize]byte
		if _, err := rand.Read(ch[:]); err != nil {
			return nil, ndmp.ErrUndefined
		}
		ss.mu.Lock()
		ss.challenge = &ch
		ss.mu.Unlock()
		return &ndmp.ConfigGetAuthAttrReply{ServerAttr: ndmp.AuthAttr{AuthType: ndmp.AuthMD5, Challenge: ch}}, ndmp.NoErr
	}
	return nil, ndmp.ErrIllegalArgs
}

func (ss *session) allows(method string) bool {
	return allowsAuth(ss.nodeScope, ss.nodeSet, ss.svmSet, method)
}

// authTypes lists the methods the session accepts, for GET_SERVER_INFO.
func (ss *session) authTypes() []ndmp.AuthType {
	var out []ndmp.AuthType
	if ss.allows(AuthPlaintext) {
		out = append(out, ndmp.AuthText)
	}
	if ss.allows(AuthChallenge) {
		out = append(out, ndmp.AuthMD5)
	}
	return out
}

// clientAuth handles CONNECT_CLIENT_AUTH (N3, N4). Failures are counted
// and slowed down, and lock the address or the user out (authguard.go).
func (ss *session) clientAuth(ctx context.Context, req *ndmp.ConnectClientAuthRequest) (ndmp.Body, ndmp.Error) {
	user, method := authIdentity(req.AuthData)
	if method == "" || !ss.allows(method) {
		ss.authRefused(user, req.AuthData.AuthType)
		return nil, ndmp.ErrIllegalArgs
	}
	if lo, ok := ss.srv.guard.locked(user, ss.clientAddr()); ok {
		return nil, ss.lockedOut(user, method, lo)
	}
	if err := ss.checkCredentials(ctx, user, req.AuthData); err != nil {
		return nil, ss.authFailed(ctx, user, method, err)
	}
	if !ss.srv.promote(ss) {
		msg := ss.srv.sessionLimitMessage()
		ss.log.Warn("NDMP session refused", "user", user, "reason", msg)
		ss.closeAfterReply(msg)
		return nil, ndmp.ErrConnect
	}
	ss.mu.Lock()
	ss.authed, ss.user, ss.authType = true, user, method
	ss.mu.Unlock()
	ss.log.Info("NDMP authentication succeeded", "user", user, "method", method)
	return nil, ndmp.NoErr
}

// checkCredentials checks the password or digest of user; the method is
// one the session allows.
func (ss *session) checkCredentials(ctx context.Context, user string, ad ndmp.AuthData) error {
	a, node := ss.srv.o.Auth, ss.srv.o.Node
	var err error
	if ad.AuthType == ndmp.AuthText {
		if ss.nodeScope {
			err = a.CheckNodeNDMP(ctx, node, user, ad.AuthText.AuthPassword)
		} else {
			err = a.CheckNDMPPassword(ctx, ss.lif.SVM, user, ad.AuthText.AuthPassword)
		}
	} else {
		ss.mu.Lock()
		ch := ss.challenge
		ss.challenge = nil
		ss.mu.Unlock()
		if ch == nil {
			return errors.New("no challenge was requested with CONFIG_GET_AUTH_ATTR")
		}
		var pw string
		if ss.nodeScope {
			pw, err = a.NodeNDMPPassword(ctx, node, user)
		} else {
			pw, err = a.NDMPPassword(ctx, ss.lif.SVM, user)
		}
		if err == nil && !ndmp.VerifyMD5(pw, *ch, ad.AuthMD5.AuthDigest) {
			err = errors.New("wrong digest")
		}
	}
	if err == nil && !ss.nodeScope {
		err = a.CanUseNDMP(ctx, ss.lif.SVM, user, string(ss.lif.Role))
	}
	return err
}

// closeAfterReply makes ServeNDMP close the connection once the reply to
// the current request is sent.
func (ss *session) closeAfterReply(reason string) {
	ss.mu.Lock()
	ss.closeAfter = reason
	ss.mu.Unlock()
}

// serverAuth handles the optional CONNECT_SERVER_AUTH (draft 3.1.3): after
// the DMA logged in, the server proves it knows the same NDMP password by
// answering the DMA's MD5 challenge with the user's digest.
func (ss *session) serverAuth(ctx context.Context, req *ndmp.ConnectServerAuthRequest) (ndmp.Body, ndmp.Error) {
	ss.mu.Lock()
	user, method := ss.user, ss.authType
	ss.mu.Unlock()
	switch req.ClientAttr.AuthType {
	case ndmp.AuthNone:
		return &ndmp.ConnectServerAuthReply{ServerResult: ndmp.AuthData{AuthType: ndmp.AuthNone}}, ndmp.NoErr
	case ndmp.AuthMD5:
	default:
		return nil, ndmp.ErrIllegalArgs
	}
	if user == "" || method != AuthChallenge {
		// Only a session that logged in with a challenge has a shared
		// secret to answer with.
		return nil, ndmp.ErrNotAuthorized
	}
	var pw string
	var err error
	if ss.nodeScope {
		pw, err = ss.srv.o.Auth.NodeNDMPPassword(ctx, ss.srv.o.Node, user)
	} else {
		pw, err = ss.srv.o.Auth.NDMPPassword(ctx, ss.lif.SVM, user)
	}
	if err != nil || pw == "" {
		return nil, ndmp.ErrNotAuthorized
	}
	return &ndmp.ConnectServerAuthReply{ServerResult: ndmp.AuthData{AuthType: ndmp.AuthMD5,
		AuthMD5: ndmp.MD5Auth{AuthID: user, AuthDigest: ndmp.MD5Digest(pw, req.ClientAttr.Challenge)}}}, ndmp.NoErr
}

// logMessage posts LOG_MESSAGE to the DMA.
func (ss *session) logMessage(t ndmp.LogType, text string) {
	if ss.conn == nil {
		return
	}
	text = ss.svmPaths(ss.ctx, text) // issue 10: no host paths for SVM users
	_ = ss.conn.Post(ss.ctx, &ndmp.LogMessagePost{LogType: t, MessageID: uint32(time.Now().Unix()), Entry: text})
}

// tapeErr maps a tape error to its NDMP error code.
func tapeErr(err error) ndmp.Error {
	switch {
	case err == nil:
		return ndmp.NoErr
	case errors.Is(err, tape.ErrNotOpen):
		return ndmp.ErrDevNotOpen
	case errors.Is(err, tape.ErrBusy), errors.Is(err, tape.ErrReserved):
		return ndmp.ErrDeviceBusy
	case errors.Is(err, tape.ErrNoTape):
		return ndmp.ErrNoTapeLoaded
	case errors.Is(err, tape.ErrWriteProtect):
		return ndmp.ErrWriteProtect
	case errors.Is(err, tape.ErrPermission):
		return ndmp.ErrPermission
	case errors.Is(err, tape.ErrEOF):
		return ndmp.ErrEOF
	case errors.Is(err, tape.ErrEOM):
		return ndmp.ErrEOM
	case errors.Is(err, tape.ErrIllegalArgs):
		return ndmp.ErrIllegalArgs
	case errors.Is(err, tape.ErrNotSupported):
		return ndmp.ErrNotSupported
	case errors.Is(err, tape.ErrNoDevice), errors.Is(err, tape.ErrOffline),
		errors.Is(err, tape.ErrNotQualified), errors.Is(err, tape.ErrBadName):
		return ndmp.ErrNoDevice
	case errors.Is(err, tape.ErrIO):
		return ndmp.ErrIo
	}
	return ndmp.ErrIo
}

// postQuiet sends a post; a failure (the connection is gone) is only
// logged.
func (ss *session) postQuiet(b ndmp.Body) {
	if ss.conn == nil {
		return
	}
	if err := ss.conn.Post(context.Background(), b); err != nil {
		ss.log.Debug("post failed", "msg", b.MessageCode().String(), "err", err)
	}
}
