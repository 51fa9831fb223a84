package server

import (
	"regexp"
	"testing"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// TestRefusedAuthMethodsLogged: a TEXT login where only MD5 is allowed and
// a NONE login are refused with ILLEGAL_ARGS (N3, N4) and leave a log line
// like a wrong MD5 digest does, naming user, address and method (issue 17
// item 5: they left none); they do not count as failures.
func TestRefusedAuthMethodsLogged(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	c := dmaFrom(t, f, "127.0.0.1")
	if err := c.Connect(f.ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "TEXT login", c.AuthText(f.ctx, testUser, f.ndmpPW), ndmp.ErrIllegalArgs)
	_, err := c.Call(f.ctx, &ndmp.ConnectClientAuthRequest{AuthData: ndmp.AuthData{AuthType: ndmp.AuthNone}})
	wantErr(t, "NONE login", err, ndmp.ErrIllegalArgs)
	wantErr(t, "MD5 login", c.AuthMD5(f.ctx, testUser, "wrong"), ndmp.ErrNotAuthorized)
	logs := f.logs.String()
	for _, line := range []string{
		`msg="NDMP authentication failed" .*user=` + testUser + ` address=127.0.0.1 method=plaintext err="authentication method plaintext is not allowed \(allowed: challenge\)"`,
		`msg="NDMP authentication failed" .*user="" address=127.0.0.1 method=none err="authentication method none is not allowed \(allowed: challenge\)"`,
		`msg="NDMP authentication failed" .*user=` + testUser + ` address=127.0.0.1 method=challenge failures=1 `,
	} {
		if !regexp.MustCompile(line).MatchString(logs) {
			t.Errorf("log lacks %q:\n%s", line, logs)
		}
	}
	if logs := f.logs.String(); regexp.MustCompile(regexp.QuoteMeta(f.ndmpPW)).MatchString(logs) {
		t.Fatalf("a password reached the log")
	}
	if st := f.srv.Stats(); st.AuthFailures != 1 {
		t.Fatalf("auth failures %d, want 1 (the wrong digest only)", st.AuthFailures)
	}
}
