package engine

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// Limits are the most jobs of each kind a node runs at once.
type Limits struct {
	// NDMPSessions is the most authenticated NDMP sessions (N12).
	NDMPSessions int
	// DumpRestore is the most dump backups and restores together (D13).
	DumpRestore int
	// SMTape is the most SMTape backups and restores together (S8).
	SMTape int
}

// limitBands is the specification's table of limits by system memory: a
// node with less than below bytes of memory has the limits of the first
// band it is below; the last band has no upper bound.
var limitBands = [...]struct {
	below  uint64
	limits Limits
}{
	{16 << 30, Limits{NDMPSessions: 8, DumpRestore: 4, SMTape: 6}},
	{24 << 30, Limits{NDMPSessions: 20, DumpRestore: 16, SMTape: 16}},
	{^uint64(0), Limits{NDMPSessions: 36, DumpRestore: 32, SMTape: 32}},
}

// LimitsForMemory returns the limits of a node with memBytes of system
// memory (N12, D13, S8): below 16 GB 8 NDMP sessions, 4 dumps or restores
// and 6 SMTape jobs; from 16 GB to below 24 GB 20, 16 and 16; from 24 GB 36,
// 32 and 32. Unknown memory (0) gives the smallest limits.
func LimitsForMemory(memBytes uint64) Limits {
	for _, b := range limitBands {
		if memBytes < b.below {
			return b.limits
		}
	}
	return limitBands[len(limitBands)-1].limits
}

// SystemMemory returns the host's total memory in bytes.
func SystemMemory() (uint64, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, fmt.Errorf("sysinfo: %w", err)
	}
	return uint64(si.Totalram) * uint64(si.Unit), nil
}

// SystemLimits returns the limits of this host by its memory; when the
// memory cannot be read it returns the smallest limits and the error.
func SystemLimits() (Limits, error) {
	m, err := SystemMemory()
	return LimitsForMemory(m), err
}

// MsgMaxDumps is the refusal of a dump or restore over the limit (D13);
// %d is the limit.
const MsgMaxDumps = "Maximum number of allowed dumps or restores (%d) in progress"

// MsgMaxSMTape is the refusal of an SMTape job over the limit (S8). The
// specification gives no wording; this one says the same as D13's.
const MsgMaxSMTape = "Maximum number of allowed SMTape backups or restores (%d) in progress"

// Limiter bounds the number of jobs of one kind running at once on a node.
// One Limiter per kind is shared by every session of the node. The zero
// value is not usable; use NewLimiter or NewDumpLimiter.
type Limiter struct {
	mu    sync.Mutex
	max   int
	inUse int
	msg   string
}

// NewLimiter returns a Limiter that allows max jobs at once and refuses
// more with refusal, a format whose one %d is the limit.
func NewLimiter(max int, refusal string) *Limiter { return &Limiter{max: max, msg: refusal} }

// NewDumpLimiter returns the Limiter of dumps and restores: max at once,
// refused with D13's message.
func NewDumpLimiter(max int) *Limiter { return NewLimiter(max, MsgMaxDumps) }

// Max returns the limit.
func (l *Limiter) Max() int { return l.max }

// InUse returns the number of jobs holding a slot.
func (l *Limiter) InUse() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inUse
}

// Acquire takes a slot or fails at once with an *Error whose message is the
// Limiter's refusal. The returned function gives the slot back; calling it
// twice is harmless. A nil Limiter allows everything.
func (l *Limiter) Acquire() (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inUse >= l.max {
		return nil, &Error{Msg: fmt.Sprintf(l.msg, l.max)}
	}
	l.inUse++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.inUse--
			l.mu.Unlock()
		})
	}, nil
}
