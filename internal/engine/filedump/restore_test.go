package filedump

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

func restoreImage(t testing.TB, img, dest string, env Env, names ...RestoreName) RestoreResult {
	t.Helper()
	f, err := os.Open(img)
	must(t, err)
	defer f.Close()
	var bad []string
	res, err := Restore(context.Background(), RestoreRequest{Input: f, Dest: dest, Env: env, Names: names,
		OnName: func(n NameResult) {
			if n.Err != nil {
				bad = append(bad, shorten(n.Path)+": "+n.Err.Error())
			}
		}})
	if err != nil {
		t.Fatalf("Restore %s: %v", filepath.Base(img), err)
	}
	if len(bad) > 0 {
		t.Fatalf("Restore %s: %d names failed: %v", filepath.Base(img), len(bad), bad[:min(5, len(bad))])
	}
	return res
}

// TestRoundTripLevel0 (D4, D8): our restore of our level 0 equals the source.
func TestRoundTripLevel0(t *testing.T) {
	testutil.RequireRoot(t)
	src := testutil.LoopFS(t, "ext4", 64)
	makeTree(t, src)
	img := filepath.Join(t.TempDir(), "l0.dump")
	res := backupDir(t, src, img, nil, Env{"HIST": "Y"})
	if res.Level != 0 || res.Files < 80 || res.Env["DUMP_DATE"] == "" || res.Env["ACL_START"] == "" {
		t.Fatalf("result %+v", res)
	}
	dst := testutil.LoopFS(t, "ext4", 256)
	rr := restoreImage(t, img, dst, nil)
	if rr.Files < 70 {
		t.Errorf("restored %d files", rr.Files)
	}
	compareTrees(t, snapshotTree(t, src), snapshotTree(t, dst, SymtabName))
}

// changeTree makes the changes of the incremental acceptance test: renames,
// deletions, a directory move, a name whose type changed, appended data.
func changeTree(t testing.TB, root string, step int) {
	t.Helper()
	j := func(p string) string { return filepath.Join(root, p) }
	switch step {
	case 1:
		must(t, os.Rename(j("hello.txt"), j("renamed.txt")))
		must(t, os.Remove(j("dir1/dir2/dir3/deep.txt")))
		must(t, os.Rename(j("dir1/dir2"), j("moved_dir2")))
		for i := 0; i < 5; i++ {
			must(t, os.Remove(j("manydir/file00"+string(rune('0'+i)))))
		}
		f, err := os.OpenFile(j("dir1/random.bin"), os.O_APPEND|os.O_WRONLY, 0)
		must(t, err)
		_, err = f.Write(bytes.Repeat([]byte("A"), 3000))
		must(t, err)
		must(t, f.Close())
		writeFile(t, j("newdir/inner.txt"), []byte("inner"), 0o644)
		must(t, os.Remove(j("fifo")))
		writeFile(t, j("fifo/now-a-dir.txt"), []byte("type changed"), 0o644)
		must(t, os.Chmod(j("sparse.bin"), 0o600))
	case 2:
		must(t, os.Rename(j("moved_dir2"), j("newdir/moved_again")))
		must(t, os.RemoveAll(j("emptydir")))
		writeFile(t, j("emptydir"), []byte("now a file"), 0o640)
		must(t, os.Remove(j("short-link")))
		must(t, os.Link(j("renamed.txt"), j("newdir/second-link")))
		must(t, os.Rename(j("manydir/file010"), j("manydir/file010-renamed")))
		must(t, unix.Lsetxattr(j("owned"), "user.comment", []byte("changed comment"), 0))
	}
}

