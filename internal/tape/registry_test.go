package tape

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/options"
	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
)

// testNodeName is the node the test registries serve.
const testNodeName = "tape-n1"

// openStore opens the catalog at path wrapped in catalog.Rerun: every
// Update function runs twice, as in a store that retries (issue 12, item 5).
func openStore(t testing.TB, path string) catalog.Store {
	t.Helper()
	s, err := catalog.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	return catalog.Rerun(s)
}

func newLib(t testing.TB) *vtl.Library {
	t.Helper()
	lib, err := vtl.CreateDefault(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })
	return lib
}

// fixture is a registry over a bolt catalog with the default virtual
// library attached at host adapter 0a.
type fixture struct {
	ctx   context.Context
	path  string
	store catalog.Store
	reg   *Registry
	lib   *vtl.Library
	logs  *bytes.Buffer
}

func newFixture(t *testing.T) *fixture { return newBenchFixture(t) }

func newBenchFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{ctx: context.Background(), path: filepath.Join(t.TempDir(), "catalog.db"), lib: newLib(t), logs: &bytes.Buffer{}}
	f.store = openStore(t, f.path)
	t.Cleanup(func() { f.store.Close() })
	var err error
	f.reg, err = NewRegistry(f.store, testNodeName, Options{Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := AddVTL(f.ctx, f.reg, "0a", f.lib); err != nil {
		t.Fatal(err)
	}
	return f
}

func aliasMap(t *testing.T, r *Registry) map[string]string {
	t.Helper()
	devs, err := r.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, d := range devs {
		m[d.Serial] = d.Alias
	}
	return m
}

// T3, T9: devices get the lowest free alias when they appear, bound to
// their serial numbers; a restarted node (catalog closed and reopened,
// devices found in another order on another adapter) gives every device
// its previous alias.
func TestAliasesAssignedAndKeptAcrossRestart(t *testing.T) {
	f := newFixture(t)
	devs, err := f.reg.Devices(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 5 {
		t.Fatalf("%d devices, want 5", len(devs))
	}
	want := []string{"st0", "st1", "st2", "st3", "mc0"}
	for i, d := range devs {
		if d.Alias != want[i] {
			t.Errorf("device %d alias %q, want %q", i, d.Alias, want[i])
		}
		if !d.Online || d.Node != testNodeName {
			t.Errorf("device %s: online %v node %q", d.Alias, d.Online, d.Node)
		}
	}
	if devs[0].Status != Qualified || devs[0].Config == nil || devs[0].Paths[0] != "0a.1" {
		t.Fatalf("st0: %+v", devs[0])
	}
	as, err := f.reg.Aliases(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if as[0].Name != "st0" || as[0].Mapping != "SN["+strings.ToUpper(f.lib.Drives()[0].Serial())+"]" {
		t.Fatalf("alias show: %+v", as)
	}
	before := aliasMap(t, f.reg)

	// Restart: close the catalog, reopen it, attach in reverse order.
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	store := openStore(t, f.path)
	defer store.Close()
	reg, err := NewRegistry(store, testNodeName, Options{})
	if err != nil {
		t.Fatal(err)
	}
	drives := f.lib.Drives()
	for i := len(drives) - 1; i >= 0; i-- {
		d := drives[i]
		if _, err := reg.Add(f.ctx, Attachment{Kind: KindDrive, Path: fmt.Sprintf("1b.%d", 10+i), Serial: d.Serial(),
			Vendor: VTLVendor, Product: VTLDriveProduct, Drive: NewVTLDrive(d)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.Add(f.ctx, Attachment{Kind: KindChanger, Path: "1b.9", Serial: f.lib.Serial(), Changer: NewVTLChanger(f.lib)}); err != nil {
		t.Fatal(err)
	}
	after := aliasMap(t, reg)
	for serial, a := range before {
		if after[serial] != a {
			t.Errorf("after restart %s has alias %q, before %q", serial, after[serial], a)
		}
	}
	// Another node's aliases are its own.
	other, err := NewRegistry(store, "node2", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if as, _ := other.Aliases(f.ctx); len(as) != 0 {
		t.Fatalf("node2 sees aliases %+v", as)
	}
	// A device without a serial number is aliased by its path, with the
	// lowest free number.
	d, err := reg.Add(f.ctx, Attachment{Kind: KindDrive, Path: "SW_1:5.3L2", Vendor: VTLVendor, Product: VTLDriveProduct, Drive: NewVTLDrive(drives[0])})
	if err != nil {
		t.Fatal(err)
	}
	if d.Alias != "st4" {
		t.Fatalf("serial-less drive alias %q", d.Alias)
	}
	as, _ = reg.Aliases(f.ctx)
	if as[4].Mapping != "SW_1:5.3L2" {
		t.Fatalf("serial-less alias mapping %+v", as[4])
	}
}

// T3: storage tape alias set, clear (by name and by scope) and show.
func TestAliasSetClear(t *testing.T) {
	f := newFixture(t)
	serial0 := f.lib.Drives()[0].Serial()
	// Set with a lower-case serial: SN mappings are case-insensitive.
	if err := f.reg.SetAlias(f.ctx, "st7", "sn["+strings.ToLower(serial0)+"]"); err != nil {
		t.Fatal(err)
	}
	if m := aliasMap(t, f.reg); m[serial0] != "st7" {
		t.Fatalf("after set, alias %q", m[serial0])
	}
	h, err := f.reg.OpenDrive(f.ctx, "s1", "nrst7a", ReadMode)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.OpenDrive(f.ctx, "s1", "nrst0a", ReadMode); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("old alias st0 still opens: %v", err)
	}
	// An alias may point at a path; then it names the device over that
	// path.
	if err := f.reg.SetAlias(f.ctx, "st0", "0a.2"); err != nil {
		t.Fatal(err)
	}
	d, err := f.reg.Device(f.ctx, "st0")
	if err != nil || d.Serial != f.lib.Drives()[1].Serial() {
		t.Fatalf("st0 -> %+v %v", d, err)
	}
	// An alias for a device that is not attached resolves to nothing.
	if err := f.reg.SetAlias(f.ctx, "st9", "SN[NOSUCHDRIVE]L3"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Device(f.ctx, "st9"); !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "SN[NOSUCHDRIVE]L3") {
		t.Fatalf("dangling alias: %v", err)
	}
	for _, bad := range [][2]string{{"xx0", "0a.1"}, {"st", "0a.1"}, {"st1", "nope"}, {"mc1", "SN[]"}} {
		if err := f.reg.SetAlias(f.ctx, bad[0], bad[1]); !errors.Is(err, ErrBadName) {
			t.Errorf("SetAlias(%q, %q) = %v", bad[0], bad[1], err)
		}
	}

	n, err := f.reg.ClearAliases(f.ctx, ClearTape)
	if err != nil {
		t.Fatal(err)
	}
	as, _ := f.reg.Aliases(f.ctx)
	if len(as) != 1 || as[0].Name != "mc0" {
		t.Fatalf("after clear tape (%d removed): %+v", n, as)
	}
	if _, err := f.reg.OpenDrive(f.ctx, "s1", "nrst1a", ReadMode); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("drive opened without alias: %v", err)
	}
	if _, err := ParseClearScope("disks"); err == nil {
		t.Fatal("bad scope accepted")
	}
	if err := f.reg.ClearAlias(f.ctx, "mc0"); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.ClearAlias(f.ctx, "mc0"); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("clearing a missing alias: %v", err)
	}
	if _, err := f.reg.OpenChanger(f.ctx, "s1", "mc0"); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("changer opened without alias: %v", err)
	}
	// Setting aliases again gives access back; clear all removes both kinds.
	if err := f.reg.SetAlias(f.ctx, "mc1", "SN["+f.lib.Serial()+"]"); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.SetAlias(f.ctx, "st3", "0a.1"); err != nil {
		t.Fatal(err)
	}
	ch, err := f.reg.OpenChanger(f.ctx, "s1", "mc1")
	if err != nil {
		t.Fatal(err)
	}
	ch.Close()
	if n, err := f.reg.ClearAliases(f.ctx, ClearAll); err != nil || n != 2 {
		t.Fatalf("clear all: %d %v", n, err)
	}
}

func addDrive(ctx context.Context, r *Registry, path, serial string, d *vtl.Drive) (Device, error) {
	return r.Add(ctx, Attachment{Kind: KindDrive, Path: path, Serial: serial, Vendor: VTLVendor, Product: VTLDriveProduct, Drive: NewVTLDrive(d)})
}

// T5: 64 drives, 16 changers and 16 bridges per node.
func TestNodeLimits(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, filepath.Join(t.TempDir(), "c.db"))
	defer store.Close()
	reg, err := NewRegistry(store, "n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	lib := newLib(t)
	d0 := lib.Drives()[0]
	for i := 0; i < MaxDrives; i++ {
		if _, err := addDrive(ctx, reg, fmt.Sprintf("1a.%d", i), fmt.Sprintf("D%d", i), d0); err != nil {
			t.Fatalf("drive %d: %v", i, err)
		}
	}
	_, err = addDrive(ctx, reg, "1a.99", "D99", d0)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "64 tape drives") {
		t.Fatalf("65th drive: %v", err)
	}
	for i := 0; i < MaxChangers; i++ {
		if _, err := reg.Add(ctx, Attachment{Kind: KindChanger, Path: fmt.Sprintf("2a.%d", i), Serial: fmt.Sprintf("C%d", i), Changer: NewVTLChanger(lib)}); err != nil {
			t.Fatalf("changer %d: %v", i, err)
		}
	}
	_, err = reg.Add(ctx, Attachment{Kind: KindChanger, Path: "2a.99", Changer: NewVTLChanger(lib)})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "16 media changers") {
		t.Fatalf("17th changer: %v", err)
	}
	for i := 0; i < MaxBridges; i++ {
		d, err := reg.Add(ctx, Attachment{Kind: KindBridge, Path: fmt.Sprintf("3a.%d", i)})
		if err != nil {
			t.Fatalf("bridge %d: %v", i, err)
		}
		if d.Alias != "" {
			t.Fatalf("bridge got alias %q", d.Alias)
		}
	}
	if _, err := reg.Add(ctx, Attachment{Kind: KindBridge, Path: "3a.99"}); !errors.Is(err, ErrLimit) {
		t.Fatalf("17th bridge: %v", err)
	}
	// Removing one makes room again (T9).
	if err := reg.Remove(ctx, "1a.5"); err != nil {
		t.Fatal(err)
	}
	d, err := addDrive(ctx, reg, "1a.99", "D99", d0)
	if err != nil {
		t.Fatal(err)
	}
	if d.Alias != "st64" {
		t.Fatalf("new drive alias %q (st5 still belongs to the removed drive)", d.Alias)
	}
	// Bad attachments.
	for _, a := range []Attachment{
		{Kind: KindDrive, Path: "SN[ABC]", Drive: NewVTLDrive(d0)},
		{Kind: KindDrive, Path: "9a.1"},
		{Kind: KindChanger, Path: "9a.1"},
		{Kind: 0, Path: "9a.1"},
		{Kind: KindDrive, Path: "9a.1", Serial: "bad serial!", Drive: NewVTLDrive(d0)},
		{Kind: KindDrive, Path: "1a.99", Serial: "OTHER", Drive: NewVTLDrive(d0)},
	} {
		if _, err := reg.Add(ctx, a); err == nil {
			t.Errorf("Add(%+v) succeeded", a)
		}
	}
	if err := reg.Remove(ctx, "7z.1"); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("removing unknown path: %v", err)
	}
}

