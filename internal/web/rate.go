package web

import (
	"sync"
	"time"
)

// rateWindow is the span over which a session's rate is measured.
const rateWindow = 5 * time.Second

// sample is a session's byte count at a time.
type sample struct {
	at    time.Time
	bytes uint64
}

// rates remembers recent byte counts of the live sessions, so that a page
// shows the rate of the last seconds rather than since the start.
type rates struct {
	mu sync.Mutex
	m  map[uint64][]sample
}

func newRates() *rates { return &rates{m: map[uint64][]sample{}} }

// rate records a session's count and returns its bytes per second over
// the last rateWindow, or since the operation started when there is no
// earlier sample.
func (r *rates) rate(id, bytes uint64, now, started time.Time) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	ss := r.m[id]
	if n := len(ss); n > 0 && bytes < ss[n-1].bytes {
		ss = nil // a new operation in the session
	}
	for len(ss) > 1 && now.Sub(ss[1].at) >= rateWindow {
		ss = ss[1:]
	}
	ss = append(ss, sample{at: now, bytes: bytes})
	r.m[id] = ss
	if first := ss[0]; len(ss) > 1 && now.Sub(first.at) >= 500*time.Millisecond {
		return float64(bytes-first.bytes) / now.Sub(first.at).Seconds()
	}
	if !started.IsZero() && now.Sub(started) > 0 {
		return float64(bytes) / now.Sub(started).Seconds()
	}
	return 0
}

// keep forgets the sessions that are not in ids.
func (r *rates) keep(ids []uint64) {
	live := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		live[id] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.m {
		if !live[id] {
			delete(r.m, id)
		}
	}
}
