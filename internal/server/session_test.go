package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// N1: CONNECT_OPEN accepts only version 4; another version gets
// ILLEGAL_ARGS and the log line "ndmpd invalid version number: <n>"; a
// second CONNECT_OPEN after negotiation gets ILLEGAL_STATE.
func TestConnectOpenVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	c := f.dial(nil)
	ctx := f.ctx
	// The greeting arrives before anything else.
	c2 := f.dial(nil)
	if err := c2.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	for _, v := range []uint16{3, 2, 5} {
		_, err := c.Call(ctx, &ndmp.ConnectOpenRequest{ProtocolVersion: v})
		wantErr(t, fmt.Sprintf("CONNECT_OPEN v%d", v), err, ndmp.ErrIllegalArgs)
	}
	if !strings.Contains(f.logs.String(), "ndmpd invalid version number: 3") {
		t.Errorf("log lacks the invalid version message:\n%s", f.logs.String())
	}
	_, err := c.Call(ctx, &ndmp.ConnectOpenRequest{ProtocolVersion: 4})
	wantErr(t, "CONNECT_OPEN v4", err, ndmp.NoErr)
	_, err = c.Call(ctx, &ndmp.ConnectOpenRequest{ProtocolVersion: 4})
	wantErr(t, "second CONNECT_OPEN", err, ndmp.ErrIllegalState)
}

// N3, N4: MD5 authentication with a fresh challenge per request; the
// latest challenge counts; wrong passwords and users are refused with
// NOT_AUTHORIZED; only pre-auth messages work before authentication.
func TestAuthMD5AndPreAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := f.ctx
	c := f.dial(nil)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// Before authentication: server info has methods but no names.
	si, err := c.GetServerInfo(ctx)
	wantErr(t, "GET_SERVER_INFO", err, ndmp.NoErr)
	if si.VendorName != "" || len(si.AuthType) != 1 || si.AuthType[0] != ndmp.AuthMD5 {
		t.Errorf("pre-auth server info %+v, want no vendor and only MD5 (SVM scope default)", si)
	}
	_, err = c.GetHostInfo(ctx)
	wantErr(t, "GET_HOST_INFO before auth", err, ndmp.ErrNotAuthorized)
	err = c.TapeOpen(ctx, "nrst0l", ndmp.TapeReadMode)
	wantErr(t, "TAPE_OPEN before auth", err, ndmp.ErrNotAuthorized)
	// TEXT is off by default in SVM scope.
	_, err = c.GetAuthAttr(ctx, ndmp.AuthText)
	wantErr(t, "GET_AUTH_ATTR TEXT", err, ndmp.ErrIllegalArgs)
	err = c.AuthText(ctx, testUser, f.ndmpPW)
	wantErr(t, "CLIENT_AUTH TEXT", err, ndmp.ErrIllegalArgs)
	// Challenges differ every time.
	a1, err := c.GetAuthAttr(ctx, ndmp.AuthMD5)
	wantErr(t, "GET_AUTH_ATTR", err, ndmp.NoErr)
	a2, err := c.GetAuthAttr(ctx, ndmp.AuthMD5)
	wantErr(t, "GET_AUTH_ATTR", err, ndmp.NoErr)
	if a1.Challenge == a2.Challenge {
		t.Fatal("two challenges are equal")
	}
	// A digest over the older challenge fails: only the latest counts.
	_, err = c.Call(ctx, &ndmp.ConnectClientAuthRequest{AuthData: ndmp.AuthData{AuthType: ndmp.AuthMD5,
		AuthMD5: ndmp.MD5Auth{AuthID: testUser, AuthDigest: ndmp.MD5Digest(f.ndmpPW, a1.Challenge)}}})
	wantErr(t, "auth with stale challenge", err, ndmp.ErrNotAuthorized)
	// The challenge was consumed: reusing the latest one fails too.
	_, err = c.Call(ctx, &ndmp.ConnectClientAuthRequest{AuthData: ndmp.AuthData{AuthType: ndmp.AuthMD5,
		AuthMD5: ndmp.MD5Auth{AuthID: testUser, AuthDigest: ndmp.MD5Digest(f.ndmpPW, a2.Challenge)}}})
	wantErr(t, "auth with consumed challenge", err, ndmp.ErrNotAuthorized)
	wantErr(t, "wrong password", c.AuthMD5(ctx, testUser, "wrong"+f.ndmpPW), ndmp.ErrNotAuthorized)
	// Three failures close the connection (issue 10).
	waitClosed(t, c)
	c = f.dial(nil)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "unknown user", c.AuthMD5(ctx, "nobody", f.ndmpPW), ndmp.ErrNotAuthorized)
	// The login password is not the NDMP password (N4).
	wantErr(t, "login password", c.AuthMD5(ctx, testUser, testLoginPW), ndmp.ErrNotAuthorized)
	wantErr(t, "AuthMD5", c.AuthMD5(ctx, testUser, f.ndmpPW), ndmp.NoErr)
	si, err = c.GetServerInfo(ctx)
	wantErr(t, "GET_SERVER_INFO", err, ndmp.NoErr)
	if si.VendorName != VendorName || si.ProductName != ProductName || si.RevisionNumber != "test" {
		t.Errorf("server info %+v", si)
	}
	hi, err := c.GetHostInfo(ctx)
	wantErr(t, "GET_HOST_INFO", err, ndmp.NoErr)
	if hi.HostID != testNodeName {
		t.Errorf("host id %q", hi.HostID)
	}
}

