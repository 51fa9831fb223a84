package ndmpcopy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// peer is a small NDMP v4 data server for the DMA's protocol tests, on real
// TCP over loopback, built on the ndmp package's Conn. Its "backup" sends the
// bytes stored for FILESYSTEM over the data connection and its "recover"
// stores what it receives under the nlist's destination. It follows the
// draft's data state machine (IDLE, LISTEN, CONNECTED, ACTIVE, HALTED) and,
// like ONTAP in node scope, refuses a data connection whose family differs
// from the control connection's. The end-to-end tests against Tapestry's
// real server are in e2e_test.go.
type peer struct {
	t      testing.TB
	ln     net.Listener
	addr   netip.AddrPort
	users  map[string]string
	auths  []ndmp.AuthType
	cae    bool          // offer extension 0x2051
	pace   time.Duration // delay per 64 KiB chunk of a backup
	failAt int64         // a backup halts with INTERNAL_ERROR after this many bytes (if > 0)
	noDest bool          // recover refuses: the destination path does not exist
	raw    bool          // recover stores the bytes as they come (a real server's image)
	hang   bool          // recover never ends on its own: only DATA_ABORT halts it

	mu       sync.Mutex
	files    map[string][]byte
	backups  []map[string]string // env of each START_BACKUP
	recovers []recoverCall
	sessions int
}

type recoverCall struct {
	env   map[string]string
	nlist []ndmp.Name
}

func newPeer(t testing.TB, host string) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	testutil.Require(t, err == nil, fmt.Sprintf("listen on %s: %v", host, err))
	p := &peer{
		t: t, ln: ln, addr: netip.MustParseAddrPort(ln.Addr().String()),
		users: map[string]string{"admin": "secret"},
		auths: []ndmp.AuthType{ndmp.AuthText, ndmp.AuthMD5},
		cae:   true,
		files: map[string][]byte{},
	}
	var wg sync.WaitGroup
	var connsMu sync.Mutex
	var conns []*ndmp.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s := &peerSession{p: p}
			c := ndmp.NewConn(nc, &ndmp.Config{
				Greeting: &ndmp.NotifyConnectionStatusPost{Reason: ndmp.Connected, ProtocolVersion: ndmp.ProtocolVersion},
				Handler:  ndmp.HandlerFunc(s.serve),
			})
			p.mu.Lock()
			p.sessions++
			p.mu.Unlock()
			connsMu.Lock()
			conns = append(conns, c)
			connsMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		connsMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		connsMu.Unlock()
	})
	return p
}

// endpoint returns the endpoint string host:port:/path of the peer.
func (p *peer) endpoint(path string) string {
	h := p.addr.Addr().String()
	if p.addr.Addr().Is6() {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(int(p.addr.Port())) + ":" + path
}

func (p *peer) file(path string) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.files[path]
	return b, ok
}

type peerSession struct {
	p         *peer
	conn      atomic.Pointer[ndmp.Conn]
	authed    bool
	challenge [ndmp.ChallengeSize]byte
	extAsked  bool
	cae       bool

	mu        sync.Mutex
	state     ndmp.DataState
	op        ndmp.DataOperation
	halt      ndmp.DataHaltReason
	ln        net.Listener
	data      net.Conn
	bytes     int64
	total     int64
	cancel    context.CancelFunc
	lastEnv   []ndmp.Pval
	ctlFamily Family
}

