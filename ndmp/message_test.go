package ndmp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/ndmp/xdr"
)

type armed interface{ xdrArms() []unionArm }

// fill sets v to pseudo-random contents that are valid XDR: union
// discriminants are chosen among the arms, and only the selected arm is set.
func fill(r *rand.Rand, v reflect.Value) {
	if v.CanAddr() {
		if a, ok := v.Addr().Interface().(armed); ok {
			arms := a.xdrArms()
			arm := arms[r.IntN(len(arms))]
			disc := arm.disc
			if disc == xdrDefaultArm {
				disc = 0x7777 // a value no case names
			}
			v.Field(0).SetUint(uint64(disc))
			if arm.field != "" {
				fill(r, v.FieldByName(arm.field))
			}
			return
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fill(r, v.Field(i))
		}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(r.Uint64() >> (64 - v.Type().Bits()))
	case reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(r.Uint64()) >> (64 - v.Type().Bits()))
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 1)
	case reflect.String:
		b := make([]byte, r.IntN(9))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		v.SetString(string(b))
	case reflect.Slice:
		n := r.IntN(4)
		if n == 0 {
			v.SetZero()
			return
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(r, s.Index(i))
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			fill(r, v.Index(i))
		}
	case reflect.Pointer:
		if r.IntN(2) == 0 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(r, p.Elem())
		v.Set(p)
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

func roundTrip(t *testing.T, r *rand.Rand, code MessageCode, mk func() Body, typ MessageType) {
	t.Helper()
	for i := range 25 {
		in := mk()
		fill(r, reflect.ValueOf(in).Elem())
		m := &Message{Header: Header{Sequence: r.Uint32(), TimeStamp: r.Uint32(), MessageType: typ, MessageCode: code}, Body: in}
		if typ == MessageReply {
			m.Header.ReplySequence = r.Uint32()
		}
		b, err := MarshalMessage(nil, m)
		if err != nil {
			t.Fatalf("%v: marshal %#v: %v", code, in, err)
		}
		got, err := UnmarshalMessage(b)
		if err != nil {
			t.Fatalf("%v iteration %d: unmarshal: %v\n%x", code, i, err, b)
		}
		if !reflect.DeepEqual(got.Header, m.Header) {
			t.Fatalf("%v: header %+v, want %+v", code, got.Header, m.Header)
		}
		if !reflect.DeepEqual(got.Body, in) {
			t.Fatalf("%v: body\n got %#v\nwant %#v", code, got.Body, in)
		}
		if code != CABDataConnPrepare {
			// Every strict prefix of the body must be rejected.
			for cut := HeaderSize; cut < len(b); cut += 4 {
				if _, err := UnmarshalMessage(b[:cut]); err == nil {
					t.Fatalf("%v: record truncated to %d of %d bytes decoded", code, cut, len(b))
				}
			}
		}
	}
}

