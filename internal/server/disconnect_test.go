package server

import (
	"bytes"
	"math"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// goroutines returns the stacks of all goroutines by their id line
// ("goroutine 12").
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		head, _, _ := strings.Cut(s, " [")
		out[head] = s
	}
	return out
}

// leaked lists the goroutines that are not in before and run code of this
// module (the server, the engines, the NDMP connection), except the
// test's own.
func leaked(before map[string]string) []string {
	var out []string
	for id, st := range goroutines() {
		if _, ok := before[id]; ok || !strings.Contains(st, "github.com/tapestry-ndmp/tapestry/") {
			continue
		}
		if strings.Contains(st, "testing.tRunner") || strings.Contains(st, "server.goroutines(") {
			continue
		}
		out = append(out, st)
	}
	sort.Strings(out)
	return out
}

// assertCleanAfterDisconnect checks what must hold once a DMA's connection
// dropped: the session is gone from Sessions, the drive can be opened by
// another session, no snapshot_for_backup.N is left on vol1, and no
// goroutine started since before is left.
func assertCleanAfterDisconnect(t *testing.T, f *fixture, before map[string]string) {
	t.Helper()
	if !waitUntil(15*time.Second, func() bool { return len(f.srv.Sessions()) == 0 }) {
		t.Fatalf("session still listed: %+v\n%s", f.srv.Sessions(), f.logs.String())
	}
	c2 := f.login(nil)
	wantErr(t, "drive free again", c2.TapeOpen(f.ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "tape close", c2.TapeClose(f.ctx), ndmp.NoErr)
	_ = c2.Conn().Close()
	if !waitUntil(15*time.Second, func() bool {
		snaps, err := f.st.ListSnapshots(f.ctx, "vs1", "vol1")
		if err != nil {
			return false
		}
		for _, s := range snaps {
			if strings.HasPrefix(s.Name, "snapshot_for_backup.") {
				return false
			}
		}
		return true
	}) {
		snaps, err := f.st.ListSnapshots(f.ctx, "vs1", "vol1")
		t.Fatalf("backup snapshot left behind: %+v %v", snaps, err)
	}
	if !waitUntil(15*time.Second, func() bool { return len(leaked(before)) == 0 }) {
		t.Fatalf("goroutines left after the disconnect:\n%s", strings.Join(leaked(before), "\n\n"))
	}
}

// N13, N18, draft "NDMP connection closure": the DMA's control connection
// closed abruptly at each point of a backup and a restore. Every time the
// session ends, the drive is released, the backup snapshot is deleted and
// every goroutine of the session ends. The backup cases use a DMA with a
// small receive buffer that stops at a chosen post, so the server is in
// the middle of the named phase when the connection drops: phase I-II
// (right after DATA_START_BACKUP, file history off), phase III (the first
// FH_ADD_DIR), phase IV (the first FH_ADD_NODE), the mover paused at the
// end of its window, the mover paused at the end of the medium; then a
// restore waiting for the data it asked for with NOTIFY_DATA_READ.
func TestDisconnectAtEveryPhase(t *testing.T) {
	type tc struct {
		name    string
		hist    bool
		window  uint64
		short   int64                    // cartridge capacity in bytes (0: normal)
		blockOn func(*ndmp.Message) bool // the post at which the DMA stops
		restore bool
	}
	isCode := func(c ndmp.MessageCode) func(*ndmp.Message) bool {
		return func(m *ndmp.Message) bool { return m.Header.MessageCode == c }
	}
	cases := []tc{
		{name: "before DATA_START"},
		{name: "phase I-II right after DATA_START", blockOn: func(*ndmp.Message) bool { return false }},
		{name: "phase III at the first FH_ADD_DIR", hist: true, blockOn: isCode(ndmp.FHAddDir)},
		{name: "phase IV at the first FH_ADD_NODE", hist: true, blockOn: isCode(ndmp.FHAddNode)},
		{name: "mover paused at end of window", window: 4 * recSize, blockOn: isCode(ndmp.NotifyMoverPaused)},
		{name: "mover paused at end of medium", short: 256 << 10, blockOn: isCode(ndmp.NotifyMoverPaused)},
		{name: "restore waiting for data", restore: true, blockOn: isCode(ndmp.NotifyDataRead)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{before: withVolumes})
			src := filepath.Join(f.dir, "vols", "vol1")
			manyFiles(t, src, 3000)
			populate(t, src)
			ctx := f.ctx
			if c.restore {
				// A complete backup to restore from.
				d := f.dialSlowDMA(t, func(*ndmp.Message) bool { return false })
				d.unblock()
				startHistBackup(t, f, d.c)
				if r := d.posts.wait(t, ndmp.NotifyDataHalted, time.Minute).Body.(*ndmp.NotifyDataHaltedPost).Reason; r != ndmp.DataHaltSuccessful {
					t.Fatalf("backup: %v", r)
				}
				_ = d.c.Conn().Close()
				waitUntil(10*time.Second, func() bool { return len(f.srv.Sessions()) == 0 })
			}
			if c.short > 0 {
				d0, _ := f.lib.Drive(0)
				if err := f.lib.SetShortTape(d0.Barcode(), c.short); err != nil {
					t.Fatal(err)
				}
			}
			before := goroutines()
			d := f.dialSlowDMA(t, c.blockOn)
			cl := d.c
			wantErr(t, "tape open", cl.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
			wantErr(t, "record size", cl.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
			win := uint64(math.MaxUint64)
			if c.window > 0 {
				win = c.window
			}
			wantErr(t, "window", cl.MoverSetWindow(ctx, 0, win), ndmp.NoErr)
			mode := ndmp.MoverModeRead
			if c.restore {
				mode = ndmp.MoverModeWrite
			}
			if _, err := cl.MoverListen(ctx, mode, ndmp.AddrLocal); err != nil {
				t.Fatal(err)
			}
			wantErr(t, "data connect", cl.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
			if c.blockOn != nil {
				if c.restore {
					wantErr(t, "start recover", cl.DataStartRecover(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol2"}}, nil), ndmp.NoErr)
				} else {
					env := []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}, {Name: "LEVEL", Value: "0"}}
					if c.hist {
						env = append(env, ndmp.Pval{Name: "HIST", Value: "Y"})
					}
					wantErr(t, "start", cl.DataStartBackup(ctx, "dump", env), ndmp.NoErr)
				}
				stops := c.hist || c.window > 0 || c.short > 0 || c.restore
				if stops && !waitUntil(30*time.Second, d.blocked.Load) {
					t.Fatalf("the DMA never reached its stop post\n%s", f.logs.String())
				}
				ds := f.srv.Sessions()
				if len(ds) != 1 || ds[0].DataState != "NDMP_DATA_STATE_ACTIVE" {
					t.Fatalf("not in the middle of the operation: %+v", ds)
				}
				if c.window > 0 || c.short > 0 {
					if ds[0].MoverState != "NDMP_MOVER_STATE_PAUSED" {
						t.Fatalf("mover not paused: %+v", ds[0])
					}
				}
			}
			// Abrupt close: no CONNECT_CLOSE, the socket just goes away.
			_ = cl.Conn().NetConn().Close()
			d.unblock()
			assertCleanAfterDisconnect(t, f, before)
		})
	}
}

// N13: a DMA that stops reading posts while the backup produces file
// history (the queue full, the post writer blocked on the socket) cannot
// stall a kill: Kill returns, the session ends and releases everything.
func TestKillWithStuckDMA(t *testing.T) {
	f := newFixture(t, fixtureOpts{before: withVolumes})
	manyFiles(t, filepath.Join(f.dir, "vols", "vol1"), 20000)
	before := goroutines()
	d := f.dialSlowDMA(t, nil)
	startHistBackup(t, f, d.c)
	if !waitUntil(30*time.Second, func() bool { return f.srv.Stats().FHQueueDepth >= FHQueueLength }) {
		t.Fatalf("queue never filled: %+v", f.srv.Stats())
	}
	list := f.srv.Sessions()
	if len(list) != 1 {
		t.Fatalf("sessions %+v", list)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f.srv.Kill(list[0].ID) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Kill blocked by a DMA that does not read")
	}
	t.Logf("Kill returned after %v", time.Since(start))
	// The DMA itself is still stuck in its handler (it never reads the
	// end of its connection); release it so its goroutines end too.
	d.unblock()
	assertCleanAfterDisconnect(t, f, before)
	if st := f.srv.Stats(); st.FHQueueDepth != 0 {
		t.Errorf("queue depth %d after the kill", st.FHQueueDepth)
	}
}
