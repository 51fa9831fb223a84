package dump

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Xattr is one extended attribute: a full name such as "user.comment" and
// its value.
type Xattr struct {
	Name  string
	Value []byte
}

// ext2 extended attribute buffer constants (the format Linux dump copies
// from the file system and restore parses).
const (
	xattrMagicBlock = 0xEA020000 // EA block: 32-byte header
	xattrMagicInode = 0xEA020001 // in-inode form: 4-byte header
)

// Name index prefixes of the ext2 EA format. Index 2 and 3 are whole names.
var xattrPrefixes = []struct {
	index  uint8
	prefix string
	whole  bool
}{
	{2, "system.posix_acl_access", true},
	{3, "system.posix_acl_default", true},
	{1, "user.", false},
	{4, "trusted.", false},
	{6, "security.", false},
}

// xattrIndex splits a name into its ext2 name index and suffix; ok is false
// for names the EA record cannot hold.
func xattrIndex(name string) (idx uint8, suffix string, ok bool) {
	for _, p := range xattrPrefixes {
		if p.whole {
			if name == p.prefix {
				return p.index, "", true
			}
			continue
		}
		if strings.HasPrefix(name, p.prefix) && len(name) > len(p.prefix) {
			s := name[len(p.prefix):]
			if len(s) > 255 {
				return 0, "", false
			}
			return p.index, s, true
		}
	}
	return 0, "", false
}

func pad4(n int) int { return (n + 3) &^ 3 }

// xattrEntrySize is the space one attribute takes in an in-inode buffer.
func xattrEntrySize(suffix string, value []byte) int {
	return 16 + pad4(len(suffix)) + pad4(len(value))
}

// encodeXattrs packs as many attributes as fit into one in-inode-form EA
// buffer of at most XattrRecordMax bytes, in the given order, and returns
// the buffer (nil when nothing fits) and the attributes left over.
// POSIX ACL values are converted from the kernel's xattr form to the ext3
// disk form restore expects.
func encodeXattrs(xs []Xattr) (buf []byte, rest []Xattr) {
	type ent struct {
		idx    uint8
		suffix string
		value  []byte
	}
	var fit []ent
	used := 4 + 4 // magic + terminating zero word
	for _, x := range xs {
		idx, suffix, ok := xattrIndex(x.Name)
		v := x.Value
		if ok && (idx == 2 || idx == 3) {
			dv, err := aclToDisk(v)
			if err != nil {
				ok = false
			} else {
				v = dv
			}
		}
		if !ok || len(v) > 0xffff {
			rest = append(rest, x)
			continue
		}
		sz := xattrEntrySize(suffix, v)
		if used+sz > XattrRecordMax {
			rest = append(rest, x)
			continue
		}
		used += sz
		fit = append(fit, ent{idx, suffix, v})
	}
	if len(fit) == 0 {
		return nil, rest
	}
	// Entries first, values packed at the end of the buffer as ext2 does.
	buf = make([]byte, used)
	le := binary.LittleEndian
	le.PutUint32(buf, xattrMagicInode)
	off := 4
	valEnd := used
	for _, e := range fit {
		valEnd -= pad4(len(e.value))
		buf[off] = uint8(len(e.suffix))
		buf[off+1] = e.idx
		le.PutUint16(buf[off+2:], uint16(valEnd-4)) // counted from after the magic
		le.PutUint32(buf[off+4:], 0)
		le.PutUint32(buf[off+8:], uint32(len(e.value)))
		le.PutUint32(buf[off+12:], 0)
		copy(buf[off+16:], e.suffix)
		copy(buf[valEnd:], e.value)
		off += 16 + pad4(len(e.suffix))
	}
	// buf[off:off+4] is already the zero terminator.
	return buf, rest
}

