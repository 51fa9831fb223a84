package server

import (
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// Issue 10, item 4: the guard's counters forget failures after Window,
// its delays double up to MaxDelay, and its maps stay bounded however many
// user names a guesser tries.
func TestAuthGuardCounters(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	g := newAuthGuard(AuthGuardConfig{BaseDelay: time.Second, MaxDelay: 3 * time.Second, Now: func() time.Time { return now }})
	a := netip.MustParseAddr("192.0.2.1")
	var got []time.Duration
	for range 4 {
		d, lo := g.failed("u", a)
		if lo != nil {
			t.Fatalf("lockout after %d failures", len(got)+1)
		}
		got = append(got, d)
	}
	if !equalDurations(got, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}) {
		t.Fatalf("delays %v", got)
	}
	_, lo := g.failed("u", a) // the fifth for u from a
	if lo == nil || lo.scope != "user" {
		t.Fatalf("fifth failure: lockout %+v", lo)
	}
	if _, ok := g.locked("u", a); !ok {
		t.Fatal("u not locked out from a")
	}
	if _, ok := g.locked("u", netip.MustParseAddr("192.0.2.2")); ok {
		t.Fatal("u locked out from another address")
	}
	now = now.Add(g.cfg.Window + g.cfg.LockoutDuration)
	if d, _ := g.failed("u", a); d != time.Second {
		t.Fatalf("delay %v after the window, want the base again", d)
	}
	for i := range maxTracked + 10 {
		g.failed("user"+strconv.Itoa(i), a)
	}
	if n := len(g.users); n > maxTracked {
		t.Fatalf("%d user counters, bound %d", n, maxTracked)
	}
}
