package smtape

import (
	"encoding/binary"
	"hash/crc32"
)

// castagnoli is the CRC-32C table every checksum of an image uses.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum returns the CRC-32C of b.
func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// enc appends big-endian fields to a byte slice. A string too long for its
// length field sets tooLong instead of being cut.
type enc struct {
	b       []byte
	tooLong bool
}

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *enc) i64(v int64)  { e.u64(uint64(v)) }
func (e *enc) raw(p []byte) { e.b = append(e.b, p...) }

// str appends a string of at most 65,535 bytes as a 16-bit length and the
// bytes.
func (e *enc) str(s string) {
	if len(s) > 0xffff {
		e.tooLong = true
		s = ""
	}
	e.u16(uint16(len(s)))
	e.b = append(e.b, s...)
}

// bytes32 appends a byte string as a 32-bit length and the bytes.
func (e *enc) bytes32(p []byte) {
	e.u32(uint32(len(p)))
	e.b = append(e.b, p...)
}

// dec reads big-endian fields from a byte slice; a read past the end sets
// short and returns zeros, so a decoder checks once at the end.
type dec struct {
	b     []byte
	short bool
}

func (d *dec) take(n int) []byte {
	if d.short || n < 0 || n > len(d.b) {
		d.short = true
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *dec) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (d *dec) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *dec) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (d *dec) i64() int64 { return int64(d.u64()) }

func (d *dec) str() string { return string(d.take(int(d.u16()))) }

// bytes32 returns a byte string with a 32-bit length (no copy).
func (d *dec) bytes32() []byte { return d.take(int(d.u32())) }