func (s *peerSession) serve(ctx context.Context, c *ndmp.Conn, m *ndmp.Message) (ndmp.Body, error) {
	s.conn.Store(c)
	switch req := m.Body.(type) {
	case *ndmp.ConnectOpenRequest:
		if req.ProtocolVersion != ndmp.ProtocolVersion {
			return &ndmp.ConnectOpenReply{Error: ndmp.ErrIllegalArgs}, nil
		}
		return &ndmp.ConnectOpenReply{}, nil
	case *ndmp.ConnectCloseRequest:
		s.haltData(ndmp.DataHaltAborted, false)
		return nil, c.Close()
	case *ndmp.ConfigGetServerInfoRequest:
		return &ndmp.ConfigGetServerInfoReply{AuthType: s.p.auths}, nil
	case *ndmp.ConfigGetAuthAttrRequest:
		if req.AuthType != ndmp.AuthMD5 {
			return &ndmp.ConfigGetAuthAttrReply{Error: ndmp.ErrIllegalArgs}, nil
		}
		rand.Read(s.challenge[:])
		return &ndmp.ConfigGetAuthAttrReply{ServerAttr: ndmp.AuthAttr{AuthType: ndmp.AuthMD5, Challenge: s.challenge}}, nil
	case *ndmp.ConnectClientAuthRequest:
		allowed := false
		for _, t := range s.p.auths {
			allowed = allowed || t == req.AuthData.AuthType
		}
		if !allowed {
			return &ndmp.ConnectClientAuthReply{Error: ndmp.ErrIllegalArgs}, nil
		}
		ok := false
		switch req.AuthData.AuthType {
		case ndmp.AuthText:
			pw, found := s.p.users[req.AuthData.AuthText.AuthID]
			ok = found && pw == req.AuthData.AuthText.AuthPassword
		case ndmp.AuthMD5:
			pw, found := s.p.users[req.AuthData.AuthMD5.AuthID]
			ok = found && ndmp.VerifyMD5(pw, s.challenge, req.AuthData.AuthMD5.AuthDigest)
		}
		if !ok {
			return &ndmp.ConnectClientAuthReply{Error: ndmp.ErrNotAuthorized}, nil
		}
		s.authed = true
		if ap, err := netip.ParseAddrPort(c.NetConn().LocalAddr().String()); err == nil {
			s.ctlFamily = familyOf(ap.Addr())
		}
		return &ndmp.ConnectClientAuthReply{}, nil
	}
	if !s.authed {
		return nil, ndmp.ErrNotAuthorized
	}
	switch req := m.Body.(type) {
	case *ndmp.ConfigGetExtListRequest:
		s.extAsked = true
		var l []ndmp.ClassList
		if s.p.cae {
			l = append(l, ndmp.ClassList{ExtClassID: ndmp.ExtClassNetAppCAE, ExtVersion: []uint16{1}})
		}
		return &ndmp.ConfigGetExtListReply{ClassList: l}, nil
	case *ndmp.ConfigSetExtListRequest:
		if !s.extAsked {
			return &ndmp.ConfigSetExtListReply{Error: ndmp.ErrPrecondition}, nil
		}
		for _, cv := range req.NDMPSelectedExt {
			if cv.ExtClassID != ndmp.ExtClassNetAppCAE || !s.p.cae {
				return &ndmp.ConfigSetExtListReply{Error: ndmp.ErrClassNotSupported}, nil
			}
			s.cae = true
		}
		return &ndmp.ConfigSetExtListReply{}, nil
	case *ndmp.DataGetStateRequest:
		s.mu.Lock()
		defer s.mu.Unlock()
		r := &ndmp.DataGetStateReply{
			Unsupported: ndmp.DataStateEstTimeRemainUns, Operation: s.op, State: s.state,
			HaltReason: s.halt, BytesProcessed: uint64(s.bytes),
		}
		if s.op == ndmp.DataOpBackup && s.total > s.bytes {
			r.EstBytesRemain = uint64(s.total - s.bytes)
		} else {
			r.Unsupported |= ndmp.DataStateEstBytesRemainUns
		}
		return r, nil
	case *ndmp.DataListenRequest:
		return s.listen(req.AddrType)
	case *ndmp.DataConnectRequest:
		return s.connect(ctx, req.Addr)
	case *ndmp.DataStartBackupRequest:
		return s.startBackup(req)
	case *ndmp.DataStartRecoverRequest:
		return s.startRecover(req)
	case *ndmp.DataAbortRequest:
		s.mu.Lock()
		st := s.state
		s.mu.Unlock()
		if st == ndmp.DataStateIdle {
			return &ndmp.DataAbortReply{Error: ndmp.ErrIllegalState}, nil
		}
		s.haltData(ndmp.DataHaltAborted, true)
		return &ndmp.DataAbortReply{}, nil
	case *ndmp.DataStopRequest:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.state != ndmp.DataStateHalted {
			return &ndmp.DataStopReply{Error: ndmp.ErrIllegalState}, nil
		}
		s.state, s.op, s.halt, s.bytes, s.total = ndmp.DataStateIdle, ndmp.DataOpNoaction, ndmp.DataHaltNA, 0, 0
		return &ndmp.DataStopReply{}, nil
	case *ndmp.DataGetEnvRequest:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.state != ndmp.DataStateHalted && s.state != ndmp.DataStateActive {
			return &ndmp.DataGetEnvReply{Error: ndmp.ErrIllegalState}, nil
		}
		return &ndmp.DataGetEnvReply{Env: s.lastEnv}, nil
	}
	return nil, ndmp.ErrNotSupported
}

