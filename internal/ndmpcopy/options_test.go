package ndmpcopy

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// C2: the endpoint forms, including the spec's IPv6-in-brackets rule, ports,
// host names, loopback and user:password@ prefixes.
func TestParseEndpointC2(t *testing.T) {
	cases := []struct {
		in   string
		want Endpoint
	}{
		{"192.0.2.1:/vs1/vol1", Endpoint{Host: "192.0.2.1", Port: 10000, Path: "/vs1/vol1"}},
		{"192.0.2.1:10001:/vs1/vol1", Endpoint{Host: "192.0.2.1", Port: 10001, Path: "/vs1/vol1"}},
		{"[2001:db8::1]:10001:/vs1/vol1", Endpoint{Host: "2001:db8::1", Port: 10001, Path: "/vs1/vol1"}},
		{"[2001:0db8:1:1:209:6bff:feae:6d67]:/src_svm/src_vol", Endpoint{Host: "2001:0db8:1:1:209:6bff:feae:6d67", Port: 10000, Path: "/src_svm/src_vol"}},
		{"[::1]:/vs1/vol1/dir/file.txt", Endpoint{Host: "::1", Port: 10000, Path: "/vs1/vol1/dir/file.txt"}},
		{"[fe80::1%eth0]:/vs1/vol1", Endpoint{Host: "fe80::1%eth0", Port: 10000, Path: "/vs1/vol1"}},
		{"127.0.0.1:/vs1/vol1/", Endpoint{Host: "127.0.0.1", Port: 10000, Path: "/vs1/vol1"}},
		{"localhost:10002:/vs1/vol1/q1", Endpoint{Host: "localhost", Port: 10002, Path: "/vs1/vol1/q1"}},
		{"filer-1.example.com:/vs1/vol1", Endpoint{Host: "filer-1.example.com", Port: 10000, Path: "/vs1/vol1"}},
		{"admin:pw@192.0.2.1:/vs1/vol1", Endpoint{User: "admin", Password: "pw", HasCreds: true, Host: "192.0.2.1", Port: 10000, Path: "/vs1/vol1"}},
		{"admin:p@ss:w@[2001:db8::1]:10001:/vs1/vol1", Endpoint{User: "admin", Password: "p@ss:w", HasCreds: true, Host: "2001:db8::1", Port: 10001, Path: "/vs1/vol1"}},
		{"admin@host:/vs1/vol1", Endpoint{User: "admin", HasCreds: true, Host: "host", Port: 10000, Path: "/vs1/vol1"}},
		{"host:/vs1/vol1/a@b", Endpoint{Host: "host", Port: 10000, Path: "/vs1/vol1/a@b"}},
		{"u:x@host:/vs1/vol1/a@b:c", Endpoint{User: "u", Password: "x", HasCreds: true, Host: "host", Port: 10000, Path: "/vs1/vol1/a@b:c"}},
	}
	for _, c := range cases {
		got, err := ParseEndpoint(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("%q: got %+v, want %+v", c.in, got, c.want)
		}
		// String and Address give back a parsable form.
		again, err := ParseEndpoint(got.String())
		if err != nil || again.Host != got.Host || again.Port != got.Port || again.Path != got.Path {
			t.Errorf("%q: String %q parses to %+v, %v", c.in, got.String(), again, err)
		}
	}
}

