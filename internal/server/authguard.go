package server

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// AuthGuardConfig bounds password guessing (issue 10). Zero fields take
// the defaults of DefaultAuthGuardConfig.
type AuthGuardConfig struct {
	// MaxFailuresPerConn is how many failed CONNECT_CLIENT_AUTH requests a
	// connection may make; the last one is answered and the connection
	// closed.
	MaxFailuresPerConn int
	// BaseDelay is the delay before the answer to a first failure; it
	// doubles with every further failure counted against the source
	// address or the user, up to MaxDelay.
	BaseDelay time.Duration
	// MaxDelay caps the delay of one failure.
	MaxDelay time.Duration
	// AddrLockoutAfter is how many failures from one source address lock
	// that address out for LockoutDuration.
	AddrLockoutAfter int
	// UserLockoutAfter is how many failures for one user from one source
	// address lock that user out from that address for LockoutDuration.
	// There is no lockout of a user from every address: anyone could
	// then lock a DMA's account out; the user's failures from all
	// addresses slow every further failure instead.
	UserLockoutAfter int
	// LockoutDuration is how long a lockout lasts.
	LockoutDuration time.Duration
	// Window is how long a failure is remembered: a counter whose last
	// failure is older starts again from zero.
	Window time.Duration
	// Now returns the current time; nil means time.Now (tests move it).
	Now func() time.Time
	// Sleep waits d or until ctx ends; nil means a timer (tests record the
	// delays without waiting).
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultAuthGuardConfig returns the guessing limits used when Options
// leave them unset: 3 failures per connection, a delay from 200 ms
// doubling to 5 s, an address locked out after 10 failures and a user
// after 5 from one address, for 5 minutes, failures remembered 15 minutes.
func DefaultAuthGuardConfig() AuthGuardConfig {
	return AuthGuardConfig{
		MaxFailuresPerConn: 3,
		BaseDelay:          200 * time.Millisecond,
		MaxDelay:           5 * time.Second,
		AddrLockoutAfter:   10,
		UserLockoutAfter:   5,
		LockoutDuration:    5 * time.Minute,
		Window:             15 * time.Minute,
	}
}

// withDefaults fills the zero fields of c.
func (c AuthGuardConfig) withDefaults() AuthGuardConfig {
	d := DefaultAuthGuardConfig()
	if c.MaxFailuresPerConn <= 0 {
		c.MaxFailuresPerConn = d.MaxFailuresPerConn
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = d.BaseDelay
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = d.MaxDelay
	}
	if c.AddrLockoutAfter <= 0 {
		c.AddrLockoutAfter = d.AddrLockoutAfter
	}
	if c.UserLockoutAfter <= 0 {
		c.UserLockoutAfter = d.UserLockoutAfter
	}
	if c.LockoutDuration <= 0 {
		c.LockoutDuration = d.LockoutDuration
	}
	if c.Window <= 0 {
		c.Window = d.Window
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleepCtx
	}
	return c
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failCount counts the recent failures of one key.
type failCount struct {
	n      int
	last   time.Time
	locked time.Time // locked out until then
}

// userAddr keys the failures of one user from one address.
type userAddr struct {
	user string
	addr netip.Addr
}

// authGuard counts authentication failures per source address, per user
// and per user and address, and decides delays and lockouts. It is safe
// for concurrent use.
type authGuard struct {
	cfg AuthGuardConfig

	mu     sync.Mutex
	addrs  map[netip.Addr]*failCount
	users  map[string]*failCount
	pairs  map[userAddr]*failCount
	pruned time.Time
}

func newAuthGuard(cfg AuthGuardConfig) *authGuard {
	return &authGuard{cfg: cfg.withDefaults(), addrs: map[netip.Addr]*failCount{},
		users: map[string]*failCount{}, pairs: map[userAddr]*failCount{}}
}

// lockout is why an attempt is refused without checking its password.
type lockout struct {
	scope string // "address" or "user"
	until time.Time
}

// locked returns the lockout in force for user from addr, if any.
func (g *authGuard) locked(user string, addr netip.Addr) (lockout, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Now()
	if f := g.addrs[addr]; f != nil && now.Before(f.locked) {
		return lockout{scope: "address", until: f.locked}, true
	}
	if f := g.pairs[userAddr{user, addr}]; f != nil && now.Before(f.locked) {
		return lockout{scope: "user", until: f.locked}, true
	}
	return lockout{}, false
}

// failed counts a failure of user from addr. It returns the delay to
// wait before answering it and the lockout it started, if any.
func (g *authGuard) failed(user string, addr netip.Addr) (time.Duration, *lockout) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Now()
	g.prune(now)
	fa := countFailure(g, g.addrs, addr, now)
	fu := countFailure(g, g.users, user, now)
	fp := countFailure(g, g.pairs, userAddr{user, addr}, now)
	var lo *lockout
	if fa.n >= g.cfg.AddrLockoutAfter && !now.Before(fa.locked) {
		fa.locked = now.Add(g.cfg.LockoutDuration)
		lo = &lockout{scope: "address", until: fa.locked}
	}
	if lo == nil && fp.n >= g.cfg.UserLockoutAfter && !now.Before(fp.locked) {
		fp.locked = now.Add(g.cfg.LockoutDuration)
		lo = &lockout{scope: "user", until: fp.locked}
	}
	return g.delay(max(fa.n, fu.n)), lo
}

// countFailure adds a failure to m[k], starting again after Window.
func countFailure[K comparable](g *authGuard, m map[K]*failCount, k K, now time.Time) *failCount {
	f := m[k]
	if f == nil && len(m) >= maxTracked {
		evictOne(m, now)
	}
	if f == nil || now.Sub(f.last) > g.cfg.Window {
		f = &failCount{}
		m[k] = f
	}
	f.n++
	f.last = now
	return f
}

// maxTracked bounds each map of counters: guessing from ever new
// addresses or for ever new user names must not grow them without end.
const maxTracked = 1 << 16

// evictOne drops one counter of a full map, one that is not locked out if
// it finds one among the first few it looks at.
func evictOne[K comparable](m map[K]*failCount, now time.Time) {
	var victim K
	found, looked := false, 0
	for k, f := range m {
		victim, found = k, true
		if !now.Before(f.locked) || looked >= 16 {
			break
		}
		looked++
	}
	if found {
		delete(m, victim)
	}
}

// delay is BaseDelay doubled n-1 times, at most MaxDelay.
func (g *authGuard) delay(n int) time.Duration {
	d := g.cfg.BaseDelay
	for i := 1; i < n && d < g.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, g.cfg.MaxDelay)
}