// TestRoundTripEveryMessage encodes and decodes random bodies of every
// request, reply and post in the message table (N1).
func TestRoundTripEveryMessage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	codes := MessageCodes()
	// Appendix C's enum ndmp_message has 55 messages (plus the two
	// extension base values); the extensions add TEST_ECHO, CAB prepare and
	// six snapshot management messages of class 0x2050.
	if len(codes) != 63 {
		t.Errorf("%d messages in the table, want 63: %v", len(codes), codes)
	}
	for _, code := range codes {
		info, ok := lookupMessage(code)
		if !ok || info.Code != code || info.Name != code.String() {
			t.Fatalf("table entry of %v: %+v", code, info)
		}
		if info.newRequest().MessageCode() != code {
			t.Fatalf("%v: request body reports %v", code, info.newRequest().MessageCode())
		}
		roundTrip(t, r, code, info.newRequest, MessageRequest)
		if info.newReply != nil {
			if info.newReply().MessageCode() != code {
				t.Fatalf("%v: reply body reports %v", code, info.newReply().MessageCode())
			}
			roundTrip(t, r, code, info.newReply, MessageReply)
		}
		wantPost := strings.HasPrefix(info.Name, "NDMP_NOTIFY_") || strings.HasPrefix(info.Name, "NDMP_LOG_") || strings.HasPrefix(info.Name, "NDMP_FH_") ||
			strings.HasPrefix(info.Name, "NDMP_SNAP_NOTIFY_")
		if info.Post != wantPost || code.IsPost() != wantPost {
			t.Errorf("%v: post = %v, want %v", code, info.Post, wantPost)
		}
		if wantReply := !wantPost && code != ConnectClose; code.HasReply() != wantReply {
			t.Errorf("%v: HasReply = %v, want %v", code, code.HasReply(), wantReply)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenEncodings checks encodings worked out by hand from the XDR of
// Appendix C and the notes on the extensions.
func TestGoldenEncodings(t *testing.T) {
	var challenge [64]byte
	for i := range challenge {
		challenge[i] = byte(i)
	}
	chHex := hex.EncodeToString(challenge[:])
	cases := []struct {
		name string
		m    Message
		hex  string
	}{
		{"CONNECT_OPEN v4",
			Message{Header{Sequence: 1, TimeStamp: 0x5f000000, MessageType: MessageRequest, MessageCode: ConnectOpen}, &ConnectOpenRequest{ProtocolVersion: 4}},
			"00000001 5f000000 00000000 00000900 00000000 00000000 00000004"},
		{"NOTIFY_CONNECTION_STATUS post",
			Message{Header{Sequence: 1, TimeStamp: 2, MessageCode: NotifyConnectionStatus}, &NotifyConnectionStatusPost{Reason: Connected, ProtocolVersion: 4, TextReason: "ok"}},
			"00000001 00000002 00000000 00000502 00000000 00000000 00000000 00000004 00000002 6f6b0000"},
		{"CONFIG_GET_AUTH_ATTR reply with MD5 challenge",
			Message{Header{Sequence: 2, TimeStamp: 3, MessageType: MessageReply, MessageCode: ConfigGetAuthAttr, ReplySequence: 5}, &ConfigGetAuthAttrReply{ServerAttr: AuthAttr{AuthType: AuthMD5, Challenge: challenge}}},
			"00000002 00000003 00000001 00000103 00000005 00000000 00000000 00000002" + chHex},
		{"CONNECT_CLIENT_AUTH MD5",
			Message{Header{Sequence: 3, MessageCode: ConnectClientAuth}, &ConnectClientAuthRequest{AuthData{AuthType: AuthMD5, AuthMD5: MD5Auth{AuthID: "root", AuthDigest: [16]byte{0: 0xaa, 15: 0xbb}}}}},
			"00000003 00000000 00000000 00000901 00000000 00000000 00000002 00000004 726f6f74 aa000000 00000000 00000000 000000bb"},
		{"TAPE_OPEN nrst0a RDWR",
			Message{Header{Sequence: 7, MessageCode: TapeOpen}, &TapeOpenRequest{Device: "nrst0a", Mode: TapeRDWRMode}},
			"00000007 00000000 00000000 00000300 00000000 00000000 00000006 6e727374 30610000 00000001"},
		{"DATA_CONNECT TCP 127.0.0.1:10000",
			Message{Header{Sequence: 8, MessageCode: DataConnect}, &DataConnectRequest{Addr{AddrType: AddrTCP, TCPAddr: []TCPAddr{{IPAddr: 0x7f000001, Port: 10000}}}}},
			"00000008 00000000 00000000 0000040a 00000000 00000000 00000001 00000001 7f000001 00002710 00000000"},
		{"MOVER_LISTEN reply IPv6 (CAE)",
			Message{Header{Sequence: 9, MessageType: MessageReply, MessageCode: MoverListen, ReplySequence: 9}, &MoverListenReply{ConnectAddr: Addr{AddrType: AddrTCPIPv6, TCPIPv6Addr: []TCPIPv6Addr{{IPv6Addr: [16]byte{15: 1}, Port: 30001, AddrEnv: []Pval{{"k", "v"}}}}}}},
			"00000009 00000000 00000001 00000a01 00000009 00000000 00000000 20510004 00000001 00000000 00000000 00000000 00000001 00007531 00000001 00000001 6b000000 00000001 76000000"},
		{"FH_ADD_FILE one UNIX file",
			Message{Header{Sequence: 10, MessageCode: FHAddFile}, &FHAddFilePost{Files: []File{{
				Name: []FileName{{FSType: FSUnix, UnixName: "a"}},
				Stat: []FileStat{{FSType: FSUnix, Ftype: FileReg, Mtime: 1, Atime: 2, Ctime: 3, Owner: 4, Group: 5, Fattr: 0o644, Size: 1<<32 | 6, Links: 1}},
				Node: 2, FHInfo: 0x100000000}}}},
			"0000000a 00000000 00000000 00000703 00000000 00000000" +
				"00000001" + // files<>
				"00000001 00000000 00000001 61000000" + // names<>: UNIX "a"
				"00000001 00000000 00000000 00000004 00000001 00000002 00000003 00000004 00000005 000001a4 00000001 00000006 00000001" + // stats<>
				"00000000 00000002 00000001 00000000"}, // node, fh_info
		{"reply with header error has no body",
			Message{Header{Sequence: 11, MessageType: MessageReply, MessageCode: TapeRead, ReplySequence: 4, ErrorCode: ErrNotSupported}, nil},
			"0000000b 00000000 00000001 00000305 00000004 00000001"},
		{"CAB_DATA_CONN_PREPARE",
			Message{Header{Sequence: 12, MessageCode: CABDataConnPrepare}, &CABDataConnPrepareRequest{AddrType: AddrTCP, ButypeName: "dump", Env: []Pval{{"FILESYSTEM", "/vs1/vol1"}}}},
			"0000000c 00000000 00000000 20520001 00000000 00000000 00000001 00000004 64756d70 00000001 0000000a 46494c45 53595354 454d0000 00000009 2f767331 2f766f6c 31000000"},
		{"TEST_ECHO",
			Message{Header{Sequence: 13, MessageCode: TestEcho}, &TestEchoRequest{EchoMsg: "hello"}},
			"0000000d 00000000 00000000 7ff00000 00000000 00000000 00000005 68656c6c 6f000000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := mustHex(t, c.hex)
			got, err := MarshalMessage(nil, &c.m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding\n got %x\nwant %x", got, want)
			}
			back, err := UnmarshalMessage(want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Header, c.m.Header) || !reflect.DeepEqual(back.Body, c.m.Body) {
				t.Fatalf("decoded %+v %#v", back.Header, back.Body)
			}
		})
	}
}

// TestCABPrepareWithoutLeadingWord checks the lenient decoding of the CAB
// request body sent without its first word (N9).
func TestCABPrepareWithoutLeadingWord(t *testing.T) {
	b := mustHex(t, "00000001 00000000 00000000 20520001 00000000 00000000 00000004 64756d70 00000000")
	m, err := UnmarshalMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &CABDataConnPrepareRequest{AddrType: AddrTCP, ButypeName: "dump"}
	if !reflect.DeepEqual(m.Body, want) {
		t.Fatalf("got %#v", m.Body)
	}
}

func TestMalformedMessages(t *testing.T) {
	hdr := func(typ, code, errc uint32) []byte {
		e := xdr.NewEncoder(nil)
		for _, v := range []uint32{1, 0, typ, code, 0, errc} {
			e.Uint32(v)
		}
		return e.Bytes()
	}
	cases := []struct {
		name     string
		rec      []byte
		headerOK bool
		code     Error
	}{
		{"empty", nil, false, ErrXDRDecode},
		{"short header", make([]byte, 23), false, ErrXDRDecode},
		{"bad message type", hdr(7, 0x900, 0), false, ErrXDRDecode},
		{"unknown code", hdr(0, 0x12345, 0), true, ErrNotSupported},
		{"obsolete v2 code", hdr(0, 0x101, 0), true, ErrNotSupported},
		{"missing body", hdr(0, uint32(ConnectOpen), 0), true, ErrXDRDecode},
		{"trailing bytes", append(hdr(0, uint32(ConnectClose), 0), 0, 0, 0, 0), true, ErrXDRDecode},
		{"huge string length", append(hdr(0, uint32(TapeOpen), 0), 0x7f, 0xff, 0xff, 0xff), true, ErrXDRDecode},
		{"huge array count", append(hdr(0, uint32(FHAddFile), 0), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0), true, ErrXDRDecode},
		{"bad union arm", append(hdr(0, uint32(ConnectClientAuth), 0), 0, 0, 0, 9), true, ErrXDRDecode},
		{"truncated u_short", append(hdr(0, uint32(ConnectOpen), 0), 0, 0), true, ErrXDRDecode},
		{"u_short out of range", append(hdr(0, uint32(ConnectOpen), 0), 0, 1, 0, 0), true, ErrXDRDecode},
		{"reply to CONNECT_CLOSE", hdr(1, uint32(ConnectClose), 0), true, ErrNotSupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := UnmarshalMessage(c.rec)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, %v; want a DecodeError", m, err)
			}
			if de.HeaderOK != c.headerOK || de.Code != c.code {
				t.Fatalf("DecodeError %+v (%v), want headerOK %v code %v", de, de, c.headerOK, c.code)
			}
		})
	}
}

