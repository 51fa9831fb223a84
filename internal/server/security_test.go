package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/dma"
	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// Tests of issue 10's connection controls, through real TCP against a
// real server: refused connections, unauthenticated connections, password
// guessing, version negotiation and TLS.

// rawConn is a client that speaks records without the ndmp.Conn machinery,
// to send several requests in one write and see every record the server
// sends.
type rawConn struct {
	t  *testing.T
	nc *net.TCPConn
	rr *ndmp.RecordReader
}

// dialFrom connects to addr from the loopback address src ("" for any).
func dialFrom(t *testing.T, src, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc.(*net.TCPConn), rr: ndmp.NewRecordReader(nc, 0)}
}

// requests encodes bodies as requests with sequence numbers from 1, each
// in its own record, in one buffer.
func requests(t *testing.T, bodies ...ndmp.Body) []byte {
	t.Helper()
	var buf bytes.Buffer
	rw := ndmp.NewRecordWriter(&buf, 0)
	for i, b := range bodies {
		m, err := ndmp.MarshalMessage(nil, &ndmp.Message{Header: ndmp.Header{Sequence: uint32(i + 1),
			MessageType: ndmp.MessageRequest, MessageCode: b.MessageCode()}, Body: b})
		if err != nil {
			t.Fatal(err)
		}
		if err := rw.WriteRecord(m); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// next returns the next message, or nil and the error that ended the
// stream.
func (r *rawConn) next() (*ndmp.Message, error) {
	_ = r.nc.SetReadDeadline(time.Now().Add(hangGuard))
	rec, err := r.rr.ReadRecord()
	if err != nil {
		return nil, err
	}
	m, err := ndmp.UnmarshalMessage(rec)
	if err != nil {
		r.t.Fatalf("undecodable message from the server: %v", err)
	}
	return m, nil
}

// greeting reads NOTIFY_CONNECTION_STATUS and returns it.
func (r *rawConn) greeting() *ndmp.NotifyConnectionStatusPost {
	r.t.Helper()
	m, err := r.next()
	if err != nil {
		r.t.Fatalf("no greeting: %v", err)
	}
	p, ok := m.Body.(*ndmp.NotifyConnectionStatusPost)
	if !ok {
		r.t.Fatalf("first message %v, want NOTIFY_CONNECTION_STATUS", m)
	}
	return p
}

// untilClosed reads until the server closes the connection and returns
// what it sent meanwhile.
func (r *rawConn) untilClosed() []*ndmp.Message {
	r.t.Helper()
	var out []*ndmp.Message
	for {
		m, err := r.next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.t.Fatalf("server did not close the connection within %v; it sent %v", hangGuard, out)
			}
			return out
		}
		out = append(out, m)
	}
}

