package server

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// logFilesOf returns the LOG_FILE posts among ms (name -> status, in order)
// and whether each came before the NOTIFY_DATA_HALTED of the restore.
func logFilesOf(t *testing.T, ps *posts) []ndmp.LogFilePost {
	t.Helper()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var out []ndmp.LogFilePost
	for _, m := range ps.ms {
		switch b := m.Body.(type) {
		case *ndmp.LogFilePost:
			out = append(out, *b)
		case *ndmp.NotifyDataHaltedPost:
			return out
		}
	}
	t.Fatal("no NOTIFY_DATA_HALTED among the posts")
	return nil
}

// Draft 4.2.2, N14: a restore reports each name of the name list once, with
// its original_path, before NOTIFY_DATA_HALTED; a file restored without
// trouble gets no LOG_FILE of its own (a whole-volume restore of many small
// files would send one per file), a file that fails gets one, and so does
// the name of the list it belongs to, as failed; a name that is not on the
// image fails; an empty name list asks for the whole image, reported as "/".
func TestRestoreLogFilePerName(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	src := filepath.Join(f.dir, "vols", "vol1")
	dst := filepath.Join(f.dir, "vols", "vol2")
	populate(t, src)
	ps := newPosts()
	c := loginReader(f, func(ctx context.Context, m *ndmp.Message) { ps.handler(ctx, m) })
	ctx := f.ctx
	startLocalBackup(t, f, c, []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}})
	if dh := ps.wait(t, ndmp.NotifyDataHalted, 60*time.Second).Body.(*ndmp.NotifyDataHaltedPost); dh.Reason != ndmp.DataHaltSuccessful {
		t.Fatalf("backup halted %v\n%s", dh.Reason, f.logs.String())
	}
	ps.wait(t, ndmp.NotifyMoverHalted, 10*time.Second)
	wantErr(t, "data stop", c.DataStop(ctx), ndmp.NoErr)
	wantErr(t, "mover stop", c.MoverStop(ctx), ndmp.NoErr)

	restore := func(name string, nlist []ndmp.Name) []ndmp.LogFilePost {
		t.Helper()
		if err := os.RemoveAll(dst); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		if name == "in the way" {
			// A directory where the image has the file d0/e0/f0.txt.
			if err := os.MkdirAll(filepath.Join(dst, "d0", "e0", "f0.txt", "x"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		ps = newPosts()
		if _, err := c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "window", c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
		if _, err := c.MoverListen(ctx, ndmp.MoverModeWrite, ndmp.AddrLocal); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "data connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
		wantErr(t, name+": start recover", c.DataStartRecover(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol2"}}, nlist), ndmp.NoErr)
		if dh := ps.wait(t, ndmp.NotifyDataHalted, 60*time.Second).Body.(*ndmp.NotifyDataHaltedPost); dh.Reason != ndmp.DataHaltSuccessful {
			t.Fatalf("%s: restore halted %v\n%s", name, dh.Reason, f.logs.String())
		}
		lfs := logFilesOf(t, ps)
		wantErr(t, "data stop", c.DataStop(ctx), ndmp.NoErr)
		// The mover halts when the data service closes the LOCAL
		// connection, which may be after the DATA_STOP reply.
		ps.wait(t, ndmp.NotifyMoverHalted, hangGuard)
		wantErr(t, "mover stop", c.MoverStop(ctx), ndmp.NoErr)
		return lfs
	}
	check := func(name string, got []ndmp.LogFilePost, want ...ndmp.LogFilePost) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: LOG_FILE posts %+v, want %+v", name, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: LOG_FILE posts %+v, want %+v", name, got, want)
			}
		}
	}
	whole := ndmp.Name{OriginalPath: "/", DestinationDir: "/vs1/vol2", Node: ndmp.InvalidQuad, FHInfo: ndmp.InvalidQuad}

	// The whole image as one name (ndmpcopy): one report for 20 files.
	check("whole", restore("whole", []ndmp.Name{whole}), ndmp.LogFilePost{Name: "/", RecoveryStatus: ndmp.RecoverySuccessful})
	if want, got := tree(t, src), tree(t, dst); len(want) != len(got) {
		t.Fatalf("whole restore: %d entries, want %d", len(got), len(want))
	}

	// Two names, one of them not on the image.
	got := restore("names", []ndmp.Name{
		{OriginalPath: "/d1/e1", DestinationDir: "/vs1/vol2/d1/e1", Node: ndmp.InvalidQuad, FHInfo: ndmp.InvalidQuad},
		{OriginalPath: "/nosuch", DestinationDir: "/vs1/vol2/nosuch", Node: ndmp.InvalidQuad, FHInfo: ndmp.InvalidQuad},
	})
	check("names", got,
		ndmp.LogFilePost{Name: "nosuch", RecoveryStatus: ndmp.RecoveryFailedIoError},
		ndmp.LogFilePost{Name: "/d1/e1", RecoveryStatus: ndmp.RecoverySuccessful},
		ndmp.LogFilePost{Name: "/nosuch", RecoveryStatus: ndmp.RecoveryFailedIoError})
	if _, err := os.Stat(filepath.Join(dst, "d1", "e1", "f13.txt")); err != nil {
		t.Fatalf("names: d1/e1/f13.txt not restored: %v", err)
	}

	// A file of the whole image cannot be written: it is reported, and the
	// name it belongs to fails.
	check("in the way", restore("in the way", []ndmp.Name{whole}),
		ndmp.LogFilePost{Name: "d0/e0/f0.txt", RecoveryStatus: ndmp.RecoveryFailedIoError},
		ndmp.LogFilePost{Name: "/", RecoveryStatus: ndmp.RecoveryFailedIoError})

	// No name list: the whole image.
	check("no names", restore("no names", nil), ndmp.LogFilePost{Name: "/", RecoveryStatus: ndmp.RecoverySuccessful})
}