func TestParseEndpointErrorsC2(t *testing.T) {
	cases := map[string]string{
		"":                           "empty endpoint",
		"192.0.2.1":                  "want host[:port]:/svm/volume",
		"192.0.2.1:vs1/vol1":         "want host[:port]:/svm/volume",
		"2001:db8::1:/vs1/vol1":      "enclose it in square brackets",
		"::1:/vs1/vol1":              "enclose it in square brackets",
		"[2001:db8::1:/vs1/vol1":     "missing ']'",
		"[192.0.2.1]:/vs1/vol1":      "is not an IPv6 address",
		"[2001:db8::1]/vs1/vol1":     "want ':' and a path",
		"192.0.2.1:0:/vs1/vol1":      "port \"0\"",
		"192.0.2.1:70000:/vs1/vol1":  "port \"70000\"",
		"192.0.2.1:abc:/vs1/vol1":    "port \"abc\"",
		"192.0.2.1:/vs1":             "names no volume",
		"192.0.2.1:/":                "names no volume",
		"192.0.2.1:/vs1//vol1":       "empty component",
		"192.0.2.1:/vs1/vol1/../etc": "\"..\" component",
		"bad_host!:/vs1/vol1":        "not a valid host name",
		":/vs1/vol1":                 "missing host",
		":pw@host:/vs1/vol1":         "empty user name",
		"-host:/vs1/vol1":            "not a valid host name",
	}
	for in, want := range cases {
		_, err := ParseEndpoint(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to say %q", in, err, want)
		}
	}
	// The password is not repeated in errors.
	_, err := ParseEndpoint("admin:topsecret@bad!host:/vs1/vol1")
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error %v", err)
	}
}

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"192.0.2.1:/vs1/vol1", "192.0.2.1:10001:/vs1/vol1", "[2001:db8::1]:10001:/vs1/vol1",
		"a:b@c:/d/e", "[::1]:/x/y/z", "host:1:/a/b/", "@@:/", "[", "]:/a/b", "h:99999:/a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := ParseEndpoint(s)
		if err != nil {
			return
		}
		if ep.Port == 0 || !strings.HasPrefix(ep.Path, "/") || ep.Host == "" {
			t.Fatalf("%q: accepted %+v", s, ep)
		}
		again, err := ParseEndpoint(ep.String())
		if err != nil || again.Host != ep.Host || again.Port != ep.Port || again.Path != ep.Path {
			t.Fatalf("%q: String %q parses to %+v, %v", s, ep.String(), again, err)
		}
	})
}

