package server

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// populate writes a small tree into dir.
func populate(t testing.TB, dir string) {
	t.Helper()
	for i := 0; i < 20; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%4), fmt.Sprintf("e%d", i%3))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte(fmt.Sprintf("file %d ", i)), 100*i+1)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d.txt", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("d0/e0", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
}

// tree lists dir as "path mode size content-hash" lines.
func tree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." || rel == "restore_symboltable" {
			return nil
		}
		if rel == ".snapshot" { // the snapshot directory is never backed up
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %d %x", len(b), b[:min(len(b), 16)])
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// D1, N14, N16, draft 3.5: a local backup (DATA and MOVER in one session
// over a LOCAL data connection) with the dump engine to a virtual drive,
// with file history posts, then a restore to another volume driven by
// NOTIFY_DATA_READ, gives back the same tree.
func TestLocalBackupRestore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	src := filepath.Join(f.dir, "vols", "vol1")
	populate(t, src)
	ps := newPosts()
	c := loginReader(f, ps.handler)
	ctx := f.ctx
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	wantErr(t, "window", c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
	wantErr(t, "start before connect", c.DataStartBackup(ctx, "dump", nil), ndmp.ErrIllegalState)
	if _, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrLocal); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "data connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
	ds, _ := c.DataGetState(ctx)
	if ds.State != ndmp.DataStateConnected {
		t.Fatalf("data state %+v", ds)
	}
	wantErr(t, "bad butype", c.DataStartBackup(ctx, "tar", nil), ndmp.ErrIllegalArgs)
	wantErr(t, "no FILESYSTEM", c.DataStartBackup(ctx, "dump", nil), ndmp.ErrIllegalArgs)
	wantErr(t, "unknown volume", c.DataStartBackup(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/nosuch"}}), ndmp.ErrIllegalArgs)
	waitFor(t, func() bool { return containsLog(f, "Could not obtain vol ref for Volume nosuch") })
	env := []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}, {Name: "HIST", Value: "T"}, {Name: "LEVEL", Value: "0"}}
	wantErr(t, "start backup", c.DataStartBackup(ctx, "dump", env), ndmp.NoErr)
	dh := ps.wait(t, ndmp.NotifyDataHalted, 60*time.Second).Body.(*ndmp.NotifyDataHaltedPost)
	if dh.Reason != ndmp.DataHaltSuccessful {
		t.Fatalf("data halted %v\n%s", dh.Reason, f.logs.String())
	}
	mh := ps.wait(t, ndmp.NotifyMoverHalted, 10*time.Second).Body.(*ndmp.NotifyMoverHaltedPost)
	if mh.Reason != ndmp.MoverHaltConnectClosed {
		t.Fatalf("mover halted %v", mh.Reason)
	}
	benv, err := c.DataGetEnv(ctx)
	if err != nil || ndmp.Env(benv)["DUMP_DATE"] == "" {
		t.Fatalf("env after backup %+v %v", benv, err)
	}
	ds, _ = c.DataGetState(ctx)
	ms, _ := c.MoverGetState(ctx)
	if ds.BytesProcessed == 0 || ms.BytesMoved != ds.BytesProcessed || ds.Operation != ndmp.DataOpBackup {
		t.Fatalf("data %+v mover %+v", ds, ms)
	}
	var dirs, nodes int
	ps.mu.Lock()
	for _, m := range ps.ms {
		switch b := m.Body.(type) {
		case *ndmp.FHAddDirPost:
			dirs += len(b.Dirs)
		case *ndmp.FHAddNodePost:
			nodes += len(b.Nodes)
		}
	}
	ps.mu.Unlock()
	if dirs < 20 || nodes < 20 {
		t.Errorf("file history: %d dir entries, %d nodes", dirs, nodes)
	}
	wantErr(t, "data stop", c.DataStop(ctx), ndmp.NoErr)
	wantErr(t, "mover stop", c.MoverStop(ctx), ndmp.NoErr)
	if _, err := c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
		t.Fatal(err)
	}

	// Restore into vol2.
	wantErr(t, "window", c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
	if _, err := c.MoverListen(ctx, ndmp.MoverModeWrite, ndmp.AddrLocal); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "data connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
	wantErr(t, "start recover", c.DataStartRecover(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol2"}}, nil), ndmp.NoErr)
	dh = ps.wait(t, ndmp.NotifyDataHalted, 60*time.Second).Body.(*ndmp.NotifyDataHaltedPost)
	if dh.Reason != ndmp.DataHaltSuccessful {
		t.Fatalf("restore halted %v\n%s", dh.Reason, f.logs.String())
	}
	want, got := tree(t, src), tree(t, filepath.Join(f.dir, "vols", "vol2"))
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("restored tree differs:\nwant %q\ngot  %q", want, got)
	}
	wantErr(t, "data stop", c.DataStop(ctx), ndmp.NoErr)
}

// DATA state table (draft 3.5): illegal requests per state, ABORT halts
// with ABORTED and NOTIFY_DATA_HALTED, LISTEN over TCP.
func TestDataStateTable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	ctx := f.ctx
	wantErr(t, "abort idle", c.DataAbort(ctx), ndmp.ErrIllegalState)
	wantErr(t, "stop idle", c.DataStop(ctx), ndmp.ErrIllegalState)
	_, err := c.DataGetEnv(ctx)
	wantErr(t, "env idle", err, ndmp.ErrIllegalState)
	_, err = c.DataListen(ctx, 123)
	wantErr(t, "listen bad type", err, ndmp.ErrIllegalArgs)
	a, err := c.DataListen(ctx, ndmp.AddrTCP)
	if err != nil || len(a.AddrPorts()) != 1 {
		t.Fatalf("listen %+v %v", a, err)
	}
	ds, _ := c.DataGetState(ctx)
	if ds.State != ndmp.DataStateListen || ds.HaltReason != ndmp.DataHaltNA {
		t.Fatalf("state %+v", ds)
	}
	_, err = c.DataListen(ctx, ndmp.AddrTCP)
	wantErr(t, "second listen", err, ndmp.ErrIllegalState)
	wantErr(t, "stop in listen", c.DataStop(ctx), ndmp.ErrIllegalState)
	wantErr(t, "start in listen", c.DataStartBackup(ctx, "dump", nil), ndmp.ErrIllegalState)
	wantErr(t, "abort", c.DataAbort(ctx), ndmp.NoErr)
	h := ps.wait(t, ndmp.NotifyDataHalted, 5*time.Second).Body.(*ndmp.NotifyDataHaltedPost)
	ds, _ = c.DataGetState(ctx)
	if h.Reason != ndmp.DataHaltAborted || ds.State != ndmp.DataStateHalted || ds.HaltReason != ndmp.DataHaltAborted {
		t.Fatalf("after abort %v %+v", h.Reason, ds)
	}
	wantErr(t, "stop", c.DataStop(ctx), ndmp.NoErr)
	ds, _ = c.DataGetState(ctx)
	if ds.State != ndmp.DataStateIdle {
		t.Fatalf("after stop %+v", ds)
	}
}

