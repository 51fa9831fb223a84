package server

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

const (
	testUser     = "backup1"
	testLoginPW  = "Passw0rdLogin"
	testNodeName = storage.DefaultNodeName
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fixture is a one-node cluster with a node-management LIF on loopback, a
// cluster user with role backup and the default virtual library, served
// by a real Server.
type fixture struct {
	t        testing.TB
	ctx      context.Context
	dir      string
	store    *catalog.BoltStore
	st       *storage.Service
	au       *auth.Service
	reg      *tape.Registry
	lib      *vtl.Library
	srv      *Server
	adminSVM string
	addr     string // node-management LIF host:port
	ndmpPW   string // NDMP password of testUser
	logs     *syncBuffer
	cancel   context.CancelFunc
	done     chan error
}

type fixtureOpts struct {
	maxSessions int
	lifHost     string           // address of the node-management LIF ("127.0.0.1")
	lifPort     int              // its port (0: a free one)
	authed      bool             // sessions start authenticated
	progress    time.Duration    // LOG_MESSAGE progress interval
	events      *eventlog.Log    // backup event log
	vtl         *vtl.Config      // library to create (nil: the default one)
	limiter     *engine.Limiter  // the node's dump limit (nil: by memory)
	before      func(f *fixture) // runs before Serve
	guard       AuthGuardConfig  // password guessing limits (delays of 1-4 ms unless set)
}

// hangGuard is how long a test waits for something that must happen
// before it calls it a hang. It is no deadline for the work itself: a
// loaded machine may be slow, never that slow.
const hangGuard = 2 * time.Minute

func freePort(t testing.TB, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestMain runs the tests testParallel at a time unless -parallel is
// given: they spend most of their time waiting on sockets, disks and
// external tools (ndmjob, tshark), not on the CPU. Goroutine stacks
// (runtime.Stack) show pprof labels, so that leaked can pick the
// goroutines of one test by the label labelTest gives them.
func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", strconv.Itoa(testParallel))
	}
	godebug := "tracebacklabels=1"
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + "," + godebug
	}
	_ = os.Setenv("GODEBUG", godebug)
	os.Exit(m.Run())
}

// testParallel is how many tests run at once by default.
const testParallel = 4

// labelTest labels the calling goroutine, and so every goroutine it starts
// from now on (the server's, the DMA clients'), with the test's name.
func labelTest(t testing.TB) {
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("tapestry-test", t.Name())))
}

// testLabel is how a goroutine's header shows labelTest's label.
func testLabel(t testing.TB) string {
	return strconv.Quote("tapestry-test") + ": " + strconv.Quote(t.Name())
}

