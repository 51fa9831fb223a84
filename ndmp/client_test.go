package ndmp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMD5DigestVectors checks MD5Digest against digests computed
// independently (Python hashlib over password, padding, challenge,
// password) and against the layout of draft section 3.1.2 built here step
// by step (N3).
func TestMD5DigestVectors(t *testing.T) {
	var ch [64]byte
	for i := range ch {
		ch[i] = byte(i)
	}
	for _, c := range []struct{ pw, want string }{
		{"secret", "70a332cc22e42742ea3fe70e383273c9"},
		{strings.Repeat("A", 40), "a7fa9bd9f803cc504b51e35c8d797f6f"}, // truncated to 32
	} {
		got := MD5Digest(c.pw, ch)
		if hex.EncodeToString(got[:]) != c.want {
			t.Errorf("MD5Digest(%q) = %x, want %s", c.pw, got, c.want)
		}
	}
	for n := 1; n <= 32; n++ {
		pw := strings.Repeat("p", n)
		var msg []byte
		msg = append(msg, pw...)
		msg = append(msg, make([]byte, 64-2*n)...)
		msg = append(msg, ch[:]...)
		msg = append(msg, pw...)
		if len(msg) != 128 {
			t.Fatalf("test built %d bytes", len(msg))
		}
		if MD5Digest(pw, ch) != md5.Sum(msg) {
			t.Fatalf("password of %d bytes: digest differs", n)
		}
	}
}

// toyServer is a minimal NDMP server for the client tests: greeting,
// CONNECT_OPEN, TEXT and MD5 authentication and a few queries.
type toyServer struct {
	t        *testing.T
	user, pw string
	greeting NotifyConnectionStatusPost
	mu       sync.Mutex
	conns    []*Conn
	authed   bool
	chal     [64]byte
	chalSet  bool
	tls      *tls.Config
}

func (s *toyServer) start() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c := NewConn(nc, &Config{Handler: HandlerFunc(s.serve), Greeting: &s.greeting})
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	return ln.Addr().String()
}

func (s *toyServer) serve(ctx context.Context, c *Conn, m *Message) (Body, error) {
	switch b := m.Body.(type) {
	case *ConnectOpenRequest:
		if b.ProtocolVersion != 4 {
			return &ConnectOpenReply{Error: ErrIllegalArgs}, nil
		}
		return &ConnectOpenReply{}, nil
	case *ConnectCloseRequest:
		return nil, c.Close()
	case *ConfigGetAuthAttrRequest:
		if b.AuthType != AuthMD5 {
			return &ConfigGetAuthAttrReply{Error: ErrIllegalArgs}, nil
		}
		_, _ = rand.Read(s.chal[:])
		s.chalSet = true
		return &ConfigGetAuthAttrReply{ServerAttr: AuthAttr{AuthType: AuthMD5, Challenge: s.chal}}, nil
	case *ConnectClientAuthRequest:
		ok := false
		switch b.AuthData.AuthType {
		case AuthText:
			ok = b.AuthData.AuthText.AuthID == s.user && b.AuthData.AuthText.AuthPassword == s.pw
		case AuthMD5:
			ok = s.chalSet && b.AuthData.AuthMD5.AuthID == s.user && VerifyMD5(s.pw, s.chal, b.AuthData.AuthMD5.AuthDigest)
		default:
			return &ConnectClientAuthReply{Error: ErrIllegalArgs}, nil
		}
		if !ok {
			return &ConnectClientAuthReply{Error: ErrNotAuthorized}, nil
		}
		s.authed = true
		return &ConnectClientAuthReply{}, nil
	}
	if !s.authed {
		return nil, ErrNotAuthorized
	}
	switch b := m.Body.(type) {
	case *ConfigGetServerInfoRequest:
		return &ConfigGetServerInfoReply{VendorName: "Tapestry", ProductName: "toy", RevisionNumber: "0", AuthType: []AuthType{AuthText, AuthMD5}}, nil
	case *ConfigGetButypeInfoRequest:
		return &ConfigGetButypeInfoReply{ButypeInfo: []ButypeInfo{{ButypeName: "dump", DefaultEnv: []Pval{{"HIST", "n"}}, Attrs: ButypeBackupIncremental | ButypeBackupFHFile}}}, nil
	case *ConfigGetFSInfoRequest:
		return &ConfigGetFSInfoReply{FSInfo: []FSInfo{{FSType: "btrfs", FSLogicalDevice: "/vs1/vol1", FSPhysicalDevice: "/dev/loop7",
			TotalSize: 1 << 30, UsedSize: 1 << 20, AvailSize: 1<<30 - 1<<20, TotalInodes: 1000, UsedInodes: 10, FSStatus: "online"}}}, nil
	case *ConfigGetTapeInfoRequest:
		return &ConfigGetTapeInfoReply{TapeInfo: []DeviceInfo{{Model: "VTL LTO-8", Caplist: []DeviceCapability{{Device: "nrst0a", Attr: TapeAttrRewind | TapeAttrUnload, Capability: []Pval{{"EXECUTE_CDB", "t"}}}}}}}, nil
	case *ConfigGetSCSIInfoRequest:
		return &ConfigGetSCSIInfoReply{SCSIInfo: []DeviceInfo{{Model: "VTL changer", Caplist: []DeviceCapability{{Device: "mc0"}}}}}, nil
	case *ConfigGetHostInfoRequest:
		return &ConfigGetHostInfoReply{Hostname: "toy", OSType: "Linux (NetApp-compatible)", OSVers: "1", HostID: "42"}, nil
	case *ConfigGetConnectionTypeRequest:
		return &ConfigGetConnectionTypeReply{AddrTypes: []AddrType{AddrLocal, AddrTCP, AddrTCPIPv6}}, nil
	case *TapeOpenRequest:
		if b.Device != "nrst0a" {
			return &TapeOpenReply{Error: ErrNoDevice}, nil
		}
		return &TapeOpenReply{}, nil
	case *TapeMTIORequest:
		return &TapeMTIOReply{ResidCount: b.Count / 2}, nil
	case *TapeWriteRequest:
		return &TapeWriteReply{Count: uint32(len(b.DataOut))}, nil
	case *TapeReadRequest:
		return &TapeReadReply{DataIn: make([]byte, b.Count)}, nil
	case *MoverListenRequest:
		a, _ := NewTCPAddrs(netip.MustParseAddrPort("[::1]:4711"))
		return &MoverListenReply{ConnectAddr: a}, nil
	case *DataStartBackupRequest:
		env := Env(b.Env)
		if env["FILESYSTEM"] == "" {
			return &DataStartBackupReply{Error: ErrIllegalArgs}, nil
		}
		if err := c.Post(ctx, &LogMessagePost{Entry: "backup of " + env["FILESYSTEM"]}); err != nil {
			return nil, err
		}
		fh := &FHAddFilePost{Files: []File{{
			Name: []FileName{{FSType: FSUnix, UnixName: "/etc/passwd"}},
			Stat: []FileStat{{FSType: FSUnix, Ftype: FileReg, Mtime: 1700000000, Size: 1234, Links: 1}},
			Node: 12, FHInfo: 4096,
		}}}
		if err := c.Post(ctx, fh); err != nil {
			return nil, err
		}
		return &DataStartBackupReply{}, nil
	case *TestEchoRequest:
		return &TestEchoReply{EchoMsg: b.EchoMsg}, nil
	case *CABDataConnPrepareRequest:
		return &CABDataConnPrepareReply{}, nil
	}
	return nil, ErrNotSupported
}