// D11 direct access recovery: with DIRECT=Y and the fh_info of a file from
// the backup's file history, the restore reads only that file's records
// through NOTIFY_DATA_READ / MOVER_READ.
func TestDirectAccessRecovery(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	src := filepath.Join(f.dir, "vols", "vol1")
	populate(t, src)
	ps := newPosts()
	var c *ndmp.Client
	var reads []ndmp.NotifyDataReadPost
	c = f.login(&ndmp.ClientConfig{PostHandler: func(ctx context.Context, m *ndmp.Message) {
		if p, ok := m.Body.(*ndmp.NotifyDataReadPost); ok {
			reads = append(reads, *p)
			if err := c.MoverRead(ctx, p.Offset, p.Length); err != nil {
				t.Errorf("MOVER_READ %+v: %v", p, err)
			}
		}
		ps.handler(ctx, m)
	}})
	ctx := f.ctx
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	wantErr(t, "window", c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
	if _, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrLocal); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
	wantErr(t, "backup", c.DataStartBackup(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}, {Name: "HIST", Value: "Y"}}), ndmp.NoErr)
	if r := ps.wait(t, ndmp.NotifyDataHalted, time.Minute).Body.(*ndmp.NotifyDataHaltedPost).Reason; r != ndmp.DataHaltSuccessful {
		t.Fatalf("backup %v", r)
	}
	ps.wait(t, ndmp.NotifyMoverHalted, 10*time.Second)
	// Find f13.txt's node and fh_info.
	ino := map[string]uint64{}
	fh := map[uint64]uint64{}
	ps.mu.Lock()
	for _, m := range ps.ms {
		switch b := m.Body.(type) {
		case *ndmp.FHAddDirPost:
			for _, d := range b.Dirs {
				ino[d.Name[0].UnixName] = d.Node
			}
		case *ndmp.FHAddNodePost:
			for _, n := range b.Nodes {
				fh[n.Node] = n.FHInfo
			}
		}
	}
	ps.mu.Unlock()
	node, ok := ino["f13.txt"]
	if !ok || fh[node] == 0 {
		t.Fatalf("no file history for f13.txt (%v, %v)", ok, fh[node])
	}
	wantErr(t, "data stop", c.DataStop(ctx), ndmp.NoErr)
	wantErr(t, "mover stop", c.MoverStop(ctx), ndmp.NoErr)
	if _, err := c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "window", c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
	if _, err := c.MoverListen(ctx, ndmp.MoverModeWrite, ndmp.AddrLocal); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
	nlist := []ndmp.Name{{OriginalPath: "/d1/e1/f13.txt", DestinationDir: "/vs1/vol2/d1/e1/f13.txt", Node: node, FHInfo: fh[node]}}
	wantErr(t, "recover", c.DataStartRecover(ctx, "dump", []ndmp.Pval{{Name: "DIRECT", Value: "Y"}}, nlist), ndmp.NoErr)
	if r := ps.wait(t, ndmp.NotifyDataHalted, time.Minute).Body.(*ndmp.NotifyDataHaltedPost).Reason; r != ndmp.DataHaltSuccessful {
		t.Fatalf("DAR restore %v\n%s", r, f.logs.String())
	}
	want, _ := os.ReadFile(filepath.Join(src, "d1/e1/f13.txt"))
	got, err := os.ReadFile(filepath.Join(f.dir, "vols", "vol2", "d1/e1/f13.txt"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("DAR restored file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "vols", "vol2", "d0")); err == nil {
		t.Fatal("DAR restored more than the named file")
	}
	if len(reads) == 0 || reads[0].Offset == 0 || reads[0].Length == math.MaxUint64 {
		t.Fatalf("data reads %+v, want positioned reads", reads)
	}
	var total uint64
	for _, r := range reads {
		total += r.Length
	}
	ds, _ := c.DataGetState(ctx)
	if total >= ds.BytesProcessed*4 && ds.BytesProcessed > 0 || total > 1<<20 {
		t.Fatalf("DAR read %d bytes in %d reads", total, len(reads))
	}
	t.Logf("DAR: %d reads, %d bytes", len(reads), total)
}

// D13/N12: a backup beyond the node's dump limit halts with the
// documented message in LOG_MESSAGE.
func TestBackupLimit(t *testing.T) {
	t.Parallel()
	lim := engine.NewDumpLimiter(1)
	release, err := lim.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	f := newFixture(t, fixtureOpts{before: withVolumes, limiter: lim})
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	ctx := f.ctx
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	if _, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrLocal); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
	wantErr(t, "backup", c.DataStartBackup(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}}), ndmp.NoErr)
	if r := ps.wait(t, ndmp.NotifyDataHalted, 10*time.Second).Body.(*ndmp.NotifyDataHaltedPost).Reason; r != ndmp.DataHaltInternalError {
		t.Fatalf("halt %v", r)
	}
	found := false
	for !found {
		m := ps.wait(t, ndmp.LogMessage, 5*time.Second).Body.(*ndmp.LogMessagePost)
		found = m.Entry == "Maximum number of allowed dumps or restores (1) in progress" && m.LogType == ndmp.LogError
	}
}

