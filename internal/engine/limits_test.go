package engine

import (
	"errors"
	"sync"
	"testing"
)

// TestLimitsForMemoryBandEdges (N12, D13, S8; issue 12 item 3): the one
// table of limits by memory gives, on both sides of each band edge, the
// NDMP session, dump/restore and SMTape limits of the specification.
func TestLimitsForMemoryBandEdges(t *testing.T) {
	const gb = uint64(1) << 30
	small := Limits{NDMPSessions: 8, DumpRestore: 4, SMTape: 6}
	mid := Limits{NDMPSessions: 20, DumpRestore: 16, SMTape: 16}
	large := Limits{NDMPSessions: 36, DumpRestore: 32, SMTape: 32}
	for _, c := range []struct {
		mem  uint64
		want Limits
	}{
		{0, small}, // unknown memory
		{4 * gb, small},
		{16*gb - 1, small},
		{16 * gb, mid},
		{24*gb - 1, mid},
		{24 * gb, large},
		{512 * gb, large},
		{^uint64(0), large},
	} {
		if got := LimitsForMemory(c.mem); got != c.want {
			t.Errorf("LimitsForMemory(%d) = %+v, want %+v", c.mem, got, c.want)
		}
	}
}

// TestSystemLimits: this host's limits are a row of the table.
func TestSystemLimits(t *testing.T) {
	m, err := SystemMemory()
	if err != nil || m == 0 {
		t.Fatalf("SystemMemory: %d, %v", m, err)
	}
	l, err := SystemLimits()
	if err != nil || l != LimitsForMemory(m) {
		t.Fatalf("SystemLimits = %+v, %v; want %+v", l, err, LimitsForMemory(m))
	}
}

// TestLimiterRefusesOverTheLimit (D13, S8): a Limiter gives max slots,
// refuses the next one at once with its message, and takes a slot back
// once however often it is released.
func TestLimiterRefusesOverTheLimit(t *testing.T) {
	for _, c := range []struct {
		l    *Limiter
		want string
	}{
		{NewDumpLimiter(2), "Maximum number of allowed dumps or restores (2) in progress"},
		{NewLimiter(2, MsgMaxSMTape), "Maximum number of allowed SMTape backups or restores (2) in progress"},
	} {
		r1, err := c.l.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := c.l.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.l.Acquire()
		var e *Error
		if !errors.As(err, &e) || e.Msg != c.want || Message(err) != c.want {
			t.Fatalf("third Acquire: %v, want %q", err, c.want)
		}
		r1()
		r1() // harmless
		if c.l.InUse() != 1 || c.l.Max() != 2 {
			t.Fatalf("in use %d of %d after one release", c.l.InUse(), c.l.Max())
		}
		r3, err := c.l.Acquire()
		if err != nil {
			t.Fatalf("Acquire after a release: %v", err)
		}
		r2()
		r3()
		if c.l.InUse() != 0 {
			t.Fatalf("in use %d at the end", c.l.InUse())
		}
	}
	var none *Limiter
	if r, err := none.Acquire(); err != nil || r == nil {
		t.Fatalf("nil Limiter: %v", err)
	}
}

// TestLimiterConcurrent: under concurrent use the Limiter never hands out
// more than max slots (run with -race).
func TestLimiterConcurrent(t *testing.T) {
	l := NewDumpLimiter(3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	held, most := 0, 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				r, err := l.Acquire()
				if err != nil {
					continue
				}
				mu.Lock()
				held++
				most = max(most, held)
				mu.Unlock()
				mu.Lock()
				held--
				mu.Unlock()
				r()
			}
		}()
	}
	wg.Wait()
	if most > 3 || most == 0 || l.InUse() != 0 {
		t.Fatalf("most held %d, in use at the end %d", most, l.InUse())
	}
}
