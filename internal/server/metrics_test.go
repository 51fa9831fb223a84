package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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
func TestFileHistoryBackPressureMetrics(t *testing.T) {
	const files = 20000
	b := server.StartSlowBackup(t, files)
	srv := b.Server
	before := srv.Stats()
	c := metrics.New(metrics.Sources{Sessions: srv.Sessions, MaxSessions: srv.MaxSessions, Stats: srv.Stats})
	deadline := time.Now().Add(30 * time.Second)
	var m map[string]float64
	peak := 0
	for {
		m = scrape(t, c)
		peak = max(peak, int(m["tapestry_fh_queue_depth"]))
		if m["tapestry_fh_stalls_total"] > 0 && m["tapestry_fh_queue_depth"] >= server.FHQueueLength {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stall in /metrics: %v (stats %+v)", m, srv.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	list := srv.Sessions()
	if len(list) != 1 || list[0].FHStalls == 0 || list[0].FHQueueDepth < server.FHQueueLength {
		t.Fatalf("session info %+v", list)
	}
	time.Sleep(100 * time.Millisecond) // the queue stays full while the DMA does not read
	if d := srv.Stats().FHQueueDepth; d < server.FHQueueLength || d > server.FHQueueLength+1 {
		t.Fatalf("queue depth %d while stalled, want %d (+1 waiting)", d, server.FHQueueLength)
	}
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
