package ndmp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
)

// ClientConfig holds the options of a Client. The zero value is usable.
type ClientConfig struct {
	// Conn holds the connection options. Its Handler is ignored: the
	// Client installs its own, which passes posts to PostHandler.
	Conn Config
	// PostHandler, if not nil, is called for every post the server sends
	// (notifications, log messages, file history) except the first
	// NOTIFY_CONNECTION_STATUS, in arrival order, one at a time, on a
	// goroutine of the Client. It may call the Client's methods, but not
	// WaitPosts. It may run after the reply to a later request has been
	// returned, and after a later notification has been delivered on
	// DataHalted, MoverHalted or MoverPaused; WaitPosts waits for it to
	// catch up.
	PostHandler func(ctx context.Context, m *Message)
	// TLS, if not nil, makes Dial use a TLS connection (NDMP's secure
	// control connection, by convention on port 30000).
	TLS *tls.Config
}

// NotifyBuffer is how many notifications of each kind a Client keeps for
// DataHalted, MoverHalted and MoverPaused. When a channel is full, the
// oldest notification in it is dropped for the new one, so a DMA that does
// not read a channel never stops the connection and finds the latest
// notifications there.
const NotifyBuffer = 16

// A Client is the DMA side of an NDMP control connection. Its methods send
// one request each and wait for the reply. A reply whose body reports an
// error makes the method return that Error (wrapped with the message name)
// together with the reply.
//
// The Client delivers the notifications a DMA waits for as typed values:
// NOTIFY_DATA_HALTED on DataHalted, NOTIFY_MOVER_HALTED on MoverHalted,
// NOTIFY_MOVER_PAUSED on MoverPaused, and the last LOG_MESSAGE of each
// type through LastLogMessage. They are delivered as the connection reads
// them, so a post the server sent before a reply has been delivered when
// the method waiting for that reply returns: the LOG_MESSAGE that explains
// a refused request is there when the request fails, and the
// NOTIFY_DATA_HALTED that preceded a DATA_GET_STATE reply saying HALTED is
// on DataHalted.
type Client struct {
	conn        *Conn
	cfg         ClientConfig
	greeting    chan *NotifyConnectionStatusPost
	dataHalted  chan *NotifyDataHaltedPost
	moverHalted chan *NotifyMoverHaltedPost
	moverPaused chan *NotifyMoverPausedPost
	recoverEnd  chan *SnapNotifyRecoverEndPost

	logMu   sync.Mutex
	lastLog [LogWarning + 1]*LogMessagePost // indexed by LogType
}

// Dial connects to the NDMP server at address (host:port) over TCP, or
// over TLS when cfg.TLS is set, and returns a Client. Call Connect next.
func Dial(ctx context.Context, address string, cfg *ClientConfig) (*Client, error) {
	var nc net.Conn
	var err error
	if cfg != nil && cfg.TLS != nil {
		d := tls.Dialer{Config: cfg.TLS}
		nc, err = d.DialContext(ctx, "tcp", address)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", address)
	}
	if err != nil {
		return nil, fmt.Errorf("ndmp: dial %s: %w", address, err)
	}
	return NewClient(nc, cfg), nil
}

// NewClient returns a Client on an established connection, which it owns.
// Call Connect next.
func NewClient(nc net.Conn, cfg *ClientConfig) *Client {
	c := &Client{
		greeting:    make(chan *NotifyConnectionStatusPost, 1),
		dataHalted:  make(chan *NotifyDataHaltedPost, NotifyBuffer),
		moverHalted: make(chan *NotifyMoverHaltedPost, NotifyBuffer),
		moverPaused: make(chan *NotifyMoverPausedPost, NotifyBuffer),
		recoverEnd:  make(chan *SnapNotifyRecoverEndPost, NotifyBuffer),
	}
	if cfg != nil {
		c.cfg = *cfg
	}
	cc := c.cfg.Conn
	greeted := false
	cc.Handler = HandlerFunc(func(ctx context.Context, _ *Conn, m *Message) (Body, error) {
		if p, ok := m.Body.(*NotifyConnectionStatusPost); ok && !greeted {
			greeted = true
			c.greeting <- p
			return nil, nil
		}
		if m.Header.MessageCode.IsPost() && c.cfg.PostHandler != nil {
			c.cfg.PostHandler(ctx, m)
			return nil, nil
		}
		return nil, ErrNotSupported // a server does not send requests to a DMA
	})
	cc.observe = c.observe
	c.conn = NewConn(nc, &cc)
	return c
}

