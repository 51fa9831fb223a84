package server

import (
	"context"
	"math"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// N17 three-way: the DATA service of one session and the MOVER of another
// connect over TCP (DATA_CONNECT to MOVER_LISTEN for the backup,
// MOVER_CONNECT to DATA_LISTEN for the restore, with the DMA relaying
// NOTIFY_DATA_READ as MOVER_READ).
func TestThreeWayBackupRestore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	src := filepath.Join(f.dir, "vols", "vol1")
	populate(t, src)
	ctx := f.ctx
	tp, dp := newPosts(), newPosts()
	tapeS := f.login(&ndmp.ClientConfig{PostHandler: tp.handler})
	dataS := f.login(&ndmp.ClientConfig{PostHandler: func(ctx context.Context, m *ndmp.Message) {
		if p, ok := m.Body.(*ndmp.NotifyDataReadPost); ok {
			if err := tapeS.MoverRead(ctx, p.Offset, p.Length); err != nil {
				t.Errorf("relay MOVER_READ: %v", err)
			}
		}
		dp.handler(ctx, m)
	}})
	wantErr(t, "tape open", tapeS.TapeOpen(ctx, "nrst1l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "record size", tapeS.MoverSetRecordSize(ctx, 65536), ndmp.NoErr)
	wantErr(t, "window", tapeS.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
	addr, err := tapeS.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrTCP)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "data connect", dataS.DataConnect(ctx, *addr), ndmp.NoErr)
	wantErr(t, "backup", dataS.DataStartBackup(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}}), ndmp.NoErr)
	if r := dp.wait(t, ndmp.NotifyDataHalted, 60*time.Second).Body.(*ndmp.NotifyDataHaltedPost).Reason; r != ndmp.DataHaltSuccessful {
		t.Fatalf("backup halted %v\n%s", r, f.logs.String())
	}
	if r := tp.wait(t, ndmp.NotifyMoverHalted, 10*time.Second).Body.(*ndmp.NotifyMoverHaltedPost).Reason; r != ndmp.MoverHaltConnectClosed {
		t.Fatalf("mover halted %v", r)
	}
	wantErr(t, "data stop", dataS.DataStop(ctx), ndmp.NoErr)
	wantErr(t, "mover stop", tapeS.MoverStop(ctx), ndmp.NoErr)
	if _, err := tapeS.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
		t.Fatal(err)
	}
	// Restore the other way round.
	daddr, err := dataS.DataListen(ctx, ndmp.AddrTCP)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "window", tapeS.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
	wantErr(t, "mover connect", tapeS.MoverConnect(ctx, ndmp.MoverModeWrite, *daddr), ndmp.NoErr)
	waitFor(t, func() bool { s, _ := dataS.DataGetState(ctx); return s.State == ndmp.DataStateConnected })
	wantErr(t, "recover", dataS.DataStartRecover(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol2"}}, nil), ndmp.NoErr)
	if r := dp.wait(t, ndmp.NotifyDataHalted, 60*time.Second).Body.(*ndmp.NotifyDataHaltedPost).Reason; r != ndmp.DataHaltSuccessful {
		t.Fatalf("restore halted %v\n%s", r, f.logs.String())
	}
	if want, got := tree(t, src), tree(t, filepath.Join(f.dir, "vols", "vol2")); strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Fatalf("restored tree differs:\nwant %q\ngot  %q", want, got)
	}
	// A connect to a closed port fails with CONNECT_ERR and the mover stays
	// IDLE.
	tp2 := f.login(nil)
	wantErr(t, "tape", tp2.TapeOpen(ctx, "nrst2l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "recsize", tp2.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	dead, _ := ndmp.NewTCPAddrs(daddr.AddrPorts()[0]) // listener is gone now
	wantErr(t, "connect to nothing", tp2.MoverConnect(ctx, ndmp.MoverModeRead, dead), ndmp.ErrConnect)
	if s, _ := tp2.MoverGetState(ctx); s.State != ndmp.MoverStateIdle {
		t.Fatalf("mover after failed connect %+v", s)
	}
}

// ipv6LIF adds an intercluster LIF on ::1 and returns its address.
func ipv6LIF(f *fixture) string {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		testutil.Require(f.t, false, "needs IPv6 loopback: "+err.Error())
		return ""
	}
	ln.Close()
	port := freePort(f.t, "::1")
	if _, err := f.st.CreateLIF(f.ctx, storage.LIFSpec{Name: "ic6", SVM: f.adminSVM, Role: storage.RoleIntercluster,
		Address: "::1", Port: port, HomeNode: testNodeName}); err != nil {
		f.t.Fatal(err)
	}
	return net.JoinHostPort("::1", strconv.Itoa(port))
}

func (f *fixture) loginAt(addr, user, pw string) *ndmp.Client {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, hangGuard)
	defer cancel()
	c, err := ndmp.Dial(ctx, addr, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Conn().Close() })
	if err := c.Connect(ctx); err != nil {
		f.t.Fatal(err)
	}
	if err := c.AuthMD5(ctx, user, pw); err != nil {
		f.t.Fatal(err)
	}
	return c
}

