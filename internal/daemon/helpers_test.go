package daemon

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// testPassword is the admin password of the test daemons.
const testPassword = "Admin1234"

// running is a daemon serving in the background.
type running struct {
	*Daemon
	api  *admin.Client
	stop func()
}

// serve opens a daemon on dir (a free NDMP port) and serves it until the
// test ends or stop is called.
func serve(t *testing.T, dir string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := Open(ctx, Options{DataDir: dir, AdminPassword: testPassword, Out: &bytes.Buffer{},
		Config: Config{NDMPListen: "127.0.0.1:0"}})
	if err != nil {
		cancel()
		t.Fatalf("Open: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	r := &running{Daemon: d, api: admin.NewClient(d.SocketPath(), "admin", testPassword)}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			r.api.Close()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(testutil.HangGuard):
				t.Error("Serve did not return")
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

// posts collects the posts an NDMP client receives.
type posts struct {
	mu sync.Mutex
	ms []*ndmp.Message
}

func (p *posts) handler(_ context.Context, m *ndmp.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ms = append(p.ms, m)
}

// logMessages returns the LOG_MESSAGE entries received so far.
func (p *posts) logMessages() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.ms {
		if lm, ok := m.Body.(*ndmp.LogMessagePost); ok {
			out = append(out, lm.Entry)
		}
	}
	return out
}

// waitLog waits for the n-th (from 1) LOG_MESSAGE entry.
func (p *posts) waitLog(t *testing.T, n int) string {
	t.Helper()
	deadline := time.Now().Add(testutil.HangGuard)
	for {
		if ls := p.logMessages(); len(ls) >= n {
			return ls[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("LOG_MESSAGE %d did not arrive; have %q", n, p.logMessages())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// login opens an NDMP session as cluster user admin.
func (r *running) login(t *testing.T, ps *posts) *ndmp.Client {
	t.Helper()
	ctx := context.Background()
	pw, err := r.Auth().GenerateNDMPPassword(ctx, r.Auth().AdminSVM(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	var cfg *ndmp.ClientConfig
	if ps != nil {
		cfg = &ndmp.ClientConfig{PostHandler: ps.handler}
	}
	var c *ndmp.Client
	deadline := time.Now().Add(testutil.HangGuard)
	for {
		c, err = ndmp.Dial(ctx, r.NDMPListen(), cfg)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.AuthMD5(ctx, "admin", pw); err != nil {
		t.Fatalf("auth: %v", err)
	}
	return c
}