func newFixture(t testing.TB, o fixtureOpts) *fixture {
	t.Helper()
	labelTest(t)
	f := &fixture{t: t, ctx: context.Background(), dir: t.TempDir(), logs: &syncBuffer{}}
	var err error
	f.store, err = catalog.OpenBolt(filepath.Join(f.dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	f.st = storage.New(f.store, storage.Options{})
	if _, err := f.st.Init(f.ctx, storage.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	f.adminSVM, err = f.st.AdminSVM(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, port := o.lifHost, o.lifPort
	if host == "" {
		host = "127.0.0.1"
	}
	if port == 0 {
		port = freePort(t, host)
	}
	if _, err := f.st.CreateLIF(f.ctx, storage.LIFSpec{Name: "node1_mgmt1", SVM: f.adminSVM, Role: storage.RoleNodeMgmt,
		Address: host, Port: port, HomeNode: testNodeName}); err != nil {
		t.Fatal(err)
	}
	f.addr = net.JoinHostPort(host, strconv.Itoa(port))
	f.au = auth.New(f.store, auth.Options{AdminSVM: f.adminSVM, Hash: auth.HashParams{Time: 1, Memory: 8 << 10, Threads: 1}})
	if _, err := f.au.CreateUser(f.ctx, auth.UserSpec{SVM: f.adminSVM, Name: testUser, Role: auth.RoleBackup, Password: testLoginPW}); err != nil {
		t.Fatal(err)
	}
	f.ndmpPW, err = f.au.GenerateNDMPPassword(f.ctx, f.adminSVM, testUser)
	if err != nil {
		t.Fatal(err)
	}
	if o.vtl != nil {
		f.lib, err = vtl.Create(filepath.Join(f.dir, "vtl"), *o.vtl)
	} else {
		f.lib, err = vtl.CreateDefault(filepath.Join(f.dir, "vtl"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.lib.Close() })
	f.reg, err = tape.NewRegistry(f.store, testNodeName, tape.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tape.AddVTL(f.ctx, f.reg, "0a", f.lib); err != nil {
		t.Fatal(err)
	}
	if o.before != nil {
		o.before(f)
	}
	if o.guard.BaseDelay == 0 {
		o.guard.BaseDelay, o.guard.MaxDelay = time.Millisecond, 4*time.Millisecond
	}
	f.srv, err = New(Options{
		Storage: f.st, Auth: f.au, Catalog: f.store, Tapes: f.reg, Node: testNodeName,
		DataDir: f.dir, Version: "test", MaxSessions: o.maxSessions, TLSPort: freePort(t, "127.0.0.1"), RescanInterval: 50 * time.Millisecond, DumpLimiter: o.limiter, ProgressInterval: o.progress, EventLog: o.events,
		AuthGuard: o.guard,
		Logger:    slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.assumeAuthed = o.authed
	ctx, cancel := context.WithCancel(f.ctx)
	f.cancel = cancel
	f.done = make(chan error, 1)
	go func() { f.done <- f.srv.Serve(ctx) }()
	t.Cleanup(f.stop)
	// Wait until the listener is up.
	deadline := time.Now().Add(hangGuard)
	for len(f.srv.Addrs()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("server did not start listening")
		}
		select {
		case err := <-f.done:
			t.Fatalf("Serve returned early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return f
}

// stop cancels Serve and waits for it.
func (f *fixture) stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	f.cancel = nil
	select {
	case err := <-f.done:
		if err != nil {
			f.t.Errorf("Serve: %v", err)
		}
	case <-time.After(hangGuard):
		f.t.Error("Serve did not return after cancel")
	}
}

// dial connects a DMA client (not authenticated).
func (f *fixture) dial(cfg *ndmp.ClientConfig) *ndmp.Client {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, hangGuard)
	defer cancel()
	c, err := ndmp.Dial(ctx, f.addr, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Conn().Close() })
	return c
}

// login connects and authenticates with MD5.
func (f *fixture) login(cfg *ndmp.ClientConfig) *ndmp.Client {
	f.t.Helper()
	c := f.dial(cfg)
	if err := c.Connect(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	if err := c.AuthMD5(f.ctx, testUser, f.ndmpPW); err != nil {
		f.t.Fatal(err)
	}
	return c
}

// wantErr fails unless err carries the NDMP error want (NoErr: no error).
func wantErr(t *testing.T, what string, err error, want ndmp.Error) {
	t.Helper()
	if want == ndmp.NoErr {
		if err != nil {
			t.Fatalf("%s: %v, want success", what, err)
		}
		return
	}
	var got ndmp.Error
	if !errors.As(err, &got) || got != want {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// posts collects the posts a client receives.
type posts struct {
	mu    sync.Mutex
	ms    []*ndmp.Message
	taken map[ndmp.MessageCode]int
	more  chan struct{} // closed and replaced when a post arrives
}

func newPosts() *posts {
	return &posts{taken: map[ndmp.MessageCode]int{}, more: make(chan struct{})}
}

func (p *posts) handler(_ context.Context, m *ndmp.Message) {
	p.mu.Lock()
	p.ms = append(p.ms, m)
	close(p.more)
	p.more = make(chan struct{})
	p.mu.Unlock()
}

// wait returns the next post with the given code that wait has not
// returned before (in arrival order), failing after timeout (at least
// hangGuard: it only guards against a hang).
func (p *posts) wait(t testing.TB, code ndmp.MessageCode, timeout time.Duration) *ndmp.Message {
	t.Helper()
	timer := time.NewTimer(max(timeout, hangGuard))
	defer timer.Stop()
	for {
		p.mu.Lock()
		more := p.more
		n := 0
		for _, m := range p.ms {
			if m.Header.MessageCode != code {
				continue
			}
			if n == p.taken[code] {
				p.taken[code]++
				p.mu.Unlock()
				return m
			}
			n++
		}
		p.mu.Unlock()
		select {
		case <-more:
		case <-timer.C:
			t.Fatalf("no %v post within %v", code, max(timeout, hangGuard))
			return nil
		}
	}
}

func authSpec(svm, name, role string) auth.UserSpec {
	return auth.UserSpec{SVM: svm, Name: name, Role: role, Password: testLoginPW}
}