// prune drops the counters older than Window and not locked, at most once
// a minute, so that the maps do not grow with every address ever seen.
func (g *authGuard) prune(now time.Time) {
	if now.Sub(g.pruned) < time.Minute {
		return
	}
	g.pruned = now
	stale := func(f *failCount) bool { return now.Sub(f.last) > g.cfg.Window && !now.Before(f.locked) }
	for k, f := range g.addrs {
		if stale(f) {
			delete(g.addrs, k)
		}
	}
	for k, f := range g.users {
		if stale(f) {
			delete(g.users, k)
		}
	}
	for k, f := range g.pairs {
		if stale(f) {
			delete(g.pairs, k)
		}
	}
}

// authIdentity returns the user and method name of an authentication
// request; the method is "" for a type Tapestry does not accept.
func authIdentity(ad ndmp.AuthData) (user, method string) {
	switch ad.AuthType {
	case ndmp.AuthText:
		return ad.AuthText.AuthID, AuthPlaintext
	case ndmp.AuthMD5:
		return ad.AuthMD5.AuthID, AuthChallenge
	}
	return "", ""
}

// authFailed logs and counts a failed authentication (never the
// password), waits the growing delay, and closes the connection after the
// reply when the connection used up its attempts or a lockout started.
func (ss *session) authFailed(ctx context.Context, user, method string, cause error) ndmp.Error {
	s := ss.srv
	s.authFailures.Add(1)
	addr := ss.clientAddr()
	delay, lo := s.guard.failed(user, addr)
	ss.mu.Lock()
	ss.authFailures++
	n := ss.authFailures
	ss.mu.Unlock()
	ss.log.Warn("NDMP authentication failed", "user", user, "address", addr.String(), "method", method,
		"failures", n, "delay", delay.String(), "err", cause)
	if lo != nil {
		s.authLockouts.Add(1)
		ss.log.Warn("NDMP authentication lockout", "scope", lo.scope, "user", user, "address", addr.String(),
			"method", method, "until", lo.until.Format(time.RFC3339))
		ss.closeAfterReply("too many authentication failures")
	} else if n >= s.guard.cfg.MaxFailuresPerConn {
		ss.log.Warn("NDMP connection closed: too many authentication failures", "user", user, "address", addr.String(), "failures", n)
		ss.closeAfterReply("too many authentication failures")
	}
	_ = s.guard.cfg.Sleep(ctx, delay)
	return ndmp.ErrNotAuthorized
}

// authRefused logs an authentication with a method the session does not
// accept (NONE, or TEXT where only MD5 is allowed) the way a wrong
// password is logged (issue 17 item 5: such refusals left no line). It is
// not counted as a failure: no password was tried.
func (ss *session) authRefused(user string, t ndmp.AuthType) {
	method := map[ndmp.AuthType]string{ndmp.AuthNone: "none", ndmp.AuthText: AuthPlaintext, ndmp.AuthMD5: AuthChallenge}[t]
	if method == "" {
		method = fmt.Sprintf("type %d", t)
	}
	ss.log.Warn("NDMP authentication failed", "user", user, "address", ss.clientAddr().String(), "method", method,
		"err", "authentication method "+method+" is not allowed (allowed: "+ss.allowedText()+")")
}

// allowedText lists the methods the session accepts, for the log.
func (ss *session) allowedText() string {
	var m []string
	for _, a := range []string{AuthPlaintext, AuthChallenge} {
		if ss.allows(a) {
			m = append(m, a)
		}
	}
	if len(m) == 0 {
		return "none"
	}
	return strings.Join(m, ", ")
}

// lockedOut refuses an authentication from a locked-out address or user
// without looking at its password, and closes the connection.
func (ss *session) lockedOut(user, method string, lo lockout) ndmp.Error {
	ss.srv.authRefusedLocked.Add(1)
	ss.log.Warn("NDMP authentication refused: locked out", "scope", lo.scope, "user", user,
		"address", ss.clientAddr().String(), "method", method, "until", lo.until.Format(time.RFC3339))
	ss.closeAfterReply("too many authentication failures")
	return ndmp.ErrNotAuthorized
}