func TestClientSession(t *testing.T) {
	base := runtime.NumGoroutine()
	srv := &toyServer{t: t, user: "backup", pw: "s3cret", greeting: NotifyConnectionStatusPost{Reason: Connected, ProtocolVersion: 4}}
	addr := srv.start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logs := make(chan string, 4)
	c, err := Dial(ctx, addr, &ClientConfig{PostHandler: func(ctx context.Context, m *Message) {
		if p, ok := m.Body.(*LogMessagePost); ok {
			logs <- p.Entry
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetHostInfo(ctx); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("before auth: %v", err)
	}
	if err := c.AuthMD5(ctx, "backup", "wrong"); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("MD5 with a wrong password: %v", err)
	}
	if err := c.AuthMD5(ctx, "backup", "s3cret"); err != nil {
		t.Fatalf("MD5 auth: %v", err)
	}
	hi, err := c.GetHostInfo(ctx)
	if err != nil || hi.Hostname != "toy" || hi.HostID != "42" {
		t.Fatalf("host info %+v, %v", hi, err)
	}
	types, err := c.GetConnectionType(ctx)
	if err != nil || len(types) != 3 || types[2] != AddrTCPIPv6 {
		t.Fatalf("connection types %v, %v", types, err)
	}
	if err := c.TapeOpen(ctx, "nosuch", TapeReadMode); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("TapeOpen(nosuch): %v", err)
	}
	if err := c.TapeOpen(ctx, "nrst0a", TapeRDWRMode); err != nil {
		t.Fatal(err)
	}
	if resid, err := c.TapeMTIO(ctx, MTIOFSF, 10); err != nil || resid != 5 {
		t.Fatalf("MTIO: %d %v", resid, err)
	}
	if n, err := c.TapeWrite(ctx, make([]byte, 200000)); err != nil || n != 200000 {
		t.Fatalf("TapeWrite: %d %v", n, err)
	}
	if b, err := c.TapeRead(ctx, 65536); err != nil || len(b) != 65536 {
		t.Fatalf("TapeRead: %d %v", len(b), err)
	}
	a, err := c.MoverListen(ctx, MoverModeRead, AddrTCPIPv6)
	if err != nil || len(a.AddrPorts()) != 1 || a.AddrPorts()[0] != netip.MustParseAddrPort("[::1]:4711") {
		t.Fatalf("MoverListen: %+v %v", a, err)
	}
	if err := c.DataStartBackup(ctx, "dump", nil); !errors.Is(err, ErrIllegalArgs) {
		t.Fatalf("backup without FILESYSTEM: %v", err)
	}
	if err := c.DataStartBackup(ctx, "dump", []Pval{{"FILESYSTEM", "/vs1/vol1"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-logs:
		if l != "backup of /vs1/vol1" {
			t.Fatalf("log post %q", l)
		}
	case <-time.After(hangGuard):
		t.Fatal("no LOG_MESSAGE post")
	}
	if s, err := c.TestEcho(ctx, "ping"); err != nil || s != "ping" {
		t.Fatalf("echo %q %v", s, err)
	}
	if err := c.CABDataConnPrepare(ctx, AddrTCP, "dump", []Pval{{"FILESYSTEM", "/vs1/vol1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ServerAuth(ctx, AuthAttr{AuthType: AuthMD5}); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("ServerAuth: %v", err)
	}
	if err := c.MoverStop(ctx); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("unsupported call: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitGoroutines(t, base+1) // the toy server's accept loop stays until cleanup
}

func TestClientTextAuth(t *testing.T) {
	srv := &toyServer{t: t, user: "root", pw: "pw", greeting: NotifyConnectionStatusPost{Reason: Connected, ProtocolVersion: 4}}
	addr := srv.start()
	ctx := context.Background()
	c, err := Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.AuthText(ctx, "root", "bad"); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("bad password: %v", err)
	}
	if err := c.AuthText(ctx, "root", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetHostInfo(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestClientRefused(t *testing.T) {
	srv := &toyServer{t: t, greeting: NotifyConnectionStatusPost{Reason: Refused, ProtocolVersion: 4}}
	srv.greeting.TextReason = "too many sessions"
	addr := srv.start()
	ctx := context.Background()
	c, err := Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var ce *ConnectError
	if err := c.Connect(ctx); !errors.As(err, &ce) || ce.Reason != Refused || ce.Text != "too many sessions" {
		t.Fatalf("Connect: %v", err)
	}
}

func TestClientNoGreeting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			time.Sleep(100 * time.Millisecond)
			nc.Close()
		}
	}()
	ctx := context.Background()
	c, err := Dial(ctx, ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.Connect(ctx); err == nil {
		t.Fatal("Connect succeeded without a greeting")
	}
}

func TestNewTCPAddrs(t *testing.T) {
	a, err := NewTCPAddrs(netip.MustParseAddrPort("10.1.2.3:10000"), netip.MustParseAddrPort("[::ffff:10.0.0.1]:5"))
	if err != nil || a.AddrType != AddrTCP || a.TCPAddr[0].IPAddr != 0x0a010203 || a.TCPAddr[0].Port != 10000 || a.TCPAddr[1].IPAddr != 0x0a000001 {
		t.Fatalf("IPv4: %+v %v", a, err)
	}
	if _, err := NewTCPAddrs(netip.MustParseAddrPort("10.1.2.3:1"), netip.MustParseAddrPort("[::1]:1")); err == nil {
		t.Fatal("mixed families accepted")
	}
	if _, err := NewTCPAddrs(); err == nil {
		t.Fatal("no end points accepted")
	}
	if got := (&Addr{AddrType: AddrLocal}).AddrPorts(); got != nil {
		t.Fatalf("LOCAL AddrPorts = %v", got)
	}
}

func TestVerifyMD5(t *testing.T) {
	var ch [64]byte
	ch[0] = 1
	d := MD5Digest("pw", ch)
	if !VerifyMD5("pw", ch, d) {
		t.Fatal("correct digest refused")
	}
	if VerifyMD5("pX", ch, d) {
		t.Fatal("wrong password accepted")
	}
	ch[63] = 1
	if VerifyMD5("pw", ch, d) {
		t.Fatal("digest for another challenge accepted")
	}
	if VerifyMD5("", ch, MD5Digest("", ch)) {
		t.Fatal("empty password accepted")
	}
}

// selfSigned returns a server TLS configuration with a fresh certificate
// for 127.0.0.1 and a client configuration that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tapestry test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

// TestClientTLS runs a session over TLS, as on the secure control
// connection (N8), and checks that a client that does not trust the
// certificate fails.
func TestClientTLS(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	srv := &toyServer{t: t, user: "u", pw: "p", tls: serverTLS, greeting: NotifyConnectionStatusPost{Reason: Connected, ProtocolVersion: 4}}
	addr := srv.start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, &ClientConfig{TLS: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Conn().NetConn().(*tls.Conn); !ok {
		t.Fatalf("connection is %T, not TLS", c.Conn().NetConn())
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.AuthMD5(ctx, "u", "p"); err != nil {
		t.Fatal(err)
	}
	if s, err := c.TestEcho(ctx, "over tls"); err != nil || s != "over tls" {
		t.Fatalf("echo %q %v", s, err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Dial(ctx, addr, &ClientConfig{TLS: &tls.Config{}}); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
}