// stillOpen reports whether the server has not closed the connection:
// nothing to read and no end of stream.
func (r *rawConn) stillOpen() bool {
	_ = r.nc.SetReadDeadline(time.Now())
	var b [1]byte
	_, err := r.nc.Read(b[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Issue 10, item 1: a refused connection is closed after the REFUSED
// notice and nothing it sends is served, even requests that arrive in the
// same packet as the connection: no authentication, no device opened, no
// data connection to a listener of the test's own, nothing in the event
// log. One case per refusal reason.
func TestRefusedConnectionServesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		setup  func(f *fixture)
		reason string
	}{
		{"ndmp-off", func(f *fixture) {
			if _, err := ModifySVMSettings(f.ctx, f.store, f.adminSVM, func(s *SVMSettings) error {
				s.Enabled = false
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}, "NDMP service is disabled on Vserver"},
		{"protocol-disallowed", func(f *fixture) {
			if _, err := f.st.ModifySVM(f.ctx, f.adminSVM, storage.SVMChange{DisallowedProtocols: &[]string{"ndmp"}}); err != nil {
				t.Fatal(err)
			}
		}, "disallowed protocols"},
		{"session-limit", func(f *fixture) { f.login(nil) }, "Maximum number of NDMP sessions (1) reached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := eventlog.Open(t.TempDir(), eventlog.Options{})
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, fixtureOpts{maxSessions: 1, events: events, before: enableText})
			tc.setup(f)
			refusedServesNothing(t, f, tc.reason)
		})
	}
}

func refusedServesNothing(t *testing.T, f *fixture, reason string) {
	dataLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dataLn.Close()
	ap := dataLn.Addr().(*net.TCPAddr).AddrPort()
	ip := ap.Addr().As4()
	dataAddr := ndmp.Addr{AddrType: ndmp.AddrTCP, TCPAddr: []ndmp.TCPAddr{{
		IPAddr: uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3]), Port: ap.Port()}}}
	authsBefore := strings.Count(f.logs.String(), "NDMP authentication succeeded")
	eventsBefore := eventLogBytes(t, f.srv.o.EventLog.Dir())
	c := dialFrom(t, "", f.addr)
	// Everything in one write, before reading the greeting.
	if _, err := c.nc.Write(requests(t,
		&ndmp.ConnectOpenRequest{ProtocolVersion: 4},
		&ndmp.ConnectClientAuthRequest{AuthData: ndmp.AuthData{AuthType: ndmp.AuthText,
			AuthText: ndmp.TextAuth{AuthID: testUser, AuthPassword: f.ndmpPW}}},
		&ndmp.TapeOpenRequest{Device: "nrst0l", Mode: ndmp.TapeRDWRMode},
		&ndmp.DataConnectRequest{Addr: dataAddr},
		&ndmp.ConfigGetFSInfoRequest{},
	)); err != nil {
		t.Fatal(err)
	}
	g := c.greeting()
	if g.Reason != ndmp.Refused || !strings.Contains(g.TextReason, reason) {
		t.Fatalf("greeting %+v, want REFUSED with %q", g, reason)
	}
	if err := c.nc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got := c.untilClosed(); len(got) > 0 {
		t.Fatalf("a refused connection was served: %v", got)
	}
	// The server has closed: whatever it did is done. No connection
	// waits on the test's listener.
	_ = dataLn.(*net.TCPListener).SetDeadline(time.Now())
	if dc, err := dataLn.Accept(); err == nil {
		dc.Close()
		t.Fatal("the refused connection made a data connection")
	}
	devs, err := f.reg.Devices(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.OpenBy != "" || d.ReservedBy != "" {
			t.Fatalf("device %s open by %q, reserved by %q after a refused connection", d.Alias, d.OpenBy, d.ReservedBy)
		}
	}
	if strings.Count(f.logs.String(), "NDMP authentication succeeded") != authsBefore {
		t.Fatalf("a refused connection authenticated:\n%s", f.logs.String())
	}
	if n := eventLogBytes(t, f.srv.o.EventLog.Dir()); n != eventsBefore {
		t.Fatalf("the event log grew from %d to %d bytes after a refused connection", eventsBefore, n)
	}
}

