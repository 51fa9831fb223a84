package main

import (
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
	deadline := time.Now().Add(20 * time.Second)
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
