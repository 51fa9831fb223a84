//go:build linux

package linuxst

import (
	"testing"
)

// Issue 15 item 4: READ ELEMENT STATUS reports with device identifiers
// as libraries send them: a vendor-specific identifier holding the serial
// number (as the virtual library does), and a T10 vendor identification
// (vendor, product, serial number).
func TestParseElementStatus(t *testing.T) {
	desc := func(addr byte, full bool, id []byte, idType byte) []byte {
		d := make([]byte, 16+len(id))
		d[1] = addr
		if full {
			d[2] = 1
			d[9] = 0x80
			d[10], d[11] = 0x04, 0x02 // from slot 0x402
		}
		d[12], d[13], d[15] = 2, idType, byte(len(id))
		copy(d[16:], id)
		return d
	}
	t10 := []byte("HP      Ultrium 5-SCSI  HU1951SIM0")
	vs := []byte("1013SIM001                      ")
	var body []byte
	for _, d := range [][]byte{desc(1, true, t10, 1), desc(2, false, vs, 0)} {
		page := []byte{4, 0, 0, byte(len(d)), 0, 0, 0, byte(len(d))}
		body = append(body, append(page, d...)...)
	}
	rep := append([]byte{0, 1, 0, 2, 0, 0, 0, byte(len(body))}, body...)
	es, err := parseElementStatus(rep)
	if err != nil || len(es) != 2 {
		t.Fatalf("%v %+v", err, es)
	}
	if e := es[0]; e.Addr != 1 || !e.Full || !e.SourceValid || e.Source != 0x402 || e.Identifier != "HU1951SIM0" {
		t.Fatalf("element 1: %+v", e)
	}
	if e := es[1]; e.Addr != 2 || e.Full || e.Identifier != "1013SIM001" {
		t.Fatalf("element 2: %+v", e)
	}
	for _, c := range []struct {
		id, sn string
		want   bool
	}{{"HU1951SIM0", "hu1951sim0", true}, {"IBM ULT3580 1013SIM001", "1013SIM001", true}, {"X1013SIM001", "1013SIM001", false}, {"", "", false}} {
		if got := sameDevice(c.id, c.sn); got != c.want {
			t.Errorf("sameDevice(%q, %q) = %v", c.id, c.sn, got)
		}
	}
	if _, err := parseElementStatus([]byte{1, 2}); err == nil {
		t.Fatal("a 2-byte report parsed")
	}
}