// eventLogBytes returns the size of the files of an event log directory.
func eventLogBytes(t *testing.T, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// setNode changes the node's NDMP settings.
func setNode(f *fixture, fn func(s *NodeSettings)) {
	if _, err := ModifyNodeSettings(f.ctx, f.store, testNodeName, func(s *NodeSettings) error {
		fn(s)
		return nil
	}); err != nil {
		f.t.Fatal(err)
	}
}

// Issue 10, item 3: a connection that does not authenticate within the
// node's auth-timeout is closed with NOTIFY_CONNECTION_STATUS SHUTDOWN; a
// session that authenticated stays. The test waits for the server to
// close, not for a time.
func TestUnauthenticatedDeadline(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	dma := f.login(nil)
	// Connections made from now on have 1 s to authenticate.
	setNode(f, func(s *NodeSettings) { s.AuthTimeout = 1 })
	idle := dialFrom(t, "", f.addr)
	if g := idle.greeting(); g.Reason != ndmp.Connected {
		t.Fatalf("greeting %+v", g)
	}
	got := idle.untilClosed()
	if len(got) != 1 || got[0].Header.MessageCode != ndmp.NotifyConnectionStatus {
		t.Fatalf("idle connection got %v, want one SHUTDOWN notice", got)
	}
	if p := got[0].Body.(*ndmp.NotifyConnectionStatusPost); p.Reason != ndmp.Shutdown || p.TextReason != "not authenticated within 1s" {
		t.Fatalf("notice %+v", p)
	}
	if st := f.srv.Stats(); st.AuthTimeouts != 1 {
		t.Fatalf("stats %+v, want one auth timeout", st)
	}
	if _, err := dma.TapeGetState(f.ctx); !errors.Is(err, ndmp.ErrDevNotOpen) {
		t.Fatalf("the authenticated session after the deadline: %v", err)
	}
	if !strings.Contains(f.logs.String(), "NDMP connection closed: not authenticated in time") {
		t.Fatalf("no log line for the closed connection:\n%s", f.logs.String())
	}
}

// Issue 10, item 3: unauthenticated connections do not take session
// slots; they are capped per address (beyond it refused) and in total
// (beyond it the oldest is closed), so a DMA always gets in.
func TestUnauthenticatedCaps(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{maxSessions: 1, before: func(f *fixture) {
		setNode(f, func(s *NodeSettings) { s.MaxUnauthenticated, s.MaxUnauthenticatedPerAddress = 5, 3 })
	}})
	var idle []*rawConn
	for i, src := range []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.3", "127.0.0.3"} {
		c := dialFrom(t, src, f.addr)
		if g := c.greeting(); g.Reason != ndmp.Connected {
			t.Fatalf("idle connection %d from %s: %+v", i, src, g)
		}
		idle = append(idle, c)
	}
	over := dialFrom(t, "127.0.0.1", f.addr)
	if g := over.greeting(); g.Reason != ndmp.Refused || g.TextReason != "Maximum number of unauthenticated NDMP connections from 127.0.0.1 (3) reached" {
		t.Fatalf("fourth connection from 127.0.0.1: %+v, want refused", g)
	}
	if st := f.srv.Stats(); st.Unauthenticated != 5 {
		t.Fatalf("stats %+v, want 5 unauthenticated", st)
	}
	// A DMA from another address gets in and authenticates: the oldest
	// idle connection is closed to make room.
	c := dmaFrom(t, f, "127.0.0.4")
	if err := c.Connect(f.ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DMA login", c.AuthMD5(f.ctx, testUser, f.ndmpPW), ndmp.NoErr)
	got := idle[0].untilClosed()
	if len(got) != 1 || got[0].Body.(*ndmp.NotifyConnectionStatusPost).TextReason != "too many unauthenticated NDMP connections" {
		t.Fatalf("oldest idle connection got %v", got)
	}
	for i, c := range idle[1:] {
		if !c.stillOpen() {
			t.Fatalf("idle connection %d was closed", i+1)
		}
	}
	if st := f.srv.Stats(); st.Evicted != 1 || st.Refused != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// waitClosed waits for the server to close c's connection.
func waitClosed(t *testing.T, c *ndmp.Client) {
	t.Helper()
	select {
	case <-c.Conn().Done():
	case <-time.After(hangGuard):
		t.Fatalf("the server did not close the connection within %v", hangGuard)
	}
}

// dmaFrom dials the fixture from the loopback address src.
func dmaFrom(t *testing.T, f *fixture, src string) *ndmp.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, hangGuard)
	defer cancel()
	nc, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext(ctx, "tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	c := ndmp.NewClient(nc, nil)
	t.Cleanup(func() { c.Conn().Close() })
	return c
}

// guessClock is the clock and sleeper of a test's authGuard: time moves
// only when the test says, and the delays are recorded, not waited.
type guessClock struct {
	now    time.Time
	delays []time.Duration
}

func (g *guessClock) config() AuthGuardConfig {
	return AuthGuardConfig{
		BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second,
		Now: func() time.Time { return g.now },
		Sleep: func(_ context.Context, d time.Duration) error {
			g.delays = append(g.delays, d)
			return nil
		},
	}
}

