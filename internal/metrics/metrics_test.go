package metrics

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
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
			} else if h := m.GetHistogram(); h != nil {
				out[strings.Replace(key, name, name+"_count", 1)] = float64(h.GetSampleCount())
			}
		}
	}
	return out
}

// stats is a changing server.Stats with a clock.
type stats struct {
	mu  sync.Mutex
	st  server.Stats
	now time.Time
}

func (s *stats) get() server.Stats { s.mu.Lock(); defer s.mu.Unlock(); return s.st }

func (s *stats) clock() time.Time { s.mu.Lock(); defer s.mu.Unlock(); return s.now }

func (s *stats) set(now time.Time, data, mover uint64) {
	s.mu.Lock()
	s.now, s.st.DataBytes, s.st.MoverBytes = now, data, mover
	s.mu.Unlock()
}

// Issue 17 item 2: the byte counters are the server's own (counted where
// the bytes move), shown as they are; the throughput is the rate between
// two samples; sessions are counted by state.
func TestSessionCountersAndRates(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	s := &sessions{}
	st := &stats{}
	st.set(t0, 0, 0)
	c := New(Sources{Sessions: s.list, Stats: st.get, MaxSessions: func() int { return 20 }, Now: st.clock})
	m := scrape(t, c)
	if m["tapestry_ndmp_data_bytes_total"] != 0 || m["tapestry_ndmp_sessions_limit"] != 20 {
		t.Fatalf("empty: %v", m)
	}
	s.set(t0, server.SessionInfo{ID: 1, DataState: "ACTIVE", MoverState: "ACTIVE"},
		server.SessionInfo{ID: 2, DataState: "IDLE", MoverState: "IDLE"})
	st.set(t0.Add(time.Second), 1000, 900)
	m = scrape(t, c)
	if m["tapestry_ndmp_sessions,state=active"] != 1 || m["tapestry_ndmp_sessions,state=idle"] != 1 ||
		m["tapestry_ndmp_mover_sessions,state=active"] != 1 || m["tapestry_ndmp_data_bytes_total"] != 1000 ||
		m["tapestry_ndmp_mover_bytes_total"] != 900 || m["tapestry_ndmp_data_throughput_bytes_per_second"] != 1000 {
		t.Fatalf("two sessions: %v", m)
	}
	// 3000 more bytes in two seconds, sampled in between: the total is
	// the server's, the rate that of the last second.
	st.set(t0.Add(2*time.Second), 2000, 900)
	c.Sample()
	st.set(t0.Add(3*time.Second), 4000, 1900)
	s.set(t0)
	m = scrape(t, c)
	if m["tapestry_ndmp_data_bytes_total"] != 4000 || m["tapestry_ndmp_data_throughput_bytes_per_second"] != 2000 ||
		m["tapestry_ndmp_mover_throughput_bytes_per_second"] != 1000 {
		t.Fatalf("after samples: %v", m)
	}
	if _, ok := m["tapestry_ndmp_sessions,state=active"]; ok {
		t.Fatal("ended session still counted")
	}
	st.set(t0.Add(4*time.Second), 4000, 1900)
	m = scrape(t, c)
	if m["tapestry_ndmp_data_bytes_total"] != 4000 || m["tapestry_ndmp_data_throughput_bytes_per_second"] != 0 {
		t.Fatalf("idle: %v", m)
	}
	// The Go runtime metrics are there too, on the collector's own registry.
	if m["go_goroutines"] < 1 {
		t.Fatal("no go_goroutines")
	}
}

// Issue 17 item 2: every ended operation is counted by outcome, its
// duration observed, and a backup sets its volume's last success or
// failure time; an earlier success (from the event log at start) does not
// move the time back.
func TestOperationMetrics(t *testing.T) {
	c := New(Sources{})
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	c.ObserveOperation(server.Operation{Kind: "backup", Path: "/vs1/vol1/dir", Started: t0, Ended: t0.Add(10 * time.Millisecond), Bytes: 4096})
	c.ObserveOperation(server.Operation{Kind: "backup", Path: "/vs1/vol2", Started: t0, Ended: t0.Add(2 * time.Second), Err: errors.New("disk on fire")})
	c.ObserveOperation(server.Operation{Kind: "restore", Path: "/vs1/vol3", Started: t0, Ended: t0.Add(time.Minute), Aborted: true, Bytes: 10})
	c.SetLastSuccess("vs1", "vol1", t0.Add(-time.Hour))
	m := scrape(t, c)
	for k, want := range map[string]float64{
		"tapestry_ndmp_operations_total,operation=backup,outcome=success":                  1,
		"tapestry_ndmp_operations_total,operation=backup,outcome=failed":                   1,
		"tapestry_ndmp_operations_total,operation=restore,outcome=aborted":                 1,
		"tapestry_ndmp_operations_total,operation=restore,outcome=success":                 0,
		"tapestry_ndmp_operation_bytes_total,operation=backup":                             4096,
		"tapestry_backup_last_success_timestamp_seconds,volume=vol1,vserver=vs1":           float64(t0.Add(10*time.Millisecond).UnixNano()) / 1e9,
		"tapestry_backup_last_failure_timestamp_seconds,volume=vol2,vserver=vs1":           float64(t0.Add(2 * time.Second).Unix()),
		"tapestry_ndmp_operation_duration_seconds_count,operation=backup,outcome=success":  1,
		"tapestry_ndmp_operation_duration_seconds_count,operation=restore,outcome=aborted": 1,
	} {
		if v, ok := m[k]; !ok || v != want {
			t.Errorf("%s = %v (%v), want %v", k, v, ok, want)
		}
	}
	if _, ok := m["tapestry_backup_last_success_timestamp_seconds,volume=vol2,vserver=vs1"]; ok {
		t.Error("a failed backup set the last success time")
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
