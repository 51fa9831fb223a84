package ndmpcopy

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// ptyOutput collects what the program writes to a pseudo-terminal.
type ptyOutput struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func (p *ptyOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// waitFor waits until the output holds s.
func (p *ptyOutput) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(testutil.HangGuard)
	for !strings.Contains(p.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the terminal; got %q", s, p.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openPTY returns the program's end (a terminal) and the collected output
// of the other end, which the test writes the user's keys to.
func openPTY(t *testing.T) (tty *os.File, master *os.File, out *ptyOutput) {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		testutil.Require(t, false, "needs a pseudo-terminal: "+err.Error())
	}
	out = &ptyOutput{done: make(chan struct{})}
	go func() {
		defer close(out.done)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			out.mu.Lock()
			out.buf.Write(b[:n])
			out.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		tty.Close()
		master.Close()
		<-out.done
	})
	return tty, master, out
}

// C2 -p: the passwords are asked for on the terminal, with echo off, and
// override -sa and -da.
func TestPromptPasswordsPTYC2(t *testing.T) {
	src := newPeer(t, "127.0.0.1")
	dst := newPeer(t, "127.0.0.2")
	src.users["admin"] = "src-pw"
	dst.users["backup"] = "dst-pw"
	src.files["/vs1/vol1"] = testContent(1000)
	tty, master, term := openPTY(t)
	var stdout bytes.Buffer
	codec := make(chan int, 1)
	go func() {
		codec <- Main(context.Background(), []string{"-p", "-sa", "admin:wrong", "-da", "backup", "-st", "md5", "-dt", "md5",
			src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2")}, Stdio{Stdin: tty, Stdout: &stdout, Stderr: tty})
	}()
	// Both passwords typed as soon as the first prompt shows: the second
	// is typed ahead of its prompt and must not be echoed either (this
	// also covers a first password typed the instant its prompt appears).
	term.waitFor(t, "Password for source user admin on 127.0.0.1: ")
	io.WriteString(master, "src-pw\rdst-pw\r")
	term.waitFor(t, "Password for destination user backup on 127.0.0.2: ")
	select {
	case code := <-codec:
		if code != ExitOK {
			t.Fatalf("exit %d; terminal %q; stdout %q", code, term.String(), stdout.String())
		}
	case <-time.After(testutil.HangGuard):
		t.Fatal("ndmpcopy -p did not finish")
	}
	if got, _ := dst.file("/vs2/vol2"); !bytes.Equal(got, src.files["/vs1/vol1"]) {
		t.Error("destination differs")
	}
	if s := term.String(); strings.Contains(s, "src-pw") || strings.Contains(s, "dst-pw") {
		t.Errorf("a password was echoed: %q", s)
	}
}

// C2 -p needs an interactive console.
func TestPromptNeedsTerminalC2(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"-p", "-sa", "a", "-da", "b", "-st", "md5", "h1:/a/b", "h2:/c/d"},
		Stdio{Stdin: strings.NewReader("pw\npw\n"), Stdout: &out, Stderr: &errb})
	if code != ExitUsage || !strings.Contains(errb.String(), "-p can be used only in an interactive console") {
		t.Errorf("exit %d stderr %q", code, errb.String())
	}
}

// On a terminal, ndmpcopy shows a progress line with bytes, rate and ETA;
// not on a pipe.
func TestProgressOnTerminal(t *testing.T) {
	src := newPeer(t, "127.0.0.1")
	dst := newPeer(t, "127.0.0.2")
	src.files["/vs1/vol1"] = testContent(2 << 20)
	src.pace = 60 * time.Millisecond // 32 chunks: about 2 s
	tty, _, term := openPTY(t)
	var stdout bytes.Buffer
	code := Main(context.Background(), []string{"-sa", "admin:secret", "-da", "admin:secret", "-st", "md5",
		src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2")}, Stdio{Stdout: &stdout, Stderr: tty})
	if code != ExitOK {
		t.Fatalf("exit %d: %q", code, term.String())
	}
	re := regexp.MustCompile(`\r\x1b\[K[0-9.]+ (B|KiB|MiB) copied, [0-9.]+ (B|KiB|MiB)/s, ETA 0:00:[0-9]{2}`)
	// The terminal's reader may still be copying the last output.
	deadline := time.Now().Add(testutil.HangGuard)
	for !re.MatchString(term.String()) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !re.MatchString(term.String()) {
		t.Errorf("no progress line with an ETA on the terminal: %q", term.String())
	}
	if strings.Contains(stdout.String(), "copied,") {
		t.Errorf("progress on a non-terminal stdout: %q", stdout.String())
	}
	if !strings.Contains(stdout.String(), "transfer successful: 2.0 MiB") {
		t.Errorf("stdout %q", stdout.String())
	}
}

func TestProgressLine(t *testing.T) {
	cases := []struct {
		bytes   uint64
		elapsed time.Duration
		remain  time.Duration
		ok      bool
		left    uint64
		leftOK  bool
		want    string
	}{
		{0, 0, 0, false, 0, false, "0 B copied, 0 B/s, ETA --:--:--"},
		{10 << 20, 2 * time.Second, 0, false, 20 << 20, true, "10.0 MiB copied, 5.0 MiB/s, ETA 0:00:04"},
		{3 << 30, 100 * time.Second, 3725 * time.Second, true, 0, false, "3.0 GiB copied, 30.7 MiB/s, ETA 1:02:05"},
		{1536, time.Second, 0, false, 0, false, "1.5 KiB copied, 1.5 KiB/s, ETA --:--:--"},
	}
	for _, c := range cases {
		if got := ProgressLine(c.bytes, c.elapsed, c.remain, c.ok, c.left, c.leftOK); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

// C2 -d: the log file is ndmpcopy.yyyymmdd below mroot/etc/log, appended
// to, one time-stamped line per message.
func TestDebugLogC2(t *testing.T) {
	dir := t.TempDir()
	day := time.Date(2026, 11, 23, 23, 59, 0, 0, time.UTC)
	l, p, err := OpenDebugLog(dir, func() time.Time { return day })
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "mroot", "etc", "log", "ndmpcopy.20261123"); p != want {
		t.Errorf("path %s, want %s", p, want)
	}
	l.Printf("first %d", 1)
	l.Close()
	l, _, err = OpenDebugLog(dir, func() time.Time { return day })
	if err != nil {
		t.Fatal(err)
	}
	l.Printf("second")
	l.Close()
	l.Printf("after close is dropped")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := "2026-11-23T23:59:00.000Z first 1\n2026-11-23T23:59:00.000Z second\n"
	if string(b) != want {
		t.Errorf("log %q, want %q", b, want)
	}
	// A data directory that cannot hold the log is an error, not a panic.
	f := filepath.Join(dir, "file")
	os.WriteFile(f, nil, 0o644)
	if _, _, err := OpenDebugLog(f, nil); err == nil {
		t.Error("no error for a data directory that is a file")
	}
}
