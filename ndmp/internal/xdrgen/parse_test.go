package main

import (
	"os"
	"strings"
	"testing"
)

func TestParseNDMPX(t *testing.T) {
	src, err := os.ReadFile("../../ndmp.x")
	if err != nil {
		t.Fatal(err)
	}
	s, err := parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.enums["ndmp_error"].values) != 39 {
		t.Errorf("ndmp_error has %d values, want 39 (31 of the draft, 8 of class 0x2050)", len(s.enums["ndmp_error"].values))
	}
	u := s.unions["ndmp_file_name"]
	if u == nil || u.def == nil || u.def.name != "other_name" || len(u.cases) != 2 {
		t.Fatalf("ndmp_file_name union parsed as %+v", u)
	}
	if d := s.structs["ndmp_auth_md5"].fields[1]; d.typ != "opaque" || d.array != '[' || d.size != "16" {
		t.Errorf("auth_digest parsed as %+v", d)
	}
	if v, err := s.value("NDMP_ADDR_TCP_IPV6"); err != nil || v != 0x20510004 {
		t.Errorf("NDMP_ADDR_TCP_IPV6 = %#x, %v", v, err)
	}
	if v, err := s.value("NDMP_MESSAGE_POST"); err != nil || v != 0 {
		t.Errorf("NDMP_MESSAGE_POST = %d, %v", v, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, src := range []string{
		"struct a { u_long x; ",
		"enum e { A 1 };",
		"union u switch (int d) { u_long x; };",
		"/* unterminated",
		"struct a { u_long x<; };",
		"bogus;",
		"struct a { u_long x; } $",
	} {
		if _, err := parse(src); err == nil {
			t.Errorf("parse(%q) succeeded", src)
		}
	}
	s, err := parse("const A = B; const B = A;")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.value("A"); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("constant loop: %v", err)
	}
}

func TestCamel(t *testing.T) {
	for in, want := range map[string]string{
		"ndmp_tcp_ipv6_addr": "NDMPTCPIPv6Addr",
		"os_type":            "OSType",
		"hostid":             "HostID",
		"auth_digest":        "AuthDigest",
		"NDMP_MTIO_FSF":      "NDMPMTIOFSF",
	} {
		if got := camel(in); got != want {
			t.Errorf("camel(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParse feeds arbitrary text to the XDR parser: it must return, with
// or without an error, and never panic.
func FuzzParse(f *testing.F) {
	src, err := os.ReadFile("../../ndmp.x")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(src))
	f.Add("union u switch (enum t d) { case A: case B: void; default: string s<>; };")
	f.Add("typedef opaque o[4]; const C = 0x10; enum e { X = C };")
	f.Fuzz(func(t *testing.T, src string) {
		s, err := parse(src)
		if err != nil {
			return
		}
		for name := range s.consts {
			_, _ = s.value(name)
		}
	})
}
