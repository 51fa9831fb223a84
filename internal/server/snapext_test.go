package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// waitRecoverEnd waits for the NOTIFY_RECOVER_END of a recovery.
func waitRecoverEnd(t *testing.T, c *ndmp.Client, id uint64) *ndmp.SnapNotifyRecoverEndPost {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for {
		select {
		case p := <-c.SnapRecoverEnd():
			if p.RecoverID == id {
				return p
			}
		case <-ctx.Done():
			t.Fatalf("no NOTIFY_RECOVER_END for recovery %d", id)
		}
	}
}

// TestSnapshotExtension (N9, issue 14 item 5): the snapshot management of
// class 0x2050 through a real client: refused until the class is
// selected; create, list, browse with a cursor a new snapshot
// invalidates, recover a file into another volume and the whole volume,
// delete; each refusal with the class's error.
func TestSnapshotExtension(t *testing.T) {
	f := newFixture(t, fixtureOpts{before: withVolumes})
	vol1 := filepath.Join(f.dir, "vols", "vol1")
	for _, n := range []string{"a", "b", "c"} {
		writeFileT(t, filepath.Join(vol1, "d", n), "hello "+n)
	}
	c := f.login(nil)
	ctx := f.ctx
	wantErr(t, "before SET_EXT_LIST", c.SnapCreate(ctx, "/vs1/vol1", "s1"), ndmp.ErrNotSupported)
	if _, err := c.GetExtList(ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "select 0x2050", c.SetExtList(ctx, []ndmp.ClassVersion{{ExtClassID: 0x2050, ExtVersion: 3}}), ndmp.NoErr)
	wantErr(t, "create", c.SnapCreate(ctx, "/vs1/vol1", "s1"), ndmp.NoErr)
	wantErr(t, "create again", c.SnapCreate(ctx, "/vs1/vol1", "s1"), ndmp.ErrSnapExists)
	wantErr(t, "no such volume", c.SnapCreate(ctx, "/vs1/nope", "s1"), ndmp.ErrSnapInvalidPath)
	if names, err := c.SnapNames(ctx, "/vs1/vol1"); err != nil || len(names) != 1 || names[0].Snapname != "s1" {
		t.Fatalf("names %+v, %v", names, err)
	}
	page, err := c.SnapDirList(ctx, &ndmp.SnapDirListRequest{Pathname: "/vs1/vol1", Snapname: "s1", Dir: "d", MaxEntries: 2})
	if err != nil || len(page.Entries) != 2 || page.Entries[0].Name != "a" || page.NextCursor == 0 || page.Entries[0].Fstat.Ftype != ndmp.FileReg {
		t.Fatalf("first page %+v, %v", page, err)
	}
	wantErr(t, "second snapshot", c.SnapCreate(ctx, "/vs1/vol1", "s2"), ndmp.NoErr)
	_, err = c.SnapDirList(ctx, &ndmp.SnapDirListRequest{Pathname: "/vs1/vol1", Snapname: "s1", Dir: "d", MaxEntries: 2, Cursor: page.NextCursor})
	wantErr(t, "stale cursor", err, ndmp.ErrIllegalState)

	writeFileT(t, filepath.Join(vol1, "d", "a"), "CHANGED")
	writeFileT(t, filepath.Join(vol1, "new"), "not in s1")
	id, err := c.SnapRecover(ctx, &ndmp.SnapRecoverRequest{Pathname: "/vs1/vol1", Snapname: "s1",
		Names: []ndmp.SnapRecoverName{{OriginalPath: "/d/a", DestinationDir: "/vs1/vol2/restored", Name: "a", NewName: "a2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if end := waitRecoverEnd(t, c, id); end.Error != ndmp.NoErr || end.Files != 1 {
		t.Fatalf("file recovery ended %+v", end)
	}
	if b, err := os.ReadFile(filepath.Join(f.dir, "vols", "vol2", "restored", "a2")); err != nil || string(b) != "hello a" {
		t.Fatalf("recovered file %q, %v", b, err)
	}
	id, err = c.SnapRecover(ctx, &ndmp.SnapRecoverRequest{Pathname: "/vs1/vol1", Snapname: "s1",
		Names: []ndmp.SnapRecoverName{{OriginalPath: "/d", DestinationDir: "/vs1/vol2/r", Name: "d"}}})
	if err != nil {
		t.Fatal(err)
	}
	if end := waitRecoverEnd(t, c, id); end.Error != ndmp.ErrIllegalArgs {
		t.Fatalf("directory recovery ended %+v, want ILLEGAL_ARGS", end)
	}
	id, err = c.SnapRecover(ctx, &ndmp.SnapRecoverRequest{Pathname: "/vs1/vol1", Snapname: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if end := waitRecoverEnd(t, c, id); end.Error != ndmp.NoErr {
		t.Fatalf("volume recovery ended %+v", end)
	}
	if b, _ := os.ReadFile(filepath.Join(vol1, "d", "a")); string(b) != "hello a" {
		t.Fatalf("volume recovery left d/a = %q", b)
	}
	if _, err := os.Stat(filepath.Join(vol1, "new")); err == nil {
		t.Fatal("volume recovery kept a file the snapshot does not have")
	}
	wantErr(t, "delete", c.SnapDelete(ctx, "/vs1/vol1/.snapshot/s1"), ndmp.NoErr)
	wantErr(t, "delete again", c.SnapDelete(ctx, "/vs1/vol1/.snapshot/s1"), ndmp.ErrSnapNotFound)
	wantErr(t, "delete a volume", c.SnapDelete(ctx, "/vs1/vol1"), ndmp.ErrSnapInvalidPath)
}

func writeFileT(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
