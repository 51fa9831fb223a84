package admin

import (
	"path/filepath"
	"strings"
	"testing"
)

// T9: library names and the sizes of storage tape vtl create are checked
// before the daemon is asked.
func TestCheckVTLCreate(t *testing.T) {
	ok := VTLCreate{Name: "lib-2_a", Drives: 2, Slots: 6, IESlots: 1, Cartridges: 6}
	if err := CheckVTLCreate(ok); err != nil {
		t.Fatalf("%+v: %v", ok, err)
	}
	bad := []struct {
		mod  func(*VTLCreate)
		want string
	}{
		{func(c *VTLCreate) { c.Name = "" }, "missing required parameter -name"},
		{func(c *VTLCreate) { c.Name = "2lib" }, "invalid library name"},
		{func(c *VTLCreate) { c.Name = "a/b" }, "invalid library name"},
		{func(c *VTLCreate) { c.Name = "a.b" }, "invalid library name"},
		{func(c *VTLCreate) { c.Name = strings.Repeat("x", MaxVTLNameLen+1) }, "invalid library name"},
		{func(c *VTLCreate) { c.Drives = 0 }, "-drives 0 is out of range (1 to 64)"},
		{func(c *VTLCreate) { c.Slots = 4097 }, "-slots 4097 is out of range (1 to 4096)"},
		{func(c *VTLCreate) { c.IESlots = -1 }, "-ie-slots -1 is out of range (0 to 16)"},
		{func(c *VTLCreate) { c.Cartridges = 7 }, "-cartridges 7 is out of range (0 to the 6 storage slots)"},
		{func(c *VTLCreate) { c.Capacity = -1 }, "-capacity -1 is negative"},
	}
	for _, b := range bad {
		c := ok
		b.mod(&c)
		if err := CheckVTLCreate(c); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: %v, want %q", c, err, b.want)
		}
	}
}

// FuzzCheckVTLName: a name that passes is one plain path element of at most
// MaxVTLNameLen bytes, so DIR/vtls/<name> never leaves DIR/vtls.
func FuzzCheckVTLName(f *testing.F) {
	for _, s := range []string{"lib2", "", "..", ".", "a/b", "a\x00", "Lib-1_x", "é", strings.Repeat("a", 25)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckVTLName(name) != nil {
			return
		}
		if len(name) == 0 || len(name) > MaxVTLNameLen || filepath.Base(name) != name || strings.ContainsAny(name, "./\\\x00") {
			t.Fatalf("accepted %q", name)
		}
	})
}
