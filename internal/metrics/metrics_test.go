package metrics

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/server"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// sessions is a changing list of session records, as Server.Sessions
// returns them, with a clock.
type sessions struct {
	mu  sync.Mutex
	ss  []server.SessionInfo
	now time.Time
}

func (s *sessions) list() []server.SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]server.SessionInfo(nil), s.ss...)
}

func (s *sessions) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *sessions) set(now time.Time, ss ...server.SessionInfo) {
	s.mu.Lock()
	s.ss, s.now = ss, now
	s.mu.Unlock()
}

// scrape serves the collector over HTTP and parses the answer with the
// Prometheus text parser.
func scrape(t testing.TB, c *Collector) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				out[key] = g.GetValue()
			} else if c := m.GetCounter(); c != nil {
				out[key] = c.GetValue()
			}
		}
	}
	return out
}

// The byte counters keep what ended sessions moved, survive a counter reset
// within a session, and the throughput is the rate between two samples.
func TestSessionCountersAndRates(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	s := &sessions{}
	s.set(t0)
	c := New(Sources{Sessions: s.list, MaxSessions: func() int { return 20 }, Now: s.clock})
	m := scrape(t, c)
	if m["tapestry_ndmp_data_bytes_total"] != 0 || m["tapestry_ndmp_sessions_limit"] != 20 {
		t.Fatalf("empty: %v", m)
	}
	s.set(t0.Add(time.Second),
		server.SessionInfo{ID: 1, DataState: "ACTIVE", MoverState: "ACTIVE", DataBytes: 1000, MoverBytes: 900},
		server.SessionInfo{ID: 2, DataState: "IDLE", MoverState: "IDLE"})
	m = scrape(t, c)
	if m["tapestry_ndmp_sessions,state=active"] != 1 || m["tapestry_ndmp_sessions,state=idle"] != 1 ||
		m["tapestry_ndmp_mover_sessions,state=active"] != 1 || m["tapestry_ndmp_data_bytes_total"] != 1000 ||
		m["tapestry_ndmp_mover_bytes_total"] != 900 || m["tapestry_ndmp_data_throughput_bytes_per_second"] != 1000 {
		t.Fatalf("two sessions: %v", m)
	}
	// Session 1 moves 3000 more bytes in two seconds and ends; session 2
	// starts a second operation (its counter restarts at 500).
	s.set(t0.Add(3*time.Second), server.SessionInfo{ID: 1, DataState: "HALTED", DataBytes: 4000, MoverBytes: 900})
	c.Sample()
	s.set(t0.Add(4*time.Second), server.SessionInfo{ID: 2, DataState: "ACTIVE", DataBytes: 500})
	m = scrape(t, c)
	if m["tapestry_ndmp_data_bytes_total"] != 4500 || m["tapestry_ndmp_data_throughput_bytes_per_second"] != 500 {
		t.Fatalf("after end and restart: %v", m)
	}
	if _, ok := m["tapestry_ndmp_sessions,state=halted"]; ok {
		t.Fatal("ended session still counted")
	}
	s.set(t0.Add(5 * time.Second))
	m = scrape(t, c)
	if m["tapestry_ndmp_data_bytes_total"] != 4500 || m["tapestry_ndmp_data_throughput_bytes_per_second"] != 0 {
		t.Fatalf("no sessions: %v", m)
	}
	// The Go runtime metrics are there too, on the collector's own registry.
	if m["go_goroutines"] < 1 {
		t.Fatal("no go_goroutines")
	}
}

