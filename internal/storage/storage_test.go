package storage

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// V1: Init makes cluster1, node1 and the admin SVM once; a second Init and a
// reopened catalog see the same cluster.
func TestInitOnce(t *testing.T) {
	e := newEnv(t, Options{})
	c1, err := e.svc.Cluster(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c1.Name != "cluster1" || c1.UUID == "" {
		t.Fatalf("cluster = %+v", c1)
	}
	c2, err := e.svc.Init(e.ctx, InitOptions{ClusterName: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if c2.UUID != c1.UUID || c2.Name != "cluster1" {
		t.Errorf("second Init changed the cluster: %+v then %+v", c1, c2)
	}
	e.reopen()
	c3, err := e.svc.Cluster(e.ctx)
	if err != nil || c3.UUID != c1.UUID {
		t.Errorf("after reopen: %+v, %v", c3, err)
	}
	nodes, err := e.svc.Nodes(e.ctx)
	if err != nil || len(nodes) != 1 || nodes[0].Name != DefaultNodeName {
		t.Errorf("nodes = %+v, %v", nodes, err)
	}
	admin, err := e.svc.GetSVM(e.ctx, "cluster1")
	if err != nil || admin.Type != SVMAdmin {
		t.Errorf("admin SVM = %+v, %v", admin, err)
	}
	name, err := e.svc.AdminSVM(e.ctx)
	if err != nil || name != "cluster1" {
		t.Errorf("AdminSVM = %q, %v", name, err)
	}
	e.unchanged("duplicate node", ErrExists, `node "`+DefaultNodeName+`" already exists`, func() error {
		_, err := e.svc.AddNode(e.ctx, DefaultNodeName)
		return err
	})
}

func TestNotInitialized(t *testing.T) {
	e := &env{t: t, path: filepath.Join(t.TempDir(), "c.db")}
	e.ctx = t.Context()
	e.open()
	if _, err := e.svc.Cluster(e.ctx); !isKind(err, ErrNotInitialized) {
		t.Errorf("Cluster on empty catalog: %v", err)
	}
	if _, err := e.svc.CreateSVM(e.ctx, SVMSpec{Name: "vs1"}); !isKind(err, ErrNotInitialized) {
		t.Errorf("CreateSVM on empty catalog: %v", err)
	}
	if _, err := e.svc.Init(e.ctx, InitOptions{ClusterName: "bad name"}); !isKind(err, ErrInvalidArgument) {
		t.Errorf("Init with a bad name: %v", err)
	}
}

// V1, N5: SVMs, protocol lists, and every refused change leaves the catalog
// as it was.
func TestSVM(t *testing.T) {
	e := newEnv(t, Options{})
	vs := e.svm("vs1")
	if vs.Type != SVMData || vs.State != SVMRunning || !vs.Allows("ndmp") || len(vs.DisallowedProtocols) != 0 {
		t.Fatalf("new SVM = %+v", vs)
	}
	e.unchanged("duplicate", ErrExists, `Vserver "vs1" already exists`, func() error {
		_, err := e.svc.CreateSVM(e.ctx, SVMSpec{Name: "vs1"})
		return err
	})
	e.unchanged("duplicate of admin", ErrExists, "", func() error {
		_, err := e.svc.CreateSVM(e.ctx, SVMSpec{Name: "cluster1"})
		return err
	})
	for _, bad := range []string{"", "1vs", "vs 1", "vs/1", "a" + string(make([]byte, 60))} {
		e.unchanged("bad name "+bad, ErrInvalidArgument, "", func() error {
			_, err := e.svc.CreateSVM(e.ctx, SVMSpec{Name: bad})
			return err
		})
	}
	e.unchanged("bad protocol", ErrInvalidArgument, "not a valid protocol", func() error {
		_, err := e.svc.CreateSVM(e.ctx, SVMSpec{Name: "vs2", DisallowedProtocols: []string{"ftp"}})
		return err
	})
	e.unchanged("unknown", ErrNotFound, `Vserver "nope" does not exist`, func() error {
		_, err := e.svc.GetSVM(e.ctx, "nope")
		return err
	})
	e.unchanged("modify unknown", ErrNotFound, `Vserver "nope" does not exist`, func() error {
		_, err := e.svc.ModifySVM(e.ctx, "nope", SVMChange{Comment: ptr("x")})
		return err
	})

	// N5: NDMP on the disallowed list.
	vs, err := e.svc.ModifySVM(e.ctx, "vs1", SVMChange{DisallowedProtocols: &[]string{"NDMP", "ndmp"}})
	if err != nil {
		t.Fatal(err)
	}
	if vs.Allows(ProtocolNDMP) || !slices.Equal(vs.DisallowedProtocols, []string{"ndmp"}) || !vs.Allows("nfs") {
		t.Errorf("after disallowing ndmp: %+v", vs)
	}
	vs, err = e.svc.ModifySVM(e.ctx, "vs1", SVMChange{AllowedProtocols: &[]string{"nfs", "ndmp"}})
	if err != nil {
		t.Fatal(err)
	}
	if !vs.Allows("ndmp") || vs.Allows("cifs") || !slices.Contains(vs.DisallowedProtocols, "cifs") || len(vs.AllowedProtocols)+len(vs.DisallowedProtocols) != len(Protocols()) {
		t.Errorf("after allowing nfs,ndmp: %+v", vs)
	}
	e.unchanged("inconsistent lists", ErrInvalidArgument, "", func() error {
		_, err := e.svc.ModifySVM(e.ctx, "vs1", SVMChange{AllowedProtocols: &[]string{"nfs"}, DisallowedProtocols: &[]string{"ndmp"}})
		return err
	})
	e.unchanged("root volume unknown", ErrNotFound, `volume "nope" in Vserver "vs1" does not exist`, func() error {
		_, err := e.svc.ModifySVM(e.ctx, "vs1", SVMChange{RootVolume: ptr("nope")})
		return err
	})
	got, _ := e.svc.GetSVM(e.ctx, "vs1")
	if !got.Allows("ndmp") || got.Allows("cifs") {
		t.Errorf("stored SVM = %+v", got)
	}

	// State.
	if err := e.svc.StopSVM(e.ctx, "vs1"); err != nil {
		t.Fatal(err)
	}
	e.unchanged("stop stopped", ErrInvalidState, `Vserver "vs1" is already stopped`, func() error { return e.svc.StopSVM(e.ctx, "vs1") })
	e.unchanged("stop admin", ErrInvalidArgument, "", func() error { return e.svc.StopSVM(e.ctx, "cluster1") })
	if err := e.svc.StartSVM(e.ctx, "vs1"); err != nil {
		t.Fatal(err)
	}

	// Delete: refused with volumes or LIFs, admin SVM never.
	vol := e.volume("vs1", "vol1")
	e.unchanged("delete with volume", ErrInUse, `volume "vol1"`, func() error { return e.svc.DeleteSVM(e.ctx, "vs1") })
	e.unchanged("delete admin", ErrInvalidArgument, "", func() error { return e.svc.DeleteSVM(e.ctx, "cluster1") })
	if _, err := e.svc.ModifySVM(e.ctx, "vs1", SVMChange{RootVolume: ptr("vol1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateLIF(e.ctx, LIFSpec{Name: "lif1", SVM: "vs1", Role: RoleData, Address: "127.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	e.unchanged("delete with LIF", ErrInUse, "LIFs", func() error { return e.svc.DeleteSVM(e.ctx, "vs1") })
	if err := e.svc.DeleteLIF(e.ctx, "vs1", "lif1"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteSVM(e.ctx, "vs1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GetVolume(e.ctx, "vs1", "vol1"); !isKind(err, ErrNotFound) {
		t.Errorf("root volume record after SVM delete: %v", err)
	}
	if st, err := os.Stat(vol.HostPath); err != nil || !st.IsDir() {
		t.Errorf("host directory of the root volume was touched: %v", err)
	}
	list, _ := e.svc.ListSVMs(e.ctx)
	if len(list) != 1 || list[0].Name != "cluster1" {
		t.Errorf("SVMs after delete = %+v", list)
	}
}

// V1, N6: LIF roles and owners, unique addresses, lookup by address.
func TestLIF(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	ok := []LIFSpec{
		{Name: "n1", SVM: "cluster1", Role: "node-management", Address: "127.0.0.10"},
		{Name: "c1", SVM: "cluster1", Role: RoleClusterMgmt, Address: "127.0.0.11"},
		{Name: "i1", SVM: "cluster1", Role: RoleIntercluster, Address: "::1", Port: 10001},
		{Name: "d1", SVM: "vs1", Role: RoleData, Address: "127.0.0.12", HomeNode: DefaultNodeName},
		{Name: "d2", SVM: "vs1", Role: RoleData, Address: "127.0.0.12", Port: 10002},
	}
	for _, s := range ok {
		l, err := e.svc.CreateLIF(e.ctx, s)
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		if l.HomeNode != DefaultNodeName || l.Port == 0 {
			t.Errorf("LIF %+v", l)
		}
	}
	bad := []struct {
		name string
		spec LIFSpec
		kind error
		msg  string
	}{
		{"data on admin", LIFSpec{Name: "x", SVM: "cluster1", Role: RoleData, Address: "127.0.0.20"}, ErrInvalidArgument, "data Vserver"},
		{"node-mgmt on data SVM", LIFSpec{Name: "x", SVM: "vs1", Role: RoleNodeMgmt, Address: "127.0.0.20"}, ErrInvalidArgument, "admin Vserver"},
		{"intercluster on data SVM", LIFSpec{Name: "x", SVM: "vs1", Role: RoleIntercluster, Address: "127.0.0.20"}, ErrInvalidArgument, "admin Vserver"},
		{"unknown role", LIFSpec{Name: "x", SVM: "vs1", Role: "mgmt", Address: "127.0.0.20"}, ErrInvalidArgument, "role"},
		{"bad address", LIFSpec{Name: "x", SVM: "vs1", Role: RoleData, Address: "127.0.0.300"}, ErrInvalidArgument, "IP address"},
		{"host name", LIFSpec{Name: "x", SVM: "vs1", Role: RoleData, Address: "localhost"}, ErrInvalidArgument, "IP address"},
		{"unspecified", LIFSpec{Name: "x", SVM: "vs1", Role: RoleData, Address: "0.0.0.0"}, ErrInvalidArgument, ""},
		{"bad port", LIFSpec{Name: "x", SVM: "vs1", Role: RoleData, Address: "127.0.0.20", Port: 70000}, ErrInvalidArgument, "port"},
		{"address taken", LIFSpec{Name: "x", SVM: "vs1", Role: RoleData, Address: "127.0.0.10"}, ErrExists, `LIF "n1"`},
		{"mapped address taken", LIFSpec{Name: "x", SVM: "vs1", Role: RoleData, Address: "::ffff:127.0.0.12"}, ErrExists, ""},
		{"name taken", LIFSpec{Name: "d1", SVM: "vs1", Role: RoleData, Address: "127.0.0.20"}, ErrExists, `LIF "d1" in Vserver "vs1" already exists`},
		{"unknown SVM", LIFSpec{Name: "x", SVM: "vs9", Role: RoleData, Address: "127.0.0.20"}, ErrNotFound, `Vserver "vs9" does not exist`},
		{"unknown node", LIFSpec{Name: "x", SVM: "vs1", Role: RoleData, Address: "127.0.0.20", HomeNode: "node9"}, ErrNotFound, `node "node9"`},
		{"bad name", LIFSpec{Name: "x y", SVM: "vs1", Role: RoleData, Address: "127.0.0.20"}, ErrInvalidArgument, ""},
	}
	for _, c := range bad {
		e.unchanged(c.name, c.kind, c.msg, func() error {
			_, err := e.svc.CreateLIF(e.ctx, c.spec)
			return err
		})
	}
	l, err := e.svc.LIFByAddress(e.ctx, netip.MustParseAddrPort("[::ffff:127.0.0.12]:10002"))
	if err != nil || l.Name != "d2" || l.SVM != "vs1" {
		t.Errorf("LIFByAddress mapped = %+v, %v", l, err)
	}
	l, err = e.svc.LIFByAddress(e.ctx, netip.MustParseAddrPort("[::1]:10001"))
	if err != nil || l.Name != "i1" || l.Role != RoleIntercluster {
		t.Errorf("LIFByAddress v6 = %+v, %v", l, err)
	}
	if _, err := e.svc.LIFByAddress(e.ctx, netip.MustParseAddrPort("127.0.0.12:9999")); !isKind(err, ErrNotFound) {
		t.Errorf("LIFByAddress wrong port: %v", err)
	}
	all, _ := e.svc.ListLIFs(e.ctx, "")
	mine, _ := e.svc.ListLIFs(e.ctx, "vs1")
	if len(all) != 5 || len(mine) != 2 {
		t.Errorf("ListLIFs: %d all, %d in vs1", len(all), len(mine))
	}
	if _, err := e.svc.ListLIFs(e.ctx, "nope"); !isKind(err, ErrNotFound) {
		t.Errorf("ListLIFs of unknown SVM: %v", err)
	}
	e.unchanged("delete unknown", ErrNotFound, "", func() error { return e.svc.DeleteLIF(e.ctx, "vs1", "zz") })
	// A second node: the home node must then be named.
	if _, err := e.svc.AddNode(e.ctx, "node2"); err != nil {
		t.Fatal(err)
	}
	e.unchanged("ambiguous node", ErrInvalidArgument, "name the node", func() error {
		_, err := e.svc.CreateLIF(e.ctx, LIFSpec{Name: "x", SVM: "vs1", Role: RoleData, Address: "127.0.0.30"})
		return err
	})
	e.unchanged("modify to taken address", ErrExists, `LIF "n1"`, func() error {
		_, err := e.svc.ModifyLIF(e.ctx, "vs1", "d2", LIFChange{Address: ptr("127.0.0.10"), Port: ptr(0)})
		return err
	})
	e.unchanged("modify bad address", ErrInvalidArgument, "", func() error {
		_, err := e.svc.ModifyLIF(e.ctx, "vs1", "d2", LIFChange{Address: ptr("::")})
		return err
	})
	e.unchanged("modify unknown node", ErrNotFound, "", func() error {
		_, err := e.svc.ModifyLIF(e.ctx, "vs1", "d2", LIFChange{HomeNode: ptr("node9")})
		return err
	})
	e.unchanged("modify unknown LIF", ErrNotFound, `LIF "zz"`, func() error {
		_, err := e.svc.ModifyLIF(e.ctx, "vs1", "zz", LIFChange{})
		return err
	})
	if l, err := e.svc.ModifyLIF(e.ctx, "vs1", "d2", LIFChange{Address: ptr("127.0.0.13"), HomeNode: ptr("node2")}); err != nil || l.HomeNode != "node2" || l.AddrPort().String() != "127.0.0.13:10002" {
		t.Errorf("modify: %+v %v", l, err)
	}
	if l, err := e.svc.ModifyLIF(e.ctx, "vs1", "d2", LIFChange{Port: ptr(10002)}); err != nil || l.Port != 10002 {
		t.Errorf("modify to its own address: %+v %v", l, err)
	}
	e.reopen()
	got, err := e.svc.GetLIF(e.ctx, "vs1", "d1")
	if err != nil || got.Address != netip.MustParseAddr("127.0.0.12") || got.Port != DefaultNDMPPort {
		t.Errorf("after reopen: %+v, %v", got, err)
	}
}

func isKind(err, kind error) bool {
	return err != nil && errors.Is(err, kind)
}

// N5: NDMP on the disallowed list, or a stopped SVM, closes the SVM to
// NDMP sessions.
func TestNDMPAllowed(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	if err := e.svc.NDMPAllowed(e.ctx, "vs1"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.NDMPAllowed(e.ctx, "cluster1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ModifySVM(e.ctx, "vs1", SVMChange{DisallowedProtocols: &[]string{"ndmp"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.NDMPAllowed(e.ctx, "vs1"); !isKind(err, ErrDisallowed) {
		t.Errorf("disallowed: %v", err)
	}
	if _, err := e.svc.ModifySVM(e.ctx, "vs1", SVMChange{DisallowedProtocols: &[]string{}}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.StopSVM(e.ctx, "vs1"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.NDMPAllowed(e.ctx, "vs1"); !isKind(err, ErrInvalidState) {
		t.Errorf("stopped: %v", err)
	}
	if err := e.svc.NDMPAllowed(e.ctx, "vs9"); !isKind(err, ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
}

// The catalog keys sit below "storage/", one record per object (beside the
// catalog's own schema version).
func TestKeyLayout(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	e.volume("vs1", "vol1")
	if _, err := e.svc.CreateQtree(e.ctx, QtreeSpec{Name: "q1", SVM: "vs1", Volume: "vol1"}); err != nil {
		t.Fatal(err)
	}
	d := e.dump()
	for _, k := range []string{"storage/cluster", "storage/node/node1", "storage/svm/cluster1", "storage/svm/vs1", "storage/volume/vs1/vol1", "storage/qtree/vs1/vol1/q1"} {
		if _, ok := d[k]; !ok {
			t.Errorf("key %s missing from %v", k, d)
		}
	}
	for k := range d {
		if !strings.HasPrefix(k, "storage/") && k != catalog.SchemaKey() {
			t.Errorf("key %s outside storage/", k)
		}
	}
}
