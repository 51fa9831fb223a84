package admin_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
	"github.com/tapestry-ndmp/tapestry/internal/metrics"
	"github.com/tapestry-ndmp/tapestry/internal/ndmpadmin"
	"github.com/tapestry-ndmp/tapestry/internal/server"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// ndmpEnv is newEnv with a real NDMP server (built, not serving), a real
// event log in a temporary directory and the metrics collector.
type ndmpEnv struct {
	*env
	log *eventlog.Log
}

func newNDMPEnv(t testing.TB) *ndmpEnv {
	t.Helper()
	dir := t.TempDir()
	st := testutil.OpenCatalog(t, filepath.Join(dir, "catalog.db")) // reruns every Update (issue 12, item 5)
	ctx := context.Background()
	sto := storage.New(st, storage.Options{})
	if _, err := sto.Init(ctx, storage.InitOptions{NodeName: testNodeName}); err != nil {
		t.Fatal(err)
	}
	if _, err := sto.CreateSVM(ctx, storage.SVMSpec{Name: "vs1"}); err != nil {
		t.Fatal(err)
	}
	au := auth.New(st, auth.Options{AdminSVM: "cluster1", Hash: auth.HashParams{Time: 1, Memory: 1024, Threads: 1}})
	if _, err := au.Bootstrap(ctx, adminPW); err != nil {
		t.Fatal(err)
	}
	if _, err := au.CreateUser(ctx, auth.UserSpec{SVM: "vs1", Name: "vsadm", Role: "vsadmin", Password: "Vsadmin123"}); err != nil {
		t.Fatal(err)
	}
	el, err := eventlog.Open(filepath.Join(dir, "log"), eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { el.Close() })
	ns, err := server.New(server.Options{Storage: sto, Auth: au, Catalog: st, Node: testNodeName, EventLog: el})
	if err != nil {
		t.Fatal(err)
	}
	mc := metrics.New(metrics.Sources{Sessions: ns.Sessions, MaxSessions: ns.MaxSessions, Storage: sto})
	srv := admin.NewServer(admin.ServerConfig{Store: st, Storage: sto, Auth: au, Version: "test", Node: testNodeName,
		NDMP: ndmpadmin.New(ns, st), EventLog: el, Metrics: mc.Handler()})
	sock := filepath.Join(dir, "a.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return &ndmpEnv{env: &env{store: st, srv: srv, socket: sock, auth: au}, log: el}
}

func apiErr(t *testing.T, err error, status int, msg string) {
	t.Helper()
	var ae *admin.APIError
	if !errors.As(err, &ae) || ae.Status != status || !strings.Contains(ae.Message, msg) {
		t.Fatalf("error %v, want HTTP %d with %q", err, status, msg)
	}
}

const (
	vAPI = "/api/private/cli/vserver/services/ndmp"
	sAPI = "/api/private/cli/system/services/ndmp"
)

// N2, N4, N13: SVM users see and change only their own SVM's NDMP settings
// and sessions and cannot use the node-scope commands.
func TestNDMPAPIScope(t *testing.T) {
	e := newNDMPEnv(t)
	ctx := context.Background()
	vs := e.client("vs1/vsadm", "Vsadmin123")
	recs, err := admin.List[admin.NDMPSVMSettings](ctx, vs, vAPI, nil)
	if err != nil || len(recs) != 1 || recs[0].SVM != "vs1" {
		t.Fatalf("vsadmin show: %+v %v", recs, err)
	}
	if got := recs[0].PreferredInterfaceRole; len(got) != 2 || got[0] != storage.RoleIntercluster || got[1] != storage.RoleData {
		t.Fatalf("data SVM default roles %v", got)
	}
	off := false
	var out admin.NDMPSVMSettings
	if err := vs.Do(ctx, "PATCH", vAPI+"/settings/vs1", nil, admin.NDMPSVMModify{Enabled: &off}, &out); err != nil || out.Enabled {
		t.Fatalf("vsadmin modify own SVM: %+v %v", out, err)
	}
	apiErr(t, vs.Do(ctx, "PATCH", vAPI+"/settings/cluster1", nil, admin.NDMPSVMModify{Enabled: &off}, nil), http.StatusForbidden, "cluster1")
	_, err = admin.List[admin.NDMPSVMSettings](ctx, vs, vAPI, url.Values{"vserver": {"cluster1"}})
	apiErr(t, err, http.StatusForbidden, "cluster1")
	_, err = admin.List[admin.NDMPNodeSettings](ctx, vs, sAPI, nil)
	apiErr(t, err, http.StatusForbidden, "")
	apiErr(t, vs.Do(ctx, "POST", sAPI+"/kill-all", nil, admin.NDMPKill{}, nil), http.StatusForbidden, "")
	apiErr(t, vs.Do(ctx, "POST", vAPI+"/kill", nil, admin.NDMPKill{SessionID: "12"}, nil), http.StatusBadRequest, "ndmpd session 12 not active")

	adm := e.client("admin", adminPW)
	apiErr(t, adm.Do(ctx, "PATCH", vAPI+"/settings/nosuch", nil, admin.NDMPSVMModify{Enabled: &off}, nil), http.StatusNotFound, "nosuch")
	apiErr(t, adm.Do(ctx, "PATCH", vAPI+"/settings/vs1", nil, map[string]any{"enable": true, "bogus": 1}, nil), http.StatusBadRequest, "bogus")
	empty := []string{}
	apiErr(t, adm.Do(ctx, "PATCH", vAPI+"/settings/vs1", nil, admin.NDMPSVMModify{AuthTypes: &empty}, nil), http.StatusBadRequest, "-authtype")
	apiErr(t, adm.Do(ctx, "PATCH", vAPI+"/settings/vs1", nil, admin.NDMPSVMModify{PreferredInterfaceRole: &[]string{"data", "data"}}, nil),
		http.StatusBadRequest, "twice")
	// Node scope: plaintext can be switched off, challenge always stays (N3).
	noText := false
	var ns admin.NDMPNodeSettings
	if err := adm.Do(ctx, "PATCH", sAPI+"/settings/"+testNodeName, nil, admin.NDMPNodeModify{Plaintext: &noText}, &ns); err != nil || ns.Plaintext || ns.User != auth.DefaultNodeNDMPUser {
		t.Fatalf("node modify: %+v %v", ns, err)
	}
	// A refused data port range leaves the user as it was too.
	bob, badRange := "bob", "80-90"
	apiErr(t, adm.Do(ctx, "PATCH", sAPI+"/settings/"+testNodeName, nil, admin.NDMPNodeModify{User: &bob, DataPortRange: &badRange}, nil), http.StatusBadRequest, "")
	if l, err := admin.List[admin.NDMPNodeSettings](ctx, adm, sAPI, nil); err != nil || len(l) != 1 || l[0].User != auth.DefaultNodeNDMPUser {
		t.Fatalf("after a refused modify: %+v %v", l, err)
	}
	apiErr(t, adm.Do(ctx, "POST", sAPI+"/password", nil, admin.NDMPNodePassword{Password: "x"}, nil), http.StatusBadRequest, "")
	// Log start|stop are advanced.
	apiErr(t, adm.Do(ctx, "POST", vAPI+"/log/start", nil, admin.NDMPKill{SessionFilter: "all"}, nil), http.StatusForbidden, "advanced")
	adm.SetPrivilege(admin.PrivAdvanced)
	var kr admin.NDMPKillResult
	if err := adm.Do(ctx, "POST", vAPI+"/log/start", nil, admin.NDMPKill{SessionFilter: "all"}, &kr); err != nil || len(kr.Sessions) != 0 {
		t.Fatalf("log start all without sessions: %+v %v", kr, err)
	}
	apiErr(t, adm.Do(ctx, "POST", vAPI+"/log/stop", nil, admin.NDMPKill{}, nil), http.StatusBadRequest, "-session-filter")
	apiErr(t, adm.Do(ctx, "POST", vAPI+"/log/stop", nil, admin.NDMPKill{SessionFilter: "some"}, nil), http.StatusBadRequest, "-session-filter")
}

// M2, M3: rdfile over HTTP and backup.log.enable on the running log.
func TestRdfileAPI(t *testing.T) {
	e := newNDMPEnv(t)
	ctx := context.Background()
	adm := e.client("admin", adminPW)
	d := e.log.Dump("/vs1/vol1", 3)
	if err := d.Start(0, eventlog.KindNDMP); err != nil {
		t.Fatal(err)
	}
	if err := d.End(5000); err != nil {
		t.Fatal(err)
	}
	if err := adm.Do(ctx, "POST", "/api/private/cli/options", nil, admin.OptionSet{Name: "backup.log.enable", Value: "off"}, nil); err != nil {
		t.Fatal(err)
	}
	if e.log.Enabled() {
		t.Fatal("log still enabled after backup.log.enable off")
	}
	var f admin.RDFile
	if err := adm.Do(ctx, "GET", "/api/private/cli/rdfile", url.Values{"path": {"/etc/log/backup"}}, nil, &f); err != nil {
		t.Fatal(err)
	}
	lines := eventlog.Lines([]byte(f.Content))
	if f.Name != "backup" || len(lines) != 4 || !strings.HasSuffix(lines[2], "End (5 KB)") || !strings.HasSuffix(lines[3], "Stop_Logging") {
		t.Fatalf("rdfile: %+v", f)
	}
	if err := adm.Do(ctx, "GET", "/api/private/cli/rdfile", url.Values{"path": {"/mroot/etc/log/backup"}, "tail": {"2"}}, nil, &f); err != nil ||
		f.Content != lines[2]+"\n"+lines[3]+"\n" {
		t.Fatalf("rdfile tail 2: %q %v", f.Content, err)
	}
	for _, c := range []struct {
		q      url.Values
		status int
		msg    string
	}{
		{url.Values{}, http.StatusBadRequest, "missing required parameter path"},
		{url.Values{"path": {"/etc/log/backup.9"}}, http.StatusBadRequest, "rdfile"},
		{url.Values{"path": {"/etc/log/../../../etc/shadow"}}, http.StatusBadRequest, "rdfile"},
		{url.Values{"path": {"/etc/log/backup.0"}}, http.StatusNotFound, "no such file"},
		{url.Values{"path": {"/etc/log/backup"}, "tail": {"-1"}}, http.StatusBadRequest, "invalid tail"},
		{url.Values{"path": {"/etc/log/backup"}, "node": {"node2"}}, http.StatusNotFound, "node2"},
	} {
		apiErr(t, adm.Do(ctx, "GET", "/api/private/cli/rdfile", c.q, nil, nil), c.status, c.msg)
	}
	var names admin.Records[string]
	if err := adm.Do(ctx, "GET", "/api/private/cli/eventlog/files", nil, nil, &names); err != nil || len(names.Records) != 1 || names.Records[0] != "backup" {
		t.Fatalf("files: %+v %v", names, err)
	}
	// After a rotation last week's file is backup.0 (M2).
	if err := e.log.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := adm.Do(ctx, "GET", "/api/private/cli/rdfile", url.Values{"path": {"/etc/log/backup.0"}}, nil, &f); err != nil ||
		f.Name != "backup.0" || len(eventlog.Lines([]byte(f.Content))) != 4 {
		t.Fatalf("rdfile backup.0 after rotation: %+v %v", f, err)
	}
	if err := adm.Do(ctx, "GET", "/api/private/cli/eventlog/files", nil, nil, &names); err != nil || len(names.Records) != 2 || names.Records[1] != "backup.0" {
		t.Fatalf("files after rotation: %+v %v", names, err)
	}
	vs := e.client("vs1/vsadm", "Vsadmin123")
	apiErr(t, vs.Do(ctx, "GET", "/api/private/cli/rdfile", url.Values{"path": {"/etc/log/backup"}}, nil, nil), http.StatusForbidden, "")
}

// Issue 6 item 3: /metrics needs valid credentials.
func TestMetricsAuth(t *testing.T) {
	e := newNDMPEnv(t)
	if st, _ := e.raw(t, "GET", "/metrics", "", "", nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d", st)
	}
	if st, _ := e.raw(t, "GET", "/metrics", "admin", "nope", nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", st)
	}
	if st, _ := e.raw(t, "GET", "/metrics", "admin", adminPW, nil, nil); st != http.StatusOK {
		t.Fatalf("admin: %d", st)
	}
}

// FuzzNDMPQuery sends arbitrary session ids, session filters, rdfile paths
// and tail counts to the real API: every answer is a 2xx or 4xx, never a
// failure of the server.
func FuzzNDMPQuery(f *testing.F) {
	f.Add("1", "all", "/etc/log/backup", "3")
	f.Add("18446744073709551616", "session-id=", "etc/log/backup.5", "0")
	f.Add("-1", "session-id=abc", "/mroot/etc/log/../backup", "x")
	f.Add("", "", "", "")
	f.Add(" 7", "session-id=7", "/etc/log/backup\x00", "99999999999")
	e := newNDMPEnv(f)
	f.Fuzz(func(t *testing.T, id, filter, path, tail string) {
		c := e.client("admin", adminPW)
		defer c.Close()
		c.SetPrivilege(admin.PrivAdvanced)
		ctx := context.Background()
		check := func(what string, err error) {
			var ae *admin.APIError
			if err != nil && (!errors.As(err, &ae) || ae.Status >= 500) {
				t.Fatalf("%s: %v", what, err)
			}
		}
		check("probe", c.Do(ctx, "GET", vAPI+"/sessions", url.Values{"session-id": {id}}, nil, nil))
		check("kill", c.Do(ctx, "POST", sAPI+"/kill", nil, admin.NDMPKill{SessionID: id}, nil))
		check("log", c.Do(ctx, "POST", vAPI+"/log/start", nil, admin.NDMPKill{SessionFilter: filter}, nil))
		check("rdfile", c.Do(ctx, "GET", "/api/private/cli/rdfile", url.Values{"path": {path}, "tail": {tail}}, nil, nil))
	})
}
