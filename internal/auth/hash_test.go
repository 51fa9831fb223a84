package auth

import (
	"strings"
	"testing"
)

// light keeps the hash tests quick; the cost parameters are read back from
// the PHC string.
var light = HashParams{Time: 1, Memory: 64, Threads: 1}

func TestHashPassword(t *testing.T) {
	h := HashPassword("Secret123", DefaultHashParams())
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q", h)
	}
	if h2 := HashPassword("Secret123", DefaultHashParams()); h2 == h {
		t.Error("two hashes of one password are equal (no salt)")
	}
	ok, err := verifyPassword(h, "Secret123")
	if err != nil || !ok {
		t.Errorf("verify: %v %v", ok, err)
	}
	if ok, _ := verifyPassword(h, "Secret124"); ok {
		t.Error("wrong password verified")
	}
	hl := HashPassword("x", light)
	if ok, err := verifyPassword(hl, "x"); err != nil || !ok {
		t.Errorf("light params: %v %v", ok, err)
	}
	for _, bad := range []string{
		"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!!$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5$",
	} {
		if _, err := verifyPassword(bad, "x"); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// FuzzParseHash: a stored hash from a damaged catalog never panics, and
// what parses stays within the cost bounds.
func FuzzParseHash(f *testing.F) {
	f.Add(HashPassword("Secret123", light))
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$$")
	f.Add("$$$$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		ph, err := parseHash(h)
		if err != nil {
			return
		}
		p := ph.params
		if p.Time < 1 || p.Time > maxTime || p.Memory > maxMemory || p.Threads < 1 || len(ph.salt) < 8 || len(ph.key) < 16 {
			t.Fatalf("%q parsed to %+v", h, ph)
		}
	})
}

func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		HashPassword("Secret123", DefaultHashParams())
	}
}

func BenchmarkGenerateNDMPPassword(b *testing.B) {
	e := newEnv(b)
	e.user("vs1", "u", RoleVsadmin, "Secret123")
	for b.Loop() {
		if _, err := e.svc.GenerateNDMPPassword(e.ctx, "vs1", "u"); err != nil {
			b.Fatal(err)
		}
	}
}
