package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// tapeEnv is the admin API over a real catalog and a tape registry with
// three real virtual libraries: the default one on initiator 0a, a
// two-drive library reached over two paths (0c and 0d, T7) and a
// one-drive library whose drive reports a vendor no configuration
// qualifies (0e, T4).
type tapeEnv struct {
	srv    *admin.Server
	client *admin.Client
	reg    *tape.Registry
	lib    *vtl.Library
}

func newTapeEnv(t testing.TB) *tapeEnv {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	st := testutil.OpenCatalog(t, filepath.Join(dir, "catalog.db")) // reruns every Update (issue 12, item 5)
	sto := storage.New(st, storage.Options{})
	if _, err := sto.Init(ctx, storage.InitOptions{NodeName: testNodeName}); err != nil {
		t.Fatal(err)
	}
	au := auth.New(st, auth.Options{AdminSVM: "cluster1", Hash: auth.HashParams{Time: 1, Memory: 1024, Threads: 1}})
	if _, err := au.Bootstrap(ctx, adminPW); err != nil {
		t.Fatal(err)
	}
	reg, err := tape.NewRegistry(st, testNodeName, tape.Options{})
	if err != nil {
		t.Fatal(err)
	}
	open := func(name string, cfg *vtl.Config) *vtl.Library {
		var lib *vtl.Library
		var err error
		if cfg == nil {
			lib, err = vtl.CreateDefault(filepath.Join(dir, name))
		} else {
			lib, err = vtl.Create(filepath.Join(dir, name), *cfg)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lib.Close() })
		return lib
	}
	lib := open("vtl", nil)
	if err := tape.AddVTL(ctx, reg, "0a", lib); err != nil {
		t.Fatal(err)
	}
	multi := open("multi", &vtl.Config{Drives: 2, Slots: 4})
	if err := tape.AddVTL(ctx, reg, "0c", multi); err != nil {
		t.Fatal(err)
	}
	add := func(a tape.Attachment) {
		if _, err := reg.Add(ctx, a); err != nil {
			t.Fatalf("add %s: %v", a.Path, err)
		}
	}
	add(tape.Attachment{Kind: tape.KindChanger, Path: "0d.0", Serial: multi.Serial(), Vendor: tape.VTLVendor,
		Product: tape.VTLChangerProduct, Changer: tape.NewVTLChanger(multi)})
	for i, d := range multi.Drives() {
		add(tape.Attachment{Kind: tape.KindDrive, Path: "0d." + strconv.Itoa(i+1), Serial: d.Serial(), Vendor: tape.VTLVendor,
			Product: tape.VTLDriveProduct, Drive: tape.NewVTLDrive(d)})
	}
	odd := open("odd", &vtl.Config{Drives: 1, Slots: 1})
	add(tape.Attachment{Kind: tape.KindDrive, Path: "0e.1", Serial: odd.Drives()[0].Serial(), Vendor: "ACME",
		Product: "Tapeomatic 9", Drive: tape.NewVTLDrive(odd.Drives()[0])})

	srv := admin.NewServer(admin.ServerConfig{Store: st, Storage: sto, Auth: au, Version: "test", Node: testNodeName, Tapes: reg, VTL: lib})
	sock := filepath.Join(dir, "a.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	c := admin.NewClient(sock, "admin", adminPW)
	t.Cleanup(c.Close)
	return &tapeEnv{srv: srv, client: c, reg: reg, lib: lib}
}

const tapeAPI = "/api/private/cli/storage/tape"

