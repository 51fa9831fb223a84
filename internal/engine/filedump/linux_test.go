package filedump

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

func backupDir(t testing.TB, dir, img string, st catalog.Store, env Env) BackupResult {
	t.Helper()
	f, err := os.Create(img)
	must(t, err)
	defer f.Close()
	req := BackupRequest{Dir: dir, Env: env, Output: f, Catalog: st}
	res, err := Backup(context.Background(), req)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	must(t, f.Close())
	return res
}

// linuxRestore runs Linux restore with args in dir.
func linuxRestore(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("restore", args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader("y\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("restore %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestLinuxRestoreListsLevel0 (D4): Linux restore -t lists our level 0 of a
// tree with every file type, big ids, xattrs, long and non-UTF-8 names and a
// path over 3,000 bytes.
func TestLinuxRestoreListsLevel0(t *testing.T) {
	testutil.RequireTool(t, "restore")
	src := testutil.LoopFS(t, "ext4", 64)
	makeTree(t, src)
	img := filepath.Join(t.TempDir(), "l0.dump")
	backupDir(t, src, img, nil, nil)
	out := linuxRestore(t, t.TempDir(), "-t", "-f", img)
	for _, want := range []string{"./hello.txt", "./dir1/dir2/dir3/deep.txt", "./fifo", "./null-dev", "./sock",
		"./" + strings.Repeat("n", 254), "./latin1-\xe9\xe8", "/leaf.txt", "./long-link", "./manydir/file059"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore -t does not list %q", shorten(want))
		}
	}
	if strings.Contains(out, "lost+found") == false {
		t.Errorf("restore -t does not list lost+found of the loop file system")
	}
}

// TestLinuxRestoreLevel0Tree (D4): restore -r of our level 0 equals the
// source in content, mode, owner, mtime, xattrs, links and holes.
func TestLinuxRestoreLevel0Tree(t *testing.T) {
	testutil.RequireTool(t, "restore")
	src := testutil.LoopFS(t, "ext4", 64)
	makeTree(t, src)
	img := filepath.Join(t.TempDir(), "l0.dump")
	backupDir(t, src, img, nil, nil)
	dst := testutil.LoopFS(t, "ext4", 64)
	linuxRestore(t, dst, "-r", "-f", img)
	want := snapshotTree(t, src)
	if len(want) < 80 {
		t.Fatalf("source tree has only %d paths", len(want))
	}
	compareTrees(t, want, snapshotTree(t, dst, "restoresymtable"))
}
