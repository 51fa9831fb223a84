package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/cli"
	"github.com/tapestry-ndmp/tapestry/internal/daemon"
	"github.com/tapestry-ndmp/tapestry/internal/server"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

const adminPassword = "Admin1234"

// node is a real tapestryd running in the test process with its HTTP
// listener (TLS with the node's certificate).
type node struct {
	t   testing.TB
	d   *daemon.Daemon
	dir string
	// url is the web view's base URL, https://127.0.0.1:PORT.
	url string
}

// startNode starts a daemon with the web view; cfg may set more of its
// configuration.
func startNode(t testing.TB, cfg daemon.Config) *node {
	t.Helper()
	n := &node{t: t, dir: filepath.Join(t.TempDir(), "d")}
	cfg.NDMPListen = "127.0.0.1:0"
	if cfg.HTTPListen == "" {
		cfg.HTTPListen = "127.0.0.1:0"
	}
	d, err := daemon.Open(context.Background(), daemon.Options{
		DataDir: n.dir, AdminPassword: adminPassword, Config: cfg, Out: &bytes.Buffer{},
	})
	if err != nil {
		t.Fatalf("open daemon: %v", err)
	}
	n.d = d
	n.url = "https://" + d.HTTPAddr()
	if cfg.HTTPPlaintext {
		n.url = "http://" + d.HTTPAddr()
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(testutil.HangGuard):
			t.Error("daemon did not stop")
		}
	})
	return n
}

// ok runs a tapestry command line as admin that must succeed.
func (n *node) ok(args ...string) string {
	n.t.Helper()
	var out, errOut bytes.Buffer
	env := cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
		return map[string]string{"TAPESTRY_SOCKET": n.d.SocketPath(), "TAPESTRY_USER": "admin", "TAPESTRY_PASSWORD": adminPassword}[k]
	}}
	if code := cli.Run(context.Background(), args, env); code != 0 {
		n.t.Fatalf("tapestry %s: exit %d: %s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}

// volume registers volume name of vs1 over a new directory holding files
// random files of size bytes each, and returns the directory.
func (n *node) volume(name string, files, size int) string {
	n.t.Helper()
	dir := filepath.Join(n.t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		n.t.Fatal(err)
	}
	for i := range files {
		b := make([]byte, size)
		_, _ = rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), b, 0o644); err != nil {
			n.t.Fatal(err)
		}
	}
	n.ok("volume", "create", "-vserver", "vs1", "-volume", name, "-path", dir, "-snapshot-provider", "copy")
	return dir
}

// ndmpPassword is the NDMP password of cluster user admin.
func (n *node) ndmpPassword() string {
	n.t.Helper()
	pw, err := n.d.Auth().GenerateNDMPPassword(context.Background(), n.d.Auth().AdminSVM(), "admin")
	if err != nil {
		n.t.Fatal(err)
	}
	return pw
}

// ndmpLogin opens an NDMP session as admin.
func (n *node) ndmpLogin() *ndmp.Client {
	n.t.Helper()
	ctx := context.Background()
	c, err := ndmp.Dial(ctx, n.d.NDMPListen(), nil)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { c.Close(context.Background()) })
	if err := c.Connect(ctx); err != nil {
		n.t.Fatal(err)
	}
	if err := c.AuthMD5(ctx, "admin", n.ndmpPassword()); err != nil {
		n.t.Fatalf("auth: %v", err)
	}
	return c
}

// httpClient trusts the node's own certificate (and nothing else).
func (n *node) httpClient() *http.Client {
	n.t.Helper()
	pem, err := os.ReadFile(filepath.Join(n.dir, server.TLSCertFile))
	if err != nil {
		n.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		n.t.Fatal("node certificate does not parse")
	}
	return &http.Client{Timeout: testutil.HangGuard, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"},
	}}
}
