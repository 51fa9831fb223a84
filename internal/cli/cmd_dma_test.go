package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// tapestry ndmp backup|restore (D1, N14): a level 0 backup to tape file 0
// and a restore of it into another volume through the real daemon, each
// printing one summary line; bad parameters and a bad device give clear
// errors.
func TestDMABackupRestoreVerbs(t *testing.T) {
	n := startNode(t)
	src := filepath.Join(t.TempDir(), "vol1")
	dst := filepath.Join(t.TempDir(), "vol2")
	for _, d := range []string{filepath.Join(src, "sub"), dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	body := strings.Repeat("tapestry ", 5000)
	if err := os.WriteFile(filepath.Join(src, "sub", "f.txt"), []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
	// Issue 17 item 5: the summary counts the files restored (2), not
	// the names asked for (1, the whole image).
	if err := os.WriteFile(filepath.Join(src, "sub", "g.txt"), []byte("second file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"skip.log", "x.tmp"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte("excluded\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n.ok("vserver", "create", "-vserver", "vs1")
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "vol1", "-path", src, "-snapshot-provider", "copy")
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "vol2", "-path", dst, "-snapshot-provider", "copy")
	out := n.ok("vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", "admin")
	_, pw, _ := strings.Cut(out, "Password: ")
	pw = strings.TrimSpace(pw)
	addr := n.ndmpAddr()
	common := []string{"-ndmp-server", addr, "-user", "admin", "-password", pw, "-device", "nrst0l"}

	out = n.ok(append([]string{"ndmp", "backup", "-path", "/vs1/vol1", "-level", "0", "-hist", "-env", "EXCLUDE=skip.log,*.tmp"}, common...)...)
	if !regexp.MustCompile(`^Backup of /vs1/vol1 level 0 to nrst0l tape file 0: [1-9]\d* bytes \([0-9.]+ KiB\) in 0:00:0\d, DUMP_DATE \d+, [1-9]\d* file history entries\n$`).MatchString(out) {
		t.Fatalf("backup summary %q", out)
	}
	out = n.ok(append([]string{"ndmp", "restore", "-tape-file", "0", "-path", "/vs1/vol2"}, common...)...)
	if !regexp.MustCompile(`^Restore of nrst0l tape file 0 into /vs1/vol2: [1-9]\d* bytes \([0-9.]+ KiB\) in 0:00:0\d, 2 files restored, 0 failed\n$`).MatchString(out) {
		t.Fatalf("restore summary %q", out)
	}
	got, err := os.ReadFile(filepath.Join(dst, "sub", "f.txt"))
	if err != nil || string(got) != body {
		t.Fatalf("restored file: %v (%d bytes)", err, len(got))
	}
	if fi, err := os.Stat(filepath.Join(dst, "sub", "f.txt")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("restored mode: %v %v", fi.Mode(), err)
	}
	for _, name := range []string{"skip.log", "x.tmp"} {
		if _, err := os.Lstat(filepath.Join(dst, name)); err == nil {
			t.Errorf("%s restored although -env EXCLUDE=skip.log,*.tmp left it out", name)
		}
	}

	n.fail("missing required parameter -path", append([]string{"ndmp", "backup"}, common...)...)
	n.fail(`cannot open tape device "nrst7z"`, "ndmp", "backup", "-ndmp-server", addr, "-user", "admin", "-password", pw, "-device", "nrst7z", "-path", "/vs1/vol1")
	n.fail("Could not obtain vol ref for Volume nosuch", append([]string{"ndmp", "backup", "-path", "/vs1/nosuch"}, common...)...)
	n.fail(`-auth-type "rot13": use md5 or text`, append([]string{"ndmp", "backup", "-path", "/vs1/vol1", "-auth-type", "rot13"}, common...)...)
	n.fail("wrong user name or password", "ndmp", "restore", "-ndmp-server", addr, "-user", "admin", "-password", "wrong", "-path", "/vs1/vol2")
}

// tapestry ndmp backup|restore -data-server (N14, issue 5): a three-way
// backup and restore with one node as both the tape server and the data
// server over a TCP data connection; the summary names the data server and
// the mover's TCP address; the three-way flags need -data-server.
func TestDMAThreeWayVerbs(t *testing.T) {
	n := startNode(t)
	src := filepath.Join(t.TempDir(), "vol1")
	dst := filepath.Join(t.TempDir(), "vol2")
	for _, d := range []string{src, dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	body := strings.Repeat("three-way ", 20000)
	if err := os.WriteFile(filepath.Join(src, "f.txt"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	n.ok("vserver", "create", "-vserver", "vs1")
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "vol1", "-path", src, "-snapshot-provider", "copy")
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "vol2", "-path", dst, "-snapshot-provider", "copy")
	out := n.ok("vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", "admin")
	_, pw, _ := strings.Cut(out, "Password: ")
	pw = strings.TrimSpace(pw)
	addr := n.ndmpAddr()
	common := []string{"-ndmp-server", addr, "-user", "admin", "-password", pw, "-device", "nrst0l", "-data-server", addr}
	three := `\(three-way: data server ` + regexp.QuoteMeta(addr) + `, mover at 127\.0\.0\.1:\d+\)\n$`
	out = n.ok(append([]string{"ndmp", "backup", "-path", "/vs1/vol1"}, common...)...)
	if !regexp.MustCompile(`^Backup of /vs1/vol1 level 0 to nrst0l tape file 0: [1-9]\d* bytes .* 0 file history entries ` + three).MatchString(out) {
		t.Fatalf("backup summary %q", out)
	}
	out = n.ok(append([]string{"ndmp", "restore", "-tape-file", "0", "-path", "/vs1/vol2", "-data-user", "admin", "-data-password", pw}, common...)...)
	if !regexp.MustCompile(`^Restore of nrst0l tape file 0 into /vs1/vol2: [1-9]\d* bytes .* 0 failed ` + three).MatchString(out) {
		t.Fatalf("restore summary %q", out)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "f.txt")); err != nil || string(got) != body {
		t.Fatalf("restored file: %v (%d bytes)", err, len(got))
	}
	n.fail("wrong user name or password", append([]string{"ndmp", "backup", "-path", "/vs1/vol1", "-data-password", "wrong"}, common...)...)
	n.fail("are for a three-way job: give -data-server too", "ndmp", "backup", "-ndmp-server", addr, "-user", "admin", "-password", pw, "-path", "/vs1/vol1", "-ipv6")
	n.fail(`-data-server "x]y": want HOST:PORT`, "ndmp", "backup", "-ndmp-server", addr, "-user", "admin", "-password", pw, "-path", "/vs1/vol1", "-data-server", "x]y")
}

// On a terminal the verbs rewrite a progress line in place on stderr and
// clear it before the summary.
func TestDMAProgressOnTerminal(t *testing.T) {
	n := startNode(t)
	src := filepath.Join(t.TempDir(), "vol1")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.ok("vserver", "create", "-vserver", "vs1")
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "vol1", "-path", src, "-snapshot-provider", "copy")
	out := n.ok("vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", "admin")
	_, pw, _ := strings.Cut(out, "Password: ")

	ptmx, tty, err := pty.Open()
	if err != nil {
		testutil.Require(t, false, "needs a pseudo-terminal: "+err.Error())
	}
	defer ptmx.Close()
	var screen bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&screen, ptmx); close(done) }()
	var stdout bytes.Buffer
	code := Run(context.Background(), []string{"ndmp", "backup", "-ndmp-server", n.ndmpAddr(), "-user", "admin",
		"-path", "/vs1/vol1"}, Env{Stdout: &stdout, Stderr: tty, Getenv: func(k string) string {
		if k == "TAPESTRY_NDMP_PASSWORD" {
			return strings.TrimSpace(pw)
		}
		return ""
	}})
	tty.Close()
	select {
	case <-done:
	case <-time.After(testutil.HangGuard):
		t.Fatal("terminal output did not end")
	}
	if code != 0 || !strings.HasPrefix(stdout.String(), "Backup of /vs1/vol1 level 0 to nrst0l") {
		t.Fatalf("exit %d, stdout %q, terminal %q", code, stdout.String(), screen.String())
	}
	s := screen.String()
	if !regexp.MustCompile(`\r\x1b\[Kactive: 0 B, 0 B/s, 0:00:00 elapsed`).MatchString(s) || !strings.HasSuffix(s, "\r\x1b[K") {
		t.Fatalf("terminal output %q", s)
	}
}

