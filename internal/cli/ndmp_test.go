package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
	"github.com/tapestry-ndmp/tapestry/internal/server"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// ndmpAddr returns the address of the node-management LIF, read with the
// command line.
func (n *testNode) ndmpAddr() string {
	n.t.Helper()
	var lifs []storage.LIF
	if err := json.Unmarshal([]byte(n.ok("--json", "network", "interface", "show")), &lifs); err != nil {
		n.t.Fatalf("network interface show --json: %v", err)
	}
	for _, l := range lifs {
		if l.Role == storage.RoleNodeMgmt {
			return l.AddrPort().String()
		}
	}
	n.t.Fatalf("no node-management LIF in %+v", lifs)
	return ""
}

// ndmpSession opens an authenticated NDMP session as cluster user admin
// with its generated NDMP password.
func (n *testNode) ndmpSession(ctx context.Context) *ndmp.Client {
	n.t.Helper()
	return n.ndmpSessionWith(ctx, nil)
}

// ndmpSessionWith is ndmpSession with a client configuration.
func (n *testNode) ndmpSessionWith(ctx context.Context, cfg *ndmp.ClientConfig) *ndmp.Client {
	n.t.Helper()
	out := n.ok("vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", "admin")
	_, pw, ok := strings.Cut(out, "Password: ")
	if !ok {
		n.t.Fatalf("generate-password output %q", out)
	}
	addr := n.ndmpAddr()
	var c *ndmp.Client
	var err error
	for deadline := time.Now().Add(testutil.HangGuard); ; time.Sleep(20 * time.Millisecond) {
		if c, err = ndmp.Dial(ctx, addr, cfg); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		n.t.Fatalf("dial %s: %v", addr, err)
	}
	n.t.Cleanup(func() { c.Close(context.Background()) })
	if err := c.Connect(ctx); err != nil {
		n.t.Fatal(err)
	}
	if err := c.AuthMD5(ctx, "admin", strings.TrimSpace(pw)); err != nil {
		n.t.Fatalf("auth: %v", err)
	}
	return c
}

// sessionIDs runs status and returns the session ids it lists.
func (n *testNode) sessionIDs(args ...string) []string {
	n.t.Helper()
	var ids []string
	for _, r := range rows(n.ok(args...)) {
		if len(r) >= 2 {
			ids = append(ids, r[1])
		}
	}
	return ids
}