// C2: every option of the spec's table.
func TestParseArgsC2(t *testing.T) {
	o, err := ParseArgs([]string{"-sa", "admin:pw1", "-da", "backup:pw:2", "-st", "text", "-dt", "md5", "-l", "3", "-d", "-f",
		"-exclude", "*.pst", "-exclude", "a\\,b,tmp*", "192.0.2.129:/src_svm/src_vol", "[2001:db8::2]:/dst_svm/dst_vol",
		"-mcs", "inet", "-mcd", "inet6", "-md", "inet6"}, func(k string) string {
		if k == "TAPESTRY_DATA_DIR" {
			return "/srv/tapestry"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &Options{
		Source:     Endpoint{User: "admin", Password: "pw1", HasCreds: true, Host: "192.0.2.129", Port: 10000, Path: "/src_svm/src_vol"},
		Dest:       Endpoint{User: "backup", Password: "pw:2", HasCreds: true, Host: "2001:db8::2", Port: 10000, Path: "/dst_svm/dst_vol"},
		SourceAuth: ndmp.AuthText, DestAuth: ndmp.AuthMD5, Level: 3, Debug: true, DataDir: "/srv/tapestry", Force: true,
		Exclude: "*.pst,a\\,b,tmp*", MCS: FamilyInet, MCD: FamilyInet6, MD: FamilyInet6, ConnectTimeout: 30 * time.Second,
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got  %+v\nwant %+v", o, want)
	}
	if got := SplitExclude(o.Exclude); !reflect.DeepEqual(got, []string{"*.pst", "a,b", "tmp*"}) {
		t.Errorf("SplitExclude: %q", got)
	}
	// Defaults: -dt md5, level 0, ./tapestry-data; -l9 in one word; -p
	// without passwords.
	o, err = ParseArgs([]string{"-p", "-sa", "admin", "-da", "admin:", "-st", "md5", "-l9", "h1:/a/b", "h2:/c/d"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.DestAuth != ndmp.AuthMD5 || o.Level != 9 || o.DataDir != "./tapestry-data" || !o.Prompt || o.Source.Password != "" {
		t.Errorf("defaults: %+v", o)
	}
	if o, err := ParseArgs([]string{"-h"}, nil); err != nil || !o.Help {
		t.Errorf("-h: %+v %v", o, err)
	}
}

func TestParseArgsErrorsC2(t *testing.T) {
	base := []string{"h1:/a/b", "h2:/c/d"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-sa", "a:b", "-da", "a:b", "-st", "md5"}, "want a source and a destination, got 0"},
		{append([]string{"-da", "a:b", "-st", "md5"}, base...), "-sa is mandatory"},
		{append([]string{"-sa", "a:b", "-st", "md5"}, base...), "-da is mandatory"},
		{append([]string{"-sa", "a:b", "-da", "a:b"}, base...), "-st is mandatory"},
		{append([]string{"-sa", "a", "-da", "a:b", "-st", "md5"}, base...), "no password for source user a: give -sa a:<password> or use -p"},
		{append([]string{"-sa", ":pw", "-da", "a:b", "-st", "md5"}, base...), "the user name is empty"},
		{append([]string{"-sa", "a:b", "-da", "a:b", "-st", "sha"}, base...), "md5 or text"},
		{append([]string{"-sa", "a:b", "-da", "a:b", "-st", "md5", "-l", "10"}, base...), "from 0 to 9"},
		{append([]string{"-sa", "a:b", "-da", "a:b", "-st", "md5", "-l", "-1"}, base...), "from 0 to 9"},
		{append([]string{"-sa", "a:b", "-da", "a:b", "-st", "md5", "-l", "x"}, base...), "from 0 to 9"},
		{append([]string{"-sa", "a:b", "-da", "a:b", "-st", "md5", "-mcs", "ipv6"}, base...), "want inet or inet6"},
		{append([]string{"-sa", "a:b", "-da", "a:b", "-st", "md5", "-md", "inet4"}, base...), "want inet or inet6"},
		{append([]string{"-sa", "a:b", "-da", "a:b", "-st", "md5", "-exclude", "a,,b"}, base...), "empty name"},
		{append([]string{"-sa", "a:b", "-da", "a:b", "-st", "md5", "-exclude", "a*b"}, base...), "first or the last"},
		{append([]string{"-sa", "a:b", "-da", "a:b", "-st", "md5", "-exclude", strings.Repeat("x,", 32) + "y"}, base...), "33 names"},
		{append([]string{"-sa", "a:b", "-da", "a:b", "-st", "md5", "-x"}, base...), "unknown option -x"},
		{[]string{"-sa", "a:b", "-da", "a:b", "-st"}, "option -st needs a value"},
		{[]string{"-sa", "a:b", "-da", "a:b", "-st", "md5", "u:p@h1:/a/b", "h2:/c/d"}, "source credentials given twice"},
		{[]string{"-sa", "a:b", "-da", "a:b", "-st", "md5", "h1:/a", "h2:/c/d"}, "source: endpoint"},
		{[]string{"-sa", "a:b", "-da", "a:b", "-st", "md5", "h1:/a/b", "2001:db8::1:/c/d"}, "destination: endpoint"},
		{[]string{"-sa", "a:b", "-da", "a:b", "-st", "md5", "h1:/a/b", "h2:/c/d", "h3:/e/f"}, "got 3 argument(s)"},
	}
	for _, c := range cases {
		_, err := ParseArgs(c.args, nil)
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want a usage error saying %q", c.args, err, c.want)
		}
	}
}

func FuzzParseArgs(f *testing.F) {
	f.Add("-sa\x00a:b\x00-da\x00a:b\x00-st\x00md5\x00h1:/a/b\x00h2:/c/d")
	f.Add("-l\x009\x00-exclude\x00*.x,y\\,z\x00-mcs\x00inet6\x00[::1]:/a/b\x00u:p@h:/c/d")
	f.Add("--\x00-h")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseArgs(strings.Split(s, "\x00"), nil)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("not a usage error: %v", err)
			}
			return
		}
		if o.Help {
			return
		}
		if o.Level < 0 || o.Level > MaxLevel || o.Source.Path == "" || o.Dest.Path == "" || o.Source.User == "" || o.Dest.User == "" {
			t.Fatalf("accepted %+v", o)
		}
	})
}

