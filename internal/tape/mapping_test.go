package tape

import (
	"errors"
	"strings"
	"testing"
)

// T3: physical path names and serial numbers.
func TestParseMapping(t *testing.T) {
	good := []struct {
		in, canon string
		want      Mapping
	}{
		{"8.6", "8.6", Mapping{Kind: ByPath, Adapter: "8", DeviceID: 6}},
		{"5c.4", "5c.4", Mapping{Kind: ByPath, Adapter: "5c", DeviceID: 4}},
		{"0b.4L1", "0b.4L1", Mapping{Kind: ByPath, Adapter: "0b", DeviceID: 4, LUN: 1}},
		{"0b.4L0", "0b.4", Mapping{Kind: ByPath, Adapter: "0b", DeviceID: 4}},
		{"MY_SWITCH:5.3L2", "MY_SWITCH:5.3L2", Mapping{Kind: ByPath, Switch: "MY_SWITCH", Port: "5", DeviceID: 3, LUN: 2}},
		{"fc202_6:2.126L1", "fc202_6:2.126L1", Mapping{Kind: ByPath, Switch: "fc202_6", Port: "2", DeviceID: 126, LUN: 1}},
		{"SN[123456]L4", "SN[123456]L4", Mapping{Kind: BySerial, Serial: "123456", LUN: 4}},
		{"SN[65432]", "SN[65432]", Mapping{Kind: BySerial, Serial: "65432"}},
		{"sn[abc123x]l4", "SN[ABC123X]L4", Mapping{Kind: BySerial, Serial: "ABC123X", LUN: 4}},
		{"SN[abc]L[7]", "SN[ABC]L7", Mapping{Kind: BySerial, Serial: "ABC", LUN: 7}},
		{"SN[" + strings.Repeat("x", 32) + "]", "SN[" + strings.Repeat("X", 32) + "]", Mapping{Kind: BySerial, Serial: strings.Repeat("X", 32)}},
	}
	for _, g := range good {
		m, err := ParseMapping(g.in)
		if err != nil {
			t.Errorf("ParseMapping(%q): %v", g.in, err)
			continue
		}
		if m != g.want {
			t.Errorf("ParseMapping(%q) = %+v, want %+v", g.in, m, g.want)
		}
		if m.String() != g.canon {
			t.Errorf("ParseMapping(%q).String() = %q, want %q", g.in, m.String(), g.canon)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "expected host_adapter"},
		{"8", "expected host_adapter"},
		{".6", "host adapter: empty name"},
		{"8.", "device id: missing number"},
		{"8.x", "device id"},
		{"8.6L", "LUN: missing number"},
		{"8.6Q1", "unexpected"},
		{"a b.6", "not allowed"},
		{":5.3", "switch: empty name"},
		{"SW:.3", "port: empty name"},
		{"SW:5.3L99999", "larger than"},
		{"SN[]", "empty serial number"},
		{"SN[123", "missing ']'"},
		{"SN[12-3]", "not alphanumeric"},
		{"SN[" + strings.Repeat("x", 33) + "]", "longer than 32"},
		{"SN[1]X", "unexpected"},
	}
	for _, b := range bad {
		_, err := ParseMapping(b.in)
		if err == nil {
			t.Errorf("ParseMapping(%q) succeeded", b.in)
			continue
		}
		if !errors.Is(err, ErrBadName) || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("ParseMapping(%q) = %v, want ErrBadName mentioning %q", b.in, err, b.msg)
		}
	}
}

func FuzzParseMapping(f *testing.F) {
	for _, s := range []string{"8.6", "0b.4L1", "MY_SWITCH:5.3L2", "SN[123456]L4", "sn[abc]l[2]", "SN[", "a:b:c.1", "8.99999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMapping(s)
		if err != nil {
			return
		}
		c := m.String()
		m2, err := ParseMapping(c)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", c, s, err)
		}
		if m2 != m || m2.String() != c {
			t.Fatalf("%q: %+v reparsed as %+v", s, m, m2)
		}
	})
}