// waitSessions waits until status lists want sessions.
func (n *testNode) waitSessions(want int, args ...string) []string {
	n.t.Helper()
	deadline := time.Now().Add(testutil.HangGuard)
	for {
		ids := n.sessionIDs(args...)
		if len(ids) == want || time.Now().After(deadline) {
			if len(ids) != want {
				n.t.Fatalf("%s: sessions %v, want %d", strings.Join(args, " "), ids, want)
			}
			return ids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// N13: status and probe show a real session, kill ends it, an unknown id
// gives ONTAP's message, kill-all ends every session; both scopes (N2).
func TestNDMPSessionsStatusProbeKill(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	vstatus := []string{"vserver", "services", "ndmp", "status"}
	sstatus := []string{"system", "services", "ndmp", "status", "-node", n.node}
	if out := n.ok(vstatus...); !strings.Contains(out, "There are no entries") {
		t.Fatalf("status without sessions:\n%s", out)
	}
	c1 := n.ndmpSession(ctx)
	ids := n.waitSessions(1, vstatus...)
	if got := n.sessionIDs(sstatus...); len(got) != 1 || got[0] != ids[0] {
		t.Fatalf("system status %v, vserver status %v", got, ids)
	}
	if got := n.sessionIDs(append(vstatus, "-vserver", "cluster1")...); len(got) != 1 {
		t.Fatalf("status -vserver cluster1: %v", got)
	}

	probe := n.ok("vserver", "services", "ndmp", "probe", "-session-id", ids[0])
	for _, want := range []string{"Session Identifier: " + ids[0], "Node: " + n.node, "Vserver: cluster1",
		"User ID: admin", "Authentication Type: challenge", "LIF Role: node-mgmt", "Data State:", "Mover State:"} {
		if !strings.Contains(probe, want) {
			t.Errorf("probe lacks %q:\n%s", want, probe)
		}
	}
	var infos []server.SessionInfo
	if err := json.Unmarshal([]byte(n.ok("--json", "system", "services", "ndmp", "probe")), &infos); err != nil || len(infos) != 1 ||
		strconv.FormatUint(infos[0].ID, 10) != ids[0] || infos[0].User != "admin" {
		t.Fatalf("probe --json: %+v %v", infos, err)
	}

	// Unknown session: the spec's message (N13).
	n.fail("ndmpd session 999999 not active", "vserver", "services", "ndmp", "kill", "999999")
	n.fail("ndmpd session 999999 not active", "system", "services", "ndmp", "kill", "-session-id", "999999", "-node", n.node)
	n.fail("ndmpd session 999999 not active", "vserver", "services", "ndmp", "probe", "-session-id", "999999")
	n.fail("invalid session id", "vserver", "services", "ndmp", "kill", "abc")
	n.fail("missing required parameter -session-id", "vserver", "services", "ndmp", "kill")
	n.fail(`node "node9" does not exist`, "system", "services", "ndmp", "status", "-node", "node9")

	// log start|stop needs the advanced privilege level.
	n.fail("advanced privilege", "vserver", "services", "ndmp", "log", "start", "-session-filter", ids[0])
	if out := n.ok("--privilege", "advanced", "vserver", "services", "ndmp", "log", "start", "-session-filter", ids[0]); !strings.Contains(out, "Logging started for 1 NDMP sessions: "+ids[0]) {
		t.Fatalf("log start: %q", out)
	}
	n.ok("--privilege", "advanced", "system", "services", "ndmp", "log", "stop", "-session-filter", "all")
	n.fail("ndmpd session 999999 not active", "--privilege", "advanced", "vserver", "services", "ndmp", "log", "start", "-session-filter", "session-id=999999")

	// kill ends the session: the server closes the connection.
	n.ok("vserver", "services", "ndmp", "kill", "-session-id", ids[0])
	n.waitSessions(0, vstatus...)
	if _, err := c1.GetServerInfo(ctx); err == nil {
		t.Fatal("killed session still answers")
	}

	// kill-all in node scope ends two sessions.
	n.ndmpSession(ctx)
	n.ndmpSession(ctx)
	n.waitSessions(2, sstatus...)
	if out := n.ok("system", "services", "ndmp", "kill-all", "-node", n.node); !strings.Contains(out, "2 NDMP sessions terminated.") {
		t.Fatalf("kill-all: %q", out)
	}
	n.waitSessions(0, sstatus...)

	// vserver kill-all limited to an SVM without sessions ends none.
	n.ndmpSession(ctx)
	n.waitSessions(1, vstatus...)
	n.ok("vserver", "create", "-vserver", "vs1")
	if out := n.ok("vserver", "services", "ndmp", "kill-all", "-vserver", "vs1"); !strings.Contains(out, "0 NDMP sessions terminated.") {
		t.Fatalf("kill-all -vserver vs1: %q", out)
	}
	n.waitSessions(1, vstatus...)
	n.ok("system", "services", "ndmp", "service", "terminate", "-privilege", "advanced")
	n.waitSessions(0, vstatus...)
}

// N2, N3, N7-N9: the SVM-scope settings commands.
func TestVserverNDMPSettings(t *testing.T) {
	n := startNode(t)
	n.ok("vserver", "create", "-vserver", "vs1")
	show := func(svm, field string) string {
		t.Helper()
		r, err := column(n.ok("vserver", "services", "ndmp", "show", "-vserver", svm, "-fields", field), svm)
		if err != nil || len(r) < 2 {
			t.Fatalf("show %s %s: %v %v", svm, field, r, err)
		}
		return r[1]
	}
	out := n.ok("vserver", "services", "ndmp", "show")
	if r, err := column(out, "vs1"); err != nil || r[1] != "true" || r[2] != "challenge" {
		t.Fatalf("default show:\n%s", out)
	}
	if !strings.Contains(out, "2 entries were displayed.") {
		t.Fatalf("show of two SVMs:\n%s", out)
	}
	n.ok("vserver", "services", "ndmp", "off", "-vserver", "vs1")
	if v := show("vs1", "enable"); v != "false" {
		t.Fatalf("after off: enable %s", v)
	}
	n.ok("vserver", "services", "ndmp", "on", "vs1")
	if v := show("vs1", "enable"); v != "true" {
		t.Fatalf("after on: enable %s", v)
	}
	n.ok("vserver", "services", "ndmp", "modify", "-vserver", "vs1", "-authtype", "plaintext,challenge",
		"-is-secure-control-connection-enabled", "true", "-data-port-range", "20000-20100",
		"-preferred-interface-role", "data,intercluster", "-debug-enable", "true", "-backup-log-enable", "false")
	for field, want := range map[string]string{
		"authtype": "plaintext,challenge", "is-secure-control-connection-enabled": "true",
		"data-port-range": "20000-20100", "preferred-interface-role": "data,intercluster",
		"debug-enable": "true", "backup-log-enable": "false",
	} {
		if v := show("vs1", field); v != want {
			t.Errorf("%s = %s, want %s", field, v, want)
		}
	}
	// The admin SVM's default roles (N7).
	if v := show("cluster1", "preferred-interface-role"); v != "intercluster,cluster-mgmt,node-mgmt" {
		t.Errorf("cluster1 preferred-interface-role %s", v)
	}
	n.fail("data-port-range", "vserver", "services", "ndmp", "modify", "-vserver", "vs1", "-data-port-range", "80-90")
	n.fail("-authtype", "vserver", "services", "ndmp", "modify", "-vserver", "vs1", "-authtype", "kerberos")
	n.fail("-preferred-interface-role", "vserver", "services", "ndmp", "modify", "-vserver", "vs1", "-preferred-interface-role", "wan")
	n.fail("use true or false", "vserver", "services", "ndmp", "modify", "-vserver", "vs1", "-debug-enable", "maybe")
	n.fail("nothing to modify", "vserver", "services", "ndmp", "modify", "-vserver", "vs1")
	n.fail(`Vserver "nosuch"`, "vserver", "services", "ndmp", "show", "-vserver", "nosuch")
	n.fail("nosuch", "vserver", "services", "ndmp", "modify", "-vserver", "nosuch", "-debug-enable", "true")
	if v := show("vs1", "data-port-range"); v != "20000-20100" {
		t.Errorf("refused modify changed data-port-range to %s", v)
	}

	out = n.ok("vserver", "services", "ndmp", "version", "-vserver", "vs1")
	if r, err := column(out, "vs1"); err != nil || r[1] != "4" {
		t.Fatalf("version:\n%s", out)
	}

	// Extensions (advanced, N9).
	n.fail("advanced privilege", "vserver", "services", "ndmp", "extensions", "show")
	n.ok("--privilege", "advanced", "vserver", "services", "ndmp", "extensions", "modify", "-vserver", "vs1", "-is-extension-enabled", "false")
	out = n.ok("--privilege", "advanced", "vserver", "services", "ndmp", "extensions", "show", "-vserver", "vs1")
	if r, err := column(out, "vs1"); err != nil || r[1] != "false" {
		t.Fatalf("extensions show:\n%s", out)
	}
	n.ok("--privilege", "advanced", "vserver", "services", "ndmp", "extensions", "modify", "vs1", "-is-extension-enabled", "true")
	if v := show("vs1", "is-extension-enabled"); v != "true" {
		t.Fatalf("extensions after modify true: %s", v)
	}
}

// N2, N3: the node-scope commands.
func TestSystemNDMPSettings(t *testing.T) {
	n := startNode(t)
	out := n.ok("system", "services", "ndmp", "show")
	if r, err := column(out, n.node); err != nil || !equal(r, []string{n.node, "true", "true", "root"}) {
		t.Fatalf("show:\n%s", out)
	}
	n.ok("system", "services", "ndmp", "modify", "-node", n.node, "-clear-text", "false", "-user-id", "ndmpuser",
		"-data-port-range", "30001-30010", "-debug-enable", "true")
	out = n.ok("system", "services", "ndmp", "show", "-node", n.node, "-instance")
	for _, want := range []string{"Allow Clear Text Password: false", "NDMP User ID: ndmpuser", "Data Port Range: 30001-30010", "Enable Debug: true", "NDMP Password Set: false"} {
		if !strings.Contains(out, want) {
			t.Errorf("show -instance lacks %q:\n%s", want, out)
		}
	}
	n.fail("data-port-range", "system", "services", "ndmp", "modify", "-data-port-range", "1-2")
	// Issue 10: the limits of unauthenticated connections.
	out = n.ok("system", "services", "ndmp", "show", "-instance")
	for _, want := range []string{"Seconds to Authenticate: 30", "Maximum Unauthenticated Connections: 256", "Maximum Unauthenticated Connections per Address: 32"} {
		if !strings.Contains(out, want) {
			t.Errorf("show -instance lacks the default %q:\n%s", want, out)
		}
	}
	n.ok("system", "services", "ndmp", "modify", "-auth-timeout", "10", "-max-unauthenticated", "64", "-max-unauthenticated-per-address", "4")
	out = n.ok("system", "services", "ndmp", "show", "-instance")
	for _, want := range []string{"Seconds to Authenticate: 10", "Maximum Unauthenticated Connections: 64", "Maximum Unauthenticated Connections per Address: 4"} {
		if !strings.Contains(out, want) {
			t.Errorf("show -instance lacks %q:\n%s", want, out)
		}
	}
	n.fail("auth-timeout", "system", "services", "ndmp", "modify", "-auth-timeout", "-1")
	n.fail("auth-timeout", "system", "services", "ndmp", "modify", "-auth-timeout", "99999")
	n.fail(`node "node7" does not exist`, "system", "services", "ndmp", "modify", "-node", "node7", "-enable", "false")

	n.ok("system", "services", "ndmp", "off", "-node", n.node)
	out = n.ok("system", "services", "ndmp", "service", "show")
	if r, err := column(out, n.node); err != nil || r[1] != "stopped" {
		t.Fatalf("service show after off:\n%s", out)
	}
	n.fail("advanced privilege", "system", "services", "ndmp", "service", "start")
	n.ok("--privilege", "advanced", "system", "services", "ndmp", "service", "start", "-node", n.node)
	if r, err := column(n.ok("system", "services", "ndmp", "service", "show"), n.node); err != nil || r[1] != "running" {
		t.Fatalf("service show after start: %v %v", r, err)
	}
	n.ok("system", "services", "ndmp", "service", "modify", "-node", n.node, "-enable", "false")
	if r, _ := column(n.ok("system", "services", "ndmp", "show"), n.node); r[1] != "false" {
		t.Fatalf("enable after service modify -enable false: %v", r)
	}
	n.ok("system", "services", "ndmp", "on")

	if out := n.ok("system", "services", "ndmp", "node-scope-mode", "status"); out != "NDMP node-scope-mode is disabled on node "+n.node+".\n" {
		t.Fatalf("node-scope-mode status %q", out)
	}
	n.ok("system", "services", "ndmp", "node-scope-mode", "on", "-node", n.node)
	if out := n.ok("system", "services", "ndmp", "node-scope-mode", "status"); !strings.Contains(out, "is enabled") {
		t.Fatalf("node-scope-mode status after on %q", out)
	}
	n.ok("system", "services", "ndmp", "node-scope-mode", "off")

	// password: too short is refused by auth's rules, a good one sets it.
	n.fail("no terminal", "system", "services", "ndmp", "password")
	n.ok("system", "services", "ndmp", "password", "-node", n.node, "-new-password", "Ndmp12345")
	if !strings.Contains(n.ok("system", "services", "ndmp", "show", "-instance"), "NDMP Password Set: true") {
		t.Fatal("password not recorded as set")
	}
	out = n.ok("system", "services", "ndmp", "version")
	if r, err := column(out, n.node); err != nil || r[1] != "4" {
		t.Fatalf("version:\n%s", out)
	}
	// An SVM user cannot use node-scope commands.
	n.ok("vserver", "create", "-vserver", "vs1")
	n.ok("security", "login", "create", "-vserver", "vs1", "-user-or-group-name", "vsadm", "-role", "vsadmin", "-password", "Vsadmin123")
	r := n.runAs("vs1/vsadm", "Vsadmin123", "system", "services", "ndmp", "show")
	checkFail(t, r, "", []string{"system services ndmp show as vs1/vsadm"})
}

// M1-M3: backup.log.enable off and on write Stop_Logging and Start_Logging,
// read back with rdfile, system node run and the REST path.
func TestBackupLogEnableAndRdfile(t *testing.T) {
	n := startNode(t)
	n.ok("options", "-option-name", "backup.log.enable", "-option-value", "off")
	n.ok("options", "-option_name", "backup.log.enable", "-option-value", "on")
	out := n.ok("rdfile", "/etc/log/backup")
	var events []eventlog.Event
	for _, l := range eventlog.Lines([]byte(out)) {
		e, err := eventlog.Parse(l)
		if err != nil {
			t.Fatalf("rdfile line %q: %v", l, err)
		}
		events = append(events, e.Event)
	}
	want := []eventlog.Event{eventlog.EventStartLogging, eventlog.EventStopLogging, eventlog.EventStartLogging}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v; file:\n%s", events, want, out)
	}
	// The same through the nodeshell, both spellings.
	if got := n.ok("system", "node", "run", "-node", n.node, "-command", "rdfile /etc/log/backup"); got != out {
		t.Fatalf("node run -command: %q, want %q", got, out)
	}
	if got := n.ok("system", "node", "run", "-node", n.node, "rdfile", "/etc/log/backup"); got != out {
		t.Fatalf("node run words: %q", got)
	}
	if got := n.ok("rdfile", "-tail", "1", "/etc/log/backup"); got != eventlog.Lines([]byte(out))[2]+"\n" {
		t.Fatalf("rdfile -tail 1: %q", got)
	}
	// Setting the same value again writes nothing.
	n.ok("options", "backup.log.enable", "on")
	if got := n.ok("rdfile", "/etc/log/backup"); got != out {
		t.Fatalf("on again changed the log:\n%s", got)
	}
	n.fail("no such file", "rdfile", "/etc/log/backup.3")
	n.fail("rdfile: /etc/passwd", "rdfile", "/etc/passwd")
	n.fail("rdfile: ../../catalog.db", "rdfile", "../../catalog.db")
	n.fail("not supported", "system", "node", "run", "-node", n.node, "-command", "sysconfig -a")
	n.fail("missing required parameter -node", "system", "node", "run", "rdfile", "/etc/log/backup")

	// Off survives a restart: the reopened log writes no Start_Logging.
	n.ok("options", "backup.log.enable", "off")
	n.shutdown()
	n.start()
	after := n.ok("rdfile", "/etc/log/backup")
	lines := eventlog.Lines([]byte(after))
	if e, err := eventlog.Parse(lines[len(lines)-1]); err != nil || e.Event != eventlog.EventStopLogging {
		t.Fatalf("after restart with logging off the last line is %q (%v)", lines[len(lines)-1], err)
	}
}

// scrape reads GET /metrics as user and returns every sample as
// "name,label=value,..." -> value, or nil and the HTTP status on failure.
func (n *testNode) scrape(user, pass string) (map[string]float64, int) {
	t := n.t
	t.Helper()
	ctx := context.Background()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", n.socket)
	}}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://tapestry/metrics", nil)
	req.SetBasicAuth(user, pass)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	vals := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				key += fmt.Sprintf(",%s=%s", l.GetName(), l.GetValue())
			}
			switch {
			case m.GetGauge() != nil:
				vals[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				vals[key] = m.GetCounter().GetValue()
			}
		}
	}
	return vals, http.StatusOK
}