func apiStatus(err error) int {
	var ae *admin.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

func TestTapeLibraryConfigMultipath(t *testing.T) {
	e := newTapeEnv(t)
	ctx := context.Background()
	gs, err := admin.List[admin.TapeLibraryConfig](ctx, e.client, tapeAPI+"/library/config", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Three LUN groups: 0a (changer and 4 drives), 0c+0d (changer and 2
	// drives on both paths), 0e (a lone drive).
	if len(gs) != 3 {
		t.Fatalf("groups: %+v", gs)
	}
	want := []struct {
		inits string
		count int
		name  string
	}{{"0a", 5, "TAPESTRY VTL_1"}, {"0c,0d", 3, "TAPESTRY VTL_2"}, {"0e", 1, "standalone_1"}}
	for i, w := range want {
		g := gs[i]
		if strings.Join(g.Initiators, ",") != w.inits || g.LUNCount != w.count || g.LibraryName != w.name || g.LUNGroup != i || g.Node != testNodeName {
			t.Errorf("group %d: %+v, want %+v", i, g, w)
		}
	}
	if gs[1].TargetPort == "" || gs[1].TargetPort == gs[0].TargetPort {
		t.Errorf("target ports %q %q", gs[0].TargetPort, gs[1].TargetPort)
	}

	ps, err := admin.List[admin.TapePath](ctx, e.client, tapeAPI+"/library/paths", url.Values{"initiator": {"0d"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 {
		t.Fatalf("paths of 0d: %+v", ps)
	}
	for _, p := range ps {
		if p.Primary || p.Alias == "" || p.Initiator != "0d" {
			t.Errorf("second path %+v: want a non-primary path with the device's alias", p)
		}
	}
	all, err := admin.List[admin.TapePath](ctx, e.client, tapeAPI+"/library/paths", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5+6+1 {
		t.Fatalf("%d paths, want 12", len(all))
	}
	// The multipath drive shows both paths, the primary first.
	devs, err := admin.List[admin.TapeDevice](ctx, e.client, tapeAPI, url.Values{"device-id": {"0d.2"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 || strings.Join(devs[0].Paths, ",") != "0c.2,0d.2" || devs[0].DeviceID != "0c.2" {
		t.Fatalf("device behind 0d.2: %+v", devs)
	}
}

func TestTapeSupportStatusNonqualified(t *testing.T) {
	e := newTapeEnv(t)
	ctx := context.Background()
	rows, err := admin.List[admin.TapeSupport](ctx, e.client, tapeAPI+"/supported", nil)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range rows {
		if strings.Contains(r.TapeDrive, "ACME") {
			found = true
			if r.IsSupported || r.SupportStatus != "Nonqualified tape drive" || !strings.HasPrefix(r.TapeDrive, `"`) {
				t.Errorf("nonqualified row %+v", r)
			}
		}
	}
	if !found {
		t.Fatalf("no nonqualified drive in %+v", rows)
	}
	devs, err := admin.List[admin.TapeDevice](ctx, e.client, tapeAPI, url.Values{"device-id": {"0e.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 || devs[0].SupportStatus != "Nonqualified tape drive" || devs[0].Description != "ACME Tapeomatic 9" {
		t.Fatalf("nonqualified device %+v", devs)
	}
	// A nonqualified drive cannot be positioned: it cannot be opened.
	err = e.client.Do(ctx, http.MethodPost, tapeAPI+"/position", nil, admin.TapeAction{DeviceID: "0e.1", Operation: "rewind"}, nil)
	if err == nil || !strings.Contains(err.Error(), "nonqualified") {
		t.Fatalf("position of a nonqualified drive: %v", err)
	}
}

func TestTapeAPIBadInput(t *testing.T) {
	e := newTapeEnv(t)
	ctx := context.Background()
	post := func(path string, body any) error {
		return e.client.Do(ctx, http.MethodPost, path, nil, body, nil)
	}
	big := int64(1) << 33
	cases := []struct {
		path   string
		body   any
		status int
		msg    string
	}{
		{tapeAPI + "/online", admin.TapeAction{}, 400, "missing required parameter -device-id"},
		{tapeAPI + "/online", admin.TapeAction{DeviceID: "st99"}, 404, `tape device "st99" does not exist on node "` + testNodeName + `"`},
		{tapeAPI + "/online", map[string]string{"device": "st0"}, 400, "invalid request body"},
		{tapeAPI + "/trace", admin.TapeAction{DeviceID: "st0"}, 400, "missing required parameter -is-trace-enabled"},
		{tapeAPI + "/position", admin.TapeAction{DeviceID: "st0", Operation: "rewind", Count: &big}, 400, "-count 8589934592 is out of range"},
		{tapeAPI + "/alias", admin.TapeAlias{Name: "st1"}, 400, "missing required parameter -mapping"},
		{tapeAPI + "/alias", admin.TapeAlias{Name: "st1", Mapping: "SN[" + strings.Repeat("9", 40) + "]"}, 400, "invalid mapping"},
		{tapeAPI + "/alias/clear", admin.TapeAliasClear{}, 400, "specify -name or -clear-scope"},
		{tapeAPI + "/alias/clear", admin.TapeAliasClear{Name: "zz"}, 400, `invalid alias name "zz"`},
		{tapeAPI + "/vtl/cartridges", admin.VTLCartridgeAdd{Barcode: "A1", Capacity: -1}, 400, "capacity -1 is negative"},
		{tapeAPI + "/vtl/cartridges", admin.VTLCartridgeAdd{}, 400, "missing required parameter -barcode"},
		{tapeAPI + "/vtl/cartridges/TAP005L8/move", admin.VTLCartridgeMove{To: "slot"}, 400, `invalid destination "slot"`},
		{tapeAPI + "/vtl/cartridges/TAP005L8/move", admin.VTLCartridgeMove{To: "drive 4"}, 400, `invalid destination "drive 4"`},
	}
	for _, c := range cases {
		err := post(c.path, c.body)
		if apiStatus(err) != c.status || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("POST %s %+v: %v (status %d), want %d %q", c.path, c.body, err, apiStatus(err), c.status, c.msg)
		}
	}
	// Reset is an advanced command.
	if err := post(tapeAPI+"/reset", admin.TapeAction{DeviceID: "st0"}); apiStatus(err) != http.StatusForbidden {
		t.Fatalf("reset at admin level: %v", err)
	}
}

func TestTapeAPIWithoutTapes(t *testing.T) {
	e := newEnv(t)
	c := e.client("admin", adminPW)
	defer c.Close()
	ctx := context.Background()
	if _, err := admin.List[admin.TapeDevice](ctx, c, tapeAPI, nil); err == nil || !strings.Contains(err.Error(), "this node has no tape subsystem") {
		t.Fatalf("storage tape show without a registry: %v", err)
	}
	if _, err := admin.List[admin.VTLInfo](ctx, c, tapeAPI+"/vtl", nil); apiStatus(err) != http.StatusNotFound {
		t.Fatalf("vtl show without a library: %v", err)
	}
}

// FuzzTapeAPI sends arbitrary alias names, mappings, device ids and
// cartridge destinations through the API: every answer is a success or a
// 4xx error, never a server error, and the server goes on answering.
func FuzzTapeAPI(f *testing.F) {
	for _, s := range [][3]string{
		{"st3", "SN[123456]L4", "slot 2"}, {"mc1", "SN[65432]", "ie-slot 1"}, {"st0", "MY_SWITCH:5.3L2", "drive 0"},
		{"st00", "0b.4L1", "drive -1"}, {"st", "SN[", "slot 99999999999"}, {"mc0", "0a.0", "ie-slot\x00 1"}, {"st1", "8.6", "nrst0a"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	e := newTapeEnv(f)
	send := func(t *testing.T, method, path string, body any) {
		b, _ := json.Marshal(body)
		req := httptest.NewRequest(method, path, bytes.NewReader(b))
		req.SetBasicAuth("admin", adminPW)
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %s: status %d %s", method, path, b, rec.Code, rec.Body)
		}
	}
	f.Fuzz(func(t *testing.T, name, mapping, to string) {
		send(t, http.MethodPost, tapeAPI+"/alias", admin.TapeAlias{Name: name, Mapping: mapping})
		send(t, http.MethodPost, tapeAPI+"/alias/clear", admin.TapeAliasClear{Name: name})
		send(t, http.MethodPost, tapeAPI+"/online", admin.TapeAction{DeviceID: mapping})
		send(t, http.MethodGet, tapeAPI+"?device-id="+url.QueryEscape(to), nil)
		send(t, http.MethodPost, tapeAPI+"/vtl/cartridges/TAP005L8/move", admin.VTLCartridgeMove{To: to})
		send(t, http.MethodPost, tapeAPI+"/vtl/cartridges/"+url.PathEscape(name)+"/label", admin.VTLCartridgeLabel{NewBarcode: mapping})
	})
}

// BenchmarkTapeShow measures storage tape show through the API over its
// unix socket: 9 devices, with the device listing of each drive.
func BenchmarkTapeShow(b *testing.B) {
	e := newTapeEnv(b)
	ctx := context.Background()
	for b.Loop() {
		devs, err := admin.List[admin.TapeDevice](ctx, e.client, tapeAPI, nil)
		if err != nil || len(devs) != 9 {
			b.Fatalf("%d devices, %v", len(devs), err)
		}
	}
}

// BenchmarkTapeAliasSet measures storage tape alias set (a catalog write).
func BenchmarkTapeAliasSet(b *testing.B) {
	e := newTapeEnv(b)
	ctx := context.Background()
	names := []string{"st20", "st21"}
	i := 0
	for b.Loop() {
		in := admin.TapeAlias{Name: names[i%2], Mapping: "0a.1"}
		if err := e.client.Do(ctx, http.MethodPost, tapeAPI+"/alias", nil, in, nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
