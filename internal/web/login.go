package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"sync"
	"time"
)

// CookieName is the name of the web view's session cookie.
const CookieName = "tapestry_web"

// SessionLifetime is how long a login lasts without use.
const SessionLifetime = 8 * time.Hour

// maxLogins bounds the logins kept; the oldest go first.
const maxLogins = 1024

// login is one logged-in browser.
type login struct {
	svm, name string
	// csrf is the token every form of the login carries.
	csrf    string
	expires time.Time
}

// logins keeps the logins of the web view in memory: a restart of the
// daemon logs everyone out.
type logins struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*login
}

func newLogins(now func() time.Time) *logins {
	return &logins{now: now, m: map[string]*login{}}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// add makes a login and returns its cookie value.
func (l *logins) add(svm, name string) (string, *login) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.m) >= maxLogins {
		l.expireLocked(now)
		var oldest string
		for k, v := range l.m {
			if oldest == "" || v.expires.Before(l.m[oldest].expires) {
				oldest = k
			}
		}
		delete(l.m, oldest)
	}
	id := randomToken()
	lg := &login{svm: svm, name: name, csrf: randomToken(), expires: now.Add(SessionLifetime)}
	l.m[id] = lg
	return id, lg
}

// get returns the login of a cookie value and extends it.
func (l *logins) get(id string) (*login, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lg, ok := l.m[id]
	now := l.now()
	if !ok || now.After(lg.expires) {
		delete(l.m, id)
		return nil, false
	}
	lg.expires = now.Add(SessionLifetime)
	cp := *lg
	return &cp, true
}

func (l *logins) remove(id string) {
	l.mu.Lock()
	delete(l.m, id)
	l.mu.Unlock()
}

func (l *logins) expireLocked(now time.Time) {
	for k, v := range l.m {
		if now.After(v.expires) {
			delete(l.m, k)
		}
	}
}

// validCSRF compares a form's token with the login's in constant time.
func (lg *login) validCSRF(token string) bool {
	return subtle.ConstantTimeCompare([]byte(lg.csrf), []byte(token)) == 1
}