// Issue 10, item 4: fast guessing closes the connection after 3 failures,
// slows every failure down (growing delay), and locks the user out from
// the guessing address after 5, even with the right password; the
// legitimate user still gets in from another address; failures and the
// lockout are logged without the password and counted. The lockout ends
// after its time.
func TestPasswordGuessing(t *testing.T) {
	t.Parallel()
	clk := &guessClock{now: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)}
	f := newFixture(t, fixtureOpts{guard: clk.config(), before: enableText})
	guess := func(c *ndmp.Client, pw string) error { return c.AuthText(f.ctx, testUser, pw) }
	c := dmaFrom(t, f, "127.0.0.1")
	if err := c.Connect(f.ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		wantErr(t, "guess", guess(c, "guess-"+string(rune('a'+i))), ndmp.ErrNotAuthorized)
	}
	waitClosed(t, c) // closed after the third failure
	c = dmaFrom(t, f, "127.0.0.1")
	if err := c.Connect(f.ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "guess 4", guess(c, "guess-d"), ndmp.ErrNotAuthorized)
	wantErr(t, "guess 5", guess(c, "guess-e"), ndmp.ErrNotAuthorized)
	waitClosed(t, c) // the fifth failure locked the user out from 127.0.0.1
	c = dmaFrom(t, f, "127.0.0.1")
	if err := c.Connect(f.ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "right password while locked out", guess(c, f.ndmpPW), ndmp.ErrNotAuthorized)
	waitClosed(t, c)
	// The legitimate user from another address.
	ok := dmaFrom(t, f, "127.0.0.2")
	if err := ok.Connect(f.ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "legitimate user from 127.0.0.2", guess(ok, f.ndmpPW), ndmp.NoErr)
	want := []time.Duration{100, 200, 400, 800, 1000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !equalDurations(clk.delays, want) {
		t.Fatalf("delays %v, want %v", clk.delays, want)
	}
	logs := f.logs.String()
	if strings.Contains(logs, "guess-") || strings.Contains(logs, f.ndmpPW) {
		t.Fatalf("a password reached the log:\n%s", logs)
	}
	for _, line := range []string{
		`msg="NDMP authentication failed" .* user=backup1 address=127.0.0.1 method=plaintext failures=1 `,
		`msg="NDMP authentication lockout" .* scope=user user=backup1 address=127.0.0.1 method=plaintext`,
		`msg="NDMP authentication refused: locked out" .* scope=user user=backup1 address=127.0.0.1`,
	} {
		if !regexp.MustCompile(line).MatchString(logs) {
			t.Fatalf("log lacks %q:\n%s", line, logs)
		}
	}
	if st := f.srv.Stats(); st.AuthFailures != 5 || st.AuthLockouts != 1 || st.AuthRefusedLocked != 1 {
		t.Fatalf("stats %+v", st)
	}
	// After the lockout the user gets in from 127.0.0.1 again.
	clk.now = clk.now.Add(DefaultAuthGuardConfig().LockoutDuration + time.Second)
	c = dmaFrom(t, f, "127.0.0.1")
	if err := c.Connect(f.ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "after the lockout", guess(c, f.ndmpPW), ndmp.NoErr)
}

