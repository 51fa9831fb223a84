// Package xdr implements the subset of the External Data Representation
// standard (RFC 4506) that NDMP uses: 32-bit integers, 64-bit hypers,
// booleans, enumerations, fixed and variable-length opaque data, strings,
// counted arrays, optional data and discriminated unions.
//
// An Encoder appends to a byte slice and a Decoder reads from one. Both keep
// the first error they meet and ignore every later operation, so a sequence of
// calls can be checked once at the end with Err. A Decoder never allocates
// more memory than the bytes it still holds can justify: a length or count
// prefix that could not be satisfied by the remaining input is an error, not
// a large allocation.
//
// Values that know their own encoding implement Marshaler and Unmarshaler.
package xdr

import (
	"errors"
	"fmt"
	"math"
)

// Marshaler is implemented by values that can append their XDR encoding to
// an Encoder.
type Marshaler interface {
	MarshalXDR(e *Encoder)
}

// Unmarshaler is implemented by values that can decode themselves from a
// Decoder. UnmarshalXDR returns the Decoder's error after decoding.
type Unmarshaler interface {
	UnmarshalXDR(d *Decoder) error
}

// ErrShort is returned (wrapped) when the input ends before a value is
// complete.
var ErrShort = errors.New("xdr: input too short")

// ErrTooLong is returned (wrapped) when a length or count prefix exceeds the
// remaining input or the configured limit.
var ErrTooLong = errors.New("xdr: length exceeds available data")

// Encoder appends XDR encodings to a buffer.
// The zero value is an empty Encoder ready to use.
type Encoder struct {
	buf []byte
	err error
}

// NewEncoder returns an Encoder that appends to buf (which may be nil).
func NewEncoder(buf []byte) *Encoder { return &Encoder{buf: buf} }

// Bytes returns the encoded bytes.
func (e *Encoder) Bytes() []byte { return e.buf }

// Len returns the number of encoded bytes.
func (e *Encoder) Len() int { return len(e.buf) }

// Reset empties the buffer, keeping its storage, and clears the error.
func (e *Encoder) Reset() { e.buf = e.buf[:0]; e.err = nil }

// Err returns the first error met while encoding, or nil.
func (e *Encoder) Err() error { return e.err }

// SetErr records err as the Encoder's error unless one is already recorded.
func (e *Encoder) SetErr(err error) {
	if e.err == nil && err != nil {
		e.err = err
	}
}