// TestIncrementalChainLinuxAndOurs (D5, D8): level 0, 1 and 2 after renames,
// deletions, directory moves, a type change and appended data; both Linux
// restore -r and our restore rebuild the source.
func TestIncrementalChainLinuxAndOurs(t *testing.T) {
	testutil.RequireTool(t, "restore")
	src := testutil.LoopFS(t, "ext4", 64)
	makeTree(t, src)
	st := tempCatalog(t)
	dir := t.TempDir()
	var imgs []string
	for level := 0; level <= 2; level++ {
		if level > 0 {
			changeTree(t, src, level)
		}
		img := filepath.Join(dir, "l"+string(rune('0'+level))+".dump")
		res := backupDir(t, src, img, st, Env{"LEVEL": string(rune('0' + level))})
		if res.Level != level {
			t.Fatalf("level %d", res.Level)
		}
		imgs = append(imgs, img)
	}
	want := snapshotTree(t, src)
	linux := testutil.LoopFS(t, "ext4", 64)
	for _, img := range imgs {
		linuxRestore(t, linux, "-r", "-f", img)
	}
	compareTrees(t, want, snapshotTree(t, linux, "restoresymtable"))
	ours := testutil.LoopFS(t, "ext4", 256)
	for _, img := range imgs {
		restoreImage(t, img, ours, nil)
	}
	compareTrees(t, want, snapshotTree(t, ours, SymtabName))
}

// restoreLinuxSample restores a Linux dump sample into dest. Linux dump
// 0.4b47 wrote the directory entry of the file with a 255-byte name with a
// record too short for any of the name: that file is on the image and no
// name reaches it, which the restore reports (issue 11); nothing else may
// fail.
func restoreLinuxSample(t *testing.T, img, dest string) {
	t.Helper()
	f, err := os.Open(img)
	must(t, err)
	defer f.Close()
	var bad []string
	_, err = Restore(context.Background(), RestoreRequest{Input: f, Dest: dest, OnName: func(n NameResult) {
		if n.Err != nil {
			bad = append(bad, n.Path+": "+n.Err.Error())
		}
	}})
	switch {
	case len(bad) == 0 && err == nil:
	case len(bad) == 1 && strings.Contains(bad[0], "no directory names it") && errors.Is(err, dump.ErrFormat):
		t.Logf("%s: %s", filepath.Base(img), bad[0])
	default:
		t.Fatalf("Restore %s: %v %v", filepath.Base(img), err, bad)
	}
}

// TestLinuxDumpImages: our restore of the shared Linux dump images equals
// Linux restore's.
func TestLinuxDumpImages(t *testing.T) {
	testutil.RequireTool(t, "restore")
	// The shared samples, as format/dump keeps them (the same files as
	// ../shared/testdata/linux-dump, so the test does not depend on where
	// the checkout lives).
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "format", "dump", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "l0.dump")); err != nil {
		t.Fatalf("Linux dump samples: %v", err)
	}
	for _, chain := range [][]string{{"l0.dump", "l1.dump"}, {"l0_ext2.dump"}} {
		t.Run(strings.Join(chain, "+"), func(t *testing.T) {
			linux := testutil.LoopFS(t, "ext4", 64)
			ours := testutil.LoopFS(t, "ext4", 256)
			for _, img := range chain {
				linuxRestore(t, linux, "-r", "-f", filepath.Join(dir, img))
				restoreLinuxSample(t, filepath.Join(dir, img), ours)
			}
			lt := snapshotTree(t, linux, "restoresymtable", "lost+found")
			ot := snapshotTree(t, ours, SymtabName, "lost+found")
			// Linux dump 0.4b47 writes 255-byte names with a short record
			// length: Linux restore turns such a name into garbage ("\r"),
			// format/dump keeps what the record holds or drops it.
			// Compare everything else.
			if g, ok := lt["\r"]; ok {
				delete(lt, "\r")
				found := false
				for p, o := range ot {
					if len(p) > 200 && !strings.Contains(p, "/") {
						if o.sum != g.sum {
							t.Errorf("255-byte name: content differs")
						}
						delete(ot, p)
						found = true
					}
				}
				if !found {
					// format/dump's ParseDir drops this mangled record.
					t.Logf("the file with the mangled 255-byte name was not restored")
				}
			}
			compareTrees(t, lt, ot)
		})
	}
}
