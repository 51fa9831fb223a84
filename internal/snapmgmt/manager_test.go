package snapmgmt

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// plainVolume makes a volume in a temporary directory whose snapshots the
// copy provider makes (no root needed).
func plainVolume(t *testing.T, e *env) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vol1")
	for i := range 5 {
		write(t, filepath.Join(dir, "d", fmt.Sprintf("f%d", i)), "x")
	}
	write(t, filepath.Join(dir, "top"), "top")
	must(t, os.Symlink("/etc", filepath.Join(dir, "d", "out")))
	e.volume("vol1", dir, "copy", storage.TypeRW)
	return dir
}

// TestCreateDeleteNames (0x2050 SNAP_CREATE, SNAP_DELETE,
// SNAP_GET_SNAPSHOT_NAMES): the class's error for each refusal.
func TestCreateDeleteNames(t *testing.T) {
	e := newEnv(t)
	plainVolume(t, e)
	must(t, e.m.Create(e.ctx, "vs1", "vol1", "daily"))
	wantCode(t, "taken name", e.m.Create(e.ctx, "vs1", "vol1", "daily"), ndmp.ErrSnapExists)
	wantCode(t, "no volume", e.m.Create(e.ctx, "vs1", "nope", "x"), ndmp.ErrSnapInvalidPath)
	wantCode(t, "bad name", e.m.Create(e.ctx, "vs1", "vol1", "a/b"), ndmp.ErrIllegalArgs)
	must(t, e.m.Create(e.ctx, "vs1", "vol1", "weekly"))
	if _, err := e.st.LockSnapshot(e.ctx, "vs1", "vol1", "weekly", "backup-7"); err != nil {
		t.Fatal(err)
	}
	names, err := e.m.Names(e.ctx, "vs1", "vol1")
	if err != nil || len(names) != 2 || names[0].Snapname != "daily" || names[1].Flags != FlagLocked || names[0].Flags != 0 {
		t.Fatalf("names %+v, %v", names, err)
	}
	wantCode(t, "locked", e.m.Delete(e.ctx, "vs1", "vol1", "weekly"), ndmp.ErrSnapBusy)
	wantCode(t, "missing", e.m.Delete(e.ctx, "vs1", "vol1", "monthly"), ndmp.ErrSnapNotFound)
	wantCode(t, "missing volume", e.m.Delete(e.ctx, "vs1", "gone", "daily"), ndmp.ErrSnapInvalidPath)
	must(t, e.m.Delete(e.ctx, "vs1", "vol1", "daily"))
	if names, _ := e.m.Names(e.ctx, "vs1", "vol1"); len(names) != 1 {
		t.Fatalf("after delete: %+v", names)
	}
	e.volume("dp1", t.TempDir(), "copy", storage.TypeDP)
	wantCode(t, "DP volume", e.m.Create(e.ctx, "vs1", "dp1", "x"), ndmp.ErrSnapReadOnlyFS)
}

// TestBrowse (0x2050 SNAP_DIR_LIST): pages of snapshots and of a
// snapshot's directory, a cursor invalidated by a new snapshot, and paths
// that leave the snapshot refused.
func TestBrowse(t *testing.T) {
	e := newEnv(t)
	plainVolume(t, e)
	must(t, e.m.Create(e.ctx, "vs1", "vol1", "s1"))
	must(t, e.m.Create(e.ctx, "vs1", "vol1", "s2"))
	ents, next, err := e.m.DirList(e.ctx, DirListRequest{SVM: "vs1", Volume: "vol1"})
	if err != nil || next != 0 || len(ents) != 2 || ents[1].Name != "s2" || ents[1].Fstat.Ftype != ndmp.FileDir {
		t.Fatalf("snapshots: %+v next %d, %v", ents, next, err)
	}
	req := DirListRequest{SVM: "vs1", Volume: "vol1", Snapshot: "s1", Dir: "/d/", Max: 4}
	var got []string
	for {
		ents, next, err := e.m.DirList(e.ctx, req)
		must(t, err)
		for _, en := range ents {
			got = append(got, en.Name)
		}
		if next == 0 {
			break
		}
		req.Cursor = next
	}
	if fmt.Sprint(got) != "[f0 f1 f2 f3 f4 out]" {
		t.Fatalf("listing %v", got)
	}
	req.Cursor = 0
	_, next, err = e.m.DirList(e.ctx, req)
	if err != nil || next == 0 {
		t.Fatalf("first page: next %d, %v", next, err)
	}
	must(t, e.m.Create(e.ctx, "vs1", "vol1", "s3"))
	req.Cursor = next
	_, _, err = e.m.DirList(e.ctx, req)
	wantCode(t, "cursor after a new snapshot", err, ndmp.ErrIllegalState)
	for _, c := range []struct {
		dir  string
		code ndmp.Error
	}{
		{"d/out", ndmp.ErrSnapInvalidPath}, // a symlink to /etc
		{"../..", ndmp.ErrIllegalArgs},
		{"d/../..", ndmp.ErrIllegalArgs},
		{"top", ndmp.ErrSnapInvalidPath},
	} {
		_, _, err := e.m.DirList(e.ctx, DirListRequest{SVM: "vs1", Volume: "vol1", Snapshot: "s1", Dir: c.dir})
		wantCode(t, c.dir, err, c.code)
	}
	_, _, err = e.m.DirList(e.ctx, DirListRequest{SVM: "vs1", Volume: "vol1", Snapshot: "nope"})
	wantCode(t, "missing snapshot", err, ndmp.ErrSnapNotFound)
}
