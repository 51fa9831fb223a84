package web

import (
	"testing"
	"time"
)

// Issue 17 item 1: the history groups event log lines into operations,
// newest first: an End after an Error is a failure, an Abort is aborted, a
// Start without an end is running, and an End whose Start is in an older
// file still counts. Restores to the same destination stay apart.
func TestOperations(t *testing.T) {
	lines := []string{
		"dmp Mon Dec 7 06:00:00 UTC 2026 /vs1/vol1/(7) End (10 KB)",
		"log Mon Dec 7 06:00:01 UTC 2026 Start_Logging",
		"dmp Mon Dec 7 06:00:02 UTC 2026 /vs1/vol1/(8) Start (level 0, NDMP)",
		"dmp Mon Dec 7 06:00:03 UTC 2026 /vs1/vol2/(9) Start (level 1, NDMP)",
		"dmp Mon Dec 7 06:00:04 UTC 2026 /vs1/vol1/(8) Error (disk on fire)",
		"dmp Mon Dec 7 06:00:05 UTC 2026 /vs1/vol1/(8) End (0 KB)",
		"rst Mon Dec 7 06:01:00 UTC 2026 /vs1/vol3 Start (level 0, NDMP)",
		"rst Mon Dec 7 06:01:10 UTC 2026 /vs1/vol3 Abort (3 files, 12 KB)",
		"rst Mon Dec 7 06:02:00 UTC 2026 /vs1/vol3 Start (level 0, NDMP)",
		"rst Mon Dec 7 06:02:30 UTC 2026 /vs1/vol3 End (5 files, 20 KB)",
		"not a log line",
		"dmp Mon Dec 7 06:03:00 UTC 2026 /vs1/vol4/(10) Start (level 0, NDMP)",
	}
	type want struct{ kind, path, id, outcome, amount, dur string }
	wants := []want{
		{"backup", "/vs1/vol4", "10", "running", "", ""},
		{"restore", "/vs1/vol3", "", "success", "5 files, 20 KB", "30s"},
		{"restore", "/vs1/vol3", "", "aborted", "3 files, 12 KB", "10s"},
		{"backup", "/vs1/vol2", "9", "running", "", ""},
		{"backup", "/vs1/vol1", "8", "failed", "0 KB", "3s"},
		{"backup", "/vs1/vol1", "7", "success", "10 KB", ""},
	}
	ops := operations(lines)
	if len(ops) != len(wants) {
		t.Fatalf("%d operations, want %d: %+v", len(ops), len(wants), ops)
	}
	for i, w := range wants {
		o := ops[i]
		got := want{o.Kind, o.Path, o.ID, o.Outcome, o.Amount, o.Duration()}
		if got != w {
			t.Errorf("operation %d = %+v, want %+v", i, got, w)
		}
	}
	if m := ops[4].Messages; len(m) != 1 || m[0] != "disk on fire" {
		t.Errorf("messages of the failed backup %q", m)
	}
}

// The rate is that of the last seconds, not since the start; a counter
// that goes down starts over (a new operation in the session).
func TestRates(t *testing.T) {
	r := newRates()
	t0 := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	if v := r.rate(1, 1000, t0, t0.Add(-time.Second)); v != 1000 {
		t.Fatalf("first sample: %v, want the average since the start 1000", v)
	}
	if v := r.rate(1, 11000, t0.Add(2*time.Second), time.Time{}); v != 5000 {
		t.Fatalf("after 2 s: %v, want 5000", v)
	}
	for i := 3; i <= 10; i++ {
		r.rate(1, 11000, t0.Add(time.Duration(i)*time.Second), time.Time{})
	}
	if v := r.rate(1, 11000, t0.Add(11*time.Second), time.Time{}); v != 0 {
		t.Fatalf("idle for longer than the window: %v, want 0", v)
	}
	if v := r.rate(1, 500, t0.Add(12*time.Second), t0.Add(11*time.Second)); v != 500 {
		t.Fatalf("new operation: %v, want 500", v)
	}
	r.keep(nil)
	if len(r.m) != 0 {
		t.Fatal("ended session kept")
	}
}