// Progress of a running backup is posted as LOG_MESSAGE at least every
// progress interval; CONNECT_CLOSE then ends the session.
func TestProgressAndConnectClose(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes, progress: time.Millisecond})
	src := filepath.Join(f.dir, "vols", "vol1")
	for i := 0; i < 16; i++ {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d", i)), pattern(1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	ctx := f.ctx
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	if _, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrLocal); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
	wantErr(t, "backup", c.DataStartBackup(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}}), ndmp.NoErr)
	ps.wait(t, ndmp.NotifyDataHalted, time.Minute)
	progress := 0
	ps.mu.Lock()
	for _, m := range ps.ms {
		if l, ok := m.Body.(*ndmp.LogMessagePost); ok && strings.HasPrefix(l.Entry, "backup in progress: ") {
			progress++
		}
	}
	ps.mu.Unlock()
	if progress == 0 {
		t.Fatal("no progress LOG_MESSAGE during the backup")
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(f.srv.Sessions()) == 0 })
}

// N13: killing a session in the middle of a backup (the mover paused at
// the end of its window, the dump engine blocked on the data connection)
// aborts everything, frees the drive and leaves no goroutine behind.
func TestKillDuringBackup(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	src := filepath.Join(f.dir, "vols", "vol1")
	for i := 0; i < 8; i++ {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d", i)), pattern(1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := goroutines()
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	ctx := f.ctx
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	wantErr(t, "window", c.MoverSetWindow(ctx, 0, 2*recSize), ndmp.NoErr)
	if _, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrLocal); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
	wantErr(t, "backup", c.DataStartBackup(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}}), ndmp.NoErr)
	if p := ps.wait(t, ndmp.NotifyMoverPaused, 30*time.Second).Body.(*ndmp.NotifyMoverPausedPost); p.Reason != ndmp.MoverPauseEOW {
		t.Fatalf("pause %+v", p)
	}
	if ds, _ := c.DataGetState(ctx); ds.State != ndmp.DataStateActive {
		t.Fatalf("data state %+v", ds)
	}
	list := f.srv.Sessions()
	if len(list) != 1 || list[0].DataState != "NDMP_DATA_STATE_ACTIVE" || list[0].MoverState != "NDMP_MOVER_STATE_PAUSED" {
		t.Fatalf("sessions %+v", list)
	}
	if err := f.srv.Kill(list[0].ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Conn().Done():
	case <-time.After(hangGuard):
		t.Fatal("killed session still open")
	}
	waitFor(t, func() bool { return len(f.srv.Sessions()) == 0 })
	c2 := f.login(nil)
	wantErr(t, "drive free again", c2.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	c2.Conn().Close()
	waitFor(t, func() bool { return len(leaked(t, before)) == 0 })
}