// N9 CAE: after negotiating 0x2051 a session on an IPv6 LIF listens with
// NDMP_ADDR_TCP_IPV6 addresses.
func TestIPv6DataConnection(t *testing.T) {
	t.Parallel()
	var addr6 string
	f := newFixture(t, fixtureOpts{before: func(f *fixture) { addr6 = ipv6LIF(f) }})
	ctx := f.ctx
	c := f.loginAt(addr6, testUser, f.ndmpPW)
	if _, err := c.GetExtList(ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "select CAE", c.SetExtList(ctx, []ndmp.ClassVersion{{ExtClassID: 0x2051, ExtVersion: 1}}), ndmp.NoErr)
	wantErr(t, "tape", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "recsize", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	a, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrTCPIPv6)
	if err != nil || a.AddrType != ndmp.AddrTCPIPv6 || len(a.TCPIPv6Addr) != 1 || a.AddrPorts()[0].Addr().String() != "::1" {
		t.Fatalf("IPv6 listen %+v %v", a, err)
	}
	nc, err := net.Dial("tcp", a.AddrPorts()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	waitFor(t, func() bool { s, _ := c.MoverGetState(ctx); return s.State == ndmp.MoverStateHalted })
}

// N11: in node scope a data connection must use the control connection's
// address family, else ONTAP's message and ILLEGAL_ARGS.
func TestNodeScopeAddressFamily(t *testing.T) {
	t.Parallel()
	var addr6 string
	f := newFixture(t, fixtureOpts{before: func(f *fixture) {
		addr6 = ipv6LIF(f)
		if _, err := ModifyNodeSettings(f.ctx, f.store, testNodeName, func(s *NodeSettings) error { s.NodeScopeMode = true; return nil }); err != nil {
			t.Fatal(err)
		}
		if err := f.au.SetNodeNDMPPassword(f.ctx, testNodeName, "NodePassw0rd"); err != nil {
			t.Fatal(err)
		}
	}})
	ctx := f.ctx
	c := f.loginAt(addr6, "root", "NodePassw0rd")
	wantErr(t, "tape", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "recsize", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	_, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrTCP)
	wantErr(t, "IPv4 data connection on IPv6 control", err, ndmp.ErrIllegalArgs)
	waitFor(t, func() bool {
		return containsLog(f, `Data connection type [\"NDMP4_ADDR_TCP\"] not supported for [\"IPv6\"] control connections`)
	})
}

// N7 and the data port range: a role list without the session's LIF role
// and no other LIF of those roles refuses the data connection; listeners
// use ports of the range.
func TestPreferredRoleAndPortRange(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: func(f *fixture) {
		if _, err := ModifySVMSettings(f.ctx, f.store, f.adminSVM, func(s *SVMSettings) error {
			s.PreferredInterfaceRole = []storage.LIFRole{storage.RoleIntercluster}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}})
	ctx := f.ctx
	c := f.login(nil)
	wantErr(t, "tape", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "recsize", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	_, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrTCP)
	wantErr(t, "no intercluster LIF", err, ndmp.ErrConnect)
	// LOCAL does not need an address.
	if _, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrLocal); err != nil {
		t.Fatal(err)
	}

	lo := freePort(t, "127.0.0.1")
	if lo < 1024 || lo > 65000 {
		t.Skipf("free port %d outside the range test", lo)
	}
	g := newFixture(t, fixtureOpts{before: func(g *fixture) {
		if _, err := ModifySVMSettings(g.ctx, g.store, g.adminSVM, func(s *SVMSettings) error {
			s.DataPortRange = strconv.Itoa(lo) + "-" + strconv.Itoa(lo+5)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}})
	d := g.login(nil)
	a, err := d.DataListen(ctx, ndmp.AddrTCP)
	if err != nil {
		t.Fatal(err)
	}
	if p := int(a.AddrPorts()[0].Port()); p < lo || p > lo+5 {
		t.Fatalf("listener on port %d, outside %d-%d", p, lo, lo+5)
	}
}

// N18: a restore whose data connection ends before the image does halts
// with "Read Socket received EOF" in LOG_MESSAGE; a backup whose peer goes
// away reports "Message from Write Dirnet: <error>".
func TestDataConnectionErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	populate(t, filepath.Join(f.dir, "vols", "vol1"))
	ctx := f.ctx
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	logged := func(prefix string) bool {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		for _, m := range ps.ms {
			if l, ok := m.Body.(*ndmp.LogMessagePost); ok && strings.HasPrefix(l.Entry, prefix) {
				return true
			}
		}
		return false
	}
	// Restore: a fake "mover" sends half a dump header and closes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			_, _ = nc.Write(make([]byte, 512))
			nc.Close()
		}
	}()
	a, _ := ndmp.NewTCPAddrs(netip.MustParseAddrPort(ln.Addr().String()))
	wantErr(t, "connect", c.DataConnect(ctx, a), ndmp.NoErr)
	wantErr(t, "recover", c.DataStartRecover(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol2"}}, nil), ndmp.NoErr)
	if r := ps.wait(t, ndmp.NotifyDataHalted, 30*time.Second).Body.(*ndmp.NotifyDataHaltedPost).Reason; r == ndmp.DataHaltSuccessful {
		t.Fatal("restore of a truncated stream succeeded")
	}
	waitFor(t, func() bool { return logged("Read Socket received EOF") })
	wantErr(t, "stop", c.DataStop(ctx), ndmp.NoErr)
	// Backup: the peer closes at once.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	connected, reset := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(reset)
		nc, err := ln2.Accept()
		if err == nil {
			// Reset only once DATA_CONNECT has returned: a reset before the
			// server's dial has seen its connection fails the dial.
			<-connected
			_ = nc.(*net.TCPConn).SetLinger(0)
			nc.Close()
		}
	}()
	a2, _ := ndmp.NewTCPAddrs(netip.MustParseAddrPort(ln2.Addr().String()))
	err = c.DataConnect(ctx, a2)
	close(connected)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, f.logs.String())
	}
	<-reset // the close has sent the reset
	wantErr(t, "backup", c.DataStartBackup(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}}), ndmp.NoErr)
	if r := ps.wait(t, ndmp.NotifyDataHalted, 30*time.Second).Body.(*ndmp.NotifyDataHaltedPost).Reason; r == ndmp.DataHaltSuccessful {
		t.Fatal("backup to a closed connection succeeded")
	}
	waitFor(t, func() bool { return logged("Message from Write Dirnet: ") })
}
