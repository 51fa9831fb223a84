package filedump

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// TestConcurrentQtreeAndVolumeBackups (issue 11 item 1, D2, D5): a qtree
// backup loads the volume's inode map, then a whole-volume level 0 runs from
// start to end, then the qtree backup walks and saves. Saving a map of its
// own, the qtree backup dropped the volume backup's numbers and gave the
// qtree's files numbers the level 0 had given to other files; the level 1
// restored onto the level 0 then failed or mixed files up. Both our restore
// and Linux restore -r of levels 0 and 1 must give the volume as it is.
func TestConcurrentQtreeAndVolumeBackups(t *testing.T) {
	f := newStorage(t)
	ctx := context.Background()
	cat := tempCatalog(t)
	maps := &InodeMaps{}
	dir := t.TempDir()
	img := func(name string) *os.File {
		out, err := os.Create(filepath.Join(dir, name))
		must(t, err)
		t.Cleanup(func() { out.Close() })
		return out
	}
	// More files in the qtree than outside it, so that the qtree backup's
	// numbers cover the volume's.
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		writeFile(t, filepath.Join(f.data, "q1", "sub", n+".txt"), []byte("qtree file "+n), 0o640)
	}
	qLoaded, volDone := make(chan struct{}), make(chan struct{})
	qErr := make(chan error, 1)
	go func() {
		_, err := Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1/q1", Catalog: cat, InodeMaps: maps,
			Output: img("q1.dump"), hooks: &backupHooks{mapLoaded: func() { close(qLoaded); <-volDone }}})
		qErr <- err
	}()
	<-qLoaded
	_, err := Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Catalog: cat, InodeMaps: maps, Output: img("l0.dump")})
	close(volDone)
	must(t, err)
	must(t, <-qErr)

	// Changes for the level 1, in the qtree and outside it.
	writeFile(t, filepath.Join(f.data, "q1", "sub", "c.txt"), []byte("changed in the qtree"), 0o640)
	writeFile(t, filepath.Join(f.data, "q1", "added.txt"), []byte("added to the qtree"), 0o600)
	writeFile(t, filepath.Join(f.data, "top.txt"), []byte("changed at the top"), 0o644)
	writeFile(t, filepath.Join(f.data, "plain", "new", "n.txt"), []byte("new dir"), 0o644)
	must(t, os.Remove(filepath.Join(f.data, "plain", "scratch.tmp")))
	must(t, os.Rename(filepath.Join(f.data, "skipme"), filepath.Join(f.data, "q1", "moved")))
	_, err = Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Catalog: cat, InodeMaps: maps,
		Env: Env{"LEVEL": "1"}, Output: img("l1.dump")})
	must(t, err)
	want := snapshotTree(t, f.data, ".snapshot")

	ours := t.TempDir()
	for _, n := range []string{"l0.dump", "l1.dump"} {
		in, err := os.Open(filepath.Join(dir, n))
		must(t, err)
		var errs []string
		_, err = Restore(ctx, RestoreRequest{Input: in, Dest: ours, Env: Env{"FORCE": "Y"}, OnName: func(r NameResult) {
			if r.Err != nil {
				errs = append(errs, r.Path+": "+r.Err.Error())
			}
		}})
		in.Close()
		if err != nil || len(errs) > 0 {
			t.Fatalf("restore of %s: %v %v", n, err, errs)
		}
	}
	compareTrees(t, want, snapshotTree(t, ours, SymtabName))

	testutil.RequireTool(t, "restore")
	linux := t.TempDir()
	linuxRestore(t, linux, "-r", "-f", filepath.Join(dir, "l0.dump"))
	linuxRestore(t, linux, "-r", "-f", filepath.Join(dir, "l1.dump"))
	compareTrees(t, want, snapshotTree(t, linux, "restoresymtable"))
}
