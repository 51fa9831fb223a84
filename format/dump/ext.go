package dump

import (
	"encoding/binary"
	"fmt"
	"sort"
	"time"
)

// ExtKind identifies a Tapestry extension record. Linux restore skips all of
// them; the layout of each payload is in docs/dump-format.md. Payload
// integers are little-endian whatever the image's byte order.
type ExtKind uint32

// Extension kinds.
const (
	ExtNTACL  ExtKind = 1 // NT security descriptor: owner, group, up to 1,024 ACEs
	ExtDOS    ExtKind = 2 // DOS attributes, creation time and 8.3 name
	ExtStream ExtKind = 3 // one NT named stream: name and data
	ExtQtree  ExtKind = 4 // qtree information of a qtree root directory
	ExtLUN    ExtKind = 5 // LUN flags of a regular file
	ExtXattrs ExtKind = 6 // extended attributes that do not fit the 4 KB EA record
	// Kind 7 is reserved: exact times are in the inode header (see
	// docs/dump-format.md), not in an extension record.
	ExtACLSection ExtKind = 8 // start of the ACL section (phase V); NT ACL records follow
	ExtOffsetMap  ExtKind = 9 // inode -> header offset map, just before TS_END
)

// String names the kind.
func (k ExtKind) String() string {
	switch k {
	case ExtNTACL:
		return "ntacl"
	case ExtDOS:
		return "dos"
	case ExtStream:
		return "stream"
	case ExtQtree:
		return "qtree"
	case ExtLUN:
		return "lun"
	case ExtXattrs:
		return "xattrs"
	case ExtACLSection:
		return "acl-section"
	case ExtOffsetMap:
		return "offset-map"
	}
	return fmt.Sprintf("ext%d", uint32(k))
}

// MaxACEs is the largest number of ACEs an NT ACL may have.
const MaxACEs = 1024

// MaxXattrValue is the largest extended attribute value (Linux XATTR_SIZE_MAX).
const MaxXattrValue = 64 << 10

// ACE is one NT access control entry.
type ACE struct {
	Type  uint8  // 0 allow, 1 deny, 2 audit, 3 alarm
	Flags uint8  // inheritance flags
	Mask  uint32 // access mask
	SID   string // textual SID, e.g. "S-1-5-21-1-2-3-1001"
}

// NTACL is an NT security descriptor.
type NTACL struct {
	Control uint16 // SE_* control flags
	Owner   string // owner SID
	Group   string // group SID
	ACEs    []ACE  // the DACL, at most MaxACEs entries
}

// DOSInfo holds the DOS view of a file.
type DOSInfo struct {
	Attributes uint32    // FILE_ATTRIBUTE_* bits
	Created    time.Time // creation time (nanoseconds)
	ShortName  string    // 8.3 name, empty if none
}

// QtreeInfo describes a qtree root directory.
type QtreeInfo struct {
	ID            uint32
	Name          string
	SecurityStyle string // "unix", "ntfs" or "mixed"
	Oplocks       bool
}

// LUNInfo marks a regular file that is a LUN.
type LUNInfo struct {
	Clone  bool   // a LUN clone
	OSType string // host OS type of the LUN, e.g. "linux"
	Serial string
}

// OffsetEntry maps an inode to the logical byte offset of its TS_INODE
// header (record index × 1024, counted over all volumes).
type OffsetEntry struct {
	Ino    uint32
	Offset int64
}

type enc struct{ b []byte }

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) str8(s string) error {
	if len(s) > 255 {
		return fmt.Errorf("%w: string of %d bytes (at most 255)", ErrFormat, len(s))
	}
	e.u8(uint8(len(s)))
	e.b = append(e.b, s...)
	return nil
}

// noTime is the seconds value that stands for "no time".
const noTime = -1 << 63

func (e *enc) time(t time.Time) {
	if t.IsZero() {
		e.u64(uint64(1) << 63)
		e.u32(0)
		return
	}
	e.u64(uint64(t.Unix()))
	e.u32(uint32(t.Nanosecond()))
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) need(n int) bool {
	if d.err != nil {
		return false
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("%w: extension payload too short", ErrFormat)
		return false
	}
	return true
}