func TestErrorAndStrings(t *testing.T) {
	var err error = ErrIllegalArgs
	if err.Error() != "NDMP_ILLEGAL_ARGS_ERR" {
		t.Errorf("Error() = %q", err.Error())
	}
	if !errors.Is(errors.Join(errors.New("x"), ErrDeviceBusy), ErrDeviceBusy) {
		t.Error("errors.Is does not find a joined Error")
	}
	if ErrExtDandNIllegal != 30 || ErrExtDandNIllegal.String() != "NDMP_EXT_DANDN_ILLEGAL_ERR" {
		t.Errorf("error 30 = %v", ErrExtDandNIllegal)
	}
	if s := Error(99).String(); s != "Error(0x63)" {
		t.Errorf("unknown error String = %q", s)
	}
	if s := MessageCode(0x20510004).String(); !strings.HasPrefix(s, "MessageCode(") {
		t.Errorf("unknown message String = %q", s)
	}
	if AddrTCPIPv6.String() != "NDMP_ADDR_TCP_IPV6" || uint32(AddrTCPIPv6) != 0x20510004 {
		t.Errorf("AddrTCPIPv6 = %v %#x", AddrTCPIPv6, uint32(AddrTCPIPv6))
	}
	if CABDataConnPrepare != 0x20520001 || CABDataConnPrepare.Class() != ExtClassNetAppCAB || TestEcho.Class() != ExtClassTest {
		t.Errorf("extension codes: %#x %#x", uint32(CABDataConnPrepare), uint32(TestEcho))
	}
	if MoverPauseEOW != 5 || TapeStateBlockNoUns != 8 {
		t.Error("constant values differ from Appendix C")
	}
	m := &Message{Header: Header{Sequence: 3, MessageType: MessageReply, MessageCode: TapeOpen, ReplySequence: 2, ErrorCode: ErrDeviceBusy}}
	if s := m.String(); s != "#3 NDMP_TAPE_OPEN reply to 2 NDMP_DEVICE_BUSY_ERR" {
		t.Errorf("Message.String = %q", s)
	}
}