// N3: plaintext can be switched on and challenge off per SVM; the setting
// is persisted in the catalog.
func TestAuthTextWhenEnabled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: func(f *fixture) {
		if _, err := ModifySVMSettings(f.ctx, f.store, f.adminSVM, func(s *SVMSettings) error {
			s.AuthTypes = []string{AuthPlaintext}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}})
	ctx := f.ctx
	c := f.dial(nil)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "MD5 when only plaintext", c.AuthMD5(ctx, testUser, f.ndmpPW), ndmp.ErrIllegalArgs)
	wantErr(t, "TEXT wrong", c.AuthText(ctx, testUser, "bad"), ndmp.ErrNotAuthorized)
	wantErr(t, "TEXT", c.AuthText(ctx, testUser, f.ndmpPW), ndmp.NoErr)
	s, err := LoadSVMSettings(ctx, f.store, f.adminSVM)
	if err != nil || len(s.AuthTypes) != 1 || s.AuthTypes[0] != AuthPlaintext {
		t.Fatalf("settings %+v, %v", s, err)
	}
}

// N3: node scope accepts the node account with both methods; challenge
// cannot be switched off there.
func TestNodeScopeAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: func(f *fixture) {
		if _, err := ModifyNodeSettings(f.ctx, f.store, testNodeName, func(s *NodeSettings) error {
			s.NodeScopeMode = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := f.au.SetNodeNDMPPassword(f.ctx, testNodeName, "NodePassw0rd"); err != nil {
			t.Fatal(err)
		}
	}})
	ctx := f.ctx
	c := f.dial(nil)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	si, err := c.GetServerInfo(ctx)
	wantErr(t, "server info", err, ndmp.NoErr)
	if len(si.AuthType) != 2 {
		t.Errorf("node scope auth types %v, want TEXT and MD5", si.AuthType)
	}
	// SVM users do not work in node scope.
	wantErr(t, "cluster user in node scope", c.AuthMD5(ctx, testUser, f.ndmpPW), ndmp.ErrNotAuthorized)
	wantErr(t, "node root TEXT", c.AuthText(ctx, "root", "NodePassw0rd"), ndmp.NoErr)
	c2 := f.dial(nil)
	if err := c2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "node root MD5", c2.AuthMD5(ctx, "root", "NodePassw0rd"), ndmp.NoErr)
}

// N4: a user without the right role cannot open a session on a
// node-management LIF.
func TestRoleDenied(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: func(f *fixture) {
		if _, err := f.au.CreateUser(f.ctx, authSpec(f.adminSVM, "reader", "readonly")); err != nil {
			t.Fatal(err)
		}
	}})
	pw, err := f.au.GenerateNDMPPassword(f.ctx, f.adminSVM, "reader")
	if err != nil {
		t.Fatal(err)
	}
	c := f.dial(nil)
	if err := c.Connect(f.ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "readonly user", c.AuthMD5(f.ctx, "reader", pw), ndmp.ErrNotAuthorized)
}

