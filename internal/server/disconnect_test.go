package server

import (
	"bytes"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
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
func leaked(t testing.TB, before map[string]string) []string {
	label := testLabel(t)
	var out []string
	for id, st := range goroutines() {
		if _, ok := before[id]; ok || !strings.Contains(st, "github.com/tapestry-ndmp/tapestry/") {
			continue
		}
		if strings.Contains(st, "testing.tRunner") || strings.Contains(st, "server.goroutines(") {
			continue
		}
		// Only this test's: tests run in parallel.
		head, _, _ := strings.Cut(st, "\n")
		if !strings.Contains(head, label) {
			continue
		}
		out = append(out, st)
	}
	sort.Strings(out)
	return out
}

// moduleStacks returns the stacks of the goroutines that run code of this
// module, for the message of a test that failed by timing out: they show
// where a hung job waits.
func moduleStacks() string {
	var out []string
	for _, st := range goroutines() {
		if strings.Contains(st, "github.com/tapestry-ndmp/tapestry/") {
			out = append(out, st)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n\n")
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
	if !waitUntil(15*time.Second, func() bool { return len(leaked(t, before)) == 0 }) {
		t.Fatalf("goroutines left after the disconnect:\n%s", strings.Join(leaked(t, before), "\n\n"))
	}
}

// lastPhase returns the phase of the last dump Phase-change line of the
// event log in dir.
func lastPhase(t *testing.T, dir string) string {
	t.Helper()
	phase := ""
	for _, e := range readEvents(t, dir) {
		if e.Type == eventlog.TypeDump && e.Event == eventlog.EventPhaseChange {
			phase = e.Info
		}
	}
	return phase
}

// N13, N18, draft "NDMP connection closure": the DMA's control connection
// closed abruptly at each point of a backup and a restore. Every time the
// session ends, the drive is released, the backup snapshot is deleted and
// every goroutine of the session ends. The points: after the data
// connection but before DATA_START; right after DATA_START_BACKUP (phase I
// or II); with the mover paused at the end of its window while the dump
// writes directories (phase III) and while it writes files (phase IV), the
// phase read from the event log; with the mover paused at the end of the
// medium; and a restore waiting for the data it asked for with
// NOTIFY_DATA_READ. File history (HIST=Y) flows in the backup cases.
//
// The LOCAL data connection buffers localPipeSize bytes, so when the mover
// pauses at the end of its window the dump has written between the window
// and the window plus that buffer and what the engine holds itself (its
// image writer keeps up to three chunks of just over 1 MiB, allowed for as
// engineHold). The data set and the windows are
// chosen from these bounds, not from timing: phase III (the directories,
// about dirEntry bytes a file) is longer than the small window plus the
// slack, and phase IV (one header record a file) starts before the large
// window and goes on past it plus the slack.
//
// The two cases that pause in phase III and IV (20,000 files each, the
// longest of the package) are tests of their own, so that they start
// among the first of the parallel tests instead of after all of them.
func TestDisconnectAtEveryPhase(t *testing.T) {
	t.Parallel()
	testDisconnectAt(t, func(phase string) bool { return phase == "" })
}

// TestDisconnectAtEveryPhaseIII is the phase III case of
// TestDisconnectAtEveryPhase.
func TestDisconnectAtEveryPhaseIII(t *testing.T) {
	t.Parallel()
	testDisconnectAt(t, func(phase string) bool { return phase == "III" })
}

// TestDisconnectAtEveryPhaseIV is the phase IV case of
// TestDisconnectAtEveryPhase.
func TestDisconnectAtEveryPhaseIV(t *testing.T) {
	t.Parallel()
	testDisconnectAt(t, func(phase string) bool { return phase == "IV" })
}

// testDisconnectAt runs the cases of TestDisconnectAtEveryPhase whose
// pause phase pick accepts, in parallel if there are several.
func testDisconnectAt(t *testing.T, pick func(phase string) bool) {
	const (
		files      = 20000 // in the cases that pause in phase III or IV
		fewFiles   = 1500  // in the others
		dirEntry   = 256   // a longName entry: 252 bytes, two to a 512-byte block
		inodeRec   = 1024  // bytes of a file's header record in phase IV
		engineHold = 4 << 20
		slack      = localPipeSize + engineHold
		winIII     = 4 * recSize
		winIV      = 1000 * recSize
	)
	if winIII+slack >= files*dirEntry || winIV <= files*dirEntry+slack || winIV+slack >= files*(dirEntry+inodeRec) {
		t.Fatalf("data set of %d files does not fit the bounds of a %d-byte pipe", files, localPipeSize)
	}
	type tc struct {
		name    string
		start   bool
		window  uint64 // mover window (0: all)
		short   int64  // cartridge capacity in bytes (0: normal)
		phase   string // dump phase when the mover pauses
		restore bool
	}
	cases := []tc{
		{name: "before DATA_START"},
		{name: "phase I-II right after DATA_START", start: true},
		{name: "phase III mover paused at end of window", start: true, window: winIII, phase: "III"},
		{name: "phase IV mover paused at end of window", start: true, window: winIV, phase: "IV"},
		{name: "mover paused at end of medium", start: true, short: 256 << 10},
		{name: "restore waiting for data", start: true, restore: true},
	}
	cases = slices.DeleteFunc(cases, func(c tc) bool { return !pick(c.phase) })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(cases) > 1 {
				t.Parallel()
			}
			logDir := t.TempDir()
			ev, err := eventlog.Open(logDir, eventlog.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ev.Close()
			f := newFixture(t, fixtureOpts{before: withVolumes, events: ev})
			src := filepath.Join(f.dir, "vols", "vol1")
			if c.phase != "" {
				manyFiles(t, src, files)
			} else {
				manyFiles(t, src, fewFiles)
			}
			populate(t, src)
			ctx := f.ctx
			if c.restore {
				// A complete backup to restore from.
				d := f.dialSlowDMA(t, func(*ndmp.Message) bool { return false })
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
			stopAt := ndmp.NotifyMoverPaused
			if c.restore {
				stopAt = ndmp.NotifyDataRead
			}
			d := f.dialSlowDMA(t, func(m *ndmp.Message) bool { return m.Header.MessageCode == stopAt })
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
			if c.start {
				if c.restore {
					wantErr(t, "start recover", cl.DataStartRecover(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol2"}}, nil), ndmp.NoErr)
				} else {
					env := []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}, {Name: "LEVEL", Value: "0"}, {Name: "HIST", Value: "Y"}}
					wantErr(t, "start", cl.DataStartBackup(ctx, "dump", env), ndmp.NoErr)
				}
			}
			if c.window > 0 || c.short > 0 || c.restore {
				// The operation waits for the DMA: it is surely running.
				if !d.waitStopped(t) {
					t.Fatalf("the DMA never got %v\n%s", stopAt, f.logs.String())
				}
				ds := f.srv.Sessions()
				if len(ds) != 1 || ds[0].DataState != "NDMP_DATA_STATE_ACTIVE" {
					t.Fatalf("not in the middle of the operation: %+v", ds)
				}
				if !c.restore && ds[0].MoverState != "NDMP_MOVER_STATE_PAUSED" {
					t.Fatalf("mover not paused: %+v", ds[0])
				}
				if c.phase != "" {
					if p := lastPhase(t, logDir); p != c.phase {
						t.Fatalf("dump in phase %q at the pause, want %q", p, c.phase)
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
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	manyFilesIn(t, filepath.Join(f.dir, "vols", "vol1"), fhFiles, fhPerDir)
	before := goroutines()
	d := f.dialSlowDMA(t, nil)
	startHistBackup(t, f, d.c)
	f.waitFHFull(t, "Stats", func() (int, bool) { d := f.srv.Stats().FHQueueDepth; return d, d == fhFull })
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
	case <-time.After(hangGuard):
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
