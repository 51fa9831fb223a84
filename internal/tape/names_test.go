package tape

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// T1: device names.
func TestParseDeviceName(t *testing.T) {
	good := []struct {
		in   string
		want DeviceName
	}{
		{"nrst0a", DeviceName{NoRewind, "st0", Highest}},
		{"rst0l", DeviceName{RewindOnClose, "st0", Low}},
		{"urst12h", DeviceName{UnloadReload, "st12", High}},
		{"rst00m", DeviceName{RewindOnClose, "st00", Medium}},
	}
	for _, g := range good {
		got, err := ParseDeviceName(g.in)
		if err != nil {
			t.Errorf("ParseDeviceName(%q): %v", g.in, err)
			continue
		}
		if got != g.want {
			t.Errorf("ParseDeviceName(%q) = %+v, want %+v", g.in, got, g.want)
		}
		if got.String() != g.in {
			t.Errorf("String() = %q, want %q", got.String(), g.in)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "rewind type"},
		{"st0a", "rewind type"},
		{"xrst0a", "rewind type"},
		{"nrmt0a", `expected "st"`},
		{"nrst0", "compression type"},
		{"nrst0x", "compression type"},
		{"nrsta", "no number"},
		{"nrst0ba", "not a decimal number"},
		{"nrst1234567a", "longer than"},
		{"rst-1a", "not a decimal number"},
		{"nr", `expected "st"`},
		{"nrst", "compression type"},
	}
	for _, b := range bad {
		_, err := ParseDeviceName(b.in)
		if err == nil {
			t.Errorf("ParseDeviceName(%q) succeeded", b.in)
			continue
		}
		if !errors.Is(err, ErrBadName) || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("ParseDeviceName(%q) = %v, want ErrBadName mentioning %q", b.in, err, b.msg)
		}
	}
}

// T1: st0 and st00 are different logical names.
func TestAliasNumbersKeepDigits(t *testing.T) {
	a, _ := ParseDeviceName("nrst0a")
	b, _ := ParseDeviceName("nrst00a")
	if a.Alias == b.Alias {
		t.Fatalf("st0 and st00 parsed to the same alias %q", a.Alias)
	}
	k, n, err := ParseAlias("mc3")
	if err != nil || k != KindChanger || n != 3 {
		t.Fatalf("ParseAlias(mc3) = %v %d %v", k, n, err)
	}
	for _, s := range []string{"mc", "xx1", "st1a", "", "mc01234567"} {
		if _, _, err := ParseAlias(s); err == nil {
			t.Errorf("ParseAlias(%q) succeeded", s)
		}
	}
}

// T1: the twelve device names of a drive, in the spec's order.
func TestDeviceNames(t *testing.T) {
	var got []string
	for _, n := range DeviceNames("st0") {
		got = append(got, n.String())
	}
	want := "rst0l nrst0l urst0l rst0m nrst0m urst0m rst0h nrst0h urst0h rst0a nrst0a urst0a"
	if strings.Join(got, " ") != want {
		t.Fatalf("DeviceNames = %v, want %s", got, want)
	}
}

// T1: the listing of the spec's HP Ultrium 2-SCSI example, byte for byte.
func TestDeviceListingMatchesSpec(t *testing.T) {
	want, err := os.ReadFile("testdata/device-names-hp.txt")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]byte(`vendor_id="HP"
product_id="Ultrium 2-SCSI"
id_match_size=9
l_description="HP (200GB)"
m_description="HP (200GB)"
h_description="HP (200GB)"
a_description="HP (400GB w/comp)"
a_algorithm=0x01
`))
	if err != nil {
		t.Fatal(err)
	}
	d := Device{Kind: KindDrive, Alias: "st0", Vendor: "HP", Product: "Ultrium 2-SCSI", Paths: []string{"fc202_6:2.126L1"}, Config: cfg}
	got := DeviceListing(d)
	if got != string(want) {
		t.Fatalf("listing:\n%s\nwant:\n%s", got, want)
	}
	// Pretty names replace the INQUIRY names in the header.
	cfg.VendorPretty, cfg.ProductPretty = "Hewlett-Packard", "LTO-2"
	first := strings.SplitN(DeviceListing(d), "\n", 2)[0]
	if first != "          Tape drive (fc202_6:2.126L1)  Hewlett-Packard LTO-2" {
		t.Fatalf("header with pretty names = %q", first)
	}
	d.Alias = ""
	if l := DeviceListing(d); strings.Contains(l, "rst") || !strings.Contains(l, "no alias") {
		t.Fatalf("listing of a drive without alias = %q", l)
	}
}

func FuzzParseDeviceName(f *testing.F) {
	for _, s := range []string{"nrst0a", "rst0l", "urst12h", "nrst", "st0", "rst00m", "nrst0\x00a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseDeviceName(s)
		if err != nil {
			return
		}
		if n.String() != s {
			t.Fatalf("round trip %q -> %q", s, n.String())
		}
		again, err := ParseDeviceName(n.String())
		if err != nil || again != n {
			t.Fatalf("reparse %q: %+v %v", s, again, err)
		}
	})
}
