package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tapestry-ndmp/tapestry/internal/metrics"
	"github.com/tapestry-ndmp/tapestry/internal/server"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// scrape returns the unlabelled tapestry_ values of one /metrics answer.
func scrape(t *testing.T, c *metrics.Collector) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			if g := m.GetGauge(); g != nil {
				out[name] = g.GetValue()
			} else if c := m.GetCounter(); c != nil {
				out[name] = c.GetValue()
			}
		}
	}
	return out
}

// N14: a HIST=Y backup through a real server with a DMA that stops
// reading file history makes the backup wait instead of buffering: the
// queue fills to its length, producers stall, and Server.Stats,
// SessionInfo and /metrics (tapestry_fh_queue_depth,
// tapestry_fh_stalls_total) show it. Once the DMA reads again the backup
// succeeds with every entry posted, the depth is back to 0 and
// tapestry_mover_records_total counts the records the mover wrote.
//
// Issue 11: the test waits for the full queue itself (a state that lasts
// while the DMA does not read), not for a moment of it within a deadline:
// it used to give up after 30 s on a loaded machine while the server was
// still copying the 20,000 files it needed for its snapshot.
func TestFileHistoryBackPressureMetrics(t *testing.T) {
	t.Parallel()
	const files = server.FHFiles
	b := server.StartSlowBackup(t)
	srv := b.Server
	before := srv.Stats()
	c := metrics.New(metrics.Sources{Sessions: srv.Sessions, MaxSessions: srv.MaxSessions, Stats: srv.Stats})
	full := server.FHQueueLength + 1 // the queue full and the sender waiting
	var m map[string]float64
	b.WaitFull("/metrics", func() (int, bool) {
		m = scrape(t, c)
		d := int(m["tapestry_fh_queue_depth"])
		return d, d == full && m["tapestry_fh_stalls_total"] > 0
	})
	b.WaitFull("session info", func() (int, bool) {
		list := srv.Sessions()
		if len(list) != 1 {
			t.Fatalf("session info %+v", list)
		}
		return list[0].FHQueueDepth, list[0].FHQueueDepth == full && list[0].FHStalls > 0
	})
	b.WaitFull("Stats", func() (int, bool) {
		st := srv.Stats()
		return st.FHQueueDepth, st.FHQueueDepth == full && st.FHStalls > 0
	})
	b.Release()
	if r := b.Wait(); r != ndmp.DataHaltSuccessful {
		t.Fatalf("backup halted %v", r)
	}
	if dirs, nodes := b.Entries(); dirs < files || nodes < files {
		t.Errorf("file history: %d dir entries, %d nodes, want at least %d each", dirs, nodes, files)
	}
	ms, err := b.Client.MoverGetState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m = scrape(t, c)
	st := srv.Stats()
	if m["tapestry_fh_queue_depth"] != 0 || st.FHQueueDepth != 0 || ms.RecordNum == 0 ||
		st.MoverRecords-before.MoverRecords != uint64(ms.RecordNum) || m["tapestry_mover_records_total"] != float64(st.MoverRecords) ||
		m["tapestry_fh_stalls_total"] != float64(st.FHStalls) || st.FHStalls == 0 {
		t.Fatalf("after the backup: metrics %v, stats %+v, mover record_num %d", m, st, ms.RecordNum)
	}
	t.Logf("stalls %d, records %d", st.FHStalls, ms.RecordNum)
}
