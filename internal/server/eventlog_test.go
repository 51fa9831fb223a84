package server

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// evOp is one operation of TestEventLogThroughServer.
type evOp struct {
	restore bool
	env     []ndmp.Pval
	abort   bool // DATA_ABORT once the operation runs
}

// runEvOp runs op in session c (tape nrst0l open) and returns the halt
// reason; a start that is refused returns the error instead.
func runEvOp(t *testing.T, f *fixture, c *ndmp.Client, ps *posts, dataRead *bool, op evOp) (ndmp.DataHaltReason, error) {
	t.Helper()
	ctx := f.ctx
	mode := ndmp.MoverModeRead
	if op.restore {
		mode = ndmp.MoverModeWrite
		if _, err := c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
			t.Fatal(err)
		}
	}
	win := uint64(math.MaxUint64)
	if op.abort && !op.restore {
		win = 2 * recSize // the mover pauses: the backup is surely running
	}
	wantErr(t, "window", c.MoverSetWindow(ctx, 0, win), ndmp.NoErr)
	if _, err := c.MoverListen(ctx, mode, ndmp.AddrLocal); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
	*dataRead = !op.abort
	var err error
	if op.restore {
		err = c.DataStartRecover(ctx, "dump", op.env, nil)
	} else {
		err = c.DataStartBackup(ctx, "dump", op.env)
	}
	if err != nil {
		_ = c.DataAbort(ctx)
		_ = c.MoverAbort(ctx)
		_ = c.DataStop(ctx)
		_ = c.MoverStop(ctx)
		return 0, err
	}
	if op.abort {
		if op.restore {
			ps.wait(t, ndmp.NotifyDataRead, 30*time.Second)
		} else {
			ps.wait(t, ndmp.NotifyMoverPaused, 30*time.Second)
		}
		wantErr(t, "data abort", c.DataAbort(ctx), ndmp.NoErr)
	}
	r := ps.wait(t, ndmp.NotifyDataHalted, time.Minute).Body.(*ndmp.NotifyDataHaltedPost).Reason
	if op.abort {
		_ = c.MoverAbort(ctx)
	} else {
		ps.wait(t, ndmp.NotifyMoverHalted, 10*time.Second)
	}
	wantErr(t, "data stop", c.DataStop(ctx), ndmp.NoErr)
	wantErr(t, "mover stop", c.MoverStop(ctx), ndmp.NoErr)
	return r, nil
}

// evLogin opens a session that answers NOTIFY_DATA_READ with MOVER_READ
// while *dataRead is true, with the tape open.
func evLogin(t *testing.T, f *fixture) (*ndmp.Client, *posts, *bool) {
	t.Helper()
	ps := newPosts()
	dataRead := new(bool)
	var c *ndmp.Client
	c = f.login(&ndmp.ClientConfig{PostHandler: func(ctx context.Context, m *ndmp.Message) {
		if p, ok := m.Body.(*ndmp.NotifyDataReadPost); ok && *dataRead {
			_ = c.MoverRead(ctx, p.Offset, p.Length)
		}
		ps.handler(ctx, m)
	}})
	wantErr(t, "tape open", c.TapeOpen(f.ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "record size", c.MoverSetRecordSize(f.ctx, recSize), ndmp.NoErr)
	return c, ps, dataRead
}

// readEvents parses every line of <dir>/backup with eventlog.Parse.
func readEvents(t *testing.T, dir string) []eventlog.Entry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, eventlog.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var es []eventlog.Entry
	for _, l := range eventlog.Lines(b) {
		e, err := eventlog.Parse(l)
		if err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if e.String() != l {
			t.Errorf("line %q prints back as %q", l, e.String())
		}
		es = append(es, e)
	}
	return es
}

