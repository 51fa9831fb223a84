package filedump

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"golang.org/x/sys/unix"
)

// imageCtimes returns the ctime of every non-directory inode of an image,
// keyed by dump inode number.
func imageCtimes(t *testing.T, img string) map[uint32]time.Time {
	t.Helper()
	f, err := os.Open(img)
	must(t, err)
	defer f.Close()
	r := dump.NewReader(f)
	out := map[uint32]time.Time{}
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		if h.Kind == dump.KindInode && !h.Inode.IsDir() {
			out[h.Ino] = h.Inode.Ctime
		}
	}
}

// TestIncrementalOnCopiedSnapshot (D5): on a volume snapshotted by reflink
// (XFS) or copy (ext4) every snapshot file is new, yet an incremental holds
// only the files that changed in the live volume: a data change, then a
// chmod (a ctime-only change). The dumped ctime is the live file's.
func TestIncrementalOnCopiedSnapshot(t *testing.T) {
	for _, tc := range []struct{ fs, provider string }{{"xfs", "reflink"}, {"ext4", "copy"}} {
		t.Run(tc.provider, func(t *testing.T) {
			mnt := testutil.LoopFS(t, tc.fs, 300)
			data := filepath.Join(mnt, "vol1")
			for _, p := range []string{"a/one", "a/two", "b/c/three", "four"} {
				writeFile(t, filepath.Join(data, p), []byte("data of "+p), 0o644)
			}
			must(t, os.Symlink("four", filepath.Join(data, "link")))
			ctx := context.Background()
			cat := tempCatalog(t)
			svc := storage.New(cat, storage.Options{})
			_, err := svc.Init(ctx, storage.InitOptions{})
			must(t, err)
			_, err = svc.CreateSVM(ctx, storage.SVMSpec{Name: "vs1"})
			must(t, err)
			_, err = svc.CreateVolume(ctx, storage.VolumeSpec{Name: "vol1", SVM: "vs1", HostPath: data, SnapshotProvider: tc.provider})
			must(t, err)
			dir := t.TempDir()
			namer := &SnapshotNamer{}
			backup := func(name string, level int) {
				t.Helper()
				out, err := os.Create(filepath.Join(dir, name))
				must(t, err)
				defer out.Close()
				_, err = Backup(ctx, BackupRequest{Storage: svc, Path: "/vs1/vol1", Catalog: cat, Output: out,
					Snapshots: namer, Env: Env{"LEVEL": strconv.Itoa(level)}})
				must(t, err)
			}
			time.Sleep(2 * baseSlack)
			backup("0", 0)
			if got := strings.Join(imageFiles(t, filepath.Join(dir, "0")), ","); got != "a/one,a/two,b/c/three,four,link" {
				t.Fatalf("level 0 holds %s", got)
			}
			time.Sleep(2 * baseSlack)
			writeFile(t, filepath.Join(data, "a", "two"), []byte("new data"), 0o644)
			time.Sleep(2 * baseSlack)
			backup("1", 1)
			if got := strings.Join(imageFiles(t, filepath.Join(dir, "1")), ","); got != "a/two" {
				t.Errorf("level 1 after writing a/two holds %q, want a/two", got)
			}
			time.Sleep(2 * baseSlack)
			must(t, os.Chmod(filepath.Join(data, "b", "c", "three"), 0o600))
			var live unix.Stat_t
			must(t, unix.Lstat(filepath.Join(data, "b", "c", "three"), &live))
			time.Sleep(2 * baseSlack)
			backup("2", 2)
			if got := strings.Join(imageFiles(t, filepath.Join(dir, "2")), ","); got != "b/c/three" {
				t.Errorf("level 2 after chmod of b/c/three holds %q, want b/c/three", got)
			}
			cts := imageCtimes(t, filepath.Join(dir, "2"))
			if len(cts) != 1 {
				t.Fatalf("level 2 has %d files", len(cts))
			}
			for _, c := range cts {
				if c.UnixNano() != live.Ctim.Nano() {
					t.Errorf("dumped ctime %v, want the live file's %v", c, time.Unix(0, live.Ctim.Nano()))
				}
			}
			// Nothing changed: a level 3 holds no files.
			time.Sleep(2 * baseSlack)
			backup("3", 3)
			if got := strings.Join(imageFiles(t, filepath.Join(dir, "3")), ","); got != "" {
				t.Errorf("level 3 with no change holds %q", got)
			}
		})
	}
}
