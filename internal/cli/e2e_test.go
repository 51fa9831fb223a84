package cli

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

// These tests drive the command line against a real daemon over its real
// unix socket (issue 2 item 6; V1, V2, N4, N5).

func TestClusterShow(t *testing.T) {
	n := startNode(t)
	out := n.ok("cluster", "show")
	if r := rows(out); len(r) != 1 || !equal(r[0], []string{n.node, "true", "true"}) {
		t.Fatalf("cluster show rows %q\n%s", r, out)
	}
	if !strings.HasPrefix(out, "Node ") || strings.Contains(out, "entries were displayed") {
		t.Fatalf("cluster show output:\n%s", out)
	}
	inst := n.ok("cluster", "show", "-instance")
	if !strings.Contains(inst, "Node: "+n.node+"\n") || !strings.Contains(inst, "Cluster Name: cluster1\n") {
		t.Fatalf("cluster show -instance:\n%s", inst)
	}
	var info admin.ClusterInfo
	if err := json.Unmarshal([]byte(n.ok("cluster", "show", "--json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != "cluster1" || len(info.Nodes) != 1 || info.Nodes[0].Name != n.node {
		t.Fatalf("cluster show --json: %+v", info)
	}
}

func svmNames(t *testing.T, n *testNode) []string {
	t.Helper()
	var svms []admin.SVM
	if err := json.Unmarshal([]byte(n.ok("vserver", "show", "--json")), &svms); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range svms {
		names = append(names, v.Name)
	}
	return names
}

func TestVserverCommands(t *testing.T) {
	n := startNode(t)
	n.ok("vserver", "create", "vs1")
	n.ok("vserver", "create", "-vserver", "vs2", "-disallowed-protocols", "ndmp,cifs", "-comment", "second")
	out := n.ok("vserver", "show")
	if !strings.HasSuffix(out, "3 entries were displayed.\n") {
		t.Fatalf("vserver show:\n%s", out)
	}
	if r, err := column(out, "vs2"); err != nil || !equal(r, []string{"vs2", "data", "running", "running", "-"}) {
		t.Fatalf("vs2 row %q (%v)\n%s", r, err, out)
	}
	out = n.ok("vserver", "show", "-vserver", "vs2", "-fields", "disallowed-protocols,comment")
	if r := rows(out); len(r) != 1 || !equal(r[0], []string{"vs2", "cifs,ndmp", "second"}) {
		t.Fatalf("-fields rows %q\n%s", r, out)
	}
	if !strings.HasPrefix(out, "vserver disallowed-protocols comment\n") {
		t.Fatalf("-fields header:\n%s", out)
	}

	// N5: ndmp onto the disallowed list and back.
	n.ok("vserver", "modify", "-vserver", "vs1", "-disallowed-protocols", "ndmp")
	if got := n.ok("vserver", "show", "vs1", "-fields", "disallowed-protocols"); !strings.Contains(got, "vs1     ndmp") {
		t.Fatalf("after modify:\n%s", got)
	}
	n.ok("vserver", "modify", "vs1", "-allowed-protocols", "nfs,cifs,fcp,iscsi,ndmp,nvme,s3")
	if got := n.ok("vserver", "show", "vs1", "-fields", "disallowed-protocols"); !strings.Contains(got, "vs1     -") {
		t.Fatalf("after allowing all:\n%s", got)
	}

	// Bad input changes nothing.
	before := svmNames(t, n)
	n.fail(`Vserver "vs1" already exists`, "vserver", "create", "vs1")
	n.fail("not a valid protocol", "vserver", "create", "vs3", "-disallowed-protocols", "gopher")
	n.fail("invalid character", "vserver", "create", "bad/name")
	n.fail("missing required parameter -vserver", "vserver", "create")
	n.fail(`Vserver "nosuch" does not exist`, "vserver", "modify", "nosuch", "-comment", "x")
	n.fail(`Vserver "nosuch" does not exist`, "vserver", "delete", "nosuch")
	n.fail("admin Vserver", "vserver", "delete", "cluster1")
	n.fail("nothing to modify", "vserver", "modify", "vs1")
	if after := svmNames(t, n); !slices.Equal(before, after) {
		t.Fatalf("failed commands changed the SVMs: %v -> %v", before, after)
	}

	n.ok("vserver", "delete", "vs2")
	if got := svmNames(t, n); !slices.Equal(got, []string{"cluster1", "vs1"}) {
		t.Fatalf("after delete: %v", got)
	}
	if out := n.ok("vserver", "show", "-vserver", "vs2"); out != "There are no entries matching your query.\n" {
		t.Fatalf("show of a deleted SVM:\n%s", out)
	}
}

func TestNetworkInterfaceCommands(t *testing.T) {
	n := startNode(t)
	n.ok("vserver", "create", "vs1")
	out := n.ok("network", "interface", "show")
	if r, err := column(out, "cluster1", n.node+"_mgmt1"); err != nil || !equal(r, []string{"cluster1", n.node + "_mgmt1", "node-mgmt", "127.0.0.1", strings.TrimPrefix(n.ndmpListen, "127.0.0.1:"), n.node}) {
		t.Fatalf("mgmt LIF row %q (%v)\n%s", r, err, out)
	}
	// A free port, so that parallel test runs never collide on the LIF.
	port := freePort(t, "127.0.0.2")
	n.ok("network", "interface", "create", "-vserver", "vs1", "-lif", "lif1", "-role", "data", "-address", "127.0.0.2",
		"-netmask", "255.0.0.0", "-home-node", n.node, "-port", port)
	out = n.ok("network", "interface", "show", "-vserver", "vs1", "-fields", "address,port,role")
	if r := rows(out); len(r) != 1 || !equal(r[0], []string{"vs1", "lif1", "127.0.0.2", port, "data"}) {
		t.Fatalf("lif1 rows %q\n%s", r, out)
	}
	n.fail("already used", "network", "interface", "create", "-vserver", "vs1", "-lif", "lif2", "-role", "data", "-address", "127.0.0.2", "-port", port)
	n.fail("already exists", "network", "interface", "create", "-vserver", "vs1", "-lif", "lif1", "-role", "data", "-address", "127.0.0.3")
	n.fail(`Vserver "nosuch" does not exist`, "network", "interface", "create", "-vserver", "nosuch", "-lif", "l", "-role", "data", "-address", "127.0.0.4")
	n.fail("not a valid netmask", "network", "interface", "create", "-vserver", "vs1", "-lif", "l", "-role", "data", "-address", "127.0.0.4", "-netmask", "255.0.255.0")
	n.fail("not a valid LIF role", "network", "interface", "create", "-vserver", "vs1", "-lif", "l", "-role", "boss", "-address", "127.0.0.4")
	n.fail("not a valid IP address", "network", "interface", "create", "-vserver", "vs1", "-lif", "l", "-role", "data", "-address", "host.example")
	n.fail("missing required parameter -address", "network", "interface", "create", "-vserver", "vs1", "-lif", "l", "-role", "data")
	if r := rows(n.ok("network", "interface", "show")); len(r) != 2 {
		t.Fatalf("failed creates left LIFs: %q", r)
	}
	n.fail("does not exist", "network", "interface", "delete", "-vserver", "vs1", "-lif", "nosuch")
	n.fail("still has 1 LIFs", "vserver", "delete", "vs1")
	n.ok("network", "interface", "delete", "-vserver", "vs1", "-lif", "lif1")
	if out := n.ok("network", "interface", "show", "-vserver", "vs1"); !strings.Contains(out, "no entries") {
		t.Fatalf("after delete:\n%s", out)
	}
	n.ok("vserver", "delete", "vs1")
}

// freePort returns a TCP port of addr that was free a moment ago: the
// system picks it for a listener that is closed at once.
func freePort(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatalf("find a free port on %s: %v", addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(port)
}

func mkdirs(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVolumeCommands(t *testing.T) {
	n := startNode(t)
	root := t.TempDir()
	v1, v2 := filepath.Join(root, "v1"), filepath.Join(root, "v2")
	mkdirs(t, v1, v2)
	n.ok("vserver", "create", "vs1")
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "vol1", "-path", v1, "-snapshot-provider", "copy")
	n.ok("volume", "create", "vs1", "vol2", "-path", v2, "-type", "dp", "-snapshot-provider", "copy")
	out := n.ok("volume", "show")
	if r, err := column(out, "vs1", "vol1"); err != nil || !equal(r, []string{"vs1", "vol1", "online", "RW", "copy", v1}) {
		t.Fatalf("vol1 row %q (%v)\n%s", r, err, out)
	}
	if r, err := column(out, "vs1", "vol2"); err != nil || r[3] != "DP" {
		t.Fatalf("vol2 row %q (%v)\n%s", r, err, out)
	}

	before := n.ok("volume", "show", "--json")
	mkdirs(t, filepath.Join(root, "other"))
	n.fail("already exists", "volume", "create", "-vserver", "vs1", "-volume", "vol1", "-path", filepath.Join(root, "other"))
	n.fail("overlaps", "volume", "create", "-vserver", "vs1", "-volume", "vol3", "-path", v1)
	mkdirs(t, filepath.Join(v1, "inner"))
	n.fail("overlaps", "volume", "create", "-vserver", "vs1", "-volume", "vol3", "-path", filepath.Join(v1, "inner"))
	n.fail("overlaps", "volume", "create", "-vserver", "vs1", "-volume", "vol3", "-path", root)
	n.fail("does not exist", "volume", "create", "-vserver", "vs1", "-volume", "vol3", "-path", filepath.Join(root, "missing"))
	mkdirs(t, filepath.Join(root, "v3"))
	n.fail(`Vserver "nosuch" does not exist`, "volume", "create", "-vserver", "nosuch", "-volume", "vol3", "-path", filepath.Join(root, "v3"))
	n.fail("missing required parameter -path", "volume", "create", "-vserver", "vs1", "-volume", "vol3")
	n.fail("not a valid volume type", "volume", "create", "-vserver", "vs1", "-volume", "vol3", "-path", v1+"x", "-type", "XX")
	n.fail("admin", "volume", "create", "-vserver", "cluster1", "-volume", "vol3", "-path", filepath.Join(root, "v3"))
	if after := n.ok("volume", "show", "--json"); after != before {
		t.Fatalf("failed creates changed the volumes:\n%s\n%s", before, after)
	}

	// State changes, including illegal ones.
	n.fail("must be offline to be deleted", "volume", "delete", "-vserver", "vs1", "-volume", "vol1")
	n.fail("online", "volume", "online", "-vserver", "vs1", "-volume", "vol1")
	if out := n.ok("volume", "offline", "-vserver", "vs1", "-volume", "vol1"); !strings.Contains(out, "now offline") {
		t.Fatalf("offline: %s", out)
	}
	n.fail("offline", "volume", "offline", "-vserver", "vs1", "-volume", "vol1")
	n.fail("offline", "volume", "snapshot", "create", "-vserver", "vs1", "-volume", "vol1", "-snapshot", "s1")
	n.ok("volume", "restrict", "vs1", "vol1")
	if out := n.ok("volume", "show", "-volume", "vol1", "-fields", "state"); !strings.Contains(out, "restricted") {
		t.Fatalf("after restrict:\n%s", out)
	}
	n.ok("volume", "online", "vs1", "vol1")
	n.fail("does not exist", "volume", "offline", "-vserver", "vs1", "-volume", "nosuch")

	// Modify: type change bumps the generation (D15).
	n.ok("volume", "modify", "-vserver", "vs1", "-volume", "vol1", "-type", "DP", "-comment", "now dp")
	out = n.ok("volume", "show", "-vserver", "vs1", "-volume", "vol1", "-instance")
	for _, want := range []string{"Volume Type: DP\n", "Comment: now dp\n", "Type Changes: 1\n", "Host Path: " + v1 + "\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("-instance lacks %q:\n%s", want, out)
		}
	}
	n.fail("read-only", "volume", "snapshot", "create", "-vserver", "vs1", "-volume", "vol1", "-snapshot", "s1")
	n.ok("volume", "modify", "vs1", "vol1", "-type", "RW")
	n.fail("nothing to modify", "volume", "modify", "vs1", "vol1")

	n.ok("volume", "offline", "vs1", "vol2")
	n.ok("volume", "delete", "-vserver", "vs1", "-volume", "vol2")
	if _, err := os.Stat(v2); err != nil {
		t.Fatalf("volume delete removed the host directory: %v", err)
	}
	if r := rows(n.ok("volume", "show")); len(r) != 1 {
		t.Fatalf("after delete: %q", r)
	}
}

func TestQtreeCommands(t *testing.T) {
	n := startNode(t)
	v1 := filepath.Join(t.TempDir(), "v1")
	mkdirs(t, v1)
	n.ok("vserver", "create", "vs1")
	n.ok("volume", "create", "vs1", "vol1", "-path", v1, "-snapshot-provider", "copy")
	n.ok("volume", "qtree", "create", "-vserver", "vs1", "-volume", "vol1", "-qtree", "q1")
	n.ok("volume", "qtree", "create", "vs1", "vol1", "q2", "-security-style", "ntfs")
	if fi, err := os.Stat(filepath.Join(v1, "q1")); err != nil || !fi.IsDir() {
		t.Fatalf("qtree directory: %v", err)
	}
	out := n.ok("volume", "qtree", "show")
	if r, err := column(out, "vs1", "vol1", "q2"); err != nil || !equal(r, []string{"vs1", "vol1", "q2", "ntfs", "2"}) {
		t.Fatalf("q2 row %q (%v)\n%s", r, err, out)
	}
	n.fail("already exists", "volume", "qtree", "create", "vs1", "vol1", "q1")
	n.fail("does not exist", "volume", "qtree", "create", "vs1", "nosuch", "q3")
	if err := os.WriteFile(filepath.Join(v1, "q1", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.fail("not empty", "volume", "qtree", "delete", "vs1", "vol1", "q1")
	n.ok("volume", "qtree", "delete", "vs1", "vol1", "q1", "-force")
	n.ok("volume", "qtree", "delete", "-vserver", "vs1", "-volume", "vol1", "-qtree", "q2")
	if out := n.ok("volume", "qtree", "show", "-vserver", "vs1"); !strings.Contains(out, "no entries") {
		t.Fatalf("after delete:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(v1, "q1")); !os.IsNotExist(err) {
		t.Fatalf("forced delete left the directory: %v", err)
	}
}

func TestSnapshotCommands(t *testing.T) {
	n := startNode(t)
	v1 := filepath.Join(t.TempDir(), "v1")
	mkdirs(t, v1)
	file := filepath.Join(v1, "data.txt")
	if err := os.WriteFile(file, []byte("old content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.ok("vserver", "create", "vs1")
	n.ok("volume", "create", "vs1", "vol1", "-path", v1, "-snapshot-provider", "copy")
	n.ok("volume", "snapshot", "create", "-vserver", "vs1", "-volume", "vol1", "-snapshot", "s1")
	n.ok("volume", "snapshot", "create", "vs1", "vol1", "s2")
	if err := os.WriteFile(file, []byte("new content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := n.ok("volume", "snapshot", "show", "-vserver", "vs1", "-volume", "vol1", "-fields", "path")
	r, err := column(out, "vs1", "vol1", "s1")
	if err != nil || len(r) != 4 {
		t.Fatalf("-fields path rows %q (%v)\n%s", rows(out), err, out)
	}
	got, err := os.ReadFile(filepath.Join(r[3], "data.txt"))
	if err != nil || string(got) != "old content\n" {
		t.Fatalf("snapshot content %q, %v", got, err)
	}
	if !strings.HasSuffix(out, "2 entries were displayed.\n") {
		t.Fatalf("snapshot show:\n%s", out)
	}

	n.fail("already exists", "volume", "snapshot", "create", "vs1", "vol1", "s1")
	n.fail("invalid character", "volume", "snapshot", "create", "vs1", "vol1", "bad/name")
	n.fail("does not exist", "volume", "snapshot", "delete", "vs1", "vol1", "nosuch")

	// lock is an advanced command (and the API refuses it too).
	n.fail("advanced privilege", "volume", "snapshot", "lock", "-vserver", "vs1", "-volume", "vol1", "-snapshot", "s1", "-owner", "test")
	n.ok("-privilege", "advanced", "volume", "snapshot", "lock", "-vserver", "vs1", "-volume", "vol1", "-snapshot", "s1", "-owner", "test")
	if out := n.ok("volume", "snapshot", "show", "-snapshot", "s1", "-fields", "locked,owners"); !strings.Contains(out, "true   test") {
		t.Fatalf("after lock:\n%s", out)
	}
	n.fail("locked", "volume", "snapshot", "delete", "vs1", "vol1", "s1")
	if _, err := os.Stat(r[3]); err != nil {
		t.Fatalf("refused delete removed the snapshot: %v", err)
	}
	n.fail("not locked by", "--privilege", "advanced", "volume", "snapshot", "unlock", "-vserver", "vs1", "-volume", "vol1", "-snapshot", "s1", "-owner", "other")
	n.ok("--privilege", "advanced", "volume", "snapshot", "unlock", "-vserver", "vs1", "-volume", "vol1", "-snapshot", "s1", "-owner", "test")
	n.ok("volume", "snapshot", "delete", "vs1", "vol1", "s1")
	if _, err := os.Stat(r[3]); !os.IsNotExist(err) {
		t.Fatalf("snapshot directory still there: %v", err)
	}
	var snaps []admin.Snapshot
	if err := json.Unmarshal([]byte(n.ok("volume", "snapshot", "show", "--json")), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].Name != "s2" {
		t.Fatalf("snapshots after delete: %+v", snaps)
	}
	n.ok("volume", "offline", "vs1", "vol1")
	n.fail("still has 1 Snapshot copies", "volume", "delete", "vs1", "vol1")
}

func TestVserverStartStop(t *testing.T) {
	n := startNode(t)
	n.ok("vserver", "create", "vs1")
	n.ok("vserver", "stop", "vs1")
	if out := n.ok("vserver", "show", "vs1", "-fields", "state"); !strings.Contains(out, "vs1     stopped") {
		t.Fatalf("after stop:\n%s", out)
	}
	n.fail("already stopped", "vserver", "stop", "-vserver", "vs1")
	n.fail("cannot be started or stopped", "vserver", "stop", "cluster1")
	n.fail("does not exist", "vserver", "start", "nosuch")
	n.ok("vserver", "start", "-vserver", "vs1")
	if out := n.ok("vserver", "show", "vs1", "-fields", "state"); !strings.Contains(out, "vs1     running") {
		t.Fatalf("after start:\n%s", out)
	}
	n.ok("security", "login", "create", "-user-or-group-name", "ro", "-role", "readonly", "-password", "Reader123")
	checkFail(t, n.runAs("ro", "Reader123", "vserver", "stop", "vs1"), `not authorized for "vserver stop"`, []string{"stop as ro"})
}

func TestQtreeAndRoleModify(t *testing.T) {
	n := startNode(t)
	v1 := t.TempDir()
	n.ok("vserver", "create", "vs1")
	n.ok("volume", "create", "vs1", "vol1", "-path", v1, "-snapshot-provider", "copy")
	n.ok("volume", "qtree", "create", "vs1", "vol1", "q1")
	n.ok("volume", "qtree", "modify", "-vserver", "vs1", "-volume", "vol1", "-qtree", "q1", "-security-style", "mixed")
	if out := n.ok("volume", "qtree", "show", "-qtree", "q1", "-fields", "security-style"); !strings.Contains(out, "q1    mixed") {
		t.Fatalf("after modify:\n%s", out)
	}
	n.fail("not a valid security style", "volume", "qtree", "modify", "vs1", "vol1", "q1", "-security-style", "fancy")
	n.fail("does not exist", "volume", "qtree", "modify", "vs1", "vol1", "q9", "-security-style", "unix")

	n.ok("security", "login", "role", "create", "-role", "r1", "-cmddirname", "volume", "-access", "readonly")
	n.ok("security", "login", "role", "modify", "-role", "r1", "-cmddirname", "volume", "-access", "all")
	if out := n.ok("security", "login", "role", "show", "-role", "r1"); !strings.Contains(out, "cluster1 r1        volume            all") {
		t.Fatalf("after role modify:\n%s", out)
	}
	n.fail("has no command directory", "security", "login", "role", "modify", "-role", "r1", "-cmddirname", "network", "-access", "all")
	n.fail("missing required parameter -access", "security", "login", "role", "modify", "-role", "r1", "-cmddirname", "volume")

	// The spec's spelling -option_name works too.
	if out := n.ok("options", "-option_name", "backup.log.enable"); !strings.Contains(out, "backup.log.enable on") {
		t.Fatalf("-option_name:\n%s", out)
	}
}