// M1, M2: backups and restores through the server write the backup event
// log: a level 0 and a level 1 backup, a restore, a backup stopped with
// DATA_ABORT, a backup of a missing path, a restore stopped with
// DATA_ABORT and a restore into a missing directory give every dump event (Start, Options, Snapshot, Base_dump,
// Tape_open, Tape_close, Phase-change, Error, Abort, End) and every
// restore event (the same less Snapshot and Base_dump), each line in the
// documented format (eventlog.Parse reads it back unchanged). A session
// of an SVM whose backup-log-enable is off writes nothing.
func TestEventLogThroughServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ev, err := eventlog.Open(dir, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	f := newFixture(t, fixtureOpts{before: withVolumes, events: ev})
	src := filepath.Join(f.dir, "vols", "vol1")
	populate(t, src)
	manyFiles(t, src, 2000)
	if err := os.WriteFile(filepath.Join(f.dir, "vols", "vol2", "plainfile"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, ps, dataRead := evLogin(t, f)
	fs := func(p string) ndmp.Pval { return ndmp.Pval{Name: "FILESYSTEM", Value: p} }
	steps := []struct {
		name string
		op   evOp
		want ndmp.DataHaltReason
	}{
		{"level 0", evOp{env: []ndmp.Pval{fs("/vs1/vol1"), {Name: "LEVEL", Value: "0"}, {Name: "UPDATE", Value: "Y"}}}, ndmp.DataHaltSuccessful},
		{"level 1", evOp{env: []ndmp.Pval{fs("/vs1/vol1"), {Name: "LEVEL", Value: "1"}, {Name: "UPDATE", Value: "Y"}}}, ndmp.DataHaltSuccessful},
		{"aborted backup", evOp{env: []ndmp.Pval{fs("/vs1/vol1"), {Name: "LEVEL", Value: "0"}}, abort: true}, ndmp.DataHaltAborted},
		{"missing path", evOp{env: []ndmp.Pval{fs("/vs1/vol1/no/such/dir")}}, ndmp.DataHaltInternalError},
		{"restore", evOp{restore: true, env: []ndmp.Pval{fs("/vs1/vol2")}}, ndmp.DataHaltSuccessful},
		{"aborted restore", evOp{restore: true, env: []ndmp.Pval{fs("/vs1/vol2")}, abort: true}, ndmp.DataHaltAborted},
		// A missing destination directory is created (issue 17 item 5);
		// one that is a file fails.
		{"restore to a missing directory", evOp{restore: true, env: []ndmp.Pval{fs("/vs1/vol2/no/such/dir")}}, ndmp.DataHaltSuccessful},
		{"restore onto a file", evOp{restore: true, env: []ndmp.Pval{fs("/vs1/vol2/plainfile/dir")}}, ndmp.DataHaltInternalError},
	}
	for _, s := range steps {
		r, err := runEvOp(t, f, c, ps, dataRead, s.op)
		if err != nil {
			t.Logf("%s: start refused: %v", s.name, err)
			if s.name != "missing path" {
				t.Fatalf("%s: %v", s.name, err)
			}
			continue
		}
		if s.name == "missing path" {
			if r == ndmp.DataHaltSuccessful {
				t.Fatalf("%s: halted %v", s.name, r)
			}
			continue
		}
		if r != s.want {
			t.Fatalf("%s: halted %v, want %v\n%s", s.name, r, s.want, f.logs.String())
		}
	}
	es := readEvents(t, dir)
	seen := map[string]map[eventlog.Event]int{"dmp": {}, "rst": {}}
	var text strings.Builder
	for _, e := range es {
		fmt.Fprintln(&text, e.String())
		if m := seen[string(e.Type)]; m != nil {
			m[e.Event]++
		}
	}
	want := map[string][]eventlog.Event{
		"dmp": {eventlog.EventStart, eventlog.EventOptions, eventlog.EventSnapshot, eventlog.EventBaseDump, eventlog.EventTapeOpen,
			eventlog.EventTapeClose, eventlog.EventPhaseChange, eventlog.EventError, eventlog.EventAbort, eventlog.EventEnd},
		"rst": {eventlog.EventStart, eventlog.EventOptions, eventlog.EventTapeOpen, eventlog.EventTapeClose, eventlog.EventPhaseChange,
			eventlog.EventError, eventlog.EventAbort, eventlog.EventEnd},
	}
	for typ, evs := range want {
		for _, e := range evs {
			if seen[typ][e] == 0 {
				t.Errorf("no %s %s line", typ, e)
			}
		}
	}
	// The details the server adds: the drive and the DMA's options.
	for _, e := range es {
		switch e.Event {
		case eventlog.EventTapeOpen, eventlog.EventTapeClose:
			if e.Info != "nrst0l" {
				t.Errorf("%s: device %q, want nrst0l", e.Event, e.Info)
			}
		case eventlog.EventOptions:
			if !strings.Contains(e.Info, "FILESYSTEM") {
				t.Errorf("Options without FILESYSTEM: %q", e.Info)
			}
		}
	}
	// A DATA_ABORT is an Abort, not an Error: the Error lines are the
	// missing path's and the file in the way of the destination's.
	for _, e := range es {
		if e.Event == eventlog.EventError && !strings.Contains(e.Info, "no such file or directory") && !strings.Contains(e.Info, "not a directory") {
			t.Errorf("unexpected Error line %q", e)
		}
	}
	// Each dump has its own identifier, and all lines of one dump carry it.
	ids := map[string]bool{}
	for _, e := range es {
		if e.Type == eventlog.TypeDump && e.Event == eventlog.EventStart {
			if ids[e.Identifier] {
				t.Errorf("two dumps named %s", e.Identifier)
			}
			ids[e.Identifier] = true
		}
	}
	// Every dump that opened the tape closed it.
	if seen["dmp"][eventlog.EventTapeOpen] != seen["dmp"][eventlog.EventTapeClose] ||
		seen["rst"][eventlog.EventTapeOpen] != seen["rst"][eventlog.EventTapeClose] {
		t.Errorf("Tape_open and Tape_close do not pair up: %v", seen)
	}
	if t.Failed() {
		t.Fatalf("event log:\n%s", text.String())
	}
	t.Logf("event log:\n%s", text.String())

	// backup-log-enable off for the session's SVM (the cluster's, the
	// node-management LIF's owner): a backup writes no line; on again: it
	// does.
	_ = c.Conn().Close()
	waitUntil(10*time.Second, func() bool { return len(f.srv.Sessions()) == 0 })
	for _, on := range []bool{false, true} {
		if _, err := ModifySVMSettings(f.ctx, f.store, f.adminSVM, func(s *SVMSettings) error {
			s.BackupLogEnable = on
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		n := len(readEvents(t, dir))
		c, ps, dataRead := evLogin(t, f)
		if r, err := runEvOp(t, f, c, ps, dataRead, evOp{env: []ndmp.Pval{fs("/vs1/vol1"), {Name: "LEVEL", Value: "0"}}}); err != nil || r != ndmp.DataHaltSuccessful {
			t.Fatalf("backup with backup-log-enable %v: %v %v", on, r, err)
		}
		_ = c.Conn().Close()
		waitUntil(10*time.Second, func() bool { return len(f.srv.Sessions()) == 0 })
		added := readEvents(t, dir)[n:]
		if on != (len(added) > 0) {
			t.Fatalf("backup-log-enable %v: %d new lines %v", on, len(added), added)
		}
	}
}