// Issue 10, item 4: failures for many users from one address lock the
// address out for every user.
func TestPasswordGuessingAddressLockout(t *testing.T) {
	t.Parallel()
	clk := &guessClock{now: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)}
	f := newFixture(t, fixtureOpts{guard: clk.config(), before: enableText})
	for i := range DefaultAuthGuardConfig().AddrLockoutAfter {
		c := dmaFrom(t, f, "127.0.0.3")
		if err := c.Connect(f.ctx); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "guess", c.AuthText(f.ctx, "user"+string(rune('a'+i)), "x"), ndmp.ErrNotAuthorized)
	}
	c := dmaFrom(t, f, "127.0.0.3")
	if err := c.Connect(f.ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "right password from a locked-out address", c.AuthText(f.ctx, testUser, f.ndmpPW), ndmp.ErrNotAuthorized)
	if !regexp.MustCompile(`msg="NDMP authentication lockout" .* scope=address user=userj address=127.0.0.3`).MatchString(f.logs.String()) {
		t.Fatalf("no address lockout in the log:\n%s", f.logs.String())
	}
	c = dmaFrom(t, f, "127.0.0.4")
	if err := c.Connect(f.ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "from another address", c.AuthText(f.ctx, testUser, f.ndmpPW), ndmp.NoErr)
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Issue 10, item 5, N1: nothing but CONNECT_OPEN and CONNECT_CLOSE is
// served before CONNECT_OPEN agreed on version 4: no authentication
// without it, none after a refused version (logged with N1's line), and
// a retry with version 4 opens the door.
func TestConnectOpenRequired(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := f.ctx
	c := f.dial(nil)
	_, err := c.GetAuthAttr(ctx, ndmp.AuthMD5)
	wantErr(t, "GET_AUTH_ATTR before CONNECT_OPEN", err, ndmp.ErrIllegalState)
	_, err = c.GetServerInfo(ctx)
	wantErr(t, "GET_SERVER_INFO before CONNECT_OPEN", err, ndmp.ErrIllegalState)
	_, err = c.Call(ctx, &ndmp.ConnectOpenRequest{ProtocolVersion: 3})
	wantErr(t, "CONNECT_OPEN v3", err, ndmp.ErrIllegalArgs)
	if !strings.Contains(f.logs.String(), "ndmpd invalid version number: 3") {
		t.Fatalf("log lacks N1's line:\n%s", f.logs.String())
	}
	_, err = c.Call(ctx, &ndmp.ConnectClientAuthRequest{AuthData: ndmp.AuthData{AuthType: ndmp.AuthMD5,
		AuthMD5: ndmp.MD5Auth{AuthID: testUser}}})
	wantErr(t, "CLIENT_AUTH after a refused version", err, ndmp.ErrIllegalState)
	wantErr(t, "AuthMD5 after a refused version", c.AuthMD5(ctx, testUser, f.ndmpPW), ndmp.ErrIllegalState)
	_, err = c.Call(ctx, &ndmp.ConnectOpenRequest{ProtocolVersion: 4})
	wantErr(t, "CONNECT_OPEN v4", err, ndmp.NoErr)
	wantErr(t, "AuthMD5 after CONNECT_OPEN v4", c.AuthMD5(ctx, testUser, f.ndmpPW), ndmp.NoErr)
}

// Issue 10, item 8: the secure control connection (port 30000) speaks
// only TLS 1.2 with AEAD suites and TLS 1.3: a client offering TLS 1.1,
// or TLS 1.2 with CBC suites only, is refused in the handshake.
func TestTLSOnlyAEAD(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: func(f *fixture) {
		if _, err := ModifySVMSettings(f.ctx, f.store, f.adminSVM, func(s *SVMSettings) error {
			s.SecureControlConnection = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}})
	tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(f.srv.o.TLSPort))
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"tls1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
		{"tls1.2-cbc", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
			tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA}}, false},
		{"tls1.2-aead", &tls.Config{MaxVersion: tls.VersionTLS12}, true},
		{"tls1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg.Clone()
			cfg.InsecureSkipVerify = true
			nc, err := net.DialTimeout("tcp", tlsAddr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(hangGuard))
			tc2 := tls.Client(nc, cfg)
			err = tc2.Handshake()
			if tc.ok {
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				st := tc2.ConnectionState()
				if st.Version == tls.VersionTLS12 && !strings.Contains(tls.CipherSuiteName(st.CipherSuite), "GCM") &&
					!strings.Contains(tls.CipherSuiteName(st.CipherSuite), "CHACHA20") {
					t.Fatalf("TLS 1.2 with %s", tls.CipherSuiteName(st.CipherSuite))
				}
				return
			}
			if err == nil {
				st := tc2.ConnectionState()
				t.Fatalf("handshake succeeded: version %#x, suite %s", st.Version, tls.CipherSuiteName(st.CipherSuite))
			}
		})
	}
}