// T7: two paths at most, the same LUN on both, load balancing off by
// default (first path always), on (least used path).
func TestMultipath(t *testing.T) {
	f := newFixture(t)
	d1 := f.lib.Drives()[1]
	d, err := addDrive(f.ctx, f.reg, "0c.2", d1.Serial(), d1)
	if err != nil {
		t.Fatal(err)
	}
	if d.Alias != "st1" || len(d.Paths) != 2 || d.Paths[1] != "0c.2" {
		t.Fatalf("second path: %+v", d)
	}
	if _, err := addDrive(f.ctx, f.reg, "0d.2", d1.Serial(), d1); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "at most 2 paths") {
		t.Fatalf("third path: %v", err)
	}
	d2 := f.lib.Drives()[2]
	if _, err := addDrive(f.ctx, f.reg, "0c.3L1", d2.Serial(), d2); err == nil || !strings.Contains(err.Error(), "not symmetrical") {
		t.Fatalf("asymmetric LUN: %v", err)
	}
	paths := func() []string {
		var out []string
		for i := 0; i < 4; i++ {
			h, err := f.reg.OpenDrive(f.ctx, "s", "nrst1l", ReadMode)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, h.Path())
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	ps, err := f.reg.Paths(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var byInit []string
	for _, p := range ps {
		if p.Alias == "st1" {
			byInit = append(byInit, fmt.Sprintf("%s %s %v", p.Initiator, p.Path, p.Primary))
		}
	}
	if strings.Join(byInit, ", ") != "0a 0a.2 true, 0c 0c.2 false" || len(ps) != 6 {
		t.Fatalf("paths of st1: %v (%d paths)", byInit, len(ps))
	}
	if on, err := f.reg.LoadBalancing(f.ctx); on || err != nil {
		t.Fatalf("load balancing on by default (%v)", err)
	}
	if got := strings.Join(paths(), " "); got != "0a.2 0a.2 0a.2 0a.2" {
		t.Fatalf("without balancing: %s", got)
	}
	if err := f.reg.SetLoadBalancing(f.ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(paths(), " "); got != "0a.2 0c.2 0a.2 0c.2" {
		t.Fatalf("with balancing: %s", got)
	}
	// Losing a path keeps the device on the other; a path in use cannot be
	// removed.
	h, err := f.reg.OpenDrive(f.ctx, "s", "nrst1l", ReadMode)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Remove(f.ctx, h.Path()); !errors.Is(err, ErrBusy) {
		t.Fatalf("removing a path in use: %v", err)
	}
	h.Close()
	if err := f.reg.Remove(f.ctx, "0a.2"); err != nil {
		t.Fatal(err)
	}
	if d, err := f.reg.Device(f.ctx, "st1"); err != nil || len(d.Paths) != 1 || d.Paths[0] != "0c.2" {
		t.Fatalf("after losing a path: %+v %v", d, err)
	}
	if err := f.reg.Remove(f.ctx, "0c.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Device(f.ctx, "st1"); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("device with no path: %v", err)
	}
	// It comes back with its alias.
	if d, err := addDrive(f.ctx, f.reg, "0e.7", d1.Serial(), d1); err != nil || d.Alias != "st1" {
		t.Fatalf("re-added: %+v %v", d, err)
	}
}

// T6: reservations off, scsi and persistent, between sessions.
func TestReservations(t *testing.T) {
	f := newFixture(t)
	if m, err := f.reg.Reservations(f.ctx); m != ReservationsOff || err != nil {
		t.Fatalf("reservations not off by default: %q %v", m, err)
	}
	open := func(s string) (*DriveHandle, error) { return f.reg.OpenDrive(f.ctx, s, "nrst0a", ReadMode) }

	// off: only busy while open.
	a, err := open("A")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open("B"); !errors.Is(err, ErrBusy) || Message(err) != MsgInUse || !strings.Contains(err.Error(), "0a.1") {
		t.Fatalf("second opener: %v", err)
	}
	if err := f.reg.Reset(f.ctx, "st0"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.State(); err != nil {
		t.Fatalf("reset with reservations off: %v", err)
	}
	a.Close()
	b, err := open("B")
	if err != nil {
		t.Fatal(err)
	}
	b.Close()

	// scsi: reserved while open; a reset loses the reservation. The
	// option is set in the catalog as the options command does; the
	// registry reads it at the next open (issue 12 item 7).
	if _, err := options.Set(f.ctx, f.store, options.TapeReservations, "scsi"); err != nil {
		t.Fatal(err)
	}
	a, err = open("A")
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := f.reg.Device(f.ctx, "st0"); d.ReservedBy != "A" || d.OpenBy != "A" {
		t.Fatalf("scsi: %+v", d)
	}
	if _, err := open("B"); !errors.Is(err, ErrReserved) || Message(err) != MsgReservationPreempted {
		t.Fatalf("scsi: second opener: %v", err)
	}
	if err := f.reg.Reset(f.ctx, "st0"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.State(); !errors.Is(err, ErrReserved) || Message(err) != "Tape reservation preempted" {
		t.Fatalf("scsi: after reset: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err = open("B"); err != nil {
		t.Fatalf("scsi: after release: %v", err)
	}
	b.Close()

	// persistent: kept across close and reset until the session ends.
	if err := f.reg.SetReservations(f.ctx, ReservationsPersistent); err != nil {
		t.Fatal(err)
	}
	a, err = open("A")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := f.reg.Reset(f.ctx, "st0"); err != nil {
		t.Fatal(err)
	}
	if _, err := open("B"); !errors.Is(err, ErrReserved) || Message(err) != MsgReservationPreempted {
		t.Fatalf("persistent: second session: %v", err)
	}
	if _, err := f.reg.OpenChanger(f.ctx, "A", "mc0"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.OpenChanger(f.ctx, "B", "mc0"); !errors.Is(err, ErrReserved) {
		t.Fatalf("persistent changer: %v", err)
	}
	a, err = open("A")
	if err != nil {
		t.Fatalf("persistent: owner reopens: %v", err)
	}
	// Ending the session closes what it left open and releases everything.
	if err := f.reg.ReleaseSession("A"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.State(); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("handle after session end: %v", err)
	}
	if b, err = open("B"); err != nil {
		t.Fatalf("persistent: after release: %v", err)
	}
	b.Close()
	if _, err := f.reg.OpenChanger(f.ctx, "B", "mc0"); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.SetReservations(f.ctx, "sometimes"); err == nil {
		t.Fatal("bad reservation method accepted")
	}
	if _, err := ParseReservations("scsi"); err != nil {
		t.Fatal(err)
	}
}

// T2, T8: I/O through a handle, statistics and zeroing, positioning and
// tracing.
func TestHandleIOStatsPositionTrace(t *testing.T) {
	f := newFixture(t)
	if err := f.reg.Trace(f.ctx, "st0", true); err != nil {
		t.Fatal(err)
	}
	h, err := f.reg.OpenDrive(f.ctx, "s1", "nrst0a", ReadWriteMode)
	if err != nil {
		t.Fatal(err)
	}
	if o := h.Options(); o.Rewind != NoRewind || o.Compression != Highest || o.Density.Description != "VTL (6250GB w/comp)" {
		t.Fatalf("options %+v", o)
	}
	rec := bytes.Repeat([]byte("tapestry"), 8192) // 64 KiB
	for file := 0; file < 3; file++ {
		for i := 0; i < 2; i++ {
			rec[0] = byte('A' + file)
			if _, err := h.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		if resid, err := h.WriteFilemarks(1); err != nil || resid != 0 {
			t.Fatalf("weof: %d %v", resid, err)
		}
	}
	st, err := h.State()
	if err != nil || st.FileNum != 3 {
		t.Fatalf("state %+v %v", st, err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(rec); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("write after close: %v", err)
	}
	s, err := f.reg.Stats(f.ctx, "st0")
	if err != nil {
		t.Fatal(err)
	}
	if s.BytesWritten != 6*int64(len(rec)) || s.RecordsWritten != 6 || s.FilemarksWritten != 3 {
		t.Fatalf("stats %+v", s)
	}
	if !strings.Contains(f.logs.String(), "op=write") || !strings.Contains(f.logs.String(), "device=nrst0a") {
		t.Fatalf("trace log: %s", f.logs.String())
	}

	// storage tape position: rewind, then forward over two files.
	if _, err := f.reg.Position(f.ctx, "st0", PositionRewind, 1); err != nil {
		t.Fatal(err)
	}
	if resid, err := f.reg.Position(f.ctx, "st0", PositionFSF, 2); err != nil || resid != 0 {
		t.Fatalf("fsf: %d %v", resid, err)
	}
	if _, err := f.reg.Position(f.ctx, "st0", "erase", 1); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("erase: %v", err)
	}
	h, err = f.reg.OpenDrive(f.ctx, "s1", "nrst0l", ReadMode)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 128<<10)
	n, err := h.Read(buf)
	if err != nil || n != len(rec) || buf[0] != 'C' {
		t.Fatalf("read after position: %d %q %v", n, buf[:1], err)
	}
	h.Read(buf)
	if _, err := h.Read(buf); !errors.Is(err, ErrEOF) {
		t.Fatalf("read at file mark: %v", err)
	}
	if resid, err := h.Space(SpaceBSF, 10); err != nil || resid == 0 {
		t.Fatalf("bsf past BOT: %d %v", resid, err)
	}
	// After the alias is resolved, errors name the physical path (spec:
	// "it returns all error messages by using the physical path name").
	if _, err := h.Write(rec); !errors.Is(err, ErrPermission) || !strings.HasPrefix(err.Error(), "tape: 0a.1: write: ") {
		t.Fatalf("write on read-only open: %v", err)
	}
	if _, err := h.Space(SpaceOp(9), 1); !errors.Is(err, ErrIllegalArgs) {
		t.Fatalf("bad space op: %v", err)
	}
	res, err := h.ExecuteCDB(f.ctx, CDB{CDB: []byte{0x12, 0, 0, 0, 96, 0}, Dir: DirIn, DataInLen: 96})
	if err != nil || res.Status != StatusGood || string(res.DataIn[8:16]) != "TAPESTRY" {
		t.Fatalf("inquiry: %+v %v", res, err)
	}
	// Offline is refused while open; offline drives do not open.
	if err := f.reg.Offline(f.ctx, "st0"); !errors.Is(err, ErrBusy) {
		t.Fatalf("offline while open: %v", err)
	}
	h.Close()
	s, _ = f.reg.Stats(f.ctx, "st0")
	if s.BytesRead != 2*int64(len(rec)) || s.RecordsRead != 2 || s.WriteErrors != 1 {
		t.Fatalf("stats after reading %+v", s)
	}
	if err := f.reg.ZeroStats(f.ctx, "st0"); err != nil {
		t.Fatal(err)
	}
	if s, _ := f.reg.Stats(f.ctx, "st0"); s != (Stats{}) {
		t.Fatalf("after zero: %+v", s)
	}
	if err := f.reg.Offline(f.ctx, "st0"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.OpenDrive(f.ctx, "s1", "rst0a", ReadMode); !errors.Is(err, ErrOffline) {
		t.Fatalf("open offline drive: %v", err)
	}
	if d, _ := f.reg.Device(f.ctx, "st0"); d.Online {
		t.Fatal("device still online")
	}
	if err := f.reg.Online(f.ctx, "st0"); err != nil {
		t.Fatal(err)
	}
	if h, err = f.reg.OpenDrive(f.ctx, "s1", "rst0a", ReadMode); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if err := f.reg.Trace(f.ctx, "st0", false); err != nil {
		t.Fatal(err)
	}
	f.logs.Reset()
	if h, err = f.reg.OpenDrive(f.ctx, "s1", "rst0a", ReadMode); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if f.logs.Len() != 0 {
		t.Fatalf("trace off still logs: %s", f.logs.String())
	}
	for _, fn := range []func() error{
		func() error { return f.reg.Online(f.ctx, "st42") },
		func() error { return f.reg.Trace(f.ctx, "st42", true) },
		func() error { return f.reg.ZeroStats(f.ctx, "st42") },
		func() error { return f.reg.Reset(f.ctx, "st42") },
	} {
		if err := fn(); !errors.Is(err, ErrNoDevice) {
			t.Errorf("unknown alias: %v", err)
		}
	}
	if _, err := f.reg.OpenDrive(f.ctx, "s1", "nrst0z", ReadMode); !errors.Is(err, ErrNoDevice) || !errors.Is(err, ErrBadName) {
		t.Fatalf("bad device name: %v", err)
	}
	if _, err := f.reg.OpenDrive(f.ctx, "", "nrst0a", ReadMode); !errors.Is(err, ErrIllegalArgs) {
		t.Fatalf("empty session: %v", err)
	}
	if _, err := f.reg.OpenDrive(f.ctx, "s1", "nrst0a", OpenMode(7)); !errors.Is(err, ErrIllegalArgs) {
		t.Fatalf("bad mode: %v", err)
	}
}

// T1: the ur device unloads at close and loads the next cartridge of the
// library's sequence.
func TestUnloadReload(t *testing.T) {
	f := newFixture(t)
	d0 := f.lib.Drives()[0]
	first := d0.Barcode()
	h, err := f.reg.OpenDrive(f.ctx, "s", "urst0a", ReadWriteMode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	next := d0.Barcode()
	if next == "" || next == first || !d0.Loaded() {
		t.Fatalf("after urst0a close the drive holds %q (loaded %v), before %q", next, d0.Loaded(), first)
	}
	el, ok, err := f.lib.Locate(first)
	if err != nil || !ok || el.Type != vtl.TypeSlot {
		t.Fatalf("first cartridge at %+v %v %v", el, ok, err)
	}
}

// T4: a nonqualified drive is listed but cannot be used until a tape
// configuration file qualifies it.
func TestNonqualifiedDrive(t *testing.T) {
	f := newFixture(t)
	d3 := f.lib.Drives()[3]
	d, err := f.reg.Add(f.ctx, Attachment{Kind: KindDrive, Path: "5c.4", Serial: "ACME0001", Vendor: "ACME    ", Product: "TurboTape 9000  ", Drive: NewVTLDrive(d3)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != Nonqualified || d.Alias != "st4" {
		t.Fatalf("acme drive: %+v", d)
	}
	devs, _ := f.reg.Devices(f.ctx)
	listed := false
	for _, x := range devs {
		listed = listed || x.Serial == "ACME0001"
	}
	if !listed {
		t.Fatal("nonqualified drive not listed")
	}
	_, err = f.reg.OpenDrive(f.ctx, "s", "nrst4a", ReadMode)
	if !errors.Is(err, ErrNotQualified) || !strings.Contains(err.Error(), "ACME TurboTape 9000 is a nonqualified tape drive") {
		t.Fatalf("open nonqualified: %v", err)
	}
	if !strings.Contains(DeviceListing(d), "format is: not qualified") {
		t.Fatalf("listing: %s", DeviceListing(d))
	}
	rows := f.reg.SupportStatus()
	want := []SupportRow{{`"ACME TurboTape 9000"`, false, Nonqualified}, {"Tapestry VTL-TAPE", true, Qualified}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("supported status %+v", rows)
	}
	dir := t.TempDir()
	tcf := "vendor_id=\"ACME\"\nproduct_id=\"TurboTape 9000\"\nid_match_size=9\n"
	if err := os.WriteFile(filepath.Join(dir, "ACME.TCF"), []byte(tcf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.LoadConfigs(dir); err != nil {
		t.Fatal(err)
	}
	if d, _ := f.reg.Device(f.ctx, "st4"); d.Status != DynamicallyQualified {
		t.Fatalf("after loading: %v", d.Status)
	}
	h, err := f.reg.OpenDrive(f.ctx, "s", "nrst4a", ReadMode)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	rows = f.reg.SupportStatus()
	want = []SupportRow{{"ACME TurboTape 9000", true, DynamicallyQualified}, {"Tapestry VTL-TAPE", true, Qualified}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("supported status after loading %+v", rows)
	}
	if len(f.reg.Qualification().Configs()) != 2 {
		t.Fatal("qualification table not extended")
	}
}

// vtl errors carry the ONTAP messages through the adapter (T10).
func TestVTLErrorsMapped(t *testing.T) {
	f := newFixture(t)
	d0 := f.lib.Drives()[0]
	if err := f.lib.InjectFault(d0.Barcode(), vtl.Fault{Kind: vtl.FaultWriteMedia, At: -1}); err != nil {
		t.Fatal(err)
	}
	h, err := f.reg.OpenDrive(f.ctx, "s", "nrst0a", ReadWriteMode)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	_, err = h.Write(make([]byte, 4096))
	if !errors.Is(err, ErrIO) || !strings.HasPrefix(Message(err), "Tape write failed") && Message(err) != MsgMediaErrorOnWrite {
		t.Fatalf("write with media fault: %v (message %q)", err, Message(err))
	}
	if s, _ := f.reg.Stats(f.ctx, "st0"); s.WriteErrors != 1 {
		t.Fatalf("write errors %d", s.WriteErrors)
	}
	d0.Preempt()
	if _, err := h.Read(make([]byte, 10)); Message(err) != MsgReservationPreempted || !errors.Is(err, ErrReserved) {
		t.Fatalf("preempted: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "tape: 0a.1: ") {
		t.Fatalf("error not named by path: %v", err)
	}
	wrapped := errors.Join(errors.New("other"), fmt.Errorf("mover: %w", err))
	if Message(wrapped) == "" || Message(wrapped) != Message(err) {
		t.Fatalf("message of a wrapped error: %q", Message(wrapped))
	}
	if Message(nil) != "" || Message(&Error{Err: ErrIO}) != "" {
		t.Fatal("message of nil or message-less error")
	}
	if Message(errors.New("plain")) != "" {
		t.Fatal("message of a plain error")
	}
}

// Many sessions racing for one drive: never two at once.
func TestConcurrentOpen(t *testing.T) {
	f := newFixture(t)
	var inside, max atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				h, err := f.reg.OpenDrive(f.ctx, fmt.Sprintf("s%d", i), "nrst2a", ReadMode)
				if err != nil {
					if !errors.Is(err, ErrBusy) {
						t.Error(err)
					}
					continue
				}
				n := inside.Add(1)
				if n > max.Load() {
					max.Store(n)
				}
				h.State()
				inside.Add(-1)
				if err := h.Close(); err != nil {
					t.Error(err)
				}
			}
		}(i)
	}
	wg.Wait()
	if max.Load() != 1 {
		t.Fatalf("%d sessions had the drive at once", max.Load())
	}
}

// A close whose final file mark fails keeps the drive open; the second
// Close releases it (and the drive) for other sessions.
func TestCloseFailureThenRelease(t *testing.T) {
	f := newFixture(t)
	d0 := f.lib.Drives()[0]
	// A short tape: room for the record (4096 bytes plus SIMH's two
	// length words) but not for the file mark Close writes after it.
	if err := f.lib.SetShortTape(d0.Barcode(), 4096+8+2); err != nil {
		t.Fatal(err)
	}
	h, err := f.reg.OpenDrive(f.ctx, "s1", "nrst0l", ReadWriteMode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	err = h.Close()
	if err == nil || Message(err) != MsgWriteFailed || !errors.Is(err, ErrIO) {
		t.Fatalf("close with failing file mark: %v", err)
	}
	if d, _ := f.reg.Device(f.ctx, "st0"); d.OpenBy != "s1" || !d0.IsOpen() {
		t.Fatalf("after failed close: open by %q, vtl open %v", d.OpenBy, d0.IsOpen())
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if d0.IsOpen() {
		t.Fatal("vtl drive still open")
	}
	h2, err := f.reg.OpenDrive(f.ctx, "s2", "nrst0a", ReadMode)
	if err != nil {
		t.Fatal(err)
	}
	h2.Close()
	if err := h.Close(); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("third close: %v", err)
	}
}

// A session moves cartridges with the changer (SCSI_EXECUTE_CDB through
// mc0) and the drive sees them (TAPE_OPEN through nrst0a).
func TestChangerMovesForDrive(t *testing.T) {
	f := newFixture(t)
	ch, err := f.reg.OpenChanger(f.ctx, "s", "mc0")
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	move := func(src, dst uint16) CDBResult {
		t.Helper()
		res, err := ch.ExecuteCDB(f.ctx, CDB{CDB: []byte{0xA5, 0, 0, 0, byte(src >> 8), byte(src), byte(dst >> 8), byte(dst), 0, 0, 0, 0}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := move(vtl.DriveBase, vtl.SlotBase); res.Status != StatusGood {
		t.Fatalf("unload drive 0: %+v", res)
	}
	if _, err := f.reg.OpenDrive(f.ctx, "s", "nrst0a", ReadMode); !errors.Is(err, ErrNoTape) {
		t.Fatalf("open empty drive: %v", err)
	}
	h, err := f.reg.OpenDrive(f.ctx, "s", "nrst0a", RawMode)
	if err != nil {
		t.Fatalf("raw open of empty drive: %v", err)
	}
	h.Close()
	if res := move(vtl.DriveBase, vtl.SlotBase); res.Status != StatusCheckCondition || len(res.Sense) < 14 || res.Sense[12] != 0x3B {
		t.Fatalf("move from empty drive: %+v", res)
	}
	if res := move(vtl.SlotBase, vtl.DriveBase); res.Status != StatusGood {
		t.Fatalf("load drive 0: %+v", res)
	}
	h, err = f.reg.OpenDrive(f.ctx, "s", "nrst0a", ReadMode)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	cctx, cancel := context.WithCancel(f.ctx)
	cancel()
	if _, err := ch.ExecuteCDB(cctx, CDB{CDB: []byte{0, 0, 0, 0, 0, 0}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// T8: every storage tape position operation on an idle drive.
func TestPositionOps(t *testing.T) {
	f := newFixture(t)
	pos := func(op PositionOp, n uint32) uint32 {
		t.Helper()
		resid, err := f.reg.Position(f.ctx, "st1", op, n)
		if err != nil {
			t.Fatalf("%s %d: %v", op, n, err)
		}
		return resid
	}
	state := func() State {
		t.Helper()
		h, err := f.reg.OpenDrive(f.ctx, "s", "nrst1l", ReadMode)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if h.Name().String() != "nrst1l" || h.Path() != "0a.2" {
			t.Fatalf("handle %s %s", h.Name(), h.Path())
		}
		s, err := h.State()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pos(PositionWEOF, 3)
	if s := state(); s.FileNum != 3 {
		t.Fatalf("after weof 3: file %d", s.FileNum)
	}
	pos(PositionBSF, 1) // before the third mark: in file 2
	if s := state(); s.FileNum != 2 {
		t.Fatalf("after bsf: file %d", s.FileNum)
	}
	if resid := pos(PositionFSR, 5); resid != 5 {
		t.Fatalf("fsr into a mark: resid %d", resid)
	}
	if resid := pos(PositionBSR, 2); resid != 2 {
		t.Fatalf("bsr into a mark: resid %d", resid)
	}
	pos(PositionRewind, 1)
	if s := state(); s.FileNum != 0 || s.BlockNo != 0 {
		t.Fatalf("after rewind: %+v", s)
	}
	pos(PositionUnload, 1)
	if _, err := f.reg.OpenDrive(f.ctx, "s", "nrst1l", ReadMode); !errors.Is(err, ErrNoTape) {
		t.Fatalf("after offline: %v", err)
	}
	if _, err := f.reg.Position(f.ctx, "st1", PositionFSF, 1); !errors.Is(err, ErrNoTape) {
		t.Fatalf("position without tape: %v", err)
	}
	// Unload through a session handle too.
	h, err := f.reg.OpenDrive(f.ctx, "s", "nrst2l", ReadMode)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Unload(); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if _, err := f.reg.OpenDrive(f.ctx, "s", "nrst2l", ReadMode); !errors.Is(err, ErrNoTape) {
		t.Fatalf("after handle unload: %v", err)
	}
	// Position of a drive in use is refused.
	h, err = f.reg.OpenDrive(f.ctx, "s", "nrst3l", ReadMode)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := f.reg.Position(f.ctx, "st3", PositionRewind, 1); !errors.Is(err, ErrBusy) {
		t.Fatalf("position while open: %v", err)
	}
}