// parseXattrs decodes an ext2 EA buffer in either the in-inode or the block
// form. POSIX ACLs are converted back to the kernel's xattr form.
func parseXattrs(b []byte) ([]Xattr, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: EA buffer of %d bytes", ErrFormat, len(b))
	}
	le := binary.LittleEndian
	var first, base int
	switch le.Uint32(b) {
	case xattrMagicInode:
		first, base = 4, 4
	case xattrMagicBlock:
		first, base = 32, 0
	default:
		return nil, fmt.Errorf("%w: EA buffer magic %#x", ErrFormat, le.Uint32(b))
	}
	var out []Xattr
	off := first
	for {
		if off+4 > len(b) {
			return nil, fmt.Errorf("%w: EA entry list runs off the buffer", ErrFormat)
		}
		if le.Uint32(b[off:]) == 0 {
			break
		}
		if off+16 > len(b) {
			return nil, fmt.Errorf("%w: EA entry runs off the buffer", ErrFormat)
		}
		nl := int(b[off])
		idx := b[off+1]
		voff := int(le.Uint16(b[off+2:]))
		vsize := int(le.Uint32(b[off+8:]))
		if off+16+nl > len(b) {
			return nil, fmt.Errorf("%w: EA name runs off the buffer", ErrFormat)
		}
		suffix := string(b[off+16 : off+16+nl])
		if base+voff+vsize > len(b) || vsize < 0 {
			return nil, fmt.Errorf("%w: EA value runs off the buffer", ErrFormat)
		}
		val := append([]byte(nil), b[base+voff:base+voff+vsize]...)
		var name string
		switch idx {
		case 1:
			name = "user." + suffix
		case 2:
			name = "system.posix_acl_access"
		case 3:
			name = "system.posix_acl_default"
		case 4:
			name = "trusted." + suffix
		case 5:
			name = "lustre." + suffix
		case 6:
			name = "security." + suffix
		default:
			return nil, fmt.Errorf("%w: EA name index %d", ErrFormat, idx)
		}
		if idx == 2 || idx == 3 {
			kv, err := aclFromDisk(val)
			if err != nil {
				return nil, err
			}
			val = kv
		}
		out = append(out, Xattr{Name: name, Value: val})
		off += 16 + pad4(nl)
	}
	return out, nil
}

// POSIX ACL tags.
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

// aclToDisk converts the kernel's posix_acl_xattr form (version 2, 8-byte
// entries) to the ext3 disk form (version 1, short entries without an id).
func aclToDisk(v []byte) ([]byte, error) {
	le := binary.LittleEndian
	if len(v) < 4 || (len(v)-4)%8 != 0 || le.Uint32(v) != 2 {
		return nil, fmt.Errorf("%w: POSIX ACL xattr", ErrFormat)
	}
	out := make([]byte, 4, len(v))
	le.PutUint32(out, 1)
	for off := 4; off < len(v); off += 8 {
		tag := le.Uint16(v[off:])
		perm := le.Uint16(v[off+2:])
		id := le.Uint32(v[off+4:])
		switch tag {
		case aclUser, aclGroup:
			out = le.AppendUint16(out, tag)
			out = le.AppendUint16(out, perm)
			out = le.AppendUint32(out, id)
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			out = le.AppendUint16(out, tag)
			out = le.AppendUint16(out, perm)
		default:
			return nil, fmt.Errorf("%w: POSIX ACL tag %#x", ErrFormat, tag)
		}
	}
	return out, nil
}

// aclFromDisk is the inverse of aclToDisk.
func aclFromDisk(v []byte) ([]byte, error) {
	le := binary.LittleEndian
	if len(v) < 4 || le.Uint32(v) != 1 {
		return nil, fmt.Errorf("%w: ext3 disk ACL", ErrFormat)
	}
	out := le.AppendUint32(nil, 2)
	for off := 4; off < len(v); {
		if off+4 > len(v) {
			return nil, fmt.Errorf("%w: ext3 disk ACL entry", ErrFormat)
		}
		tag := le.Uint16(v[off:])
		perm := le.Uint16(v[off+2:])
		id := uint32(0xffffffff)
		switch tag {
		case aclUser, aclGroup:
			if off+8 > len(v) {
				return nil, fmt.Errorf("%w: ext3 disk ACL entry", ErrFormat)
			}
			id = le.Uint32(v[off+4:])
			off += 8
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			off += 4
		default:
			return nil, fmt.Errorf("%w: ext3 disk ACL tag %#x", ErrFormat, tag)
		}
		out = le.AppendUint16(out, tag)
		out = le.AppendUint16(out, perm)
		out = le.AppendUint32(out, id)
	}
	return out, nil
}
