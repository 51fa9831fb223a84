package server

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/engine/filedump"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// TestRestoreStateOutsideVolume (issue 11 item 6, D8): an image holding a
// directory named restore_symboltable made an NDMP restore, and every later
// one into the volume, fail. The server keeps the restore's state below its
// data directory, so the image's directory is restored as it is, and a
// second restore works.
func TestRestoreStateOutsideVolume(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	src := t.TempDir()
	for p, data := range map[string]string{filedump.SymtabName + "/inside.txt": "inside", "a.txt": "alpha"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := backupImage(t, src)
	whole := ndmp.Name{OriginalPath: "/", DestinationDir: "/vs1/vol2", Node: ndmp.InvalidQuad, FHInfo: ndmp.InvalidQuad}
	for i := 0; i < 2; i++ {
		reason, lfs := restoreFromTape(t, f, img, vol2, []ndmp.Name{whole})
		if reason != ndmp.DataHaltSuccessful || len(lfs) != 1 || lfs[0].RecoveryStatus != ndmp.RecoverySuccessful {
			t.Fatalf("restore %d: halted %v, LOG_FILE %+v\n%s", i+1, reason, lfs, f.logs.String())
		}
	}
	dst := filepath.Join(f.dir, "vols", "vol2")
	if b, err := os.ReadFile(filepath.Join(dst, filedump.SymtabName, "inside.txt")); err != nil || string(b) != "inside" {
		t.Errorf("the image's directory: %q %v", b, err)
	}
	states, _ := filepath.Glob(filepath.Join(f.dir, RestoreStateDir, "vs1", "*", "root", filedump.SymtabName))
	if len(states) != 1 {
		t.Errorf("restore state under the data directory: %v", states)
	}
}

// TestNlistDestinationOutsideVolume (issue 11 item 6, N14): a name of the
// list whose destination is outside the volume restored into was restored
// into the volume's root and reported SUCCESSFUL. It is refused: a failed
// LOG_FILE for it, nothing written for it; the other names restore. A list
// of refused names only is refused as a whole (ILLEGAL_ARGS), never turned
// into a restore of everything.
func TestNlistDestinationOutsideVolume(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	src := t.TempDir()
	for _, p := range []string{"a.txt", "b.txt"} {
		if err := os.WriteFile(filepath.Join(src, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := backupImage(t, src)
	name := func(orig, dest string) ndmp.Name {
		return ndmp.Name{OriginalPath: orig, DestinationDir: dest, Node: ndmp.InvalidQuad, FHInfo: ndmp.InvalidQuad}
	}
	reason, lfs := restoreFromTape(t, f, img, vol2, []ndmp.Name{name("/a.txt", "/vs1/vol2/a.txt"), name("/b.txt", "/vs1/vol1/b.txt")})
	status := map[string]ndmp.RecoveryStatus{}
	for _, lf := range lfs {
		status[lf.Name] = lf.RecoveryStatus
	}
	if reason != ndmp.DataHaltSuccessful || status["/a.txt"] != ndmp.RecoverySuccessful || status["/b.txt"] == ndmp.RecoverySuccessful {
		t.Errorf("halted %v, LOG_FILE %+v", reason, lfs)
	}
	dst := filepath.Join(f.dir, "vols", "vol2")
	if b, err := os.ReadFile(filepath.Join(dst, "a.txt")); err != nil || string(b) != "a.txt" {
		t.Errorf("a.txt: %q %v", b, err)
	}
	for _, p := range []string{filepath.Join(dst, "b.txt"), filepath.Join(f.dir, "vols", "vol1", "b.txt")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s written", p)
		}
	}
	restoreFromTape(t, f, img, vol2, []ndmp.Name{name("/b.txt", "/vs1/vol1/b.txt")}, ndmp.ErrIllegalArgs)
	if _, err := os.Lstat(filepath.Join(dst, "b.txt")); err == nil {
		t.Error("b.txt written by a list of refused names")
	}
}

// TestRestoreOutOfSpaceLogFiles (issue 11 item 7, N14, D9): an NDMP restore
// with FORCE=Y into a volume on a 32 MB ext4 file system too small for the
// image posts a failed LOG_FILE for each file it could not write (and
// removed), fails the name of the list, and leaves no file cut short; its
// state lives outside the full volume, so it is saved.
func TestRestoreOutOfSpaceLogFiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	small := testutil.LoopFS(t, "ext4", 32)
	if _, err := f.st.CreateVolume(f.ctx, storage.VolumeSpec{Name: "small", SVM: "vs1", HostPath: small, SnapshotProvider: "copy"}); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	for i := 0; i < 3; i++ {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("big%d", i)), big, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := backupImage(t, src)
	whole := ndmp.Name{OriginalPath: "/", DestinationDir: "/vs1/small", Node: ndmp.InvalidQuad, FHInfo: ndmp.InvalidQuad}
	_, lfs := restoreFromTape(t, f, img, []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/small"}, {Name: "FORCE", Value: "Y"}}, []ndmp.Name{whole})
	failed := map[string]bool{}
	for _, lf := range lfs {
		if lf.RecoveryStatus != ndmp.RecoverySuccessful {
			failed[lf.Name] = true
		}
	}
	if !failed["/"] || len(failed) < 2 {
		t.Fatalf("LOG_FILE posts %+v: want each file that did not fit and the name failed", lfs)
	}
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("big%d", i)
		b, err := os.ReadFile(filepath.Join(small, name))
		switch {
		case failed[name] && err == nil:
			t.Errorf("%s failed and is still there (%d bytes)", name, len(b))
		case !failed[name] && !bytes.Equal(b, big):
			t.Errorf("%s: %d bytes, %v, and no failed LOG_FILE", name, len(b), err)
		}
	}
	if states, _ := filepath.Glob(filepath.Join(f.dir, RestoreStateDir, "vs1", "*", "root", filedump.SymtabName)); len(states) != 1 {
		t.Errorf("restore state: %v", states)
	}
}
