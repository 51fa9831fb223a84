package docs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// sandbox runs scripts in fresh directories with Tapestry's binaries, each
// in its own network namespace (a loopback of its own, so the default NDMP
// port is free however many tests run) and PID namespace (every process the
// script starts, such as a daemon in the background, is killed when the
// script ends).
type sandbox struct {
	// bin holds tapestryd, tapestry and ndmpcopy built from this checkout.
	bin string
	// shims holds the make that "make build" meets.
	shims   string
	unshare string
}

// makeShim stands in for make in the documents: the binaries of "make
// build" are already in bin/.
const makeShim = `#!/bin/sh
[ "$*" = build ] && [ -x bin/tapestryd ] && exit 0
echo "docs test: make $* is not run by the docs test (only make build, whose binaries are in bin/)" >&2
exit 1
`

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	testutil.RequireRoot(t)
	s := &sandbox{unshare: testutil.RequireTool(t, "unshare")}
	testutil.RequireTool(t, "ip")
	testutil.RequireTool(t, "bash")
	goTool := testutil.RequireTool(t, "go")
	s.bin = filepath.Join(t.TempDir(), "bin")
	build := exec.Command(goTool, "build", "-o", s.bin+"/", "./cmd/...")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/...: %v\n%s", err, out)
	}
	s.shims = t.TempDir()
	if err := os.WriteFile(filepath.Join(s.shims, "make"), []byte(makeShim), 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// command returns a command that runs name with args in dir inside new
// network and PID namespaces, with loopback up.
func (s *sandbox) command(ctx context.Context, dir, name string, args ...string) *exec.Cmd {
	inner := append([]string{"-c", `ip link set lo up && exec "$@"`, "sandbox", name}, args...)
	cmd := exec.CommandContext(ctx, s.unshare, append([]string{"--net", "--pid", "--fork", "--kill-child", "bash"}, inner...)...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + strings.Join([]string{filepath.Join(dir, "bin"), s.shims, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}, ":"),
		"HOME=" + dir, "TZ=UTC", "LANG=C.UTF-8", "TMPDIR=" + os.TempDir(),
	}
	return cmd
}

// run runs script in a fresh directory whose bin/ holds the binaries, and
// fails the test with the script's output when it fails.
func (s *sandbox) run(t *testing.T, script string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(s.bin, filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "doc.sh")
	if err := os.WriteFile(file, []byte("set -euo pipefail\n"+script), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runGuard)
	defer cancel()
	out, err := s.command(ctx, dir, "bash", "-x", file).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\nscript:\n%s\noutput:\n%s", err, script, out)
	}
	t.Logf("output:\n%s", out)
}
