package xdr

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestEncodeGolden(t *testing.T) {
	e := NewEncoder(nil)
	e.Uint32(0x01020304)
	e.Int32(-2)
	e.Uint16(0xfffe)
	e.Int16(-1)
	e.Uint8(7)
	e.Uint64(0x1122334455667788)
	e.Bool(true)
	e.String("abcde")
	e.Opaque([]byte{9})
	e.FixedOpaque([]byte{1, 2, 3}, 3)
	e.ArrayLen(2)
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	want := "01020304" + "fffffffe" + "0000fffe" + "ffffffff" + "00000007" +
		"1122334455667788" + "00000001" + "00000005" + "6162636465000000" +
		"00000001" + "09000000" + "01020300" + "00000002"
	if got := hex.EncodeToString(e.Bytes()); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}

	d := NewDecoder(e.Bytes())
	if d.Uint32() != 0x01020304 || d.Int32() != -2 || d.Uint16() != 0xfffe || d.Int16() != -1 ||
		d.Uint8() != 7 || d.Uint64() != 0x1122334455667788 || !d.Bool() || d.StringValue() != "abcde" ||
		!bytes.Equal(d.Opaque(), []byte{9}) || !bytes.Equal(d.FixedOpaque(3), []byte{1, 2, 3}) || d.Uint32() != 2 {
		t.Fatalf("decode mismatch, err %v", d.Err())
	}
	if err := d.Done(); err != nil {
		t.Fatal(err)
	}
}

func TestFixedOpaqueTooLong(t *testing.T) {
	e := NewEncoder(nil)
	e.FixedOpaque(make([]byte, 5), 4)
	if e.Err() == nil {
		t.Fatal("5 bytes in a 4-byte fixed opaque: no error")
	}
}

func TestDecodeBounds(t *testing.T) {
	cases := []struct {
		name string
		in   string
		op   func(d *Decoder)
		want error
	}{
		{"short uint32", "010203", func(d *Decoder) { d.Uint32() }, ErrShort},
		{"huge string", "7fffffff61626364", func(d *Decoder) { _ = d.StringValue() }, ErrTooLong},
		{"huge opaque", "ffffffff", func(d *Decoder) { d.Opaque() }, ErrTooLong},
		{"array count above bytes", "0000000300000001", func(d *Decoder) { d.ArrayLen(4) }, ErrTooLong},
		{"string missing padding", "0000000161", func(d *Decoder) { _ = d.StringValue() }, ErrShort},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, _ := hex.DecodeString(c.in)
			d := NewDecoder(b)
			c.op(d)
			if !errors.Is(d.Err(), c.want) {
				t.Fatalf("err = %v, want %v", d.Err(), c.want)
			}
		})
	}
}

func TestDecodeRangeChecks(t *testing.T) {
	for name, op := range map[string]func(d *Decoder){
		"u_short": func(d *Decoder) { d.Uint16() },
		"short":   func(d *Decoder) { d.Int16() },
		"u_char":  func(d *Decoder) { d.Uint8() },
		"bool":    func(d *Decoder) { d.Bool() },
	} {
		d := NewDecoder([]byte{0, 1, 0, 0})
		op(d)
		if d.Err() == nil {
			t.Errorf("%s: 0x00010000 accepted", name)
		}
	}
}

func TestMaxLen(t *testing.T) {
	d := NewDecoder([]byte{0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8})
	d.MaxLen = 4
	if d.Opaque(); !errors.Is(d.Err(), ErrTooLong) {
		t.Fatalf("MaxLen not enforced: %v", d.Err())
	}
}

func TestStickyError(t *testing.T) {
	d := NewDecoder([]byte{0, 0})
	d.Uint32()
	first := d.Err()
	_ = d.StringValue()
	d.Uint64()
	if d.Err() != first || first == nil {
		t.Fatalf("error not sticky: %v then %v", first, d.Err())
	}
	if err := NewDecoder([]byte{0, 0, 0, 0, 1}).Done(); err == nil {
		t.Fatal("Done ignores trailing bytes")
	}
}

// FuzzDecoder decodes arbitrary input with a fixed sequence of operations:
// it must never panic, and a successful decode must re-encode to the same
// bytes.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 2, 'h', 'i', 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(b)
		v := d.Uint32()
		s := d.StringValue()
		n := d.ArrayLen(8)
		hs := make([]uint64, 0, n)
		for range n {
			hs = append(hs, d.Uint64())
		}
		if d.Err() != nil {
			return
		}
		e := NewEncoder(nil)
		e.Uint32(v)
		e.String(s)
		e.ArrayLen(len(hs))
		for _, h := range hs {
			e.Uint64(h)
		}
		if !bytes.Equal(e.Bytes(), b[:d.Offset()]) {
			// Padding bytes need not be zero on input; compare only when
			// they are.
			if bytes.Equal(stripPad(b[:d.Offset()], len(s)), e.Bytes()) {
				return
			}
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b[:d.Offset()], e.Bytes())
		}
	})
}

func stripPad(b []byte, slen int) []byte {
	out := append([]byte(nil), b...)
	for i := 8 + slen; i < 8+slen+padLen(slen) && i < len(out); i++ {
		out[i] = 0
	}
	return out
}