func (s *peerSession) listen(t ndmp.AddrType) (ndmp.Body, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != ndmp.DataStateIdle {
		return &ndmp.DataListenReply{Error: ndmp.ErrIllegalState}, nil
	}
	fam := FamilyInet
	switch t {
	case ndmp.AddrTCP:
	case ndmp.AddrTCPIPv6:
		if !s.cae {
			return &ndmp.DataListenReply{Error: ndmp.ErrIllegalArgs}, nil
		}
		fam = FamilyInet6
	default:
		return &ndmp.DataListenReply{Error: ndmp.ErrIllegalArgs}, nil
	}
	if fam != s.ctlFamily {
		// ONTAP node scope: the data connection uses the control
		// connection's family.
		return &ndmp.DataListenReply{Error: ndmp.ErrIllegalArgs}, nil
	}
	ln, err := net.Listen(fam.network(), net.JoinHostPort(s.p.addr.Addr().String(), "0"))
	if err != nil {
		return &ndmp.DataListenReply{Error: ndmp.ErrIo}, nil
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	addr, err := ndmp.NewTCPAddrs(ap)
	if err != nil {
		ln.Close()
		return &ndmp.DataListenReply{Error: ndmp.ErrIo}, nil
	}
	s.ln, s.state = ln, ndmp.DataStateListen
	go func() {
		nc, err := ln.Accept()
		ln.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil || s.state != ndmp.DataStateListen {
			if nc != nil {
				nc.Close()
			}
			return
		}
		s.data, s.state = nc, ndmp.DataStateConnected
	}()
	return &ndmp.DataListenReply{ConnectAddr: addr}, nil
}

func (s *peerSession) connect(ctx context.Context, a ndmp.Addr) (ndmp.Body, error) {
	s.mu.Lock()
	if s.state != ndmp.DataStateIdle {
		s.mu.Unlock()
		return &ndmp.DataConnectReply{Error: ndmp.ErrIllegalState}, nil
	}
	s.mu.Unlock()
	if a.AddrType == ndmp.AddrTCPIPv6 && !s.cae {
		return &ndmp.DataConnectReply{Error: ndmp.ErrIllegalArgs}, nil
	}
	eps := a.AddrPorts()
	if len(eps) == 0 {
		return &ndmp.DataConnectReply{Error: ndmp.ErrIllegalArgs}, nil
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", eps[0].String())
	if err != nil {
		return &ndmp.DataConnectReply{Error: ndmp.ErrConnect}, nil
	}
	s.mu.Lock()
	s.data, s.state = nc, ndmp.DataStateConnected
	s.mu.Unlock()
	return &ndmp.DataConnectReply{}, nil
}

func (s *peerSession) logError(text string) {
	s.conn.Load().Post(context.Background(), &ndmp.LogMessagePost{LogType: ndmp.LogError, Entry: text})
}

func (s *peerSession) startBackup(req *ndmp.DataStartBackupRequest) (ndmp.Body, error) {
	env := ndmp.Env(req.Env)
	s.p.mu.Lock()
	s.p.backups = append(s.p.backups, env)
	content, ok := s.p.files[env["FILESYSTEM"]]
	s.p.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != ndmp.DataStateConnected {
		return &ndmp.DataStartBackupReply{Error: ndmp.ErrIllegalState}, nil
	}
	if req.ButypeName != "dump" {
		return &ndmp.DataStartBackupReply{Error: ndmp.ErrIllegalArgs}, nil
	}
	if !ok {
		s.logError("Could not find path " + env["FILESYSTEM"])
		return &ndmp.DataStartBackupReply{Error: ndmp.ErrFileNotFound}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.state, s.op, s.total = cancel, ndmp.DataStateActive, ndmp.DataOpBackup, int64(len(content))
	s.lastEnv = append(req.Env, ndmp.Pval{Name: "DUMP_DATE", Value: "1234"})
	data := s.data
	go func() {
		// The "image" starts with its length, so that the recover side
		// can tell a truncated image, as a dump restore does.
		var hdr [8]byte
		binary.BigEndian.PutUint64(hdr[:], uint64(len(content)))
		if _, err := data.Write(hdr[:]); err != nil {
			s.haltData(ndmp.DataHaltConnectError, true)
			return
		}
		for off := 0; off < len(content); off += 64 << 10 {
			if ctx.Err() != nil {
				return
			}
			end := min(off+64<<10, len(content))
			if s.p.failAt > 0 && int64(end) > s.p.failAt {
				s.logError("Dump failed: simulated disk error")
				s.haltData(ndmp.DataHaltInternalError, true)
				return
			}
			if _, err := data.Write(content[off:end]); err != nil {
				s.haltData(ndmp.DataHaltConnectError, true)
				return
			}
			s.mu.Lock()
			s.bytes = int64(end)
			s.mu.Unlock()
			if s.p.pace > 0 {
				time.Sleep(s.p.pace)
			}
		}
		s.haltData(ndmp.DataHaltSuccessful, true)
	}()
	return &ndmp.DataStartBackupReply{}, nil
}

func (s *peerSession) startRecover(req *ndmp.DataStartRecoverRequest) (ndmp.Body, error) {
	env := ndmp.Env(req.Env)
	s.p.mu.Lock()
	s.p.recovers = append(s.p.recovers, recoverCall{env: env, nlist: req.Nlist})
	s.p.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != ndmp.DataStateConnected {
		return &ndmp.DataStartRecoverReply{Error: ndmp.ErrIllegalState}, nil
	}
	if len(req.Nlist) != 1 || req.Nlist[0].DestinationDir == "" {
		return &ndmp.DataStartRecoverReply{Error: ndmp.ErrIllegalArgs}, nil
	}
	dest := req.Nlist[0].DestinationDir
	if s.p.noDest {
		s.logError("Destination " + dest + " does not exist")
		return &ndmp.DataStartRecoverReply{Error: ndmp.ErrFileNotFound}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.state, s.op = cancel, ndmp.DataStateActive, ndmp.DataOpRecover
	data := s.data
	if s.p.hang {
		return &ndmp.DataStartRecoverReply{}, nil
	}
	go func() {
		buf := make([]byte, 32<<10)
		var got []byte
		for {
			n, err := data.Read(buf)
			got = append(got, buf[:n]...)
			s.mu.Lock()
			s.bytes += int64(n)
			s.mu.Unlock()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || ctx.Err() != nil {
				s.haltData(ndmp.DataHaltConnectError, true)
				return
			}
		}
		if s.p.raw {
			s.p.mu.Lock()
			s.p.files[dest] = got
			s.p.mu.Unlock()
			s.haltData(ndmp.DataHaltSuccessful, true)
			return
		}
		if len(got) < 8 || binary.BigEndian.Uint64(got) != uint64(len(got)-8) {
			s.logError("Restore failed: truncated image")
			s.haltData(ndmp.DataHaltInternalError, true)
			return
		}
		got = got[8:]
		s.p.mu.Lock()
		s.p.files[dest] = got
		s.p.mu.Unlock()
		s.haltData(ndmp.DataHaltSuccessful, true)
	}()
	return &ndmp.DataStartRecoverReply{}, nil
}

// haltData moves the data service to HALTED (once) and posts
// NOTIFY_DATA_HALTED.
func (s *peerSession) haltData(r ndmp.DataHaltReason, notify bool) {
	s.mu.Lock()
	if s.state == ndmp.DataStateIdle || s.state == ndmp.DataStateHalted {
		s.mu.Unlock()
		return
	}
	s.state, s.halt = ndmp.DataStateHalted, r
	if s.cancel != nil {
		s.cancel()
	}
	if s.ln != nil {
		s.ln.Close()
	}
	if s.data != nil {
		s.data.Close()
	}
	s.mu.Unlock()
	if notify {
		s.conn.Load().Post(context.Background(), &ndmp.NotifyDataHaltedPost{Reason: r})
	}
}