// N5 and the on/off setting: a session on an SVM with NDMP disallowed or
// switched off is refused in NOTIFY_CONNECTION_STATUS.
func TestSessionRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	if _, err := ModifySVMSettings(f.ctx, f.store, f.adminSVM, func(s *SVMSettings) error {
		s.Enabled = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c := f.dial(nil)
	err := c.Connect(f.ctx)
	var ce *ndmp.ConnectError
	if !errors.As(err, &ce) || ce.Reason != ndmp.Refused || !strings.Contains(ce.Text, "disabled") {
		t.Fatalf("Connect: %v, want refusal", err)
	}
}

// N12: sessions beyond the limit are refused (the limit by memory is
// engine.LimitsForMemory, tested in internal/engine).
func TestSessionLimit(t *testing.T) {
	t.Parallel()
	// Only authenticated sessions count (issue 10): a connection that has
	// not authenticated yet is admitted, and refused when it
	// authenticates beyond the limit.
	f := newFixture(t, fixtureOpts{maxSessions: 2})
	pending := f.dial(nil)
	if err := pending.Connect(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.login(nil)
	f.login(nil)
	err := pending.AuthMD5(f.ctx, testUser, f.ndmpPW)
	wantErr(t, "authentication beyond the limit", err, ndmp.ErrConnect)
	waitClosed(t, pending)
	c := f.dial(nil)
	var ce *ndmp.ConnectError
	if err := c.Connect(f.ctx); !errors.As(err, &ce) || ce.Reason != ndmp.Refused || ce.Text != "Maximum number of NDMP sessions (2) reached" {
		t.Fatalf("third session: %v, want refusal", err)
	}
}

// Unknown messages get NOT_SUPPORTED, undecodable bodies XDR_DECODE_ERR,
// and the session goes on.
func TestUnknownAndMalformed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	nc, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rr, rw := ndmp.NewRecordReader(nc, 0), ndmp.NewRecordWriter(nc, 0)
	read := func() *ndmp.Message {
		t.Helper()
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		rec, err := rr.ReadRecord()
		if err != nil {
			t.Fatal(err)
		}
		m, err := ndmp.UnmarshalMessage(rec)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := read(); m.Header.MessageCode != ndmp.NotifyConnectionStatus {
		t.Fatalf("first message %v", m)
	}
	send := func(seq uint32, code ndmp.MessageCode, body []byte) {
		t.Helper()
		b, err := ndmp.MarshalMessage(nil, &ndmp.Message{Header: ndmp.Header{Sequence: seq, MessageType: ndmp.MessageRequest, MessageCode: code}})
		if err != nil {
			t.Fatal(err)
		}
		if err := rw.WriteRecord(append(b, body...)); err != nil {
			t.Fatal(err)
		}
	}
	send(1, 0x0123, nil) // unknown code
	if m := read(); m.Header.ErrorCode != ndmp.ErrNotSupported || m.Header.ReplySequence != 1 {
		t.Fatalf("unknown message: %v", m)
	}
	// Messages obsolete in v4 (SCSI_SET_TARGET, GET_BUTYPE_ATTR,
	// TAPE_SET_RECORD_SIZE, LOG_LOG, FH_ADD_UNIX_PATH).
	for i, code := range []ndmp.MessageCode{0x203, 0x205, 0x101, 0x306, 0x405, 0x600, 0x700} {
		send(uint32(100+i), code, nil)
		if m := read(); m.Header.ErrorCode != ndmp.ErrNotSupported || m.Header.ReplySequence != uint32(100+i) {
			t.Fatalf("obsolete message %#x: %v", uint32(code), m)
		}
	}
	send(2, ndmp.ConnectOpen, []byte{0, 0}) // truncated u_short
	if m := read(); m.Header.ErrorCode != ndmp.ErrXDRDecode || m.Header.ReplySequence != 2 {
		t.Fatalf("bad body: %v", m)
	}
	send(3, ndmp.ConnectOpen, []byte{0, 0, 0, 4})
	m := read()
	if m.Header.ErrorCode != ndmp.NoErr || m.Body.(*ndmp.ConnectOpenReply).Error != ndmp.NoErr {
		t.Fatalf("CONNECT_OPEN after errors: %v", m)
	}
}

// N13: status, probe, kill and kill-all; unknown ids give "ndmpd session
// <id> not active".
func TestSessionRegistry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	c := f.login(nil)
	if err := c.TapeOpen(f.ctx, "nrst0l", ndmp.TapeRDWRMode); err != nil {
		t.Fatal(err)
	}
	list := f.srv.Sessions()
	if len(list) != 1 || list[0].User != testUser || list[0].Tape != "nrst0l" || list[0].LIFRole != "node-mgmt" {
		t.Fatalf("sessions %+v", list)
	}
	in, err := f.srv.Session(list[0].ID)
	if err != nil || in.MoverState != "NDMP_MOVER_STATE_IDLE" {
		t.Fatalf("probe %+v %v", in, err)
	}
	if err := f.srv.SetSessionLog(list[0].ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TapeGetState(f.ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return containsLog(f, "NDMP_TAPE_GET_STATE request") })
	if err := f.srv.SetSessionLog(424242, true); !errors.Is(err, ErrSessionNotActive) {
		t.Fatalf("log start for unknown session: %v", err)
	}
	err = f.srv.Kill(999999)
	if !errors.Is(err, ErrSessionNotActive) || err.Error() != "ndmpd session 999999 not active: session not active" ||
		SessionNotActiveMessage(999999) != "ndmpd session 999999 not active" {
		t.Fatalf("kill unknown: %v", err)
	}
	if err := f.srv.Kill(list[0].ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Conn().Done():
	case <-time.After(hangGuard):
		t.Fatal("killed session still connected")
	}
	waitFor(t, func() bool { return len(f.srv.Sessions()) == 0 })
	// The drive was released: another session can open it.
	c2 := f.login(nil)
	wantErr(t, "reopen after kill", c2.TapeOpen(f.ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	f.login(nil) // a second live session for KillAll to end
	if n := f.srv.KillAll(); n != 2 {
		t.Errorf("KillAll ended %d sessions, want 2", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met in %v", hangGuard)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Serve stops with its context: sessions are closed and no goroutine is
// left behind.
func TestServeStopsCleanly(t *testing.T) {
	t.Parallel()
	before := goroutines()
	f := newFixture(t, fixtureOpts{})
	c := f.login(nil)
	_, err := c.MoverListen(f.ctx, ndmp.MoverModeRead, ndmp.AddrTCP)
	wantErr(t, "listen without record size", err, ndmp.ErrPrecondition)
	f.stop()
	select {
	case <-c.Conn().Done():
	case <-time.After(hangGuard):
		t.Fatal("session survived Serve's end")
	}
	c.Conn().Close()
	waitFor(t, func() bool { return len(leaked(t, before)) == 0 })
	if _, err := net.DialTimeout("tcp", f.addr, time.Second); err == nil {
		t.Error("listener still open after Serve returned")
	}
}

// N8: with the secure control connection enabled the SVM's LIFs also serve
// NDMP over TLS with a self-signed certificate kept in the data directory.
func TestTLSControlConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: func(f *fixture) {
		if _, err := ModifySVMSettings(f.ctx, f.store, f.adminSVM, func(s *SVMSettings) error {
			s.SecureControlConnection = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}})
	var tlsAddr string
	for _, a := range f.srv.Addrs() {
		if a.String() != f.addr {
			tlsAddr = a.String()
		}
	}
	if tlsAddr == "" {
		t.Fatalf("no TLS listener among %v", f.srv.Addrs())
	}
	ctx, cancel := context.WithTimeout(f.ctx, hangGuard)
	defer cancel()
	c, err := ndmp.Dial(ctx, tlsAddr, &ndmp.ClientConfig{TLS: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Conn().Close()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "auth over TLS", c.AuthMD5(ctx, testUser, f.ndmpPW), ndmp.NoErr)
	if _, ok := c.Conn().NetConn().(*tls.Conn); !ok {
		t.Error("connection is not TLS")
	}
	if l := f.srv.Sessions(); len(l) != 1 || !l[0].Secure {
		t.Errorf("sessions %+v", l)
	}
}

// Settings validation and persistence.
func TestSettingsValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	bad := []func(*SVMSettings){
		func(s *SVMSettings) { s.AuthTypes = nil },
		func(s *SVMSettings) { s.AuthTypes = []string{"md5"} },
		func(s *SVMSettings) { s.AuthTypes = []string{AuthChallenge, AuthChallenge} },
		func(s *SVMSettings) { s.DataPortRange = "80-90" },
		func(s *SVMSettings) { s.DataPortRange = "2000-1999" },
		func(s *SVMSettings) { s.DataPortRange = "x" },
		func(s *SVMSettings) { s.PreferredInterfaceRole = []storage.LIFRole{"bogus"} },
	}
	for i, fn := range bad {
		_, err := ModifySVMSettings(f.ctx, f.store, "vs1", func(s *SVMSettings) error { fn(s); return nil })
		if !errors.Is(err, ErrInvalidSettings) {
			t.Errorf("case %d: %v, want ErrInvalidSettings", i, err)
		}
	}
	s, err := ModifySVMSettings(f.ctx, f.store, "vs1", func(s *SVMSettings) error {
		s.DataPortRange = "20000-20010"
		s.AuthTypes = []string{AuthChallenge, AuthPlaintext}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadSVMSettings(f.ctx, f.store, "vs1")
	if err != nil || got.DataPortRange != "20000-20010" || len(got.AuthTypes) != 2 || !s.Enabled {
		t.Fatalf("reloaded %+v %v", got, err)
	}
	if d := DefaultNodeSettings(); !d.Enabled || d.NodeScopeMode || !d.Plaintext {
		t.Errorf("node defaults %+v", d)
	}
}

// LIFs created and deleted while the server runs are served and dropped,
// and switching the secure control connection on opens the TLS listener.
func TestLIFRescan(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	port := freePort(t, "127.0.0.3")
	if _, err := f.st.CreateLIF(f.ctx, storage.LIFSpec{Name: "ic1", SVM: f.adminSVM, Role: storage.RoleIntercluster,
		Address: "127.0.0.3", Port: port, HomeNode: testNodeName}); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.3", fmt.Sprint(port))
	waitFor(t, func() bool {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			nc.Close()
		}
		return err == nil
	})
	c := f.loginAt(addr, testUser, f.ndmpPW)
	if l := f.srv.Sessions(); len(l) != 1 || l[0].LIFRole != "intercluster" {
		t.Fatalf("sessions %+v", l)
	}
	n := len(f.srv.Addrs())
	if _, err := ModifySVMSettings(f.ctx, f.store, f.adminSVM, func(s *SVMSettings) error {
		s.SecureControlConnection = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(f.srv.Addrs()) == 2*n })
	if err := f.st.DeleteLIF(f.ctx, f.adminSVM, "ic1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	// The session opened on the deleted LIF goes on.
	if _, err := c.GetHostInfo(f.ctx); err != nil {
		t.Fatal(err)
	}
}

// CONNECT_SERVER_AUTH: after an MD5 login the server answers the DMA's
// challenge with the digest of the shared NDMP password.
func TestServerAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	c := f.dial(nil)
	if err := c.Connect(f.ctx); err != nil {
		t.Fatal(err)
	}
	var ch [ndmp.ChallengeSize]byte
	copy(ch[:], "a challenge from the DMA")
	_, err := c.ServerAuth(f.ctx, ndmp.AuthAttr{AuthType: ndmp.AuthMD5, Challenge: ch})
	wantErr(t, "server auth before login", err, ndmp.ErrNotAuthorized)
	if err := c.AuthMD5(f.ctx, testUser, f.ndmpPW); err != nil {
		t.Fatal(err)
	}
	ad, err := c.ServerAuth(f.ctx, ndmp.AuthAttr{AuthType: ndmp.AuthMD5, Challenge: ch})
	if err != nil || ad.AuthType != ndmp.AuthMD5 || !ndmp.VerifyMD5(f.ndmpPW, ch, ad.AuthMD5.AuthDigest) {
		t.Fatalf("server auth %+v %v", ad, err)
	}
	_, err = c.ServerAuth(f.ctx, ndmp.AuthAttr{AuthType: ndmp.AuthText})
	wantErr(t, "server auth TEXT", err, ndmp.ErrIllegalArgs)
}
