package server

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/ndmp"
	"github.com/tapestry-ndmp/tapestry/ndmp/xdr"
)

// withVolumes adds a data SVM vs1 with volumes vol1 and vol2, a data LIF
// on 127.0.0.2 and an SVM user with role vsadmin-backup.
func withVolumes(f *fixture) {
	ctx := f.ctx
	if _, err := f.st.CreateSVM(ctx, storage.SVMSpec{Name: "vs1"}); err != nil {
		f.t.Fatal(err)
	}
	for _, v := range []string{"vol1", "vol2"} {
		dir := filepath.Join(f.dir, "vols", v)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			f.t.Fatal(err)
		}
		if _, err := f.st.CreateVolume(ctx, storage.VolumeSpec{Name: v, SVM: "vs1", HostPath: dir, SnapshotProvider: "copy"}); err != nil {
			f.t.Fatal(err)
		}
	}
	if _, err := f.st.CreateLIF(ctx, storage.LIFSpec{Name: "vs1_data1", SVM: "vs1", Role: storage.RoleData,
		Address: "127.0.0.2", Port: freePort(f.t, "127.0.0.2"), HomeNode: testNodeName}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.au.CreateUser(ctx, auth.UserSpec{SVM: "vs1", Name: "vsbackup", Role: auth.RoleVsadminBackup, Password: testLoginPW}); err != nil {
		f.t.Fatal(err)
	}
}

// dataLIF logs in on vs1's data LIF as the SVM user.
func (f *fixture) dataLIFLogin() *ndmp.Client {
	f.t.Helper()
	lif, err := f.st.GetLIF(f.ctx, "vs1", "vs1_data1")
	if err != nil {
		f.t.Fatal(err)
	}
	pw, err := f.au.GenerateNDMPPassword(f.ctx, "vs1", "vsbackup")
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(f.ctx, hangGuard)
	defer cancel()
	c, err := ndmp.Dial(ctx, net.JoinHostPort(lif.Address.String(), strconv.Itoa(lif.Port)), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Conn().Close() })
	if err := c.Connect(ctx); err != nil {
		f.t.Fatal(err)
	}
	if err := c.AuthMD5(ctx, "vsbackup", pw); err != nil {
		f.t.Fatal(err)
	}
	return c
}

// CONFIG interface: butype info, connection types, fs, tape and SCSI info
// on a node-management LIF (N6, N16).
func TestConfigNodeMgmt(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	ctx := f.ctx
	c := f.login(nil)
	bt, err := c.GetButypeInfo(ctx)
	if err != nil || len(bt) != 2 || bt[0].ButypeName != "dump" || bt[1].ButypeName != "smtape" {
		t.Fatalf("butypes %+v %v", bt, err)
	}
	if bt[0].Attrs&ButypeBackupFHDir == 0 || bt[0].Attrs&ButypeRecoverDirect == 0 || bt[1].Attrs&ButypeBackupFHFile != 0 {
		t.Errorf("butype attrs dump %#x smtape %#x", bt[0].Attrs, bt[1].Attrs)
	}
	if ndmp.Env(bt[0].DefaultEnv)["PATHNAME_SEPARATOR"] != "/" || ndmp.Env(bt[0].DefaultEnv)["HIST"] != "N" {
		t.Errorf("dump default env %+v", bt[0].DefaultEnv)
	}
	ct, err := c.GetConnectionType(ctx)
	if err != nil || !slices.Equal(ct, []ndmp.AddrType{ndmp.AddrLocal, ndmp.AddrTCP}) {
		t.Fatalf("connection types %v %v", ct, err)
	}
	fs, err := c.GetFSInfo(ctx)
	if err != nil || len(fs) != 2 || fs[0].FSLogicalDevice != "/vs1/vol1" || fs[1].FSLogicalDevice != "/vs1/vol2" {
		t.Fatalf("fs info %+v %v", fs, err)
	}
	if fs[0].TotalSize == 0 || fs[0].TotalSize < fs[0].AvailSize || fs[0].FSStatus != "online" {
		t.Errorf("fs sizes %+v", fs[0])
	}
	ti, err := c.GetTapeInfo(ctx)
	if err != nil || len(ti) != 4 {
		t.Fatalf("tape info %+v %v", ti, err)
	}
	var names []string
	for _, cap := range ti[0].Caplist {
		names = append(names, cap.Device)
	}
	if !slices.Contains(names, "nrst0l") || !slices.Contains(names, "rst0a") {
		t.Errorf("device names of the first drive: %v", names)
	}
	si, err := c.GetSCSIInfo(ctx)
	if err != nil || len(si) != 1 || si[0].Caplist[0].Device != "mc0" {
		t.Fatalf("scsi info %+v %v", si, err)
	}
}

