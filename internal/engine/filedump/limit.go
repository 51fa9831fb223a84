package filedump

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// SessionLimitForMemory returns the number of dumps and restores that may run
// at once on a host with memBytes of memory (D13): 4 below 16 GB, 16 from
// 16 GB to below 24 GB, 32 from 24 GB.
func SessionLimitForMemory(memBytes uint64) int {
	const gb = 1 << 30
	switch {
	case memBytes < 16*gb:
		return 4
	case memBytes < 24*gb:
		return 16
	default:
		return 32
	}
}

// SystemMemory returns the host's total memory in bytes.
func SystemMemory() (uint64, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, fmt.Errorf("sysinfo: %w", err)
	}
	return uint64(si.Totalram) * uint64(si.Unit), nil
}

// Limiter bounds the number of dumps and restores running at once. One
// Limiter is shared by every engine (and the NDMP server) of a node.
// The zero value is not usable; use NewLimiter or NewSystemLimiter.
type Limiter struct {
	mu    sync.Mutex
	max   int
	inUse int
}

// NewLimiter returns a Limiter that allows max operations at once.
func NewLimiter(max int) *Limiter { return &Limiter{max: max} }

// NewSystemLimiter returns a Limiter sized by the host's memory (D13).
func NewSystemLimiter() (*Limiter, error) {
	m, err := SystemMemory()
	if err != nil {
		return nil, err
	}
	return NewLimiter(SessionLimitForMemory(m)), nil
}

// Max returns the limit.
func (l *Limiter) Max() int { return l.max }

// InUse returns the number of operations holding a slot.
func (l *Limiter) InUse() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inUse
}

// Acquire takes a slot or fails at once with the documented message
// "Maximum number of allowed dumps or restores (<limit>) in progress".
// The returned function gives the slot back; calling it twice is harmless.
func (l *Limiter) Acquire() (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inUse >= l.max {
		return nil, &Error{Msg: fmt.Sprintf(msgMaxSessions, l.max)}
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