// C2: the data connection family rules of the spec.
func TestDataFamiliesC2(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	cases := []struct {
		md       Family
		src, dst netip.Addr
		want     []Family
	}{
		{FamilyAny, v4, v4, []Family{FamilyInet6, FamilyInet}},
		{FamilyAny, v4, v6, []Family{FamilyInet6}},
		{FamilyAny, v6, v4, []Family{FamilyInet6}},
		{FamilyAny, v6, v6, []Family{FamilyInet6}},
		{FamilyInet, v6, v6, []Family{FamilyInet}},
		{FamilyInet6, v4, v4, []Family{FamilyInet6}},
		{FamilyAny, netip.MustParseAddr("::ffff:192.0.2.1"), v4, []Family{FamilyInet6, FamilyInet}},
	}
	for _, c := range cases {
		if got := DataFamilies(c.md, c.src, c.dst); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v %v %v: %v, want %v", c.md, c.src, c.dst, got, c.want)
		}
	}
}

// C2: the addressing of the listen reply: an unspecified address is replaced
// by the address the DMA reached the server at.
func TestFixAddr(t *testing.T) {
	a, _ := ndmp.NewTCPAddrs(netip.MustParseAddrPort("0.0.0.0:4000"), netip.MustParseAddrPort("192.0.2.7:4001"))
	fixAddr(&a, netip.MustParseAddr("192.0.2.9"))
	got := a.AddrPorts()
	if got[0].String() != "192.0.2.9:4000" || got[1].String() != "192.0.2.7:4001" {
		t.Errorf("IPv4: %v", got)
	}
	a, _ = ndmp.NewTCPAddrs(netip.MustParseAddrPort("[::]:4000"))
	fixAddr(&a, netip.MustParseAddr("2001:db8::5"))
	if got := a.AddrPorts(); got[0].String() != "[2001:db8::5]:4000" {
		t.Errorf("IPv6: %v", got)
	}
}

// TestParseSMTape: -smtape with its snapshot, and for an update the
// earlier copy's DUMP_DATE and set id; what does not go together is a
// usage error; the environments name the smtape backup type.
func TestParseSMTape(t *testing.T) {
	base := []string{"-st", "text", "-sa", "u:p", "-da", "u:p", "h1:/vs1/vol1", "h2:/vs2/dp1"}
	o, err := ParseArgs(append([]string{"-smtape", "-snapshot", "s1", "-base-date", "1800000000000000000", "-set-id", "00112233445566778899aabbccddeeff"}, base...), nil)
	if err != nil {
		t.Fatal(err)
	}
	env := ndmp.Env(BackupEnv(o))
	if env["TYPE"] != "smtape" || env["SMTAPE_SNAPSHOT_NAME"] != "s1" || env["BASE_DATE"] != "1800000000000000000" || env["SMTAPE_DELETE_SNAPSHOT"] != "N" {
		t.Fatalf("backup env %v", env)
	}
	if RecoverNlist(o) != nil || ndmp.Env(RecoverEnv(o))["FILESYSTEM"] != "/vs2/dp1" || butype(o) != "smtape" {
		t.Fatalf("recover %v %v", RecoverEnv(o), RecoverNlist(o))
	}
	for _, bad := range [][]string{
		{"-smtape"},
		{"-smtape", "-snapshot", "s1", "-l", "1"},
		{"-smtape", "-snapshot", "s1", "-base-date", "5"},
		{"-smtape", "-snapshot", "s1", "-base-date", "x", "-set-id", "ab"},
		{"-snapshot", "s1"},
		{"-smtape", "-snapshot", "s1", "-exclude", "a"},
	} {
		var ue *UsageError
		if _, err := ParseArgs(append(bad, base...), nil); !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}
