package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// authCacheSize bounds the number of remembered logins.
const authCacheSize = 256

// authCache remembers logins that passed the (deliberately slow) password
// check, so that a script of many commands does not pay for a password hash
// on every request. An entry is keyed by an HMAC of user and password under
// a key that lives only in memory, and is valid only while the user record
// still has the same creation and password change times: a password change,
// or deleting and recreating the user, invalidates it.
type authCache struct {
	mu      sync.Mutex
	key     []byte
	entries map[[32]byte]authStamp
}

// authStamp is what must be unchanged for a cached login to stay valid.
type authStamp struct {
	created, changed time.Time
}

func newAuthCache() *authCache {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &authCache{key: k, entries: map[[32]byte]authStamp{}}
}

func (c *authCache) id(svm, user, password string) [32]byte {
	m := hmac.New(sha256.New, c.key)
	for _, s := range []string{svm, user, password} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

func (c *authCache) valid(svm, user, password string, st authStamp) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	got, ok := c.entries[c.id(svm, user, password)]
	return ok && got.created.Equal(st.created) && got.changed.Equal(st.changed)
}

func (c *authCache) add(svm, user, password string, st authStamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= authCacheSize {
		clear(c.entries)
	}
	c.entries[c.id(svm, user, password)] = st
}