// fixed returns the next n bytes, or n zero bytes once the payload has
// run short (d.err then says so).
func (d *dec) fixed(n int) []byte {
	if b := d.bytes(n); b != nil {
		return b
	}
	return make([]byte, n)
}
func (d *dec) u8() uint8   { return d.fixed(1)[0] }
func (d *dec) u16() uint16 { return binary.LittleEndian.Uint16(d.fixed(2)) }
func (d *dec) u32() uint32 { return binary.LittleEndian.Uint32(d.fixed(4)) }
func (d *dec) u64() uint64 { return binary.LittleEndian.Uint64(d.fixed(8)) }
func (d *dec) bytes(n int) []byte {
	if !d.need(n) {
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
func (d *dec) str8() string { return string(d.bytes(int(d.u8()))) }
func (d *dec) time() time.Time {
	s := d.u64()
	ns := d.u32()
	if s == uint64(1)<<63 || d.err != nil {
		return time.Time{}
	}
	if ns >= 1e9 {
		d.err = fmt.Errorf("%w: nanoseconds %d", ErrFormat, ns)
		return time.Time{}
	}
	return time.Unix(int64(s), int64(ns))
}
func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d stray bytes after extension payload", ErrFormat, len(d.b))
	}
	return d.err
}

// MarshalBinary encodes the ACL as an ExtNTACL payload.
func (a *NTACL) MarshalBinary() ([]byte, error) {
	if len(a.ACEs) > MaxACEs {
		return nil, fmt.Errorf("%w: NT ACL with %d ACEs (at most %d)", ErrCount, len(a.ACEs), MaxACEs)
	}
	e := &enc{}
	e.u16(1)
	e.u16(a.Control)
	if err := e.str8(a.Owner); err != nil {
		return nil, err
	}
	if err := e.str8(a.Group); err != nil {
		return nil, err
	}
	e.u32(uint32(len(a.ACEs)))
	for _, x := range a.ACEs {
		e.u8(x.Type)
		e.u8(x.Flags)
		e.u32(x.Mask)
		if err := e.str8(x.SID); err != nil {
			return nil, err
		}
	}
	return e.b, nil
}

// UnmarshalBinary decodes an ExtNTACL payload.
func (a *NTACL) UnmarshalBinary(b []byte) error {
	d := &dec{b: b}
	if v := d.u16(); d.err == nil && v != 1 {
		return fmt.Errorf("%w: NT ACL version %d", ErrFormat, v)
	}
	a.Control = d.u16()
	a.Owner = d.str8()
	a.Group = d.str8()
	n := d.u32()
	if n > MaxACEs {
		return fmt.Errorf("%w: NT ACL with %d ACEs", ErrCount, n)
	}
	a.ACEs = nil
	for i := uint32(0); i < n && d.err == nil; i++ {
		var x ACE
		x.Type = d.u8()
		x.Flags = d.u8()
		x.Mask = d.u32()
		x.SID = d.str8()
		a.ACEs = append(a.ACEs, x)
	}
	return d.end()
}

// MarshalBinary encodes an ExtDOS payload.
func (i *DOSInfo) MarshalBinary() ([]byte, error) {
	e := &enc{}
	e.u32(i.Attributes)
	e.time(i.Created)
	if err := e.str8(i.ShortName); err != nil {
		return nil, err
	}
	return e.b, nil
}

// UnmarshalBinary decodes an ExtDOS payload.
func (i *DOSInfo) UnmarshalBinary(b []byte) error {
	d := &dec{b: b}
	i.Attributes = d.u32()
	i.Created = d.time()
	i.ShortName = d.str8()
	return d.end()
}

// MarshalBinary encodes an ExtQtree payload.
func (q *QtreeInfo) MarshalBinary() ([]byte, error) {
	e := &enc{}
	e.u32(q.ID)
	if err := e.str8(q.Name); err != nil {
		return nil, err
	}
	if err := e.str8(q.SecurityStyle); err != nil {
		return nil, err
	}
	var f uint32
	if q.Oplocks {
		f |= 1
	}
	e.u32(f)
	return e.b, nil
}

// UnmarshalBinary decodes an ExtQtree payload.
func (q *QtreeInfo) UnmarshalBinary(b []byte) error {
	d := &dec{b: b}
	q.ID = d.u32()
	q.Name = d.str8()
	q.SecurityStyle = d.str8()
	q.Oplocks = d.u32()&1 != 0
	return d.end()
}