// Snapshot counts come from storage; a failing source is counted, not
// fatal.
func TestSnapshotCountsAndScrapeErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := catalog.OpenBolt(filepath.Join(dir, "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	sto := storage.New(st, storage.Options{})
	if _, err := sto.Init(ctx, storage.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sto.CreateSVM(ctx, storage.SVMSpec{Name: "vs1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sto.CreateVolume(ctx, storage.VolumeSpec{SVM: "vs1", Name: "vol1", HostPath: t.TempDir(), SnapshotProvider: "copy"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		if _, err := sto.CreateSnapshot(ctx, "vs1", "vol1", n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sto.LockSnapshot(ctx, "vs1", "vol1", "a", "test"); err != nil {
		t.Fatal(err)
	}
	c := New(Sources{Storage: sto})
	m := scrape(t, c)
	if m["tapestry_volume_snapshots,volume=vol1,vserver=vs1"] != 2 || m["tapestry_volume_snapshots_locked,volume=vol1,vserver=vs1"] != 1 {
		t.Fatalf("snapshots: %v", m)
	}
	st.Close()
	m = scrape(t, c)
	if m["tapestry_scrape_errors_total,source=storage"] != 1 {
		t.Fatalf("closed catalog: %v", m)
	}
}

// The file history and mover counters of the server (Server.Stats) are
// exported as tapestry_fh_queue_depth, tapestry_fh_stalls_total and
// tapestry_mover_records_total and follow the server's values; without a
// Stats source they are absent. (internal/server's
// TestFHBackPressureStats drives the stalls with a real slow DMA.)
func TestFileHistoryAndMoverMetrics(t *testing.T) {
	var mu sync.Mutex
	st := server.Stats{}
	c := New(Sources{Stats: func() server.Stats { mu.Lock(); defer mu.Unlock(); return st }})
	m := scrape(t, c)
	for _, k := range []string{"tapestry_fh_queue_depth", "tapestry_fh_stalls_total", "tapestry_mover_records_total"} {
		if v, ok := m[k]; !ok || v != 0 {
			t.Fatalf("%s = %v, %v at start: %v", k, v, ok, m)
		}
	}
	mu.Lock()
	st = server.Stats{FHQueueDepth: server.FHQueueLength, FHStalls: 7, MoverRecords: 2534}
	mu.Unlock()
	m = scrape(t, c)
	if m["tapestry_fh_queue_depth"] != server.FHQueueLength || m["tapestry_fh_stalls_total"] != 7 || m["tapestry_mover_records_total"] != 2534 {
		t.Fatalf("after a stalled backup: %v", m)
	}
	if _, ok := scrape(t, New(Sources{}))["tapestry_fh_stalls_total"]; ok {
		t.Fatal("fh_stalls_total without a Stats source")
	}
}

// Issue 10: the connection and authentication counters of Server.Stats
// (internal/server's TestPasswordGuessing, TestUnauthenticatedCaps and
// TestUnauthenticatedDeadline make them move on a real server) are
// exported under their names.
func TestSecurityMetrics(t *testing.T) {
	st := server.Stats{Unauthenticated: 200, Refused: 3, Evicted: 1, AuthTimeouts: 4, AuthFailures: 5,
		AuthLockouts: 1, AuthRefusedLocked: 2}
	m := scrape(t, New(Sources{Stats: func() server.Stats { return st }}))
	for k, want := range map[string]float64{
		"tapestry_ndmp_unauthenticated_connections": 200, "tapestry_ndmp_connections_refused_total": 3,
		"tapestry_ndmp_unauthenticated_evicted_total": 1, "tapestry_ndmp_auth_timeouts_total": 4,
		"tapestry_ndmp_auth_failures_total": 5, "tapestry_ndmp_auth_lockouts_total": 1,
		"tapestry_ndmp_auth_locked_refusals_total": 2,
	} {
		if v, ok := m[k]; !ok || v != want {
			t.Errorf("%s = %v (%v), want %v", k, v, ok, want)
		}
	}
}

func TestStateName(t *testing.T) {
	for in, want := range map[string]string{"NDMP_DATA_STATE_ACTIVE": "active", "HALTED": "halted", "": "unknown", "Listen": "listen"} {
		if got := stateName(in); got != want {
			t.Errorf("stateName(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkScrape measures one scrape of a node with 36 sessions (the
// largest session limit, N12).
func BenchmarkScrape(b *testing.B) {
	s := &sessions{}
	var ss []server.SessionInfo
	for i := range 36 {
		ss = append(ss, server.SessionInfo{ID: uint64(i + 1), DataState: "ACTIVE", MoverState: "ACTIVE", DataBytes: uint64(i) << 20})
	}
	s.set(time.Now(), ss...)
	c := New(Sources{Sessions: s.list, MaxSessions: func() int { return 36 }})
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		c.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
