package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// buildAll builds tapestry and tapestryd into a temporary bin directory.
func buildAll(t *testing.T) string {
	t.Helper()
	goTool := testutil.RequireTool(t, "go")
	bin := t.TempDir()
	cmd := exec.Command(goTool, "build", "-o", bin+"/", "../tapestry", "../tapestryd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinaries runs the real tapestry binary against the real tapestryd.
func TestBinaries(t *testing.T) {
	bin := buildAll(t)
	data := filepath.Join(t.TempDir(), "d")
	d := exec.Command(filepath.Join(bin, "tapestryd"), "--data-dir", data, "--log-level", "error", "--ndmp-listen", "127.0.0.1:0")
	outFile, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	d.Stdout = outFile
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Process.Kill(); _ = d.Wait() }()

	sock := filepath.Join(data, "admin.sock")
	var pw string
	deadline := time.Now().Add(testutil.HangGuard)
	for {
		b, _ := os.ReadFile(outFile.Name())
		if s := string(b); strings.Contains(s, "\n") {
			pw = strings.TrimSpace(strings.TrimPrefix(s, "Initial password of cluster user admin: "))
			if _, err := os.Stat(sock); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready; stdout %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tap := func(env []string, args ...string) (string, string, int) {
		cmd := exec.CommandContext(context.Background(), filepath.Join(bin, "tapestry"), args...)
		cmd.Env = append(os.Environ(), env...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String(), code
	}
	env := []string{"TAPESTRY_SOCKET=" + sock, "TAPESTRY_PASSWORD=" + pw}
	out, errOut, code := tap(env, "cluster", "show")
	if code != 0 || !strings.Contains(out, "node1 true   true") {
		t.Fatalf("cluster show with the generated password %q: %d %s %s", pw, code, out, errOut)
	}
	// Flags instead of the environment, ONTAP single-dash style.
	_, errOut, code = tap(nil, "-socket", sock, "-password", pw, "vserver", "create", "-vserver", "vs1")
	if code != 0 {
		t.Fatalf("vserver create: %d %s", code, errOut)
	}
	_, errOut, code = tap(env, "vserver", "create", "vs1")
	if code != 1 || errOut != "Error: command failed: Vserver \"vs1\" already exists\n" {
		t.Fatalf("duplicate: %d %q", code, errOut)
	}
	// No password and no terminal: a clear error, not a hang.
	_, errOut, code = tap([]string{"TAPESTRY_SOCKET=" + sock}, "cluster", "show")
	if code != 1 || !strings.Contains(errOut, "no password") {
		t.Fatalf("no password: %d %q", code, errOut)
	}
	_ = d.Process.Signal(syscall.SIGTERM)
	if err := d.Wait(); err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
	_, errOut, code = tap(env, "cluster", "show")
	if code != 1 || !strings.Contains(errOut, "cannot reach tapestryd") {
		t.Fatalf("stopped daemon: %d %q", code, errOut)
	}
}

// TestDemoScript runs scripts/demo.sh (make demo) with binaries built here:
// a real NDMP level 0 and level 1 backup to the virtual library, their
// restore and an ndmpcopy, each verified by the script, which must end by
// saying that the restored data matched.
func TestDemoScript(t *testing.T) {
	testutil.RequireTool(t, "bash")
	testutil.RequireTool(t, "diff")
	bin := buildAll(t)
	build := exec.Command(testutil.RequireTool(t, "go"), "build", "-o", bin+"/", "../ndmpcopy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ndmpcopy: %v\n%s", err, out)
	}
	cmd := exec.Command("bash", "../../scripts/demo.sh")
	cmd.Env = append(os.Environ(), "BIN="+bin, "DEMO_SKIP_BUILD=1", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "Demo OK: the restored data matched the source.\n") {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`Backup of /vs1/vol1 level 0 to nrst0l tape file 0: [1-9]\d* bytes`),
		regexp.MustCompile(`Backup of /vs1/vol1 level 1 to nrst0l tape file 1: [1-9]\d* bytes`),
		regexp.MustCompile(`Restore of nrst0l tape file 1 into /vs1/vol2: .*, 0 failed`),
		regexp.MustCompile(`ndmpcopy: transfer successful`),
		regexp.MustCompile(`vol2 \(level 0 \+ level 1 restore\): 9 names equal to vol1`),
		regexp.MustCompile(`vol3 \(ndmpcopy\): 9 names equal to vol1`),
		regexp.MustCompile(`dmp .* /vs1/vol1/\(\d+\) End \(\d+ KB\)`),
		regexp.MustCompile(`rst .* /vs1/vol2 Start \(level 1, NDMP\)`),
	} {
		if !want.Match(out) {
			t.Errorf("demo output lacks %v", want)
		}
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out)
	}
}

// daemonProc is a tapestryd process started by a test.
type daemonProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
}

