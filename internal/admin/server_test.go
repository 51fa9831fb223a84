package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

const adminPW = "Admin1234"

// testNodeName is the node the test APIs serve (issue 12 item 6: the API
// takes its node from the daemon, not a built-in name).
const testNodeName = "adm-n1"

type env struct {
	store  catalog.Store
	srv    *admin.Server
	socket string
	auth   *auth.Service
}

// newEnv serves the API over a real unix socket on a real catalog.
func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	st := testutil.OpenCatalog(t, filepath.Join(dir, "catalog.db")) // reruns every Update (issue 12, item 5)
	ctx := context.Background()
	sto := storage.New(st, storage.Options{})
	if _, err := sto.Init(ctx, storage.InitOptions{NodeName: testNodeName}); err != nil {
		t.Fatal(err)
	}
	au := auth.New(st, auth.Options{AdminSVM: "cluster1", Hash: auth.HashParams{Time: 1, Memory: 1024, Threads: 1}})
	if _, err := au.Bootstrap(ctx, adminPW); err != nil {
		t.Fatal(err)
	}
	srv := admin.NewServer(admin.ServerConfig{Store: st, Storage: sto, Auth: au, Version: "test", Node: testNodeName})
	sock := filepath.Join(dir, "a.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return &env{store: st, srv: srv, socket: sock, auth: au}
}

func (e *env) client(user, pw string) *admin.Client {
	return admin.NewClient(e.socket, user, pw)
}

