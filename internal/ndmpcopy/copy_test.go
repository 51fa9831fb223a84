package ndmpcopy

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

func testContent(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// runMain runs Main and returns its status, stdout and stderr.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), testutil.HangGuard)
	defer cancel()
	code := Main(ctx, args, Stdio{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

// C1: a copy between two servers on 127.0.0.1 and 127.0.0.2; the data
// connection tries IPv6 first (both control connections are IPv4), the
// servers refuse it, and the copy goes over IPv4 directly between them.
func TestCopyBetweenTwoServersC1(t *testing.T) {
	src := newPeer(t, "127.0.0.1")
	dst := newPeer(t, "127.0.0.2")
	content := testContent(300 << 10)
	src.files["/vs1/vol1/dir"] = content
	dataDir := t.TempDir()
	code, out, errOut := runMain(t, "-sa", "admin:secret", "-da", "admin:secret", "-st", "md5", "-dt", "text",
		"-l", "0", "-exclude", "*.pst,tmp", "-d", "-data-dir", dataDir,
		src.endpoint("/vs1/vol1/dir"), dst.endpoint("/vs2/vol2/copy"))
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	got, ok := dst.file("/vs2/vol2/copy")
	if !ok || !bytes.Equal(got, content) {
		t.Fatalf("destination got %d bytes (ok %v), want %d equal bytes", len(got), ok, len(content))
	}
	if !strings.Contains(out, "transfer successful: 300.0 KiB") {
		t.Errorf("stdout lacks the summary: %q", out)
	}
	be := src.backups[0]
	for k, v := range map[string]string{"FILESYSTEM": "/vs1/vol1/dir", "LEVEL": "0", "UPDATE": "Y", "EXCLUDE": "*.pst,tmp", "TYPE": "dump", "HIST": "N"} {
		if be[k] != v {
			t.Errorf("backup env %s = %q, want %q", k, be[k], v)
		}
	}
	rc := dst.recovers[0]
	if rc.env["FILESYSTEM"] != "/vs2/vol2/copy" || rc.nlist[0].OriginalPath != "/" || rc.nlist[0].DestinationDir != "/vs2/vol2/copy" || rc.nlist[0].FHInfo != ndmp.InvalidQuad {
		t.Errorf("recover env %v nlist %+v", rc.env, rc.nlist)
	}
	// -d: the debug log of the day, with the IPv6 attempt and the fallback,
	// and no password.
	logPath := filepath.Join(dataDir, "mroot/etc/log", DebugLogName(time.Now()))
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	for _, want := range []string{"data connection over inet6 failed", "data connection over inet\n", "NOTIFY_DATA_HALTED NDMP_DATA_HALT_SUCCESSFUL", "admin:***", "DUMP_DATE"} {
		if !strings.Contains(log, want) {
			t.Errorf("debug log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "secret") {
		t.Errorf("debug log holds the password:\n%s", log)
	}
}

// C1: a copy within one server: two sessions to the same server.
func TestCopyWithinOneServerC1(t *testing.T) {
	p := newPeer(t, "127.0.0.1")
	p.files["/vs1/vol1"] = testContent(100 << 10)
	code, out, errOut := runMain(t, "-sa", "admin:secret", "-da", "admin:secret", "-st", "md5",
		p.endpoint("/vs1/vol1"), p.endpoint("/vs1/vol2"))
	if code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if got, _ := p.file("/vs1/vol2"); !bytes.Equal(got, p.files["/vs1/vol1"]) {
		t.Error("the second volume differs")
	}
	p.mu.Lock()
	n := p.sessions
	p.mu.Unlock()
	if n != 2 {
		t.Errorf("%d sessions, want 2 (one for the backup, one for the restore)", n)
	}
}

// C2: levels 1 to 9 are passed to the source; the destination gets each
// increment.
func TestCopyLevelsC2(t *testing.T) {
	src := newPeer(t, "127.0.0.1")
	dst := newPeer(t, "127.0.0.2")
	for level := 0; level <= 9; level++ {
		content := testContent(1000 * (level + 1))
		src.files["/vs1/vol1"] = content
		code, out, errOut := runMain(t, "-sa", "admin:secret", "-da", "admin:secret", "-st", "text",
			"-l"+strconv.Itoa(level), src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2"))
		if code != ExitOK {
			t.Fatalf("level %d: exit %d\n%s%s", level, code, out, errOut)
		}
		if got := src.backups[level]["LEVEL"]; got != strconv.Itoa(level) {
			t.Errorf("level %d: LEVEL=%q", level, got)
		}
		if got, _ := dst.file("/vs2/vol2"); !bytes.Equal(got, content) {
			t.Errorf("level %d: destination differs", level)
		}
	}
}

// C2: IPv6 control connections (in brackets) make the data connection IPv6
// through the connection address extension.
func TestCopyIPv6C2(t *testing.T) {
	src := newPeer(t, "::1")
	dst := newPeer(t, "::1")
	src.files["/vs1/vol1"] = testContent(5000)
	o := mustParse(t, "-sa", "admin:secret", "-da", "admin:secret", "-st", "md5", "-mcs", "inet6", "-mcd", "inet6",
		src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2"))
	res, err := Copy(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.DataFamily != FamilyInet6 || res.Bytes != 5000 {
		t.Errorf("family %v bytes %d, want inet6 5000", res.DataFamily, res.Bytes)
	}
	if got, _ := dst.file("/vs2/vol2"); !bytes.Equal(got, src.files["/vs1/vol1"]) {
		t.Error("destination differs")
	}
	// Without the extension on the destination, IPv6 data cannot work.
	dst.cae = false
	_, err = Copy(context.Background(), o, nil)
	if ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "0x2051") {
		t.Errorf("without CAE: %v (exit %d)", err, ExitCode(err))
	}
}

// C2: -md inet6 with IPv4-only data servers fails clearly, with no fallback.
func TestCopyMDInet6RefusedC2(t *testing.T) {
	src := newPeer(t, "127.0.0.1")
	dst := newPeer(t, "127.0.0.1")
	src.files["/vs1/vol1"] = testContent(10)
	code, _, errOut := runMain(t, "-sa", "admin:secret", "-da", "admin:secret", "-st", "md5",
		src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2"), "-md", "inet6")
	if code != ExitFailed || !strings.Contains(errOut, "cannot set up the data connection") || !strings.Contains(errOut, "NDMP_ADDR_TCP_IPV6") {
		t.Errorf("exit %d stderr %q", code, errOut)
	}
	if _, ok := dst.file("/vs2/vol2"); ok {
		t.Error("destination written")
	}
	// -mcs inet6 with an IPv4 literal is a usage error.
	code, _, errOut = runMain(t, "-sa", "admin:secret", "-da", "admin:secret", "-st", "md5", "-mcs", "inet6",
		src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2"))
	if code != ExitUsage || !strings.Contains(errOut, "-mcs inet6 does not fit the source address 127.0.0.1") {
		t.Errorf("exit %d stderr %q", code, errOut)
	}
}

func mustParse(t *testing.T, args ...string) *Options {
	t.Helper()
	o, err := ParseArgs(args, nil)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// C2: refused authentication, unsupported authentication type, unreachable
// host and missing path give clear messages and their exit statuses.
func TestCopyErrorsC2(t *testing.T) {
	src := newPeer(t, "127.0.0.1")
	dst := newPeer(t, "127.0.0.1")
	dst.auths = []ndmp.AuthType{ndmp.AuthMD5}
	src.files["/vs1/vol1"] = testContent(10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"wrong password", []string{"-sa", "admin:nope", "-da", "admin:secret", "-st", "md5", src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2")},
			ExitAuth, "authentication failed on the source " + src.addr.String() + " for user admin (md5): wrong user name or password"},
		{"wrong user text", []string{"-sa", "root:secret", "-da", "admin:secret", "-st", "text", src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2")},
			ExitAuth, "for user root (text)"},
		{"auth type not accepted", []string{"-sa", "admin:secret", "-da", "admin:secret", "-st", "md5", "-dt", "text", src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2")},
			ExitAuth, "the destination " + dst.addr.String() + " does not accept text authentication (it accepts: md5)"},
		{"unreachable", []string{"-sa", "admin:secret", "-da", "admin:secret", "-st", "md5", "127.0.0.1:" + strconv.Itoa(closed) + ":/vs1/vol1", dst.endpoint("/vs2/vol2")},
			ExitUnreachable, "cannot reach the source 127.0.0.1:" + strconv.Itoa(closed)},
		{"missing path", []string{"-sa", "admin:secret", "-da", "admin:secret", "-st", "md5", src.endpoint("/vs1/nosuch"), dst.endpoint("/vs2/vol2")},
			ExitRefused, "refused the backup of /vs1/nosuch (Could not find path /vs1/nosuch): no such path"},
		{"usage", []string{"-sa", "admin:secret", "-st", "md5", src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2")},
			ExitUsage, "-da is mandatory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runMain(t, c.args...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d (want %d)\nstderr %q\nwant %q\nstdout %q", code, c.code, errOut, c.want, out)
			}
		})
	}
	if _, ok := dst.file("/vs2/vol2"); ok {
		t.Error("a failed copy wrote the destination")
	}
}

// C1: a backup that fails halfway makes ndmpcopy abort the restore and
// report both halt reasons and the server's message.
func TestCopySourceFailsC1(t *testing.T) {
	src := newPeer(t, "127.0.0.1")
	dst := newPeer(t, "127.0.0.2")
	src.files["/vs1/vol1"] = testContent(1 << 20)
	src.failAt = 200 << 10
	code, out, errOut := runMain(t, "-sa", "admin:secret", "-da", "admin:secret", "-st", "md5",
		src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2"))
	if code != ExitFailed {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"the source backup ended with NDMP_DATA_HALT_INTERNAL_ERROR", "source: Dump failed: simulated disk error"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q: %q", want, errOut)
		}
	}
	if !strings.Contains(out, "ndmpcopy: source: error: Dump failed: simulated disk error") {
		t.Errorf("stdout lacks the server's log message: %q", out)
	}
	if _, ok := dst.file("/vs2/vol2"); ok {
		t.Error("the destination finished a restore of a failed backup")
	}
}

// A destination that does not notice the failed backup is aborted after
// the grace period.
func TestCopyAbortsHungDestinationC1(t *testing.T) {
	src := newPeer(t, "127.0.0.1")
	dst := newPeer(t, "127.0.0.2")
	src.files["/vs1/vol1"] = testContent(1 << 20)
	src.failAt = 100 << 10
	dst.hang = true
	start := time.Now()
	code, out, errOut := runMain(t, "-sa", "admin:secret", "-da", "admin:secret", "-st", "md5",
		src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2"))
	if d := time.Since(start); code != ExitFailed || d < abortGrace || d > abortGrace+5*time.Second ||
		!strings.Contains(errOut, "the source backup ended with NDMP_DATA_HALT_INTERNAL_ERROR, the destination restore with NDMP_DATA_HALT_ABORTED") {
		t.Errorf("exit %d after %v\nstderr %q\nstdout %q", code, d, errOut, out)
	}
}

// A destination that refuses the restore stops the copy with exit status 5;
// the backup already started on the source is aborted.
func TestCopyDestinationRefusesC1(t *testing.T) {
	src := newPeer(t, "127.0.0.1")
	dst := newPeer(t, "127.0.0.2")
	src.files["/vs1/vol1"] = testContent(8 << 20)
	src.pace = 20 * time.Millisecond
	dst.noDest = true
	code, out, errOut := runMain(t, "-sa", "admin:secret", "-da", "admin:secret", "-st", "md5",
		src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/nosuch"))
	want := "refused the restore into /vs2/nosuch (Destination /vs2/nosuch does not exist): no such path"
	if code != ExitRefused || !strings.Contains(errOut, want) {
		t.Fatalf("exit %d\nstderr %q\nwant %q\nstdout %q", code, errOut, want, out)
	}
}

// Canceling the context (Ctrl-C) aborts both data services.
func TestCopyInterrupted(t *testing.T) {
	src := newPeer(t, "127.0.0.1")
	dst := newPeer(t, "127.0.0.2")
	src.files["/vs1/vol1"] = testContent(4 << 20)
	src.pace = 50 * time.Millisecond
	o := mustParse(t, "-sa", "admin:secret", "-da", "admin:secret", "-st", "md5", src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Copy(ctx, o, nil)
	if ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("err %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("abort took %v", d)
	}
}