// MarshalBinary encodes an ExtLUN payload.
func (l *LUNInfo) MarshalBinary() ([]byte, error) {
	e := &enc{}
	var f uint32 = 1 // bit 0: is a LUN
	if l.Clone {
		f |= 2
	}
	e.u32(f)
	if err := e.str8(l.OSType); err != nil {
		return nil, err
	}
	if err := e.str8(l.Serial); err != nil {
		return nil, err
	}
	return e.b, nil
}

// UnmarshalBinary decodes an ExtLUN payload.
func (l *LUNInfo) UnmarshalBinary(b []byte) error {
	d := &dec{b: b}
	f := d.u32()
	l.Clone = f&2 != 0
	l.OSType = d.str8()
	l.Serial = d.str8()
	return d.end()
}

// EncodeXattrs encodes an ExtXattrs payload: a count, then for each
// attribute a u16 name length, the name, a u32 value length and the value.
func EncodeXattrs(xs []Xattr) ([]byte, error) {
	e := &enc{}
	e.u32(uint32(len(xs)))
	for _, x := range xs {
		if len(x.Name) == 0 || len(x.Name) > 255 {
			return nil, fmt.Errorf("%w: xattr name of %d bytes", ErrFormat, len(x.Name))
		}
		if len(x.Value) > MaxXattrValue {
			return nil, fmt.Errorf("%w: xattr %s value of %d bytes (at most %d)", ErrCount, x.Name, len(x.Value), MaxXattrValue)
		}
		e.u16(uint16(len(x.Name)))
		e.b = append(e.b, x.Name...)
		e.u32(uint32(len(x.Value)))
		e.b = append(e.b, x.Value...)
	}
	return e.b, nil
}

// DecodeXattrs decodes an ExtXattrs payload.
func DecodeXattrs(b []byte) ([]Xattr, error) {
	d := &dec{b: b}
	n := d.u32()
	var out []Xattr
	for i := uint32(0); i < n && d.err == nil; i++ {
		name := string(d.bytes(int(d.u16())))
		vl := d.u32()
		if vl > MaxXattrValue {
			return nil, fmt.Errorf("%w: xattr value of %d bytes", ErrCount, vl)
		}
		v := append([]byte(nil), d.bytes(int(vl))...)
		out = append(out, Xattr{Name: name, Value: v})
	}
	return out, d.end()
}

// EncodeStreamHeader returns the start of an ExtStream payload: a u16 name
// length and the name; the stream's bytes follow it.
func EncodeStreamHeader(name string) ([]byte, error) {
	if len(name) == 0 || len(name) > 0xffff {
		return nil, fmt.Errorf("%w: stream name of %d bytes", ErrFormat, len(name))
	}
	e := &enc{}
	e.u16(uint16(len(name)))
	e.b = append(e.b, name...)
	return e.b, nil
}

// EncodeOffsetMap encodes an ExtOffsetMap payload: a u32 count, then
// {u32 inode, u64 offset} pairs in ascending inode order.
func EncodeOffsetMap(m []OffsetEntry) []byte {
	s := append([]OffsetEntry(nil), m...)
	sort.Slice(s, func(i, j int) bool { return s[i].Ino < s[j].Ino })
	e := &enc{b: make([]byte, 0, 4+12*len(s))}
	e.u32(uint32(len(s)))
	for _, x := range s {
		e.u32(x.Ino)
		e.u64(uint64(x.Offset))
	}
	return e.b
}

// DecodeOffsetMap decodes an ExtOffsetMap payload.
func DecodeOffsetMap(b []byte) ([]OffsetEntry, error) {
	d := &dec{b: b}
	n := d.u32()
	if d.err == nil && int64(n)*12 != int64(len(d.b)) {
		return nil, fmt.Errorf("%w: offset map says %d entries in %d bytes", ErrCount, n, len(d.b))
	}
	out := make([]OffsetEntry, 0, n)
	for i := uint32(0); i < n && d.err == nil; i++ {
		ino := d.u32()
		off := d.u64()
		if off > 1<<62 {
			return nil, fmt.Errorf("%w: offset %d", ErrCount, off)
		}
		out = append(out, OffsetEntry{Ino: ino, Offset: int64(off)})
	}
	return out, d.end()
}
