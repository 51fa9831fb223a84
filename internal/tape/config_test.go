package tape

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// T4: the spec's HP LTO5 example file parses into every field.
func TestParseConfigSpecExample(t *testing.T) {
	data, err := os.ReadFile("testdata/hp-lto5.tcf")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	if c.VendorID != "HP" || c.ProductID != "Ultrium 5-SCSI" || c.IDMatchSize != 9 {
		t.Fatalf("ids = %q %q %d", c.VendorID, c.ProductID, c.IDMatchSize)
	}
	if c.Vendor() != "Hewlett-Packard" || c.Product() != "LTO-5" {
		t.Fatalf("pretty = %q %q", c.Vendor(), c.Product())
	}
	want := [4]Density{
		{"LTO-3(ro)/4 4/800GB", 0x00, 0x00},
		{"LTO-3(ro)/4 8/1600GB cmp", 0x00, 0x01},
		{"LTO-5 1600GB", 0x58, 0x00},
		{"LTO-5 3200GB cmp", 0x58, 0x01},
	}
	if c.Densities != want {
		t.Fatalf("densities = %+v", c.Densities)
	}
	if c.Density(Highest) != want[3] || c.Density(Low) != want[0] {
		t.Fatalf("Density(a) = %+v", c.Density(Highest))
	}
	if !c.Autoload {
		t.Fatal("autoload not set")
	}
	if c.Timeouts[0x01] != 15*time.Minute || c.Timeouts[0x08] != 30*time.Second || c.Timeouts[0x12] != 500*time.Millisecond {
		t.Fatalf("timeouts = %v", c.Timeouts)
	}
}

// T4: qualification by vendor and the first id_match_size bytes of the
// product.
func TestConfigMatches(t *testing.T) {
	c := &Config{VendorID: "HP", ProductID: "Ultrium 5-SCSI", IDMatchSize: 9}
	cases := []struct {
		vendor, product string
		want            bool
	}{
		{"HP      ", "Ultrium 5-SCSI  ", true},
		{"HP", "Ultrium 5-SCSI", true},
		{"HP", "Ultrium 5-FC", true}, // first 9 bytes "Ultrium 5"
		{"HP", "Ultrium 4-SCSI", false},
		{"IBM", "Ultrium 5-SCSI", false},
		{"HP", "Ultrium", false},
		{"hp", "Ultrium 5-SCSI", false},
	}
	for _, k := range cases {
		if got := c.Matches(k.vendor, k.product); got != k.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", k.vendor, k.product, got, k.want)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	base := "vendor_id=\"HP\"\nproduct_id=\"Ultrium 5-SCSI\"\n"
	cases := []struct{ text, msg string }{
		{"product_id=\"X\"\n", "vendor_id is missing"},
		{"vendor_id=\"X\"\n", "product_id is missing"},
		{base + "id_match_size=17\n", "larger than 16"},
		{"vendor_id=\"HP\"\nproduct_id=\"ABC\"\nid_match_size=4\n", "longer than product_id"},
		{base + "id_match_size=0\n", "at least 1"},
		{"vendor_id=\"TOOLONGVENDOR\"\nproduct_id=\"X\"\n", "longer than 8 bytes"},
		{"vendor_id=\"HP\"\nproduct_id=\"12345678901234567\"\n", "longer than 16 bytes"},
		{base + "vendor_pretty=\"Hewlett-Packard\"\n", "must be given together"},
		{base + "l_description=\"1234567890123456789012345\"\n", "longer than 24 bytes"},
		{base + "l_density=58\n", "not a hexadecimal code"},
		{base + "l_density=0x158\n", "not a hexadecimal byte"},
		{base + "m_algorithm=0xzz\n", "not a hexadecimal byte"},
		{base + "autoload=maybe\n", "not yes or no"},
		{base + "cmd_timeout_0x01=15\n", "needs a unit"},
		{base + "cmd_timeout_0x01=0s\n", "must be positive"},
		{base + "cmd_timeout_0xZZ=1s\n", "operation code"},
		{base + "cmd_timeout_0x01=1s\ncmd_timeout_0X01=2s\n", "given twice"},
		{base + "vendor_id=\"IBM\"\n", "given twice"},
		{base + "x_description=\"a\"\n", "unknown field"},
		{base + "colour=\"blue\"\n", "unknown field"},
		{base + "just some words\n", "expected name=value"},
		{base + "vendor_pretty=\"Hewlett\n", "unbalanced quotes"},
		{base + "product_pretty=\"a\"b\"\nvendor_pretty=\"x\"\n", "quote inside"},
		{base + "l_description=\"\"\n", "empty value"},
		{base + "l_description=\"tab\there\"\n", "not printable"},
		{strings.Repeat("#", 70<<10), "larger than"},
	}
	for _, k := range cases {
		_, err := ParseConfig([]byte(k.text))
		if err == nil {
			t.Errorf("ParseConfig(%q) succeeded", k.text)
			continue
		}
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), k.msg) {
			t.Errorf("ParseConfig(%q) = %v, want ErrConfig mentioning %q", k.text, err, k.msg)
		}
	}
	// Line numbers point at the bad line.
	_, err := ParseConfig([]byte("# comment\n\nvendor_id=\"HP\"\nbogus=1\n"))
	if err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("error without line number: %v", err)
	}
}