// observe delivers the typed notifications; it runs on the goroutine that
// reads the connection.
func (c *Client) observe(m *Message) {
	switch p := m.Body.(type) {
	case *NotifyDataHaltedPost:
		offer(c.dataHalted, p)
	case *NotifyMoverHaltedPost:
		offer(c.moverHalted, p)
	case *NotifyMoverPausedPost:
		offer(c.moverPaused, p)
	case *SnapNotifyRecoverEndPost:
		offer(c.recoverEnd, p)
	case *LogMessagePost:
		if int(p.LogType) < len(c.lastLog) {
			c.logMu.Lock()
			c.lastLog[p.LogType] = p
			c.logMu.Unlock()
		}
	}
}

// offer sends v on ch, dropping the oldest value in ch when it is full. The
// caller must be the only sender.
func offer[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// DataHalted returns the channel on which the Client delivers the server's
// NOTIFY_DATA_HALTED posts, in arrival order (at most NotifyBuffer are
// kept). A DMA that starts a new data operation on the same connection
// should first drain what an earlier one left.
func (c *Client) DataHalted() <-chan *NotifyDataHaltedPost { return c.dataHalted }

// MoverHalted returns the channel on which the Client delivers the server's
// NOTIFY_MOVER_HALTED posts, like DataHalted.
func (c *Client) MoverHalted() <-chan *NotifyMoverHaltedPost { return c.moverHalted }

// MoverPaused returns the channel on which the Client delivers the server's
// NOTIFY_MOVER_PAUSED posts, like DataHalted.
func (c *Client) MoverPaused() <-chan *NotifyMoverPausedPost { return c.moverPaused }

// LastLogMessage returns the last LOG_MESSAGE post of type t (LogNormal,
// LogDebug, LogError or LogWarning) the server sent, or nil if none came.
// Each post is a new value, so a caller can tell whether another came since
// an earlier call by comparing the pointers.
func (c *Client) LastLogMessage(t LogType) *LogMessagePost {
	if int(t) >= len(c.lastLog) {
		return nil
	}
	c.logMu.Lock()
	defer c.logMu.Unlock()
	return c.lastLog[t]
}

// WaitPosts waits until PostHandler has returned for every post the Client
// has read so far, in particular for every post the server sent before the
// reply to a method that has returned. It returns the reason the
// connection closed if it closes first, or ctx.Err(). It must not be
// called from PostHandler.
func (c *Client) WaitPosts(ctx context.Context) error { return c.conn.waitHandled(ctx) }

// Conn returns the Client's message connection.
func (c *Client) Conn() *Conn { return c.conn }

// ConnectError is returned by Connect when the server refuses the session.
type ConnectError struct {
	Reason  ConnectionStatusReason
	Version uint16
	Text    string
}

// Error describes the refusal.
func (e *ConnectError) Error() string {
	return fmt.Sprintf("ndmp: server says %v (version %d): %s", e.Reason, e.Version, e.Text)
}

// Connect waits for the server's NOTIFY_CONNECTION_STATUS greeting and
// opens an NDMP version 4 session with CONNECT_OPEN. A server that refuses
// the connection gives a *ConnectError.
func (c *Client) Connect(ctx context.Context) error {
	select {
	case p := <-c.greeting:
		if p.Reason != Connected {
			return &ConnectError{Reason: p.Reason, Version: p.ProtocolVersion, Text: p.TextReason}
		}
	case <-c.conn.Done():
		return fmt.Errorf("ndmp: connect: waiting for the server's greeting: %w", c.conn.Err())
	case <-ctx.Done():
		return fmt.Errorf("ndmp: connect: waiting for the server's greeting: %w", ctx.Err())
	}
	_, err := doCall[*ConnectOpenReply](ctx, c, &ConnectOpenRequest{ProtocolVersion: ProtocolVersion})
	return err
}

// doCall sends req and checks the type and error field of the reply.
func doCall[R Body](ctx context.Context, c *Client, req Body) (R, error) {
	var zero R
	rep, err := c.conn.Call(ctx, req)
	if err != nil {
		return zero, err
	}
	r, ok := rep.(R)
	if !ok {
		return zero, fmt.Errorf("ndmp: %v: unexpected reply body %T", req.MessageCode(), rep)
	}
	if re, ok := rep.(ErrorReply); ok {
		if e := re.ReplyError(); e != NoErr {
			return r, fmt.Errorf("ndmp: %v: %w", req.MessageCode(), e)
		}
	}
	return r, nil
}

// Call sends any request and returns its reply body, with the same error
// rules as the typed methods.
func (c *Client) Call(ctx context.Context, req Body) (Body, error) {
	return doCall[Body](ctx, c, req)
}

// Close ends the session with CONNECT_CLOSE and closes the connection.
func (c *Client) Close(ctx context.Context) error {
	_, err := c.conn.Call(ctx, &ConnectCloseRequest{})
	cerr := c.conn.Close()
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	return errors.Join(err, cerr)
}

// AuthText logs in with the TEXT method (the password travels in clear).
func (c *Client) AuthText(ctx context.Context, user, password string) error {
	_, err := doCall[*ConnectClientAuthReply](ctx, c, &ConnectClientAuthRequest{AuthData: AuthData{
		AuthType: AuthText, AuthText: TextAuth{AuthID: user, AuthPassword: password}}})
	return err
}

// AuthMD5 logs in with the MD5 challenge method: it asks the server for a
// challenge with CONFIG_GET_AUTH_ATTR and answers with MD5Digest.
func (c *Client) AuthMD5(ctx context.Context, user, password string) error {
	attr, err := c.GetAuthAttr(ctx, AuthMD5)
	if err != nil {
		return err
	}
	if attr.AuthType != AuthMD5 {
		return fmt.Errorf("ndmp: CONFIG_GET_AUTH_ATTR returned %v, not a challenge", attr.AuthType)
	}
	_, err = doCall[*ConnectClientAuthReply](ctx, c, &ConnectClientAuthRequest{AuthData: AuthData{
		AuthType: AuthMD5, AuthMD5: MD5Auth{AuthID: user, AuthDigest: MD5Digest(password, attr.Challenge)}}})
	return err
}

// ServerAuth asks the server to authenticate itself (the optional
// CONNECT_SERVER_AUTH): attr carries, for MD5, the DMA's challenge. It
// returns the server's authentication data.
func (c *Client) ServerAuth(ctx context.Context, attr AuthAttr) (*AuthData, error) {
	r, err := doCall[*ConnectServerAuthReply](ctx, c, &ConnectServerAuthRequest{ClientAttr: attr})
	if err != nil {
		return nil, err
	}
	return &r.ServerResult, nil
}

// GetAuthAttr returns the server's attributes for an authentication type:
// for AuthMD5, a fresh challenge.
func (c *Client) GetAuthAttr(ctx context.Context, t AuthType) (*AuthAttr, error) {
	r, err := doCall[*ConfigGetAuthAttrReply](ctx, c, &ConfigGetAuthAttrRequest{AuthType: t})
	if err != nil {
		return nil, err
	}
	return &r.ServerAttr, nil
}

// GetHostInfo sends CONFIG_GET_HOST_INFO.
func (c *Client) GetHostInfo(ctx context.Context) (*ConfigGetHostInfoReply, error) {
	return doCall[*ConfigGetHostInfoReply](ctx, c, &ConfigGetHostInfoRequest{})
}

// GetServerInfo sends CONFIG_GET_SERVER_INFO.
func (c *Client) GetServerInfo(ctx context.Context) (*ConfigGetServerInfoReply, error) {
	return doCall[*ConfigGetServerInfoReply](ctx, c, &ConfigGetServerInfoRequest{})
}

// GetConnectionType returns the data connection address types the server
// supports (CONFIG_GET_CONNECTION_TYPE).
func (c *Client) GetConnectionType(ctx context.Context) ([]AddrType, error) {
	r, err := doCall[*ConfigGetConnectionTypeReply](ctx, c, &ConfigGetConnectionTypeRequest{})
	if err != nil {
		return nil, err
	}
	return r.AddrTypes, nil
}

// GetButypeInfo returns the backup types of the server
// (CONFIG_GET_BUTYPE_INFO).
func (c *Client) GetButypeInfo(ctx context.Context) ([]ButypeInfo, error) {
	r, err := doCall[*ConfigGetButypeInfoReply](ctx, c, &ConfigGetButypeInfoRequest{})
	if err != nil {
		return nil, err
	}
	return r.ButypeInfo, nil
}

// GetFSInfo returns the file systems of the server (CONFIG_GET_FS_INFO).
func (c *Client) GetFSInfo(ctx context.Context) ([]FSInfo, error) {
	r, err := doCall[*ConfigGetFSInfoReply](ctx, c, &ConfigGetFSInfoRequest{})
	if err != nil {
		return nil, err
	}
	return r.FSInfo, nil
}

// GetTapeInfo returns the tape devices of the server (CONFIG_GET_TAPE_INFO).
func (c *Client) GetTapeInfo(ctx context.Context) ([]DeviceInfo, error) {
	r, err := doCall[*ConfigGetTapeInfoReply](ctx, c, &ConfigGetTapeInfoRequest{})
	if err != nil {
		return nil, err
	}
	return r.TapeInfo, nil
}

// GetSCSIInfo returns the SCSI devices (media changers) of the server
// (CONFIG_GET_SCSI_INFO).
func (c *Client) GetSCSIInfo(ctx context.Context) ([]DeviceInfo, error) {
	r, err := doCall[*ConfigGetSCSIInfoReply](ctx, c, &ConfigGetSCSIInfoRequest{})
	if err != nil {
		return nil, err
	}
	return r.SCSIInfo, nil
}

// GetExtList returns the extension classes and versions the server offers
// (CONFIG_GET_EXT_LIST).
func (c *Client) GetExtList(ctx context.Context) ([]ClassList, error) {
	r, err := doCall[*ConfigGetExtListReply](ctx, c, &ConfigGetExtListRequest{})
	if err != nil {
		return nil, err
	}
	return r.ClassList, nil
}

// SetExtList selects extension classes and versions (CONFIG_SET_EXT_LIST).
func (c *Client) SetExtList(ctx context.Context, ext []ClassVersion) error {
	_, err := doCall[*ConfigSetExtListReply](ctx, c, &ConfigSetExtListRequest{NDMPSelectedExt: ext})
	return err
}

// SCSIOpen opens a SCSI device (SCSI_OPEN).
func (c *Client) SCSIOpen(ctx context.Context, device string) error {
	_, err := doCall[*SCSIOpenReply](ctx, c, &SCSIOpenRequest{Device: device})
	return err
}

// SCSIClose closes the SCSI device (SCSI_CLOSE).
func (c *Client) SCSIClose(ctx context.Context) error {
	_, err := doCall[*SCSICloseReply](ctx, c, &SCSICloseRequest{})
	return err
}

// SCSIGetState sends SCSI_GET_STATE.
func (c *Client) SCSIGetState(ctx context.Context) (*SCSIGetStateReply, error) {
	return doCall[*SCSIGetStateReply](ctx, c, &SCSIGetStateRequest{})
}

// SCSIResetDevice sends SCSI_RESET_DEVICE.
func (c *Client) SCSIResetDevice(ctx context.Context) error {
	_, err := doCall[*SCSIResetDeviceReply](ctx, c, &SCSIResetDeviceRequest{})
	return err
}

// SCSIExecuteCDB sends a CDB to the open SCSI device (SCSI_EXECUTE_CDB).
func (c *Client) SCSIExecuteCDB(ctx context.Context, req *SCSIExecuteCDBRequest) (*SCSIExecuteCDBReply, error) {
	return doCall[*SCSIExecuteCDBReply](ctx, c, req)
}

// TapeOpen opens a tape device (TAPE_OPEN).
func (c *Client) TapeOpen(ctx context.Context, device string, mode TapeOpenMode) error {
	_, err := doCall[*TapeOpenReply](ctx, c, &TapeOpenRequest{Device: device, Mode: mode})
	return err
}

// TapeClose closes the tape device (TAPE_CLOSE).
func (c *Client) TapeClose(ctx context.Context) error {
	_, err := doCall[*TapeCloseReply](ctx, c, &TapeCloseRequest{})
	return err
}

// TapeGetState sends TAPE_GET_STATE.
func (c *Client) TapeGetState(ctx context.Context) (*TapeGetStateReply, error) {
	return doCall[*TapeGetStateReply](ctx, c, &TapeGetStateRequest{})
}

// TapeMTIO performs a tape operation count times (TAPE_MTIO) and returns
// the residual count.
func (c *Client) TapeMTIO(ctx context.Context, op TapeMTIOOp, count uint32) (uint32, error) {
	r, err := doCall[*TapeMTIOReply](ctx, c, &TapeMTIORequest{TapeOp: op, Count: count})
	if r == nil {
		return 0, err
	}
	return r.ResidCount, err
}

// TapeWrite writes one tape record (TAPE_WRITE) and returns the number of
// bytes written.
func (c *Client) TapeWrite(ctx context.Context, data []byte) (uint32, error) {
	r, err := doCall[*TapeWriteReply](ctx, c, &TapeWriteRequest{DataOut: data})
	if r == nil {
		return 0, err
	}
	return r.Count, err
}

// TapeRead reads one tape record of at most count bytes (TAPE_READ).
func (c *Client) TapeRead(ctx context.Context, count uint32) ([]byte, error) {
	r, err := doCall[*TapeReadReply](ctx, c, &TapeReadRequest{Count: count})
	if r == nil {
		return nil, err
	}
	return r.DataIn, err
}

// TapeExecuteCDB sends a CDB to the open tape device (TAPE_EXECUTE_CDB).
func (c *Client) TapeExecuteCDB(ctx context.Context, req *TapeExecuteCDBRequest) (*TapeExecuteCDBReply, error) {
	return doCall[*TapeExecuteCDBReply](ctx, c, req)
}

// DataGetState sends DATA_GET_STATE.
func (c *Client) DataGetState(ctx context.Context) (*DataGetStateReply, error) {
	return doCall[*DataGetStateReply](ctx, c, &DataGetStateRequest{})
}

// DataStartBackup starts a backup of type butype with the environment env
// (DATA_START_BACKUP).
func (c *Client) DataStartBackup(ctx context.Context, butype string, env []Pval) error {
	_, err := doCall[*DataStartBackupReply](ctx, c, &DataStartBackupRequest{ButypeName: butype, Env: env})
	return err
}

// DataStartRecover starts a restore (DATA_START_RECOVER).
func (c *Client) DataStartRecover(ctx context.Context, butype string, env []Pval, nlist []Name) error {
	_, err := doCall[*DataStartRecoverReply](ctx, c, &DataStartRecoverRequest{ButypeName: butype, Env: env, Nlist: nlist})
	return err
}

// DataStartRecoverFilehist starts a recovery of file history only
// (DATA_START_RECOVER_FILEHIST).
func (c *Client) DataStartRecoverFilehist(ctx context.Context, butype string, env []Pval, nlist []Name) error {
	_, err := doCall[*DataStartRecoverFilehistReply](ctx, c, &DataStartRecoverFilehistRequest{ButypeName: butype, Env: env, Nlist: nlist})
	return err
}

// DataAbort sends DATA_ABORT.
func (c *Client) DataAbort(ctx context.Context) error {
	_, err := doCall[*DataAbortReply](ctx, c, &DataAbortRequest{})
	return err
}

// DataStop sends DATA_STOP.
func (c *Client) DataStop(ctx context.Context) error {
	_, err := doCall[*DataStopReply](ctx, c, &DataStopRequest{})
	return err
}

// DataGetEnv returns the environment of the last backup (DATA_GET_ENV).
func (c *Client) DataGetEnv(ctx context.Context) ([]Pval, error) {
	r, err := doCall[*DataGetEnvReply](ctx, c, &DataGetEnvRequest{})
	if err != nil {
		return nil, err
	}
	return r.Env, nil
}

// DataListen makes the data service listen for a connection of the given
// type (DATA_LISTEN) and returns the address to connect to.
func (c *Client) DataListen(ctx context.Context, t AddrType) (*Addr, error) {
	r, err := doCall[*DataListenReply](ctx, c, &DataListenRequest{AddrType: t})
	if err != nil {
		return nil, err
	}
	return &r.ConnectAddr, nil
}

// DataConnect connects the data service to a mover (DATA_CONNECT).
func (c *Client) DataConnect(ctx context.Context, addr Addr) error {
	_, err := doCall[*DataConnectReply](ctx, c, &DataConnectRequest{Addr: addr})
	return err
}

// MoverGetState sends MOVER_GET_STATE.
func (c *Client) MoverGetState(ctx context.Context) (*MoverGetStateReply, error) {
	return doCall[*MoverGetStateReply](ctx, c, &MoverGetStateRequest{})
}

// MoverListen makes the mover listen (MOVER_LISTEN) and returns the address
// to connect to.
func (c *Client) MoverListen(ctx context.Context, mode MoverMode, t AddrType) (*Addr, error) {
	r, err := doCall[*MoverListenReply](ctx, c, &MoverListenRequest{Mode: mode, AddrType: t})
	if err != nil {
		return nil, err
	}
	return &r.ConnectAddr, nil
}

// MoverConnect connects the mover to a data service or another mover
// (MOVER_CONNECT).
func (c *Client) MoverConnect(ctx context.Context, mode MoverMode, addr Addr) error {
	_, err := doCall[*MoverConnectReply](ctx, c, &MoverConnectRequest{Mode: mode, Addr: addr})
	return err
}

// MoverContinue sends MOVER_CONTINUE.
func (c *Client) MoverContinue(ctx context.Context) error {
	_, err := doCall[*MoverContinueReply](ctx, c, &MoverContinueRequest{})
	return err
}

// MoverAbort sends MOVER_ABORT.
func (c *Client) MoverAbort(ctx context.Context) error {
	_, err := doCall[*MoverAbortReply](ctx, c, &MoverAbortRequest{})
	return err
}

// MoverStop sends MOVER_STOP.
func (c *Client) MoverStop(ctx context.Context) error {
	_, err := doCall[*MoverStopReply](ctx, c, &MoverStopRequest{})
	return err
}

// MoverClose sends MOVER_CLOSE.
func (c *Client) MoverClose(ctx context.Context) error {
	_, err := doCall[*MoverCloseReply](ctx, c, &MoverCloseRequest{})
	return err
}

// MoverSetWindow sets the mover window (MOVER_SET_WINDOW).
func (c *Client) MoverSetWindow(ctx context.Context, offset, length uint64) error {
	_, err := doCall[*MoverSetWindowReply](ctx, c, &MoverSetWindowRequest{Offset: offset, Length: length})
	return err
}

// MoverRead asks the mover to read a segment of the image (MOVER_READ).
func (c *Client) MoverRead(ctx context.Context, offset, length uint64) error {
	_, err := doCall[*MoverReadReply](ctx, c, &MoverReadRequest{Offset: offset, Length: length})
	return err
}

// MoverSetRecordSize sets the tape record size (MOVER_SET_RECORD_SIZE).
func (c *Client) MoverSetRecordSize(ctx context.Context, size uint32) error {
	_, err := doCall[*MoverSetRecordSizeReply](ctx, c, &MoverSetRecordSizeRequest{Len: size})
	return err
}

// TestEcho sends the test extension's NDMP_TEST_ECHO and returns the echoed
// string.
func (c *Client) TestEcho(ctx context.Context, msg string) (string, error) {
	r, err := doCall[*TestEchoReply](ctx, c, &TestEchoRequest{EchoMsg: msg})
	if err != nil {
		return "", err
	}
	return r.EchoMsg, nil
}

// CABDataConnPrepare sends the CAB extension's NDMP_CAB_DATA_CONN_PREPARE,
// which tells the server the backup type and environment (FILESYSTEM names
// the volume) before DATA_LISTEN or DATA_CONNECT.
func (c *Client) CABDataConnPrepare(ctx context.Context, addrType AddrType, butype string, env []Pval) error {
	_, err := doCall[*CABDataConnPrepareReply](ctx, c, &CABDataConnPrepareRequest{AddrType: addrType, ButypeName: butype, Env: env})
	return err
}