func TestMarshalMismatchedBody(t *testing.T) {
	_, err := MarshalMessage(nil, &Message{Header: Header{MessageCode: TapeOpen}, Body: &TapeCloseRequest{}})
	if err == nil {
		t.Fatal("TAPE_CLOSE body in a TAPE_OPEN message accepted")
	}
	_, err = MarshalMessage(nil, &Message{Header: Header{MessageCode: DataConnect}, Body: &DataConnectRequest{Addr{AddrType: 42}}})
	if err == nil {
		t.Fatal("union with an invalid discriminant encoded")
	}
}

func TestNewRequestReply(t *testing.T) {
	if _, err := NewRequest(0x999); !errors.Is(err, ErrNotSupported) {
		t.Errorf("NewRequest(0x999) = %v", err)
	}
	if _, err := NewReply(ConnectClose); err == nil {
		t.Error("NewReply(CONNECT_CLOSE) succeeded")
	}
	b, err := NewReply(TapeRead)
	if _, ok := b.(*TapeReadReply); err != nil || !ok {
		t.Errorf("NewReply(TAPE_READ) = %T, %v", b, err)
	}
}

// FuzzUnmarshalMessage feeds arbitrary records to the message decoder. It
// must not panic, and whatever it accepts must re-encode to a record that
// decodes to the same message.
func FuzzUnmarshalMessage(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, code := range MessageCodes() {
		info, _ := lookupMessage(code)
		for typ, mk := range map[MessageType]func() Body{MessageRequest: info.newRequest, MessageReply: info.newReply} {
			if mk == nil {
				continue
			}
			body := mk()
			fill(r, reflect.ValueOf(body).Elem())
			b, err := MarshalMessage(nil, &Message{Header: Header{Sequence: 1, MessageType: typ, MessageCode: code}, Body: body})
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add(make([]byte, 24))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMessage(b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a DecodeError", err)
			}
			return
		}
		out, err := MarshalMessage(nil, m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := UnmarshalMessage(out)
		if err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-decoded message differs:\n%#v\n%#v", m, m2)
		}
	})
}

// TestSetExtListNDMJOBLayout decodes the {error; class_list<>} form of
// CONFIG_SET_EXT_LIST that NDMJOB-based DMAs send (N9).
func TestSetExtListNDMJOBLayout(t *testing.T) {
	b := mustHex(t, "00000001 00000000 00000000 00000109 00000000 00000000"+
		"00000000"+ // error
		"00000002"+ // two classes
		"00002051 00000001 00000001"+ // 0x2051 versions [1]
		"00002052 00000002 00000001 00000002") // 0x2052 versions [1 2]
	m, err := UnmarshalMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &ConfigSetExtListRequest{NDMPSelectedExt: []ClassVersion{{0x2051, 1}, {0x2052, 1}}}
	if !reflect.DeepEqual(m.Body, want) {
		t.Fatalf("got %#v", m.Body)
	}
	// The draft's layout still decodes as itself.
	b = mustHex(t, "00000001 00000000 00000000 00000109 00000000 00000000 00000001 00002050 00000003")
	m, err = UnmarshalMessage(b)
	if err != nil || !reflect.DeepEqual(m.Body, &ConfigSetExtListRequest{NDMPSelectedExt: []ClassVersion{{0x2050, 3}}}) {
		t.Fatalf("draft layout: %#v %v", m, err)
	}
}