// T4: the built-in table qualifies the virtual library's drive; files
// from a directory qualify others dynamically; anything else is
// nonqualified.
func TestQualTable(t *testing.T) {
	q := NewQualTable()
	c, st := q.Qualify("TAPESTRY", "VTL-TAPE        ")
	if st != Qualified || c == nil || c.Vendor() != "Tapestry" {
		t.Fatalf("vtl drive: %v %+v", st, c)
	}
	if _, st := q.Qualify("HP", "Ultrium 5-SCSI"); st != Nonqualified || st.Supported() {
		t.Fatalf("HP before loading: %v", st)
	}
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/hp-lto5.tcf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "HP_LTO5.TCF"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not a config"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := q.LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	c, st = q.Qualify("HP", "Ultrium 5-SCSI")
	if st != DynamicallyQualified || !st.Supported() || c.Source != filepath.Join(dir, "HP_LTO5.TCF") {
		t.Fatalf("HP after loading: %v %+v", st, c)
	}
	if n := len(q.Configs()); n != 2 {
		t.Fatalf("Configs() has %d entries", n)
	}
	// Loading the same file again replaces, not duplicates.
	if err := q.LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	if n := len(q.Configs()); n != 2 {
		t.Fatalf("after reload Configs() has %d entries", n)
	}
	// A bad file is named in the error.
	if err := os.WriteFile(filepath.Join(dir, "BAD.tcf"), []byte("vendor_id=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := q.LoadDir(dir); err == nil || !strings.Contains(err.Error(), "BAD.tcf") || !errors.Is(err, ErrConfig) {
		t.Fatalf("bad file: %v", err)
	}
	if err := q.LoadDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing directory accepted")
	}
}

// The shipped configuration of the virtual drive parses and matches what
// package vtl answers to INQUIRY.
func TestVTLConfigFile(t *testing.T) {
	data, err := os.ReadFile("testdata/tapestry-vtl.tcf")
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != VTLConfigText {
		t.Fatal("testdata/tapestry-vtl.tcf differs from VTLConfigText")
	}
	c, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Matches(VTLVendor, VTLDriveProduct) {
		t.Fatal("vtl config does not match the vtl drive")
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, name := range []string{"testdata/hp-lto5.tcf", "testdata/tapestry-vtl.tcf"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("vendor_id=\"A\"\nproduct_id=\"B\"\ncmd_timeout_0x1=1ms\n"))
	f.Add([]byte("=\n\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error not wrapping ErrConfig: %v", err)
			}
			return
		}
		if c.VendorID == "" || c.ProductID == "" || c.IDMatchSize < 1 || c.IDMatchSize > len(c.ProductID) {
			t.Fatalf("accepted inconsistent config %+v", c)
		}
		if !c.Matches(c.VendorID, c.ProductID) {
			t.Fatalf("config does not match its own ids: %+v", c)
		}
	})
}
