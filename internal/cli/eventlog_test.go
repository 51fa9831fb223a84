package cli

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// halts collects the NOTIFY_DATA_HALTED and NOTIFY_MOVER_HALTED posts of a
// session.
type halts chan ndmp.Body

func (h halts) handler(_ context.Context, m *ndmp.Message) {
	switch m.Body.(type) {
	case *ndmp.NotifyDataHaltedPost, *ndmp.NotifyMoverHaltedPost:
		h <- m.Body
	}
}

// backup runs one local dump of path to the session's open tape.
func backup(t *testing.T, ctx context.Context, c *ndmp.Client, h halts, path string) {
	t.Helper()
	steps := []struct {
		name string
		err  error
	}{
		{"mover record size", c.MoverSetRecordSize(ctx, 64<<10)},
		{"mover window", c.MoverSetWindow(ctx, 0, math.MaxUint64)},
	}
	for _, s := range steps {
		if s.err != nil {
			t.Fatalf("%s: %v", s.name, s.err)
		}
	}
	if _, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrLocal); err != nil {
		t.Fatalf("mover listen: %v", err)
	}
	if err := c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}); err != nil {
		t.Fatalf("data connect: %v", err)
	}
	if err := c.DataStartBackup(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: path}, {Name: "LEVEL", Value: "0"}}); err != nil {
		t.Fatalf("start backup: %v", err)
	}
	// A DMA waits for both halts: the mover may still be writing buffered
	// records to tape after the data service has ended.
	for dataDone, moverDone := false, false; !dataDone || !moverDone; {
		select {
		case b := <-h:
			switch p := b.(type) {
			case *ndmp.NotifyDataHaltedPost:
				if p.Reason != ndmp.DataHaltSuccessful {
					t.Fatalf("backup halted: %v", p.Reason)
				}
				dataDone = true
			case *ndmp.NotifyMoverHaltedPost:
				if p.Reason != ndmp.MoverHaltConnectClosed {
					t.Fatalf("mover halted: %v", p.Reason)
				}
				moverDone = true
			}
		case <-time.After(testutil.HangGuard):
			t.Fatal("backup did not halt")
		}
	}
}

// dumpEvents returns the dmp lines of the current event log.
func dumpEvents(t *testing.T, n *testNode) []eventlog.Entry {
	t.Helper()
	var out []eventlog.Entry
	for _, l := range eventlog.Lines([]byte(n.ok("rdfile", "/etc/log/backup"))) {
		e, err := eventlog.Parse(l)
		if err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if e.Type == eventlog.TypeDump {
			out = append(out, e)
		}
	}
	return out
}

// M1-M3 and the daemon's wiring: a dump driven over NDMP writes its Start
// and End lines into the event log the daemon opened, readable with
// rdfile; with backup.log.enable off the next dump writes none. probe
// shows the finished operation's byte counts and /metrics counts them.
func TestNDMPDumpWritesEventLog(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	vol := filepath.Join(t.TempDir(), "vol1")
	if err := os.MkdirAll(filepath.Join(vol, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, body := range []string{"alpha", "beta", strings.Repeat("gamma", 10000)} {
		if err := os.WriteFile(filepath.Join(vol, "docs", string(rune('a'+i))+".txt"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n.ok("vserver", "create", "-vserver", "vs1")
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "vol1", "-path", vol, "-snapshot-provider", "copy")

	h := make(halts, 4)
	c := n.ndmpSessionWith(ctx, &ndmp.ClientConfig{PostHandler: h.handler})
	if err := c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode); err != nil {
		t.Fatalf("tape open: %v", err)
	}
	backup(t, ctx, c, h, "/vs1/vol1")

	evs := dumpEvents(t, n)
	var start, end *eventlog.Entry
	for i := range evs {
		switch evs[i].Event {
		case eventlog.EventStart:
			start = &evs[i]
		case eventlog.EventEnd:
			end = &evs[i]
		}
	}
	if start == nil || end == nil || start.Info != "level 0, NDMP" || !strings.HasPrefix(start.Identifier, "/vs1/vol1") ||
		end.Identifier != start.Identifier || !strings.HasSuffix(end.Info, " KB") {
		t.Fatalf("dump lines %+v", evs)
	}

	probe := n.ok("vserver", "services", "ndmp", "probe")
	if !strings.Contains(probe, "Data Operation: ") || strings.Contains(probe, "Data Bytes Processed: 0\n") ||
		!strings.Contains(probe, "Tape Device: nrst0l") {
		t.Fatalf("probe after the backup:\n%s", probe)
	}

	// The byte counters of /metrics and the drive's statistics saw it.
	m, _ := n.scrape(n.user, n.pass)
	if m["tapestry_ndmp_data_bytes_total"] < 100<<10 || m["tapestry_ndmp_mover_bytes_total"] < 100<<10 ||
		m["tapestry_tape_bytes_total,device=st0,direction=write"] < 100<<10 || m["tapestry_tape_records_total,device=st0,direction=write"] < 1 {
		t.Fatalf("metrics after a 128 KB dump: data %v mover %v tape %v records %v", m["tapestry_ndmp_data_bytes_total"],
			m["tapestry_ndmp_mover_bytes_total"], m["tapestry_tape_bytes_total,device=st0,direction=write"],
			m["tapestry_tape_records_total,device=st0,direction=write"])
	}

	// With logging off the next dump leaves no line.
	n.ok("options", "backup.log.enable", "off")
	if err := c.DataStop(ctx); err != nil {
		t.Fatalf("data stop: %v", err)
	}
	if err := c.MoverStop(ctx); err != nil {
		t.Fatalf("mover stop: %v", err)
	}
	backup(t, ctx, c, h, "/vs1/vol1")
	if after := dumpEvents(t, n); len(after) != len(evs) {
		t.Fatalf("dump with logging off wrote %d lines", len(after)-len(evs))
	}
}
