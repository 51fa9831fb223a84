//go:build linux

package linuxst

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// testNodeName is the node the test registries serve.
const testNodeName = "st-n1"

// fakeSysfs builds the parts of /sys that Discover reads.
type fakeSysfs struct {
	t    *testing.T
	root string
}

func newFakeSysfs(t *testing.T) *fakeSysfs {
	return &fakeSysfs{t: t, root: t.TempDir()}
}

func (f *fakeSysfs) write(rel string, data []byte) {
	f.t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// device creates bus/scsi/devices/<hctl> with the given attributes (files
// with nil content are left out).
func (f *fakeSysfs) device(hctl string, attrs map[string][]byte) {
	for name, data := range attrs {
		if data != nil {
			f.write(filepath.Join("bus/scsi/devices", hctl, name), data)
		}
	}
}

// class links class/<class>/<name>/device to the device directory, as
// sysfs does (relative symlink).
func (f *fakeSysfs) class(class, name, hctl string) {
	f.t.Helper()
	dir := filepath.Join(f.root, "class", class, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("../../../bus/scsi/devices", hctl), filepath.Join(dir, "device")); err != nil {
		f.t.Fatal(err)
	}
}

func vpd80(serial string) []byte {
	return append([]byte{0x01, 0x80, 0, byte(len(serial))}, serial...)
}

func buildHost(t *testing.T) *fakeSysfs {
	f := newFakeSysfs(t)
	f.device("2:0:3:0", map[string][]byte{"type": []byte("1\n"), "vendor": []byte("HP      \n"), "model": []byte("Ultrium 5-SCSI  \n"),
		"rev": []byte("Z39W\n"), "vpd_pg80": vpd80("HU19487T2L  ")})
	f.device("2:0:4:1", map[string][]byte{"type": []byte("8\n"), "vendor": []byte("TAPESTRY\n"), "model": []byte("VTL\n")})
	f.device("3:0:0:0", map[string][]byte{"type": []byte("0\n"), "vendor": []byte("ATA\n"), "model": []byte("disk\n")})
	// The st driver makes eight nodes per drive; only nstN is used.
	for _, n := range []string{"st0", "st0l", "st0m", "st0a", "nst0", "nst0l", "nst0m", "nst0a"} {
		f.class("scsi_tape", n, "2:0:3:0")
	}
	f.class("scsi_generic", "sg1", "2:0:3:0")
	f.class("scsi_generic", "sg2", "2:0:4:1")
	f.class("scsi_generic", "sg0", "3:0:0:0")
	return f
}

func TestDiscover(t *testing.T) {
	f := buildHost(t)
	found, err := Discover(f.root, "/dev")
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 {
		t.Fatalf("found %+v", found)
	}
	d, c := found[0], found[1]
	if d.Kind != tape.KindDrive || d.Addr != (HCTL{2, 0, 3, 0}) || d.Vendor != "HP" || d.Product != "Ultrium 5-SCSI" ||
		d.Revision != "Z39W" || d.Serial != "HU19487T2L" || d.Tape != "/dev/nst0" || d.Generic != "/dev/sg1" {
		t.Fatalf("drive %+v", d)
	}
	if d.Addr.PPN() != "2a.3" {
		t.Fatalf("drive PPN %q", d.Addr.PPN())
	}
	if c.Kind != tape.KindChanger || c.Serial != "" || c.Generic != "/dev/sg2" || c.Tape != "" || c.Addr.PPN() != "2a.4L1" {
		t.Fatalf("changer %+v (%s)", c, c.Addr.PPN())
	}
}

// One broken device is reported; the others are still listed.
func TestDiscoverPartialErrors(t *testing.T) {
	f := buildHost(t)
	f.device("4:0:1:0", map[string][]byte{"type": []byte("one\n"), "vendor": []byte("X\n"), "model": []byte("Y\n")})
	f.class("scsi_generic", "sg5", "4:0:1:0")
	f.device("4:0:2:0", map[string][]byte{"type": []byte("8\n"), "vendor": []byte("X\n"), "model": []byte("Y\n"), "vpd_pg80": []byte{0, 0x83, 0, 0}})
	f.class("scsi_generic", "sg6", "4:0:2:0")
	f.class("scsi_generic", "sg7", "9:9:9:9") // dangling link
	f.device("4:0:3:70000", map[string][]byte{"type": []byte("8\n"), "vendor": []byte("X\n"), "model": []byte("Y\n")})
	f.class("scsi_generic", "sg9", "4:0:3:70000") // LUN beyond a PPN
	if err := os.MkdirAll(filepath.Join(f.root, "class/scsi_generic/sg8"), 0o755); err != nil {
		t.Fatal(err)
	}
	found, err := Discover(f.root, "/dev")
	if len(found) != 2 {
		t.Fatalf("found %d devices", len(found))
	}
	for _, want := range []string{"sg5", "is not a number", "sg6", "page code", "sg7", "sg8", "sg9", "no physical path name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	// No sysfs classes at all: nothing found, no error.
	found, err = Discover(t.TempDir(), "/dev")
	if err != nil || len(found) != 0 {
		t.Fatalf("empty sysfs: %v %v", found, err)
	}
}

// A drive with a serial number that cannot be an SN mapping is aliased by
// its path; a tape device without an st node is not a usable drive.
func TestDiscoverOddDevices(t *testing.T) {
	f := newFakeSysfs(t)
	f.device("0:0:1:0", map[string][]byte{"type": []byte("1"), "vendor": []byte("IBM"), "model": []byte("ULT3580-TD5"), "vpd_pg80": vpd80("SN-WITH-DASHES")})
	f.class("scsi_tape", "nst1", "0:0:1:0")
	f.device("0:0:2:0", map[string][]byte{"type": []byte("1"), "vendor": []byte("IBM"), "model": []byte("ULT3580-TD5")})
	f.class("scsi_generic", "sg3", "0:0:2:0")
	found, err := Discover(f.root, "/dev")
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Serial != "" || found[0].Tape != "/dev/nst1" || found[0].Generic != "" {
		t.Fatalf("found %+v", found)
	}
}

// Discovered devices go into a Registry (T9): the changer is aliased,
// the unknown HP drive is listed but nonqualified (T4), and the changer is
// driven through its sg node.
func TestDiscoverIntoRegistry(t *testing.T) {
	f := buildHost(t)
	found, err := Discover(f.root, "/dev")
	if err != nil {
		t.Fatal(err)
	}
	store, err := catalog.OpenBolt(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg, err := tape.NewRegistry(store, testNodeName, tape.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder(t)
	r.sg = func(dir int32, cdb, out []byte) (uint8, []byte, []byte, uint16) {
		return tape.StatusGood, nil, nil, 0
	}
	for _, fd := range found {
		if _, err := reg.Add(ctx, fd.Attachment(r)); err != nil {
			t.Fatal(err)
		}
	}
	drive, err := reg.Device(ctx, "st0")
	if err != nil {
		t.Fatal(err)
	}
	if drive.Status != tape.Nonqualified || drive.Paths[0] != "2a.3" {
		t.Fatalf("drive %+v", drive)
	}
	if _, err := reg.OpenDrive(ctx, "s", "nrst0a", tape.ReadMode); !errors.Is(err, tape.ErrNotQualified) {
		t.Fatalf("open nonqualified: %v", err)
	}
	as, _ := reg.Aliases(ctx)
	if len(as) != 2 || as[0].Mapping != "SN[HU19487T2L]" || as[1].Name != "mc0" || as[1].Mapping != "2a.4L1" {
		t.Fatalf("aliases %+v", as)
	}
	ch, err := reg.OpenChanger(ctx, "s", "mc0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.ExecuteCDB(ctx, tape.CDB{CDB: []byte{0, 0, 0, 0, 0, 0}}); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); got != "open /dev/sg2 O_RDWR|O_NONBLOCK; SG_IO S dir=-1 cdb=00 00 00 00 00 00 len=0" {
		t.Fatalf("calls: %s", got)
	}
	ch.Close()
	// Unplugging the changer closes its sg node.
	if err := reg.Remove(ctx, "2a.4L1"); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); got != "close 8" {
		t.Fatalf("calls on remove: %s", got)
	}
	if err := reg.Remove(ctx, "2a.3"); err != nil { // its sg node was never opened
		t.Fatal(err)
	}
	if got := r.take(); got != "" {
		t.Fatalf("calls on drive remove: %s", got)
	}
}

func TestParseHCTL(t *testing.T) {
	a, err := ParseHCTL("10:1:27:3")
	if err != nil || a != (HCTL{10, 1, 27, 3}) || a.String() != "10:1:27:3" || a.PPN() != "10b.27L3" {
		t.Fatalf("%+v %v %s", a, err, a.PPN())
	}
	if p := (HCTL{Host: 1, Channel: 27}).PPN(); p != "1z27.0" {
		t.Fatalf("channel 27 PPN %q", p)
	}
	for _, s := range []string{"", "1:2:3", "1:2:3:4:5", "a:0:0:0", "-1:0:0:0", "1::0:0", "99999999999:0:0:0", "host2"} {
		if _, err := ParseHCTL(s); err == nil {
			t.Errorf("ParseHCTL(%q) succeeded", s)
		}
	}
}

func TestParseVPD80(t *testing.T) {
	if sn, err := ParseVPD80(vpd80("  ABC123  ")); err != nil || sn != "ABC123" {
		t.Fatalf("%q %v", sn, err)
	}
	for _, b := range [][]byte{nil, {0, 0x80, 0}, {0, 0x83, 0, 0}, {0, 0x80, 0, 5, 'a'}, {0, 0x80, 0, 1, 0x07}} {
		if _, err := ParseVPD80(b); err == nil {
			t.Errorf("ParseVPD80(% x) succeeded", b)
		}
	}
}

func FuzzParseVPD80(f *testing.F) {
	f.Add(vpd80("HU19487T2L"))
	f.Add([]byte{0, 0x80, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		sn, err := ParseVPD80(b)
		if err != nil {
			return
		}
		if len(sn) > len(b) || strings.TrimSpace(sn) != sn {
			t.Fatalf("serial %q from % x", sn, b)
		}
	})
}

func FuzzParseHCTL(f *testing.F) {
	for _, s := range []string{"2:0:3:0", "10:1:27:3", "1:2:3", "a:b:c:d", "0:0:0:18446744073709551617"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseHCTL(s)
		if err != nil {
			return
		}
		b, err := ParseHCTL(a.String())
		if err != nil || a != b {
			t.Fatalf("%q -> %+v -> %+v %v", s, a, b, err)
		}
		if _, err := tape.ParseMapping(a.PPN()); err != nil && a.LUN <= 16383 && a.Target < 1<<24 {
			t.Fatalf("PPN %q of %q does not parse: %v", a.PPN(), s, err)
		}
	})
}

// Discover on this host's real /sys: whatever it finds has device nodes.
func TestDiscoverHostSysfs(t *testing.T) {
	found, err := Discover("/sys", "/dev")
	if err != nil {
		t.Fatalf("host sysfs: %v", err)
	}
	for _, f := range found {
		for _, node := range []string{f.Tape, f.Generic} {
			if node == "" {
				continue
			}
			if _, err := os.Stat(node); err != nil {
				t.Errorf("%s: %v", f.Addr, err)
			}
		}
	}
	t.Logf("%d tape devices on this host", len(found))
}

// T9: a Scanner adds devices that appear and removes those that go,
// leaving the virtual library's devices alone; a device in use stays
// until it is closed.
func TestScanner(t *testing.T) {
	f := buildHost(t)
	store, err := catalog.OpenBolt(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg, err := tape.NewRegistry(store, testNodeName, tape.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A device from another source.
	r := newRecorder(t)
	// The changer reports no drive elements (READ ELEMENT STATUS: an
	// empty report), which the scanner asks for after adding devices.
	r.sg = func(dir int32, cdb, out []byte) (uint8, []byte, []byte, uint16) {
		if cdb[0] == 0xB8 {
			return 0, make([]byte, 8), nil, 0
		}
		return 0, nil, nil, 0
	}
	if _, err := reg.Add(ctx, tape.Attachment{Kind: tape.KindBridge, Path: "vtl0.9"}); err != nil {
		t.Fatal(err)
	}
	s := NewScanner(reg, r, f.root, "/dev")
	added, removed, err := s.Scan(ctx)
	if err != nil || strings.Join(added, " ") != "2a.3 2a.4L1" || len(removed) != 0 {
		t.Fatalf("first scan: %v %v %v", added, removed, err)
	}
	added, removed, err = s.Scan(ctx)
	if err != nil || len(added)+len(removed) != 0 {
		t.Fatalf("second scan: %v %v %v", added, removed, err)
	}
	// A second drive appears.
	f.device("2:0:5:0", map[string][]byte{"type": []byte("1"), "vendor": []byte("TAPESTRY"), "model": []byte("VTL-TAPE"), "vpd_pg80": vpd80("XYZ1")})
	f.class("scsi_tape", "nst1", "2:0:5:0")
	added, _, err = s.Scan(ctx)
	if err != nil || strings.Join(added, " ") != "2a.5" {
		t.Fatalf("scan after hot add: %v %v", added, err)
	}
	if d, err := reg.Device(ctx, "st1"); err != nil || d.Serial != "XYZ1" || d.Status != tape.Qualified {
		t.Fatalf("new drive: %+v %v", d, err)
	}
	// It is opened, then unplugged: it stays while open.
	r.gstat = GmtOnline
	h, err := reg.OpenDrive(ctx, "s", "nrst1l", tape.ReadMode)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(f.root, "class/scsi_tape/nst1")); err != nil {
		t.Fatal(err)
	}
	_, removed, err = s.Scan(ctx)
	if !errors.Is(err, tape.ErrBusy) || len(removed) != 0 {
		t.Fatalf("scan with the drive open: %v %v", removed, err)
	}
	h.Close()
	_, removed, err = s.Scan(ctx)
	if err != nil || strings.Join(removed, " ") != "2a.5" {
		t.Fatalf("scan after close: %v %v", removed, err)
	}
	devs, _ := reg.Devices(ctx)
	if len(devs) != 3 {
		t.Fatalf("devices left: %+v", devs)
	}
}
