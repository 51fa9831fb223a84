package filedump

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"context"
)

// TestPrefetchRunsIncremental (D3, D5): an incremental whose changed files
// lie in a few runs of the phase IV prefetchers, far apart (runs with no
// file to dump in between, on either prefetch goroutine), holds exactly
// those files, in inode order, and restores over the level 0.
func TestPrefetchRunsIncremental(t *testing.T) {
	src := t.TempDir()
	const n = 8*runFiles + 3
	for i := 0; i < n; i++ {
		writeFile(t, filepath.Join(src, "many", fmt.Sprintf("f%04d", i)), []byte(fmt.Sprint("level 0 ", i)), 0o644)
	}
	st := tempCatalog(t)
	dir := t.TempDir()
	time.Sleep(2 * baseSlack) // the files are older than the level 0 date
	backupDir(t, src, filepath.Join(dir, "0.dump"), st, Env{"LEVEL": "0"})
	time.Sleep(2 * baseSlack) // the changes are newer than the level 0 date
	changed := []int{3, 3*runFiles + 1, 4*runFiles - 1, 8 * runFiles}
	var want []string
	for _, i := range changed {
		name := fmt.Sprintf("many/f%04d", i)
		writeFile(t, filepath.Join(src, name), []byte(fmt.Sprint("level 1 ", i)), 0o644)
		want = append(want, name)
	}
	backupDir(t, src, filepath.Join(dir, "1.dump"), st, Env{"LEVEL": "1"})
	if got := imageFiles(t, filepath.Join(dir, "1.dump")); !slices.Equal(got, want) {
		t.Fatalf("level 1 holds %v, want %v", got, want)
	}
	dst := t.TempDir()
	restoreImage(t, filepath.Join(dir, "0.dump"), dst, Env{"FORCE": "Y"})
	restoreImage(t, filepath.Join(dir, "1.dump"), dst, Env{"FORCE": "Y"})
	compareTrees(t, snapshotTree(t, src), snapshotTree(t, dst, SymtabName))
}

// TestPrefetchErrorInLaterRun (D3): a file that became a directory in a
// run of the second prefetch goroutine ends the backup with that error,
// and every descriptor and goroutine of the pipeline is gone afterwards.
func TestPrefetchErrorInLaterRun(t *testing.T) {
	src := t.TempDir()
	const n = 6 * runFiles
	for i := 0; i < n; i++ {
		writeFile(t, filepath.Join(src, fmt.Sprintf("f%04d", i)), []byte("data"), 0o644)
	}
	bad := filepath.Join(src, fmt.Sprintf("f%04d", 3*runFiles+5))
	hist := &changingHistory{change: func() error {
		if err := os.Remove(bad); err != nil {
			return err
		}
		return os.Mkdir(bad, 0o755)
	}}
	fds, gs := openFDs(t), runtime.NumGoroutine()
	_, err := Backup(context.Background(), BackupRequest{Dir: src, Output: io.Discard, Env: Env{"HIST": "Y"}, History: hist})
	if err == nil || !strings.Contains(err.Error(), "became a directory") {
		t.Fatalf("file turned directory in run 3: %v", err)
	}
	if after := openFDs(t); after != fds {
		t.Errorf("%d descriptors open before the backup, %d after", fds, after)
	}
	// Goroutines of the pipeline are waited for before Backup returns.
	if after := runtime.NumGoroutine(); after > gs {
		t.Errorf("%d goroutines before the backup, %d after", gs, after)
	}
}