// Uint32 appends an unsigned integer.
func (e *Encoder) Uint32(v uint32) {
	e.buf = append(e.buf, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// Int32 appends a signed integer.
func (e *Encoder) Int32(v int32) { e.Uint32(uint32(v)) }

// Uint16 appends an unsigned short, which XDR widens to four bytes.
func (e *Encoder) Uint16(v uint16) { e.Uint32(uint32(v)) }

// Int16 appends a signed short, sign-extended to four bytes.
func (e *Encoder) Int16(v int16) { e.Int32(int32(v)) }

// Uint8 appends an unsigned char, which XDR widens to four bytes.
func (e *Encoder) Uint8(v uint8) { e.Uint32(uint32(v)) }

// Uint64 appends an unsigned hyper integer (high word first).
func (e *Encoder) Uint64(v uint64) {
	e.Uint32(uint32(v >> 32))
	e.Uint32(uint32(v))
}

// Int64 appends a signed hyper integer.
func (e *Encoder) Int64(v int64) { e.Uint64(uint64(v)) }

// Bool appends a boolean (0 or 1).
func (e *Encoder) Bool(v bool) {
	if v {
		e.Uint32(1)
	} else {
		e.Uint32(0)
	}
}

// FixedOpaque appends exactly n bytes of opaque data: b padded with zeros
// or, if b is longer than n, an error.
func (e *Encoder) FixedOpaque(b []byte, n int) {
	if len(b) > n {
		e.SetErr(fmt.Errorf("xdr: fixed opaque of %d bytes holds %d", n, len(b)))
		return
	}
	e.buf = append(e.buf, b...)
	e.pad(n - len(b) + padLen(n))
}

// Opaque appends variable-length opaque data: a length word, the bytes and
// padding to a multiple of four.
func (e *Encoder) Opaque(b []byte) {
	if uint64(len(b)) > math.MaxUint32 {
		e.SetErr(fmt.Errorf("xdr: opaque of %d bytes is too long", len(b)))
		return
	}
	e.Uint32(uint32(len(b)))
	e.buf = append(e.buf, b...)
	e.pad(padLen(len(b)))
}

// String appends a string with the same layout as Opaque.
func (e *Encoder) String(s string) {
	if uint64(len(s)) > math.MaxUint32 {
		e.SetErr(fmt.Errorf("xdr: string of %d bytes is too long", len(s)))
		return
	}
	e.Uint32(uint32(len(s)))
	e.buf = append(e.buf, s...)
	e.pad(padLen(len(s)))
}

// ArrayLen appends the element count of a variable-length array.
func (e *Encoder) ArrayLen(n int) {
	if uint64(n) > math.MaxUint32 {
		e.SetErr(fmt.Errorf("xdr: array of %d elements is too long", n))
		return
	}
	e.Uint32(uint32(n))
}

// Marshal appends the encoding of m.
func (e *Encoder) Marshal(m Marshaler) { m.MarshalXDR(e) }

func (e *Encoder) pad(n int) {
	for ; n > 0; n-- {
		e.buf = append(e.buf, 0)
	}
}

func padLen(n int) int { return (4 - n%4) % 4 }

// Decoder reads XDR values from a byte slice.
type Decoder struct {
	buf []byte
	off int
	err error
	// MaxLen, when positive, bounds every opaque, string and array length
	// prefix in addition to the bytes remaining.
	MaxLen int
}

// NewDecoder returns a Decoder reading b.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Err returns the first error met while decoding, or nil.
func (d *Decoder) Err() error { return d.err }

// SetErr records err as the Decoder's error unless one is already recorded.
func (d *Decoder) SetErr(err error) {
	if d.err == nil && err != nil {
		d.err = err
	}
}

// Remaining returns the number of bytes not yet decoded.
func (d *Decoder) Remaining() int { return len(d.buf) - d.off }

// Offset returns the number of bytes decoded so far.
func (d *Decoder) Offset() int { return d.off }

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.buf)-d.off {
		d.err = fmt.Errorf("%w: need %d bytes at offset %d, have %d", ErrShort, n, d.off, len(d.buf)-d.off)
		return nil
	}
	b := d.buf[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

// Uint32 decodes an unsigned integer.
func (d *Decoder) Uint32() uint32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Int32 decodes a signed integer.
func (d *Decoder) Int32() int32 { return int32(d.Uint32()) }

// Uint16 decodes an unsigned short. A value above 65535 is an error.
func (d *Decoder) Uint16() uint16 {
	v := d.Uint32()
	if v > math.MaxUint16 {
		d.SetErr(fmt.Errorf("xdr: unsigned short value %d out of range", v))
		return 0
	}
	return uint16(v)
}

// Int16 decodes a signed short. A value outside the int16 range is an error.
func (d *Decoder) Int16() int16 {
	v := d.Int32()
	if v > math.MaxInt16 || v < math.MinInt16 {
		d.SetErr(fmt.Errorf("xdr: short value %d out of range", v))
		return 0
	}
	return int16(v)
}

// Uint8 decodes an unsigned char. A value above 255 is an error.
func (d *Decoder) Uint8() uint8 {
	v := d.Uint32()
	if v > math.MaxUint8 {
		d.SetErr(fmt.Errorf("xdr: unsigned char value %d out of range", v))
		return 0
	}
	return uint8(v)
}

// Uint64 decodes an unsigned hyper integer.
func (d *Decoder) Uint64() uint64 {
	hi := d.Uint32()
	lo := d.Uint32()
	return uint64(hi)<<32 | uint64(lo)
}

// Int64 decodes a signed hyper integer.
func (d *Decoder) Int64() int64 { return int64(d.Uint64()) }

// Bool decodes a boolean. Values other than 0 and 1 are an error.
func (d *Decoder) Bool() bool {
	v := d.Uint32()
	if v > 1 {
		d.SetErr(fmt.Errorf("xdr: boolean value %d", v))
		return false
	}
	return v == 1
}

// FixedOpaque decodes n bytes of opaque data and their padding into a new
// slice.
func (d *Decoder) FixedOpaque(n int) []byte {
	b := d.take(n)
	d.take(padLen(n))
	if d.err != nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// FixedOpaqueInto decodes len(dst) bytes of opaque data and their padding
// into dst.
func (d *Decoder) FixedOpaqueInto(dst []byte) {
	b := d.take(len(dst))
	d.take(padLen(len(dst)))
	if d.err == nil {
		copy(dst, b)
	}
}

// length decodes a length prefix and checks that at least unit*n bytes
// remain and that n is within MaxLen.
func (d *Decoder) length(unit int) int {
	v := d.Uint32()
	if d.err != nil {
		return 0
	}
	if d.MaxLen > 0 && uint64(v) > uint64(d.MaxLen) {
		d.err = fmt.Errorf("%w: length %d above limit %d at offset %d", ErrTooLong, v, d.MaxLen, d.off-4)
		return 0
	}
	if uint64(v)*uint64(unit) > uint64(d.Remaining()) {
		d.err = fmt.Errorf("%w: length %d at offset %d, %d bytes remain", ErrTooLong, v, d.off-4, d.Remaining())
		return 0
	}
	return int(v)
}

// Opaque decodes variable-length opaque data into a new slice. An empty
// value decodes as nil.
func (d *Decoder) Opaque() []byte {
	n := d.length(1)
	if n == 0 || d.err != nil {
		return nil
	}
	b := d.take(n)
	d.take(padLen(n))
	if d.err != nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// StringValue decodes a string. (It is not called String so that a Decoder
// does not implement fmt.Stringer.)
func (d *Decoder) StringValue() string {
	n := d.length(1)
	if n == 0 || d.err != nil {
		return ""
	}
	b := d.take(n)
	d.take(padLen(n))
	if d.err != nil {
		return ""
	}
	return string(b)
}

// ArrayLen decodes the count of a variable-length array whose elements each
// take at least minSize bytes (at least 1 is assumed). It returns 0 after an
// error, so a loop over the result is always safe.
func (d *Decoder) ArrayLen(minSize int) int {
	if minSize < 1 {
		minSize = 1
	}
	return d.length(minSize)
}

// Optional decodes the presence flag of optional data (XDR "*" pointers).
func (d *Decoder) Optional() bool { return d.Bool() }

// Unmarshal decodes u and returns the Decoder's error.
func (d *Decoder) Unmarshal(u Unmarshaler) error { return u.UnmarshalXDR(d) }

// Done returns the Decoder's error or, when there is none, an error if input
// remains undecoded.
func (d *Decoder) Done() error {
	if d.err != nil {
		return d.err
	}
	if r := d.Remaining(); r != 0 {
		return fmt.Errorf("xdr: %d trailing bytes after offset %d", r, d.off)
	}
	return nil
}
