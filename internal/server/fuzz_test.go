package server

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// seedMessages returns encoded requests of every message the package
// knows, with zero bodies, as fuzz seeds.
func seedMessages(t testing.TB) [][]byte {
	var out [][]byte
	for _, code := range ndmp.MessageCodes() {
		if code.IsPost() {
			continue
		}
		body, err := ndmp.NewRequest(code)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ndmp.MarshalMessage(nil, &ndmp.Message{Header: ndmp.Header{Sequence: 7, MessageType: ndmp.MessageRequest, MessageCode: code}, Body: body})
		if err == nil {
			out = append(out, b)
		}
	}
	return out
}

// FuzzSessionDispatch feeds one raw record to an authenticated session
// and checks that the session neither panics nor stops answering: a
// TEST_ECHO afterwards must still be answered, unless the record made the
// server close the connection (CONNECT_CLOSE).
func FuzzSessionDispatch(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1})
	fx := newFixture(f, fixtureOpts{authed: true, maxSessions: 1000})
	f.Fuzz(func(t *testing.T, rec []byte) {
		nc, err := net.Dial("tcp", fx.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		rr, rw := ndmp.NewRecordReader(nc, 0), ndmp.NewRecordWriter(nc, 0)
		if _, err := rr.ReadRecord(); err != nil {
			t.Fatalf("greeting: %v", err)
		}
		if err := rw.WriteRecord(rec); err != nil {
			t.Fatal(err)
		}
		echo, _ := ndmp.MarshalMessage(nil, &ndmp.Message{Header: ndmp.Header{Sequence: 1 << 30, MessageType: ndmp.MessageRequest,
			MessageCode: ndmp.TestEcho}, Body: &ndmp.TestEchoRequest{EchoMsg: "alive"}})
		if err := rw.WriteRecord(echo); err != nil {
			return // closed by the server
		}
		for {
			b, err := rr.ReadRecord()
			if err != nil {
				if m, _ := ndmp.UnmarshalMessage(rec); m != nil && m.Header.MessageCode == ndmp.ConnectClose {
					return
				}
				if strings.Contains(fx.logs.String(), "panic") {
					t.Fatalf("handler panic:\n%s", fx.logs.String())
				}
				t.Fatalf("no answer to TEST_ECHO after %x: %v", rec, err)
			}
			m, err := ndmp.UnmarshalMessage(b)
			if err == nil && m.Header.ReplySequence == 1<<30 {
				break
			}
		}
		if strings.Contains(fx.logs.String(), "panic") {
			t.Fatalf("handler panic:\n%s", fx.logs.String())
		}
	})
}

// Before authentication every request except the five the draft allows
// (CONNECT_OPEN, CONNECT_CLIENT_AUTH, CONNECT_CLOSE, CONFIG_GET_AUTH_ATTR,
// CONFIG_GET_SERVER_INFO) gets NDMP_NOT_AUTHORIZED_ERR.
func TestPreAuthTable(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, fixtureOpts{})
	c := fx.dial(nil)
	if err := c.Connect(fx.ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, code := range ndmp.MessageCodes() {
		if code.IsPost() || !code.HasReply() || preAuth[code] || code == ndmp.ConnectServerAuth {
			continue
		}
		body, _ := ndmp.NewRequest(code)
		_, err := c.Call(fx.ctx, body)
		wantErr(t, code.String(), err, ndmp.ErrNotAuthorized)
		n++
	}
	if n < 40 {
		t.Fatalf("only %d messages checked", n)
	}
}

// FuzzParsePortRange checks that the data port range parser accepts only
// "all" (or empty) and LOW-HIGH ranges within 1024-65535 and never panics.
func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"", "all", "1024-65535", "20000-20010", "80-90", "5-", "-", "65535-1024", "x-y", "1024-1024"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lo, hi, err := ParsePortRange(s)
		if err != nil {
			if lo != 0 || hi != 0 {
				t.Fatalf("%q: error with range %d-%d", s, lo, hi)
			}
			return
		}
		if (lo == 0) != (hi == 0) || lo != 0 && (lo < 1024 || hi > 65535 || lo > hi) {
			t.Fatalf("%q: accepted bad range %d-%d", s, lo, hi)
		}
		if lo == 0 && s != "" && s != "all" {
			t.Fatalf("%q accepted as all", s)
		}
	})
}