// FuzzDMAJob: any parameters give a job or an error, never a panic; a job
// always has HOST:PORT addresses (also for a three-way job's data server)
// and named environment variables.
func FuzzDMAJob(f *testing.F) {
	f.Add("127.0.0.1:10000", "md5", "/vs1/vol1", "LEVEL=1", 0, 0, "")
	f.Add("host", "text", "/vs1/vol1", "X=", 3, -1, "127.0.0.2")
	f.Add("[::1]", "MD5", "/vs1/vol1", "=v", 9, 2, "[::1]:10001")
	f.Add("::1", "rot13", "", "A=b=c", 10, -2, "x]y")
	f.Add("[fe80::1%eth0]:10000", "plaintext", "/x", "", -1, 5, "::1")
	f.Fuzz(func(t *testing.T, server, auth, path, env string, level, tapeFile int, dataServer string) {
		fl := &dmaFlags{server: server, user: "u", authType: auth, device: "nrst0l", path: path,
			level: level, tapeFile: tapeFile, env: []string{env}, dataServer: dataServer}
		for _, backup := range []bool{true, false} {
			job, err := dmaJob(fl, backup, func(string) string { return "" })
			if err != nil {
				continue
			}
			if _, _, err := net.SplitHostPort(job.Addr); err != nil {
				t.Fatalf("address %q from %q: %v", job.Addr, server, err)
			}
			if (job.Data != nil) != (dataServer != "") {
				t.Fatalf("data server %q gave %+v", dataServer, job.Data)
			}
			if job.Data != nil {
				if _, _, err := net.SplitHostPort(job.Data.Addr); err != nil {
					t.Fatalf("data server address %q from %q: %v", job.Data.Addr, dataServer, err)
				}
			}
			for _, p := range job.Env {
				if p.Name == "" {
					t.Fatalf("unnamed variable from %q", env)
				}
			}
			if job.Level < 0 || job.Level > 9 || job.TapeFile < -1 {
				t.Fatalf("job %+v", job)
			}
			if (backup && job.FileSystem != path) || (!backup && job.Dest != path) {
				t.Fatalf("path %q not in job %+v", path, job)
			}
		}
	})
}
