// Package etcdtest starts a real etcd member for tests. It is apart from
// testutil so that the catalog's own tests can use it (testutil imports
// the catalog).
package etcdtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Start starts a one-member etcd (the etcd binary, Debian's etcd-server) on
// free loopback ports for the test and returns its client URL. It is
// stopped when the test ends. The member allows transactions of 10,000
// operations, as docs/cluster.md asks of a cluster's etcd.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("requirement not met in CI: needs tool etcd (Debian etcd-server)")
		}
		t.Skip("skipped: needs tool etcd (Debian etcd-server)")
	}
	client, peer := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--name", "t", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", "t=http://"+peer, "--max-txn-ops", "10000", "--logger", "zap")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	ready := make(chan error, 1)
	go func() {
		defer close(done)
		ready <- waitReady(stderr)
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
	}()
	if err := <-ready; err != nil {
		t.Fatalf("etcd on %s: %v", client, err)
	}
	return "http://" + client
}

// waitReady reads etcd's log until it says it serves clients.
func waitReady(r io.Reader) error {
	sc := bufio.NewScanner(r)
	var last []string
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "ready to serve client requests") || strings.Contains(line, "serving client traffic") {
			return nil
		}
		last = append(last, line)
		if len(last) > 5 {
			last = last[1:]
		}
	}
	return fmt.Errorf("etcd exited before serving clients:\n%s", strings.Join(last, "\n"))
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
