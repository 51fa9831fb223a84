package server_test

import (
	"bytes"
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

// N14: a HIST=Y backup through a real server with a DMA that
// reads file history slowly shows in /metrics: the queue depth reaches the
// queue length, tapestry_fh_stalls_total grows; after the DMA catches up
// the backup succeeds, the depth is back to 0 and
// tapestry_mover_records_total counts the records written.
func TestFileHistoryMetricsThroughServer(t *testing.T) {
	srv, release, wait := server.SlowHistBackup(t, 20000)
	c := metrics.New(metrics.Sources{Sessions: srv.Sessions, MaxSessions: srv.MaxSessions, Stats: srv.Stats})
	deadline := time.Now().Add(30 * time.Second)
	var m map[string]float64
	for {
		m = scrape(t, c)
		if m["tapestry_fh_stalls_total"] > 0 && m["tapestry_fh_queue_depth"] >= server.FHQueueLength {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stall in /metrics: %v", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
	release()
	if r := wait(); r != ndmp.DataHaltSuccessful {
		t.Fatalf("backup halted %v", r)
	}
	m = scrape(t, c)
	if m["tapestry_fh_queue_depth"] != 0 || m["tapestry_mover_records_total"] == 0 || m["tapestry_fh_stalls_total"] == 0 {
		t.Fatalf("after the backup: %v", m)
	}
	t.Logf("stalls %v, records %v", m["tapestry_fh_stalls_total"], m["tapestry_mover_records_total"])
}
