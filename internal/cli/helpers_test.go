package cli

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/daemon"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

const testAdminPassword = "Admin1234"

// testNodeName names the test daemons' node; the tests take the name from
// the daemon (testNode.node), which keeps it in its data directory (issue 12
// item 6).
const testNodeName = "cli-n1"

// testNode is a real daemon serving on a real unix socket in a temporary
// directory.
type testNode struct {
	t      *testing.T
	dir    string
	socket string
	// node is the daemon's node name.
	node string
	// ndmpListen is the node-management LIF's address (a free port).
	ndmpListen string
	user       string
	pass       string
	// logs holds the daemon's log, as JSON lines.
	logs *lockedBuffer
	// d is the daemon, for what a test waits on (SMTape sessions).
	d       *daemon.Daemon
	stop    context.CancelFunc
	stopped chan error
}

func startNode(t *testing.T) *testNode {
	t.Helper()
	dir := t.TempDir()
	n := &testNode{t: t, dir: filepath.Join(dir, "d"), user: "admin", pass: testAdminPassword, logs: &lockedBuffer{}}
	n.start()
	t.Cleanup(n.shutdown)
	return n
}

func (n *testNode) start() {
	n.t.Helper()
	d, err := daemon.Open(context.Background(), daemon.Options{
		DataDir: n.dir, AdminPassword: testAdminPassword, NodeName: testNodeName,
		Config: daemon.Config{NDMPListen: "127.0.0.1:0"}, // a free port
		Out:    &bytes.Buffer{},
		Logger: slog.New(slog.NewJSONHandler(n.logs, nil)),
	})
	if err != nil {
		n.t.Fatalf("open daemon: %v", err)
	}
	n.d = d
	n.socket = d.SocketPath()
	n.node = d.NodeName()
	n.ndmpListen = d.NDMPListen()
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	n.stopped = make(chan error, 1)
	go func() { n.stopped <- d.Serve(ctx) }()
}

func (n *testNode) shutdown() {
	if n.stop == nil {
		return
	}
	n.stop()
	n.stop = nil
	select {
	case err := <-n.stopped:
		if err != nil {
			n.t.Errorf("daemon stopped with error: %v", err)
		}
	case <-time.After(testutil.HangGuard):
		n.t.Error("daemon did not stop")
	}
}

// lockedBuffer is a buffer that goroutines may write at the same time.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// result is the outcome of one command line run.
type result struct {
	code   int
	out    string
	errOut string
}

// run runs the command line as the node's current user.
func (n *testNode) run(args ...string) result {
	n.t.Helper()
	return n.runAs(n.user, n.pass, args...)
}

func (n *testNode) runAs(user, pass string, args ...string) result {
	n.t.Helper()
	var out, errOut bytes.Buffer
	env := Env{
		Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string {
			switch k {
			case "TAPESTRY_SOCKET":
				return n.socket
			case "TAPESTRY_USER":
				return user
			case "TAPESTRY_PASSWORD":
				return pass
			}
			return ""
		},
	}
	code := Run(context.Background(), args, env)
	return result{code: code, out: out.String(), errOut: errOut.String()}
}

// ok runs a command that must succeed and returns its output.
func (n *testNode) ok(args ...string) string {
	n.t.Helper()
	r := n.run(args...)
	if r.code != 0 {
		n.t.Fatalf("tapestry %s: exit %d: %s%s", strings.Join(args, " "), r.code, r.out, r.errOut)
	}
	return r.out
}

// fail runs a command that must fail with an error containing want.
func (n *testNode) fail(want string, args ...string) {
	n.t.Helper()
	r := n.run(args...)
	checkFail(n.t, r, want, args)
}

func checkFail(t *testing.T, r result, want string, args []string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("tapestry %s succeeded, want error %q; output:\n%s", strings.Join(args, " "), want, r.out)
	}
	if !strings.HasPrefix(r.errOut, "Error: ") || !strings.Contains(r.errOut, want) {
		t.Fatalf("tapestry %s: stderr %q, want \"Error: ...%s...\"", strings.Join(args, " "), r.errOut, want)
	}
}

// rows returns the data rows of a table: the lines after the dashes line,
// without the trailer.
func rows(out string) [][]string {
	var res [][]string
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	started := false
	for _, l := range lines {
		if !started {
			if strings.HasPrefix(l, "---") {
				started = true
			}
			continue
		}
		if strings.HasSuffix(l, "entries were displayed.") {
			continue
		}
		res = append(res, strings.Fields(l))
	}
	return res
}

var errNotFound = errors.New("not found")

// column returns the value of field in the row whose first cells equal key.
func column(out string, key ...string) ([]string, error) {
	for _, r := range rows(out) {
		if len(r) >= len(key) && equal(r[:len(key)], key) {
			return r, nil
		}
	}
	return nil, errNotFound
}

func equal(a, b []string) bool {
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
