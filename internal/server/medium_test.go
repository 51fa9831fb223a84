package server

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// randomFiles writes n files of size random (incompressible) bytes in dir.
func randomFiles(t *testing.T, dir string, n, size int) {
	t.Helper()
	r := rand.New(rand.NewChaCha8([32]byte{11, 8}))
	b := make([]byte, size)
	for i := 0; i < n; i++ {
		for j := 0; j+8 <= len(b); j += 8 {
			v := r.Uint64()
			for k := 0; k < 8; k++ {
				b[j+k] = byte(v >> (8 * k))
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i))), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// loseCartridge takes the image of the cartridge in drive 0 away: it is
// unlinked, or (replace) renamed away and another file put at its path.
func loseCartridge(t *testing.T, f *fixture, replace bool) {
	t.Helper()
	d, err := f.lib.Drive(0)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(f.dir, "vtl", "cartridges", d.Barcode()+".tap")
	if !replace {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.Rename(p, p+".elsewhere"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("not the tape"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Issue 11 item 8 (N14, T10): the cartridge image is removed (or replaced
// by another file) from the virtual library while a backup writes to it.
// The mover is held at the end of a small window (a deterministic point,
// 8 records in), the image is taken away, and the backup goes on: the
// mover halts with MEDIA_ERROR, the DMA is told "Media error on tape
// write", the backup's halt is not SUCCESSFUL and TAPE_CLOSE, which would
// make the tape durable, fails with NDMP_IO_ERR.
func TestCartridgeLostDuringBackup(t *testing.T) {
	t.Parallel()
	for _, replace := range []bool{false, true} {
		name := map[bool]string{false: "removed", true: "replaced"}[replace]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fixtureOpts{before: withVolumes})
			randomFiles(t, filepath.Join(f.dir, "vols", "vol1"), 6, 4<<20)
			ps := newPosts()
			c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
			ctx := f.ctx
			wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
			wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
			wantErr(t, "window", c.MoverSetWindow(ctx, 0, 8*recSize), ndmp.NoErr)
			if _, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrLocal); err != nil {
				t.Fatal(err)
			}
			wantErr(t, "connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
			wantErr(t, "backup", c.DataStartBackup(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}}), ndmp.NoErr)
			if p := ps.wait(t, ndmp.NotifyMoverPaused, 60*time.Second).Body.(*ndmp.NotifyMoverPausedPost); p.Reason != ndmp.MoverPauseEOW {
				t.Fatalf("pause %+v", p)
			}
			loseCartridge(t, f, replace)
			wantErr(t, "window", c.MoverSetWindow(ctx, 8*recSize, math.MaxUint64-8*recSize), ndmp.NoErr)
			wantErr(t, "continue", c.MoverContinue(ctx), ndmp.NoErr)
			mh := ps.wait(t, ndmp.NotifyMoverHalted, 60*time.Second).Body.(*ndmp.NotifyMoverHaltedPost)
			dh := ps.wait(t, ndmp.NotifyDataHalted, 60*time.Second).Body.(*ndmp.NotifyDataHaltedPost)
			if mh.Reason != ndmp.MoverHaltMediaError || dh.Reason == ndmp.DataHaltSuccessful {
				t.Fatalf("mover halted %v, data halted %v; want MEDIA_ERROR and not SUCCESSFUL", mh.Reason, dh.Reason)
			}
			if !hasLogMessage(ps, vtl.MsgMediaErrorOnWrite) {
				t.Errorf("no LOG_MESSAGE %q", vtl.MsgMediaErrorOnWrite)
			}
			wantErr(t, "data stop", c.DataStop(ctx), ndmp.NoErr)
			wantErr(t, "mover stop", c.MoverStop(ctx), ndmp.NoErr)
			wantErr(t, "tape close", c.TapeClose(ctx), ndmp.ErrIo)
		})
	}
}

// hasLogMessage reports whether a LOG_MESSAGE post carried msg.
func hasLogMessage(ps *posts, msg string) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, m := range ps.ms {
		if l, ok := m.Body.(*ndmp.LogMessagePost); ok && strings.Contains(l.Entry, msg) {
			return true
		}
	}
	return false
}