// Issue 6 item 3: GET /metrics in the Prometheus text format shows a session
// count that follows real NDMP sessions.
func TestMetricsEndpoint(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	sessions := func(v map[string]float64) float64 {
		sum := 0.0
		for k, x := range v {
			if strings.HasPrefix(k, "tapestry_ndmp_sessions,") {
				sum += x
			}
		}
		return sum
	}
	if _, code := n.scrape("admin", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: HTTP %d", code)
	}
	v, _ := n.scrape(n.user, n.pass)
	if sessions(v) != 0 || v["tapestry_ndmp_sessions_limit"] < 8 {
		t.Fatalf("before: sessions %v limit %v", sessions(v), v["tapestry_ndmp_sessions_limit"])
	}
	if _, ok := v["tapestry_tape_bytes_total,device=st0,direction=write"]; !ok {
		var keys []string
		for k := range v {
			if strings.HasPrefix(k, "tapestry_tape") {
				keys = append(keys, k)
			}
		}
		t.Fatalf("no tape metrics for the virtual drives: %v", keys)
	}
	// The daemon wires the server's node-wide counters (N14 back-pressure).
	for _, k := range []string{"tapestry_fh_queue_depth", "tapestry_fh_stalls_total", "tapestry_mover_records_total"} {
		if _, ok := v[k]; !ok {
			t.Fatalf("metric %s missing from the daemon's /metrics", k)
		}
	}
	n.ndmpSession(ctx)
	n.ndmpSession(ctx)
	n.waitSessions(2, "vserver", "services", "ndmp", "status")
	v, _ = n.scrape(n.user, n.pass)
	if sessions(v) != 2 || v["tapestry_ndmp_sessions,state=idle"] != 2 {
		t.Fatalf("with two sessions: %v", v)
	}
	n.ok("vserver", "services", "ndmp", "kill-all")
	n.waitSessions(0, "vserver", "services", "ndmp", "status")
	if v, _ = n.scrape(n.user, n.pass); sessions(v) != 0 {
		t.Fatalf("after kill-all: %v sessions", sessions(v))
	}
	// Snapshot counts per volume come from storage.
	dir := t.TempDir()
	n.ok("vserver", "create", "-vserver", "vs1")
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "vol1", "-path", dir, "-snapshot-provider", "copy")
	n.ok("volume", "snapshot", "create", "-vserver", "vs1", "-volume", "vol1", "-snapshot", "s1")
	if v, _ = n.scrape(n.user, n.pass); v["tapestry_volume_snapshots,volume=vol1,vserver=vs1"] != 1 {
		t.Fatalf("snapshot count: %v", v["tapestry_volume_snapshots,volume=vol1,vserver=vs1"])
	}
}