// startTapestryd starts the daemon binary of bin on data with args and
// waits until it logs that it started (its admin socket then listens), or
// until it exits. ok reports which.
func startTapestryd(t *testing.T, bin, data string, args ...string) (p *daemonProc, ok bool) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "tapestryd"), append([]string{"--data-dir", data, "--ndmp-listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "TAPESTRY_ADMIN_PASSWORD="+nodeTestPassword)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p = &daemonProc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	started := make(chan bool, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.stderr.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "tapestryd started") {
				started <- true
			}
		}
		started <- false
		_ = cmd.Wait()
	}()
	t.Cleanup(func() { p.stop(t) })
	return p, <-started
}

// stop ends the daemon with SIGTERM and waits for it.
func (p *daemonProc) stop(t *testing.T) {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	<-p.done
}

const nodeTestPassword = "Admin1234"

// TestNodeNameEverywhere: tapestryd --node-name n2 shows n2, and never the
// default node name, in every command that names a node, after a restart
// too; a restart with another --node-name is refused (issue 12 item 6).
func TestNodeNameEverywhere(t *testing.T) {
	const node = "n2"
	bin := buildAll(t)
	data := filepath.Join(t.TempDir(), "d")
	d, ok := startTapestryd(t, bin, data, "--node-name", node)
	if !ok {
		t.Fatalf("tapestryd --node-name %s did not start:\n%s", node, d.stderr)
	}
	env := []string{"TAPESTRY_SOCKET=" + filepath.Join(data, "admin.sock"), "TAPESTRY_PASSWORD=" + nodeTestPassword}
	tap := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "tapestry"), args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tapestry %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if strings.Contains(string(out), storage.DefaultNodeName) {
			t.Errorf("tapestry %s names the default node:\n%s", strings.Join(args, " "), out)
		}
		return string(out)
	}
	// everyRow fails unless out has rows and every row begins with node.
	everyRow := func(what, out string) {
		t.Helper()
		rows := tableRows(out)
		if len(rows) == 0 {
			t.Fatalf("%s: no rows:\n%s", what, out)
		}
		for _, r := range rows {
			if r[0] != node {
				t.Errorf("%s: row %q is not on node %s", what, r, node)
			}
		}
	}
	showAll := func() {
		t.Helper()
		everyRow("cluster show", tap("cluster", "show"))
		out := tap("network", "interface", "show", "-fields", "home-node")
		if !regexp.MustCompile(`(?m)^cluster1 +n2_mgmt1 +n2$`).MatchString(out) {
			t.Errorf("network interface show: no node-management LIF n2_mgmt1 homed on n2:\n%s", out)
		}
		everyRow("storage tape show", tap("storage", "tape", "show"))
		everyRow("storage tape show-media-changer", tap("storage", "tape", "show-media-changer"))
		everyRow("storage tape library config show", tap("storage", "tape", "library", "config", "show"))
		everyRow("storage tape vtl show", tap("storage", "tape", "vtl", "show"))
		libs := tap("storage", "tape", "vtl", "show-libraries")
		everyRow("storage tape vtl show-libraries", libs)
		if r := tableRows(libs); len(r) != 1 || r[0][1] != "lib2" {
			t.Errorf("storage tape vtl show-libraries: lib2 missing:\n%s", libs)
		}
		everyRow("system node hardware tape drive show", tap("system", "node", "hardware", "tape", "drive", "show"))
		everyRow("system services ndmp show", tap("system", "services", "ndmp", "show"))
		everyRow("system services ndmp version", tap("system", "services", "ndmp", "version"))
		if out := tap("system", "services", "ndmp", "node-scope-mode", "status"); !strings.Contains(out, "on node n2.") {
			t.Errorf("node-scope-mode status:\n%s", out)
		}
	}
	tap("storage", "tape", "vtl", "create", "-name", "lib2", "-drives", "1", "-slots", "2", "-ie-slots", "1", "-cartridges", "1")
	// A node-scope change without -node acts on the daemon's node.
	tap("system", "services", "ndmp", "modify", "-clear-text", "false")
	if out := tap("system", "services", "ndmp", "show", "-node", node, "-instance"); !strings.Contains(out, "Allow Clear Text Password: false") {
		t.Errorf("ndmp modify without -node did not reach node n2:\n%s", out)
	}
	showAll()
	d.stop(t)

	d2, ok := startTapestryd(t, bin, data, "--node-name", "n3")
	if ok || !strings.Contains(d2.stderr.String(), `belongs to node \"n2\", not \"n3\"`) {
		t.Fatalf("a start with another node name was not refused with a clear error (started: %v):\n%s", ok, d2.stderr)
	}
	d2.stop(t)
	d3, ok := startTapestryd(t, bin, data)
	if !ok {
		t.Fatalf("restart without --node-name:\n%s", d3.stderr)
	}
	showAll()
}

// tableRows returns the fields of the rows of a table the CLI printed.
func tableRows(out string) [][]string {
	var rows [][]string
	started := false
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "---"):
			started = true
		case started && l != "" && !strings.HasSuffix(l, "entries were displayed."):
			rows = append(rows, strings.Fields(l))
		}
	}
	return rows
}
