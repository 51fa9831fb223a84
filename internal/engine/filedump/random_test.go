package filedump

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// randomOps applies n random changes to the tree at root: new files and
// directories, deletions, renames and moves of files and directories,
// appends, mode changes, hard and symbolic links, type changes.
func randomOps(t *testing.T, rng *rand.Rand, root string, n int, step int) {
	t.Helper()
	list := func(dirs bool) []string {
		var out []string
		_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil || p == root {
				return nil
			}
			if fi.Name() == ".snapshot" {
				return filepath.SkipDir
			}
			if fi.IsDir() == dirs && (dirs || fi.Mode().IsRegular()) {
				out = append(out, p)
			}
			return nil
		})
		sort.Strings(out)
		return out
	}
	pick := func(s []string) string {
		if len(s) == 0 {
			return ""
		}
		return s[rng.Intn(len(s))]
	}
	for i := 0; i < n; i++ {
		dirs := append(list(true), root)
		files := list(false)
		name := fmt.Sprintf("n%d_%d", step, i)
		switch rng.Intn(9) {
		case 0, 1:
			writeFile(t, filepath.Join(pick(dirs), name), []byte(name+" data"), 0o644)
		case 2:
			must(t, os.Mkdir(filepath.Join(pick(dirs), name), 0o755))
		case 3:
			if f := pick(files); f != "" {
				must(t, os.Remove(f))
			}
		case 4:
			if f := pick(files); f != "" {
				must(t, os.Rename(f, filepath.Join(pick(dirs), name)))
			}
		case 5:
			d, to := pick(dirs), pick(dirs)
			if d != root && d != to && !isUnder(to, d) {
				must(t, os.Rename(d, filepath.Join(to, name)))
			}
		case 6:
			if f := pick(files); f != "" {
				fh, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY, 0)
				must(t, err)
				_, err = fh.WriteString("appended " + strconv.Itoa(i))
				must(t, err)
				must(t, fh.Close())
				must(t, os.Chmod(f, os.FileMode(0o600+rng.Intn(0o77))))
			}
		case 7:
			if f := pick(files); f != "" {
				must(t, os.Link(f, filepath.Join(pick(dirs), name)))
			} else {
				must(t, os.Symlink("nowhere", filepath.Join(pick(dirs), name)))
			}
		case 8:
			if f := pick(files); f != "" {
				must(t, os.Remove(f))
				must(t, os.Mkdir(f, 0o700))
				writeFile(t, filepath.Join(f, "inside"), []byte("was a file"), 0o644)
			}
		}
	}
}

func isUnder(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && (len(rel) < 3 || rel[:3] != "../")
}

// TestRandomIncrementals (D5, D8): four levels of random changes restored by
// Linux restore -r and by ours both give the source tree.
func TestRandomIncrementals(t *testing.T) {
	testutil.RequireTool(t, "restore")
	for seed := int64(1); seed <= 3; seed++ {
		t.Run(strconv.FormatInt(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			src := t.TempDir()
			randomOps(t, rng, src, 40, 0)
			st := tempCatalog(t)
			dir := t.TempDir()
			var imgs []string
			for level := 0; level < 4; level++ {
				if level > 0 {
					time.Sleep(2 * baseSlack)
					randomOps(t, rng, src, 25, level)
				}
				time.Sleep(2 * baseSlack)
				img := filepath.Join(dir, strconv.Itoa(level))
				backupDir(t, src, img, st, Env{"LEVEL": strconv.Itoa(level)})
				imgs = append(imgs, img)
			}
			want := snapshotTree(t, src)
			linux, ours := t.TempDir(), t.TempDir()
			for _, img := range imgs {
				linuxRestore(t, linux, "-r", "-f", img)
				restoreImage(t, img, ours, Env{"FORCE": "Y"})
			}
			compareTrees(t, want, snapshotTree(t, linux, "restoresymtable"))
			compareTrees(t, want, snapshotTree(t, ours, SymtabName))
		})
	}
}

// TestRandomIncrementalsSnapshots (D1, D5): the same through a registered
// volume, each level from its own copy snapshot.
func TestRandomIncrementalsSnapshots(t *testing.T) {
	testutil.RequireTool(t, "restore")
	f := newStorage(t)
	rng := rand.New(rand.NewSource(7))
	randomOps(t, rng, f.data, 30, 0)
	st := tempCatalog(t)
	dir := t.TempDir()
	var imgs []string
	for level := 0; level < 3; level++ {
		if level > 0 {
			time.Sleep(2 * baseSlack)
			randomOps(t, rng, f.data, 20, level)
		}
		time.Sleep(2 * baseSlack)
		img := filepath.Join(dir, strconv.Itoa(level))
		out, err := os.Create(img)
		must(t, err)
		_, err = Backup(context.Background(), BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Catalog: st, Output: out, Env: Env{"LEVEL": strconv.Itoa(level)}})
		must(t, err)
		must(t, out.Close())
		imgs = append(imgs, img)
	}
	want := snapshotTree(t, f.data, ".snapshot")
	linux, ours := t.TempDir(), t.TempDir()
	for _, img := range imgs {
		linuxRestore(t, linux, "-r", "-f", img)
		restoreImage(t, img, ours, Env{"FORCE": "Y"})
	}
	compareTrees(t, want, snapshotTree(t, linux, "restoresymtable"))
	compareTrees(t, want, snapshotTree(t, ours, SymtabName))
}