// N6: a data LIF sees only its SVM's volumes, no tape devices, and TCP
// data connections only; the node-management role is refused to SVM users
// and SVM users to node LIFs (N4).
func TestConfigDataLIF(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	ctx := f.ctx
	c := f.dataLIFLogin()
	ct, err := c.GetConnectionType(ctx)
	if err != nil || !slices.Equal(ct, []ndmp.AddrType{ndmp.AddrTCP}) {
		t.Fatalf("connection types %v %v", ct, err)
	}
	fs, err := c.GetFSInfo(ctx)
	if err != nil || len(fs) != 2 {
		t.Fatalf("fs %+v %v", fs, err)
	}
	ti, err := c.GetTapeInfo(ctx)
	if err != nil || len(ti) != 0 {
		t.Fatalf("tape info on a data LIF %+v %v", ti, err)
	}
	wantErr(t, "tape open on data LIF", c.TapeOpen(ctx, "nrst0l", ndmp.TapeReadMode), ndmp.ErrNoDevice)
	_, err = c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrLocal)
	wantErr(t, "LOCAL on data LIF", err, ndmp.ErrIllegalArgs)
	// The SVM user cannot use the node-management LIF.
	pw, _ := f.au.NDMPPassword(ctx, "vs1", "vsbackup")
	c2 := f.dial(nil)
	if err := c2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "SVM user on node LIF", c2.AuthMD5(ctx, "vsbackup", pw), ndmp.ErrNotAuthorized)
}