// raw sends a request with full control over headers and body.
func (e *env) raw(t *testing.T, method, path, user, pw string, body []byte, hdr map[string]string) (int, admin.ErrorBody) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.socket)
	}}}
	req, err := http.NewRequest(method, "http://x"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb admin.ErrorBody
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &eb)
	return resp.StatusCode, eb
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	if st, eb := e.raw(t, "GET", "/api/cluster", "", "", nil, nil); st != http.StatusUnauthorized || eb.Error.Code != "authentication-failed" {
		t.Fatalf("no credentials: %d %+v", st, eb)
	}
	if st, _ := e.raw(t, "GET", "/api/cluster", "admin", "wrong", nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", st)
	}
	if st, _ := e.raw(t, "GET", "/api/cluster", "nobody", adminPW, nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("unknown user: %d", st)
	}
	var info admin.ClusterInfo
	ctx := context.Background()
	if err := e.client("admin", adminPW).Do(ctx, "GET", "/api/cluster", nil, nil, &info); err != nil || info.Name != "cluster1" || info.Version != "test" ||
		info.Node != testNodeName || len(info.Nodes) != 1 || info.Nodes[0].Name != testNodeName {
		t.Fatalf("cluster: %+v %v", info, err)
	}
	// A cached login stops working when the password changes, and a
	// locked account is refused even with a cached login.
	c := e.client("admin", adminPW)
	if _, err := e.auth.CreateUser(ctx, auth.UserSpec{SVM: "cluster1", Name: "u1", Role: "admin", Password: "Pass12345"}); err != nil {
		t.Fatal(err)
	}
	u1 := e.client("u1", "Pass12345")
	if err := u1.Do(ctx, "GET", "/api/cluster", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	pw := "Pass67890"
	if err := c.Do(ctx, "PATCH", "/api/security/accounts/cluster1/u1", nil, admin.AccountModify{Password: &pw}, nil); err != nil {
		t.Fatal(err)
	}
	var ae *admin.APIError
	if err := u1.Do(ctx, "GET", "/api/cluster", nil, nil, nil); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("old password after change: %v", err)
	}
	u1 = e.client("u1", pw)
	if err := u1.Do(ctx, "GET", "/api/cluster", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	locked := true
	if err := c.Do(ctx, "PATCH", "/api/security/accounts/cluster1/u1", nil, admin.AccountModify{Locked: &locked}, nil); err != nil {
		t.Fatal(err)
	}
	if err := u1.Do(ctx, "GET", "/api/cluster", nil, nil, nil); !errors.As(err, &ae) || ae.Code != "locked" {
		t.Fatalf("locked user: %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		method, path, body string
		hdr                map[string]string
		status             int
		msg                string
	}{
		{"POST", "/api/svm/svms", `{"vserver": "vs1", "colour": "red"}`, nil, 400, "unknown field"},
		{"POST", "/api/svm/svms", `{"vserver": `, nil, 400, "invalid request body"},
		{"POST", "/api/svm/svms", ``, nil, 400, "empty"},
		{"POST", "/api/svm/svms", `{"vserver": "a"} {"vserver": "b"}`, nil, 400, "trailing data"},
		{"POST", "/api/svm/svms", `{"vserver": "` + strings.Repeat("a", admin.MaxBodyBytes) + `"}`, nil, 400, "larger than"},
		{"POST", "/api/svm/svms", `{"vserver": "vs1", "allowed-protocols": ["nfs"], "disallowed-protocols": ["cifs"]}`, nil, 400, "not both"},
		{"GET", "/api/nothing", ``, nil, 404, "no API endpoint"},
		{"PUT", "/api/cluster", ``, nil, 404, "no API endpoint"},
		{"POST", "/api/storage/volumes", `{"vserver": "vs1", "volume": "v", "path": "relative/dir"}`, nil, 400, "absolute"},
		{"POST", "/api/storage/volumes", `{"vserver": "vs1", "volume": "v"}`, nil, 400, "-path"},
		{"PATCH", "/api/storage/volumes/nosuch", `{"state": "offline"}`, nil, 404, "no volume has UUID"},
		{"DELETE", "/api/network/ip/interfaces/nosuch", ``, nil, 404, "no LIF"},
		{"POST", "/api/private/cli/volume/snapshot/lock", `{}`, nil, 403, "advanced privilege"},
		{"GET", "/api/cluster", ``, map[string]string{admin.PrivilegeHeader: "root"}, 400, "privilege level"},
		{"POST", "/api/private/cli/options", `{"option-name": "tape.reservations", "option-value": "always"}`, nil, 400, "invalid option value"},
	}
	for _, c := range cases {
		st, eb := e.raw(t, c.method, c.path, "admin", adminPW, []byte(c.body), c.hdr)
		if st != c.status || !strings.Contains(eb.Error.Message, c.msg) {
			t.Errorf("%s %s %.60q: %d %q, want %d %q", c.method, c.path, c.body, st, eb.Error.Message, c.status, c.msg)
		}
	}
	svms, err := admin.List[admin.SVM](context.Background(), e.client("admin", adminPW), "/api/svm/svms", nil)
	if err != nil || len(svms) != 1 {
		t.Fatalf("bad requests changed the SVMs: %+v %v", svms, err)
	}
}

func TestAuthorization(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.auth.CreateUser(ctx, auth.UserSpec{SVM: "cluster1", Name: "ro", Role: "readonly", Password: "Reader123"}); err != nil {
		t.Fatal(err)
	}
	ro := e.client("ro", "Reader123")
	if _, err := admin.List[admin.Volume](ctx, ro, "/api/storage/volumes", nil); err != nil {
		t.Fatalf("readonly list: %v", err)
	}
	var ae *admin.APIError
	err := ro.Do(ctx, "POST", "/api/svm/svms", nil, admin.SVMCreate{Name: "vs1"}, nil)
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || !strings.Contains(ae.Message, `not authorized for "vserver create"`) {
		t.Fatalf("readonly create: %v", err)
	}
	// The state commands are authorised separately from volume modify.
	ad := e.client("admin", adminPW)
	if err := ad.Do(ctx, "POST", "/api/svm/svms", nil, admin.SVMCreate{Name: "vs1"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth.CreateRole(ctx, "cluster1", "onlyoffline", "volume offline", auth.AccessAll); err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth.CreateRole(ctx, "cluster1", "onlyoffline", "volume show", auth.AccessReadonly); err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth.CreateUser(ctx, auth.UserSpec{SVM: "cluster1", Name: "op", Role: "onlyoffline", Password: "Operator1"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var v admin.Volume
	if err := ad.Do(ctx, "POST", "/api/storage/volumes", nil, admin.VolumeCreate{SVM: "vs1", Name: "v1", Path: dir, SnapshotProvider: "copy"}, &v); err != nil {
		t.Fatal(err)
	}
	op := e.client("op", "Operator1")
	off, dp := "offline", "DP"
	if err := op.Do(ctx, "PATCH", "/api/storage/volumes/"+v.UUID, nil, admin.VolumeModify{Type: &dp}, nil); !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("modify without right: %v", err)
	}
	if err := op.Do(ctx, "PATCH", "/api/storage/volumes/"+v.UUID, nil, admin.VolumeModify{State: &off}, nil); err != nil {
		t.Fatalf("offline with right: %v", err)
	}
	got, err := admin.List[admin.Volume](ctx, op, "/api/storage/volumes", url.Values{"name": {"v1"}})
	if err != nil || len(got) != 1 || got[0].State != "offline" || got[0].Type != "RW" {
		t.Fatalf("after: %+v %v", got, err)
	}
}

// FuzzAPIRequest sends arbitrary method, path and body to the real handler
// on a real catalog: every answer is well-formed JSON and nothing panics.
func FuzzAPIRequest(f *testing.F) {
	e := newEnv(f)
	seeds := []struct{ m, p, b string }{
		{"GET", "/api/cluster", ""},
		{"POST", "/api/svm/svms", `{"vserver":"vs1"}`},
		{"PATCH", "/api/svm/svms/vs1", `{"comment":"x","disallowed-protocols":["ndmp"]}`},
		{"POST", "/api/storage/volumes", `{"vserver":"vs1","volume":"v","path":"/tmp"}`},
		{"POST", "/api/network/ip/interfaces", `{"vserver":"vs1","lif":"l","role":"data","address":"127.0.0.9"}`},
		{"POST", "/api/security/accounts", `{"user-or-group-name":"u","role":"admin","password":"Abcdefg12"}`},
		{"POST", "/api/security/roles", `{"role":"r","cmddirname":"volume","access":"all"}`},
		{"POST", "/api/private/cli/options", `{"option-name":"tape.reservations","option-value":"scsi"}`},
		{"POST", "/api/private/cli/vserver/services/ndmp/generate-password", `{"vserver":"cluster1","user":"admin"}`},
		{"DELETE", "/api/svm/svms/%2e%2e", ""},
		{"GET", "/api/storage/qtrees?svm.name=%00", ""},
	}
	for _, s := range seeds {
		f.Add(s.m, s.p, []byte(s.b))
	}
	methods := []string{"GET", "POST", "PATCH", "DELETE"}
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		if len(method) > 0 {
			method = methods[int(method[0])%len(methods)]
		} else {
			method = "GET"
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		// Paths that could name real host directories are not fuzzed
		// with writes outside the test.
		if strings.Contains(string(body), `"path"`) {
			return
		}
		req, err := http.NewRequest(method, "http://x"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.SetBasicAuth("admin", adminPW)
		req.Header.Set(admin.PrivilegeHeader, admin.PrivAdvanced)
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code/100 == 3 {
			// The mux redirects unclean paths to their clean form.
			return
		}
		if rec.Code/100 != 2 {
			var eb admin.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Message == "" {
				t.Fatalf("%s %s: status %d with body %q", method, path, rec.Code, rec.Body.String())
			}
			if rec.Code == http.StatusInternalServerError {
				t.Fatalf("%s %s %q: internal error %q", method, path, body, rec.Body.String())
			}
		} else if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: invalid JSON answer %q", method, path, rec.Body.String())
		}
	})
}