// Issue 10, acceptance: 200 connections that never send a byte stay open
// while a DMA (package dma) runs a full backup and restore through the
// same server, whose session limit is 8. They come from ten loopback
// addresses (twenty each, under the per-address cap of 32); their
// deadline to authenticate is set longer than the test.
func TestIdleConnectionsDoNotLockOutDMA(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{maxSessions: 8, before: func(f *fixture) {
		withVolumes(f)
		setNode(f, func(s *NodeSettings) { s.AuthTimeout = 3600 })
	}})
	var idle []*rawConn
	for i := range 200 {
		c := dialFrom(t, "127.0.0."+strconv.Itoa(10+i/20), f.addr)
		if g := c.greeting(); g.Reason != ndmp.Connected {
			t.Fatalf("idle connection %d: %+v", i, g)
		}
		idle = append(idle, c)
	}
	if st := f.srv.Stats(); st.Unauthenticated != 200 {
		t.Fatalf("%d unauthenticated connections, want 200", st.Unauthenticated)
	}
	src, dst := filepath.Join(f.dir, "vols", "vol1"), filepath.Join(f.dir, "vols", "vol2")
	populateFull(t, src)
	ctx, cancel := context.WithTimeout(f.ctx, 2*time.Minute)
	defer cancel()
	job := dma.Job{Addr: f.addr, User: testUser, Password: f.ndmpPW, Device: "nrst0l",
		FileSystem: "/vs1/vol1", TapeFile: 0, Hist: true}
	res, err := dma.Backup(ctx, job)
	if err != nil {
		t.Fatalf("backup with 200 idle connections open: %v", err)
	}
	if res.Bytes == 0 {
		t.Fatalf("backup result %+v", res)
	}
	job.FileSystem, job.Dest = "", "/vs1/vol2"
	if _, err := dma.Restore(ctx, job); err != nil {
		t.Fatalf("restore with 200 idle connections open: %v", err)
	}
	sameTree(t, fullTree(t, src), fullTree(t, dst))
	for i, c := range idle {
		if !c.stillOpen() {
			t.Fatalf("idle connection %d was closed", i)
		}
	}
}

// Issue 10, item 2: a device held by a session that no longer exists (what
// a refused connection's TAPE_OPEN used to leave) is freed by storage tape
// reset, by kill of that session's id and by kill-all; a live session's
// device is not taken away by a reset.
func TestOrphanedDeviceFreed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	for i, ghost := range []string{"ndmp-4242", "ndmp-4243", "ndmp-4244"} {
		if _, err := f.reg.OpenDrive(f.ctx, ghost, "nrst"+strconv.Itoa(i)+"l", tape.RawMode); err != nil {
			t.Fatal(err)
		}
	}
	c := f.login(nil)
	wantErr(t, "TAPE_OPEN of a drive held by a gone session", c.TapeOpen(f.ctx, "nrst0l", ndmp.TapeRawMode), ndmp.ErrDeviceBusy)
	if err := f.reg.Reset(f.ctx, "st0"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "TAPE_OPEN after reset", c.TapeOpen(f.ctx, "nrst0l", ndmp.TapeRawMode), ndmp.NoErr)
	if err := f.reg.Reset(f.ctx, "st0"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TapeGetState(f.ctx); err != nil {
		t.Fatalf("a reset took the drive from a live session: %v", err)
	}
	if err := f.srv.Kill(4243); err != nil {
		t.Fatalf("kill of the gone session holding st1: %v", err)
	}
	f.srv.KillAll()
	waitFor(t, func() bool { return len(f.srv.Sessions()) == 0 })
	if h := f.reg.Holders(); len(h) != 0 {
		t.Fatalf("devices still held by %v after kill and kill-all", h)
	}
	if err := f.srv.Kill(4243); !errors.Is(err, ErrSessionNotActive) {
		t.Fatalf("second kill of 4243: %v, want not active", err)
	}
}
