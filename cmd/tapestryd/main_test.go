package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

const pw = "Admin1234"

// built builds this command once per test run, with a version stamped in
// by -ldflags.
var built = sync.OnceValues(func() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "tapestryd-test")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tapestryd")
	cmd := exec.Command(goTool, "build", "-ldflags", "-X main.version=9.9.9-test", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := built(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

func buildDaemon(t *testing.T) string {
	t.Helper()
	testutil.RequireTool(t, "go")
	bin, err := built()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

type proc struct {
	cmd    *exec.Cmd
	stderr *strings.Builder
	mu     *sync.Mutex
	done   chan error
}

func startDaemon(t *testing.T, bin, dir string, extra ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--data-dir", dir, "--ndmp-listen", "127.0.0.1:0"}, extra...)...)
	cmd.Env = append(os.Environ(), "TAPESTRY_ADMIN_PASSWORD="+pw)
	p := &proc{cmd: cmd, stderr: &strings.Builder{}, mu: &sync.Mutex{}, done: make(chan error, 1)}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	c := admin.NewClient(filepath.Join(dir, "admin.sock"), "admin", pw)
	defer c.Close()
	deadline := time.Now().Add(testutil.HangGuard)
	for {
		err := c.Do(context.Background(), http.MethodGet, "/api/cluster", nil, nil, nil)
		if err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready: %v\n%s", err, p.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(testutil.HangGuard):
		t.Fatal("daemon did not exit")
		return nil
	}
}

func TestVersionAndUsage(t *testing.T) {
	bin := buildDaemon(t)
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || string(out) != "tapestryd 9.9.9-test\n" {
		t.Fatalf("--version: %q %v", out, err)
	}
	out, err = exec.Command(bin, "--data-dir", t.TempDir(), "--ndmp-listen", "nonsense").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not ADDR:PORT") {
		t.Fatalf("bad --ndmp-listen: %v %s", err, out)
	}
	out, err = exec.Command(bin, "--bogus").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "flag provided but not defined") {
		t.Fatalf("unknown flag: %v %s", err, out)
	}
	cfg := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(cfg, []byte(`{"log-level": "chatty"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "--data-dir", t.TempDir(), "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "log level") {
		t.Fatalf("bad config: %v %s", err, out)
	}
}

// TestSIGTERM: the daemon stops cleanly, removes its socket and leaves a
// catalog the next start opens.
func TestSIGTERM(t *testing.T) {
	bin := buildDaemon(t)
	dir := filepath.Join(t.TempDir(), "d")
	cfg := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(cfg, []byte(`{"log-level": "debug", "max-snapshots-per-volume": 5}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startDaemon(t, bin, dir, "--config", cfg)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.log())
	}
	log := p.log()
	for _, want := range []string{"level=INFO msg=\"tapestryd started\" version=9.9.9-test", "first-start=true", "msg=\"tapestryd stopped\"", "msg=\"api request\""} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "admin.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after SIGTERM: %v", err)
	}
	p = startDaemon(t, bin, dir)
	if !strings.Contains(p.log(), "first-start=false") {
		t.Fatalf("restart log:\n%s", p.log())
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if err := p.wait(t); err != nil {
		t.Fatalf("exit after SIGINT: %v", err)
	}
}

// TestKill9 kills the daemon with SIGKILL at random moments while a client
// writes to the catalog through the API, and checks after each restart that
// every acknowledged change is there and the catalog file is consistent.
func TestKill9(t *testing.T) {
	bin := buildDaemon(t)
	dir := filepath.Join(t.TempDir(), "d")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	var acked []string
	opts := []string{"scsi", "persistent", "off"}
	lastOpt := "off"
	const rounds = 5
	for round := range rounds {
		p := startDaemon(t, bin, dir)
		c := admin.NewClient(filepath.Join(dir, "admin.sock"), "admin", pw)
		// Everything acknowledged before is still there.
		checkAcked(t, c, acked, lastOpt)

		ctx, cancel := context.WithCancel(context.Background())
		type ack struct {
			svm, opt string
		}
		acks := make(chan ack, 1000)
		go func() {
			defer close(acks)
			for i := 0; ; i++ {
				name := fmt.Sprintf("r%dn%d", round, i)
				if err := c.Do(ctx, http.MethodPost, "/api/svm/svms", nil, admin.SVMCreate{Name: name}, nil); err != nil {
					return
				}
				acks <- ack{svm: name}
				o := opts[i%len(opts)]
				if err := c.Do(ctx, http.MethodPost, "/api/private/cli/options", nil, admin.OptionSet{Name: "tape.reservations", Value: o}, nil); err != nil {
					return
				}
				acks <- ack{opt: o}
			}
		}()
		time.Sleep(time.Duration(300+rng.IntN(600)) * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.wait(t)
		n := 0
		for a := range acks {
			if a.svm != "" {
				acked = append(acked, a.svm)
				n++
			} else {
				lastOpt = a.opt
			}
		}
		cancel()
		c.Close()
		if n == 0 {
			t.Fatalf("round %d: no write was acknowledged before the kill\n%s", round, p.log())
		}
		t.Logf("round %d: %d SVMs acknowledged before SIGKILL", round, n)
	}
	p := startDaemon(t, bin, dir)
	c := admin.NewClient(filepath.Join(dir, "admin.sock"), "admin", pw)
	checkAcked(t, c, acked, lastOpt)
	c.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, "catalog.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("catalog check: %v", err)
	}
}

func checkAcked(t *testing.T, c *admin.Client, acked []string, lastOpt string) {
	t.Helper()
	ctx := context.Background()
	svms, err := admin.List[admin.SVM](ctx, c, "/api/svm/svms", nil)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, v := range svms {
		have[v.Name] = true
	}
	for _, n := range acked {
		if !have[n] {
			t.Fatalf("acknowledged SVM %s lost (have %d SVMs)", n, len(svms))
		}
	}
	opts, err := admin.List[admin.Option](ctx, c, "/api/private/cli/options", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		// The option write after the last acknowledged one may or may
		// not have committed; it can only have moved one step on.
		if o.Name == "tape.reservations" && o.Value != lastOpt && !validNext(lastOpt, o.Value) {
			t.Fatalf("option tape.reservations = %s, last acknowledged %s", o.Value, lastOpt)
		}
	}
}

// validNext: the writer cycles scsi, persistent, off.
func validNext(prev, got string) bool {
	next := map[string]string{"scsi": "persistent", "persistent": "off", "off": "scsi"}
	return next[prev] == got
}
