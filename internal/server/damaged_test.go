package server

import (
	"bytes"
	"context"
	"io"
	"math"
	"path/filepath"
	"testing"

	fdump "github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/engine/filedump"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// Issue 11 item 5: the restore of an image whose root directory's block is
// damaged (three bytes changed) restored nothing and halted SUCCESSFUL. Now
// every inode no name reaches gets a failed LOG_FILE, the name of the list
// fails, and the data service halts with INTERNAL_ERROR.
func TestRestoreDamagedImageFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	populate(t, filepath.Join(f.dir, "vols", "vol1"))
	img := backupImage(t, filepath.Join(f.dir, "vols", "vol1"))
	r := fdump.NewReader(bytes.NewReader(img))
	root := int64(-1)
	for root < 0 {
		h, err := r.Next()
		if err == io.EOF || err != nil {
			t.Fatalf("no root directory: %v", err)
		}
		if h.Kind == fdump.KindInode && h.Ino == fdump.RootIno {
			root = h.Offset
		}
	}
	copy(img[root+fdump.RecordSize+4:], []byte{0xff, 0xff, 0xff}) // record length and type of "."

	whole := ndmp.Name{OriginalPath: "/", DestinationDir: "/vs1/vol2", Node: ndmp.InvalidQuad, FHInfo: ndmp.InvalidQuad}
	reason, lfs := restoreFromTape(t, f, img, vol2, []ndmp.Name{whole})
	if reason != ndmp.DataHaltInternalError {
		t.Errorf("restore of a damaged image halted %v, want INTERNAL_ERROR", reason)
	}
	failed := map[string]bool{}
	for _, lf := range lfs {
		if lf.RecoveryStatus != ndmp.RecoverySuccessful {
			failed[lf.Name] = true
		}
	}
	// The root's damage, and d0..d3 (directories 3 and up) that no name
	// reaches any more, and the list's name.
	if !failed["/"] || len(failed) < 5 {
		t.Errorf("LOG_FILE posts %+v: want the root, the unreachable inodes and the name failed", lfs)
	}
}

// vol2 is the restore environment of the tests that restore to /vs1/vol2.
var vol2 = []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol2"}}

// restoreFromTape writes img to the fixture's tape, restores it with env
// and nlist and returns how the data service halted and the LOG_FILE
// posts. start, when set, is the error DATA_START_RECOVER must give; the
// restore then does not run.
func restoreFromTape(t *testing.T, f *fixture, img []byte, env []ndmp.Pval, nlist []ndmp.Name, start ...ndmp.Error) (ndmp.DataHaltReason, []ndmp.LogFilePost) {
	t.Helper()
	ps := newPosts()
	c := loginReader(f, func(ctx context.Context, m *ndmp.Message) { ps.handler(ctx, m) })
	ctx := f.ctx
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	for off := 0; off < len(img); off += recSize {
		if _, err := c.TapeWrite(ctx, img[off:off+recSize]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.TapeMTIO(ctx, ndmp.MTIOEOF, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	wantErr(t, "window", c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
	if _, err := c.MoverListen(ctx, ndmp.MoverModeWrite, ndmp.AddrLocal); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "data connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
	want := ndmp.NoErr
	if len(start) > 0 {
		want = start[0]
	}
	wantErr(t, "start recover", c.DataStartRecover(ctx, "dump", env, nlist), want)
	// The session ends, and frees the tape, when the test is done with it.
	defer c.Close(ctx)
	if want != ndmp.NoErr {
		return ndmp.DataHaltNA, nil
	}
	dh := ps.wait(t, ndmp.NotifyDataHalted, hangGuard).Body.(*ndmp.NotifyDataHaltedPost)
	lfs := logFilesOf(t, ps)
	wantErr(t, "data stop", c.DataStop(ctx), ndmp.NoErr)
	ps.wait(t, ndmp.NotifyMoverHalted, hangGuard)
	wantErr(t, "mover stop", c.MoverStop(ctx), ndmp.NoErr)
	wantErr(t, "tape close", c.TapeClose(ctx), ndmp.NoErr)
	return dh.Reason, lfs
}

// backupImage returns a level 0 image of dir made by the engine.
func backupImage(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := filedump.Backup(context.Background(), filedump.BackupRequest{Dir: dir, Output: &buf}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