// N4, N13: an SVM administrator sees and ends only the sessions on the
// SVM's own data LIF; the cluster administrator sees all of them.
func TestNDMPSessionsBySVM(t *testing.T) {
	t.Parallel() // mostly waits for the server's LIF rescan
	n := startNode(t)
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	n.ok("vserver", "create", "-vserver", "vs1")
	n.ok("network", "interface", "create", "-vserver", "vs1", "-lif", "vs1_data1", "-role", "data", "-address", "127.0.0.1", "-port", strconv.Itoa(port))
	n.ok("security", "login", "create", "-vserver", "vs1", "-user-or-group-name", "vsadm", "-role", "vsadmin", "-password", "Vsadmin123")
	out := n.ok("vserver", "services", "ndmp", "generate-password", "-vserver", "vs1", "-user", "vsadm")
	_, pw, _ := strings.Cut(out, "Password: ")
	// The server picks up the new LIF within its rescan interval.
	var vc *ndmp.Client
	for deadline := time.Now().Add(testutil.HangGuard); ; time.Sleep(100 * time.Millisecond) {
		if vc, err = ndmp.Dial(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("dial the data LIF: %v", err)
	}
	defer vc.Close(ctx)
	if err := vc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := vc.AuthMD5(ctx, "vsadm", strings.TrimSpace(pw)); err != nil {
		t.Fatalf("vsadm auth: %v", err)
	}
	n.ndmpSession(ctx)
	all := n.waitSessions(2, "vserver", "services", "ndmp", "status")
	vsIDs := n.sessionIDs("vserver", "services", "ndmp", "status", "-vserver", "vs1")
	if len(vsIDs) != 1 {
		t.Fatalf("status -vserver vs1: %v of %v", vsIDs, all)
	}
	clusterID := all[0]
	if clusterID == vsIDs[0] {
		clusterID = all[1]
	}
	as := func(args ...string) result { return n.runAs("vs1/vsadm", "Vsadmin123", args...) }
	r := as("vserver", "services", "ndmp", "probe")
	if r.code != 0 || !strings.Contains(r.out, "Vserver: vs1") || !strings.Contains(r.out, "Session Identifier: "+vsIDs[0]) ||
		strings.Contains(r.out, "Session Identifier: "+clusterID) || !strings.Contains(r.out, "LIF Role: data") {
		t.Fatalf("vsadm probe: %d %s%s", r.code, r.out, r.errOut)
	}
	checkFail(t, as("vserver", "services", "ndmp", "kill", clusterID), "ndmpd session "+clusterID+" not active", nil)
	checkFail(t, as("system", "services", "ndmp", "status"), "", nil)
	if r := as("vserver", "services", "ndmp", "kill-all"); r.code != 0 || !strings.Contains(r.out, "1 NDMP sessions terminated.") {
		t.Fatalf("vsadm kill-all: %d %s%s", r.code, r.out, r.errOut)
	}
	if left := n.waitSessions(1, "vserver", "services", "ndmp", "status"); left[0] != clusterID {
		t.Fatalf("left %v, want the cluster session %s", left, clusterID)
	}
}
