package server

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/engine/dump"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// TestRestoreStateOutsideVolume (issue 11 item 6, D8): an image holding a
// directory named restore_symboltable made an NDMP restore, and every later
// one into the volume, fail. The server keeps the restore's state below its
// data directory, so the image's directory is restored as it is, and a
// second restore works.
func TestRestoreStateOutsideVolume(t *testing.T) {
	f := newFixture(t, fixtureOpts{before: withVolumes})
	src := t.TempDir()
	for p, data := range map[string]string{dump.SymtabName + "/inside.txt": "inside", "a.txt": "alpha"} {
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
		reason, lfs := restoreFromTape(t, f, img, []ndmp.Name{whole})
		if reason != ndmp.DataHaltSuccessful || len(lfs) != 1 || lfs[0].RecoveryStatus != ndmp.RecoverySuccessful {
			t.Fatalf("restore %d: halted %v, LOG_FILE %+v\n%s", i+1, reason, lfs, f.logs.String())
		}
	}
	dst := filepath.Join(f.dir, "vols", "vol2")
	if b, err := os.ReadFile(filepath.Join(dst, dump.SymtabName, "inside.txt")); err != nil || string(b) != "inside" {
		t.Errorf("the image's directory: %q %v", b, err)
	}
	states, _ := filepath.Glob(filepath.Join(f.dir, RestoreStateDir, "vs1", "*", "root", dump.SymtabName))
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
	reason, lfs := restoreFromTape(t, f, img, []ndmp.Name{name("/a.txt", "/vs1/vol2/a.txt"), name("/b.txt", "/vs1/vol1/b.txt")})
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
	restoreFromTape(t, f, img, []ndmp.Name{name("/b.txt", "/vs1/vol1/b.txt")}, ndmp.ErrIllegalArgs)
	if _, err := os.Lstat(filepath.Join(dst, "b.txt")); err == nil {
		t.Error("b.txt written by a list of refused names")
	}
}
