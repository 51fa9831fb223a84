// Package testutil holds helpers shared by Tapestry's tests: requirements on
// the environment (root, tools, loop devices), real file systems on loop
// devices, and checks that a refused request left a catalog as it was.
//
// A requirement that is not met fails the test when the CI environment
// variable is "true" (CI must have every tool) and skips it, naming what is
// missing, everywhere else.
package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// HangGuard is how long a test waits for something that must happen
// before it calls it a hang. It is no deadline for the work itself (issue
// 11): a loaded 2-core machine may be slow, never that slow.
const HangGuard = 2 * time.Minute

// InCI reports whether the tests run under .ci/run (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Require fails (in CI) or skips (elsewhere) the test when ok is false.
func Require(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("requirement not met in CI: %s", what)
	}
	t.Skipf("skipped: %s", what)
}

// RequireRoot requires that the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "needs root")
}

// RequireTool requires an executable (a name looked up in PATH, or an
// absolute path) and returns its path.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	if filepath.IsAbs(name) {
		st, err := os.Stat(name)
		Require(t, err == nil && st.Mode()&0o111 != 0, "needs tool "+name)
		return name
	}
	p, err := exec.LookPath(name)
	Require(t, err == nil, "needs tool "+name)
	return p
}

// Run runs a command and fails the test with its output when it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// LoopFS makes a file system of the given type ("ext4", "xfs", "btrfs", ...)
// on a sparse file of sizeMB megabytes, mounts it through a loop device on a
// fresh directory and returns the mount point. The file system is unmounted
// and the loop device released when the test ends. It needs root and
// mkfs.<fstype>.
func LoopFS(t testing.TB, fstype string, sizeMB int, mkfsArgs ...string) string {
	t.Helper()
	RequireRoot(t)
	mkfs := RequireTool(t, "mkfs."+fstype)
	RequireTool(t, "mount")
	dir := t.TempDir()
	img := filepath.Join(dir, fstype+".img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(sizeMB) << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	args := append([]string{}, mkfsArgs...)
	switch fstype {
	case "xfs", "btrfs":
		args = append(args, "-f")
	case "ext2", "ext3", "ext4":
		args = append(args, "-F", "-q")
	}
	args = append(args, img)
	Run(t, mkfs, args...)
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput()
	Require(t, err == nil, fmt.Sprintf("loop mount of %s failed: %v %s", fstype, err, bytes.TrimSpace(out)))
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			// A busy mount is retried lazily so the loop device is freed.
			_ = exec.Command("umount", "-l", mnt).Run()
			t.Logf("umount %s: %v %s", mnt, err, out)
		}
	})
	return mnt
}