// M1: a backup and a restore through NDMP write Start and End lines to the
// backup event log.
func TestEventLogLines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ev, err := eventlog.Open(dir, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	f := newFixture(t, fixtureOpts{before: withVolumes, events: ev})
	populate(t, filepath.Join(f.dir, "vols", "vol1"))
	ps := newPosts()
	c := loginReader(f, ps.handler)
	ctx := f.ctx
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	for _, restore := range []bool{false, true} {
		mode := ndmp.MoverModeRead
		if restore {
			mode = ndmp.MoverModeWrite
			if _, err := c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
				t.Fatal(err)
			}
		}
		wantErr(t, "window", c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
		if _, err := c.MoverListen(ctx, mode, ndmp.AddrLocal); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
		if restore {
			wantErr(t, "recover", c.DataStartRecover(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol2"}}, nil), ndmp.NoErr)
		} else {
			wantErr(t, "backup", c.DataStartBackup(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}}), ndmp.NoErr)
		}
		if r := ps.wait(t, ndmp.NotifyDataHalted, time.Minute).Body.(*ndmp.NotifyDataHaltedPost).Reason; r != ndmp.DataHaltSuccessful {
			t.Fatalf("restore=%v: %v", restore, r)
		}
		ps.wait(t, ndmp.NotifyMoverHalted, 10*time.Second)
		wantErr(t, "data stop", c.DataStop(ctx), ndmp.NoErr)
		wantErr(t, "mover stop", c.MoverStop(ctx), ndmp.NoErr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "backup"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{"dmp ", "/vs1/vol1/", " Start (level 0, NDMP)", " End (", "rst ", "/vs1/vol2"} {
		if !strings.Contains(text, want) {
			t.Errorf("event log lacks %q:\n%s", want, text)
		}
	}
}