// N9: extension negotiation: GET_EXT_LIST offers 0x2050 v3, 0x2051 v1,
// 0x2052 v1 (and the test class); SET_EXT_LIST needs a GET first, rejects
// unknown classes, versions and duplicates (nothing selected after an
// error), accepts both wire layouts and can be done once; then the IPv6
// address type is offered and CAB data connection prepare works.
func TestExtensionNegotiation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	ctx := f.ctx
	c := f.login(nil)
	wantErr(t, "SET before GET", c.SetExtList(ctx, []ndmp.ClassVersion{{ExtClassID: 0x2052, ExtVersion: 1}}), ndmp.ErrPrecondition)
	err := c.CABDataConnPrepare(ctx, ndmp.AddrTCP, "dump", nil)
	wantErr(t, "CAB before negotiation", err, ndmp.ErrClassNotSupported)
	l, err := c.GetExtList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []ndmp.ClassList{{ExtClassID: 0x2050, ExtVersion: []uint16{3}}, {ExtClassID: 0x2051, ExtVersion: []uint16{1}},
		{ExtClassID: 0x2052, ExtVersion: []uint16{1}}, {ExtClassID: 0x7ff0, ExtVersion: []uint16{1}}}
	if len(l) != len(want) {
		t.Fatalf("ext list %+v", l)
	}
	for i := range want {
		if l[i].ExtClassID != want[i].ExtClassID || !slices.Equal(l[i].ExtVersion, want[i].ExtVersion) {
			t.Fatalf("ext list %+v, want %+v", l, want)
		}
	}
	wantErr(t, "unknown class", c.SetExtList(ctx, []ndmp.ClassVersion{{ExtClassID: 0x2099, ExtVersion: 1}}), ndmp.ErrClassNotSupported)
	wantErr(t, "bad version", c.SetExtList(ctx, []ndmp.ClassVersion{{ExtClassID: 0x2050, ExtVersion: 1}}), ndmp.ErrVersionNotSupported)
	wantErr(t, "duplicate", c.SetExtList(ctx, []ndmp.ClassVersion{{ExtClassID: 0x2051, ExtVersion: 1}, {ExtClassID: 0x2051, ExtVersion: 1}}), ndmp.ErrExtDuplClasses)
	// NDMJOB's layout: {error; class_list<>}, sent as raw bytes.
	e := xdr.NewEncoder(nil)
	e.Uint32(0)
	e.ArrayLen(3)
	for _, cl := range []ndmp.ClassList{{ExtClassID: 0x2050, ExtVersion: []uint16{3}}, {ExtClassID: 0x2051, ExtVersion: []uint16{1}}, {ExtClassID: 0x2052, ExtVersion: []uint16{1}}} {
		cl.MarshalXDR(e)
	}
	rep := rawCall(t, f, c, ndmp.ConfigSetExtList, e.Bytes())
	if rep.Body.(*ndmp.ConfigSetExtListReply).Error != ndmp.NoErr {
		t.Fatalf("SET_EXT_LIST in NDMJOB layout: %v", rep.Body)
	}
	wantErr(t, "second SET", c.SetExtList(ctx, nil), ndmp.ErrExtDandNIllegal)
	_, err = c.GetExtList(ctx)
	wantErr(t, "GET after SET", err, ndmp.ErrExtDandNIllegal)
	ct, err := c.GetConnectionType(ctx)
	if err != nil || !slices.Contains(ct, ndmp.AddrTCPIPv6) {
		t.Fatalf("connection types after CAE %v %v", ct, err)
	}
	fs, err := c.GetFSInfo(ctx)
	if err != nil || ndmp.Env(fs[0].FSEnv)["AFFINITY"] != testNodeName {
		t.Fatalf("affinity %+v %v", fs, err)
	}
	// CAB (N10): prepare for TCP, then a LOCAL data listen is a
	// precondition error with ONTAP's message.
	wantErr(t, "CAB prepare unknown volume", c.CABDataConnPrepare(ctx, ndmp.AddrTCP, "dump",
		[]ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/nosuch"}}), ndmp.ErrFileNotFound)
	wantErr(t, "CAB prepare", c.CABDataConnPrepare(ctx, ndmp.AddrTCP, "dump",
		[]ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}}), ndmp.NoErr)
	_, err = c.DataListen(ctx, ndmp.AddrLocal)
	wantErr(t, "DATA LISTEN LOCAL after TCP prepare", err, ndmp.ErrPrecondition)
	waitFor(t, func() bool { return containsLog(f, "DATA LISTEN: CAB data connection prepare precondition error") })
	err = c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal})
	wantErr(t, "DATA CONNECT LOCAL after TCP prepare", err, ndmp.ErrPrecondition)
	waitFor(t, func() bool { return containsLog(f, "DATA CONNECT: CAB data connection prepare precondition error") })
	a, err := c.DataListen(ctx, ndmp.AddrTCP)
	if err != nil || a.AddrType != ndmp.AddrTCP {
		t.Fatalf("DATA LISTEN TCP after TCP prepare: %+v %v", a, err)
	}
	// The test extension echoes.
	if s, err := c.TestEcho(ctx, "hello"); err != nil || s != "hello" {
		t.Fatalf("echo %q %v", s, err)
	}
}

func containsLog(f *fixture, s string) bool { return strings.Contains(f.logs.String(), s) }

// rawCall sends, on the client's connection, a request whose body bytes
// are given (for wire layouts the typed bodies cannot produce).
func rawCall(t *testing.T, f *fixture, c *ndmp.Client, code ndmp.MessageCode, body []byte) *ndmp.Message {
	t.Helper()
	req := &rawBody{code: code, b: body}
	rep, err := c.Conn().Call(f.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return &ndmp.Message{Body: rep}
}

// rawBody is a request body given as bytes.
type rawBody struct {
	code ndmp.MessageCode
	b    []byte
}

func (r *rawBody) MarshalXDR(e *xdr.Encoder) {
	for i := 0; i+4 <= len(r.b); i += 4 {
		e.Uint32(uint32(r.b[i])<<24 | uint32(r.b[i+1])<<16 | uint32(r.b[i+2])<<8 | uint32(r.b[i+3]))
	}
}
func (r *rawBody) UnmarshalXDR(*xdr.Decoder) error { return nil }
func (r *rawBody) MessageCode() ndmp.MessageCode   { return r.code }

// Draft 2.5.4.3: once an extension was used with its default version,
// negotiation is over: GET_EXT_LIST gets EXT_DANDN_ILLEGAL.
func TestExtensionUsedBeforeNegotiation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	c := f.login(nil)
	if s, err := c.TestEcho(f.ctx, "x"); err != nil || s != "x" {
		t.Fatalf("echo %q %v", s, err)
	}
	_, err := c.GetExtList(f.ctx)
	wantErr(t, "GET after use", err, ndmp.ErrExtDandNIllegal)
}
