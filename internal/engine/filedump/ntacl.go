package filedump

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"golang.org/x/sys/unix"
)

// Samba keeps a file's NT security descriptor in the xattr security.NTACL
// as an NDR-encoded xattr_NTACL (NDR32, little-endian, 4-byte alignment):
//
//	u16 version (1-4), u16 union level (= version), u32 referent id (non-zero)
//	then, at offset 8, the referent:
//	  version 1: the security descriptor itself
//	  version 2: u32 sd referent, u8 hash[16]; descriptor at 28
//	  version 3: u32 sd referent, u16 hash type, u8 hash[64]; pad to 4; descriptor at 80
//	  version 4: u32 sd referent, u16 hash type, u8 hash[64],
//	             description: UTF-8 bytes and a NUL (no length, no alignment),
//	             pad to 4, u64 NTTIME, u8 sys_acl_hash[64], pad to 4; descriptor
//
// The security descriptor is in the self-relative form of MS-DTYP 2.4.6
// (u8 revision 1, u8 0, u16 control, u32 offsets of owner, group, SACL and
// DACL from the descriptor's start, 0 = absent); an ACL is u8 revision,
// u8 0, u16 size, u16 ACE count, u16 0, then the ACEs: u8 type, u8 flags,
// u16 size, u32 access mask, SID; a SID is u8 revision 1, u8 count of
// sub-authorities (at most 15), 6-byte big-endian authority, u32
// sub-authorities.
//
// Tapestry decodes the descriptor into a dump.NTACL when it is fully
// representable: no SACL, a DACL exactly when the control says one is
// present, only the basic ACE types 0-3 without extra bytes, at most
// dump.MaxACEs ACEs. Anything else stays the raw xattr. The hashes, the
// description and the time are not kept: on restore the descriptor is
// written back as version 4 with hash type 0 (none), which Samba takes as
// it is, without comparing a hash with the file's POSIX ACL.

// SE_* control bits and ACL constants used here.
const (
	seDACLPresent = 0x0004
	seSelfRel     = 0x8000
	aclRevision   = 2
	aclRevisionDS = 4
	maxSubAuths   = 15
	ntaclDescr    = "tapestry restore"
	ndrReferent1  = 0x00020000
	ndrReferent2  = 0x00020004
	hashTypeNone  = 0
	ntaclHashSize = 64
)

var errNTACL = errors.New("security.NTACL")

// decodeSambaNTACL decodes a security.NTACL value of version 1 to 4.
func decodeSambaNTACL(b []byte) (*dump.NTACL, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes", errNTACL, len(b))
	}
	version := binary.LittleEndian.Uint16(b)
	if level := binary.LittleEndian.Uint16(b[2:]); level != version {
		return nil, fmt.Errorf("%w: version %d with union level %d", errNTACL, version, level)
	}
	if binary.LittleEndian.Uint32(b[4:]) == 0 {
		return nil, fmt.Errorf("%w: no descriptor", errNTACL)
	}
	sd := 8
	switch version {
	case 1:
	case 2, 3, 4:
		if len(b) < 12 || binary.LittleEndian.Uint32(b[8:]) == 0 {
			return nil, fmt.Errorf("%w: version %d without a descriptor", errNTACL, version)
		}
		switch version {
		case 2:
			sd = 8 + 4 + 16
		case 3:
			sd = align4(8 + 4 + 2 + ntaclHashSize)
		case 4:
			p := 8 + 4 + 2 + ntaclHashSize
			if p > len(b) {
				return nil, fmt.Errorf("%w: version 4 cut short", errNTACL)
			}
			nul := slices.Index(b[p:], 0)
			if nul < 0 {
				return nil, fmt.Errorf("%w: description without its NUL", errNTACL)
			}
			p = align4(p+nul+1) + 8 + ntaclHashSize
			sd = align4(p)
		}
	default:
		return nil, fmt.Errorf("%w: unknown version %d", errNTACL, version)
	}
	if sd > len(b) {
		return nil, fmt.Errorf("%w: version %d cut short", errNTACL, version)
	}
	return decodeSecDesc(b[sd:])
}

func align4(n int) int { return (n + 3) &^ 3 }

// decodeSecDesc decodes a self-relative security descriptor.
func decodeSecDesc(d []byte) (*dump.NTACL, error) {
	if len(d) < 20 {
		return nil, fmt.Errorf("%w: descriptor of %d bytes", errNTACL, len(d))
	}
	if d[0] != 1 {
		return nil, fmt.Errorf("%w: descriptor revision %d", errNTACL, d[0])
	}
	acl := &dump.NTACL{Control: binary.LittleEndian.Uint16(d[2:])}
	le := binary.LittleEndian
	owner, group, sacl, dacl := le.Uint32(d[4:]), le.Uint32(d[8:]), le.Uint32(d[12:]), le.Uint32(d[16:])
	if sacl != 0 {
		return nil, fmt.Errorf("%w: a SACL is not kept in the dump record", errNTACL)
	}
	var err error
	if owner != 0 {
		if acl.Owner, _, err = sidAt(d, owner); err != nil {
			return nil, fmt.Errorf("%w: owner: %v", errNTACL, err)
		}
	}
	if group != 0 {
		if acl.Group, _, err = sidAt(d, group); err != nil {
			return nil, fmt.Errorf("%w: group: %v", errNTACL, err)
		}
	}
	if (dacl != 0) != (acl.Control&seDACLPresent != 0) {
		return nil, fmt.Errorf("%w: DACL offset %d with control %#04x (a NULL DACL is not kept)", errNTACL, dacl, acl.Control)
	}
	if dacl == 0 {
		return acl, nil
	}
	if uint64(dacl)+8 > uint64(len(d)) {
		return nil, fmt.Errorf("%w: DACL at %d outside the descriptor", errNTACL, dacl)
	}
	a := d[dacl:]
	if a[0] != aclRevision && a[0] != aclRevisionDS {
		return nil, fmt.Errorf("%w: ACL revision %d", errNTACL, a[0])
	}
	size, count := int(le.Uint16(a[2:])), int(le.Uint16(a[4:]))
	if size < 8 || size > len(a) {
		return nil, fmt.Errorf("%w: ACL size %d", errNTACL, size)
	}
	if count > dump.MaxACEs {
		return nil, fmt.Errorf("%w: %d ACEs (at most %d)", errNTACL, count, dump.MaxACEs)
	}
	a = a[:size]
	p := 8
	acl.ACEs = make([]dump.ACE, 0, count)
	for i := 0; i < count; i++ {
		if p+8 > len(a) {
			return nil, fmt.Errorf("%w: ACE %d outside the ACL", errNTACL, i)
		}
		typ, flags, asize := a[p], a[p+1], int(le.Uint16(a[p+2:]))
		if typ > 3 {
			return nil, fmt.Errorf("%w: ACE %d of type %d", errNTACL, i, typ)
		}
		if asize < 8 || p+asize > len(a) {
			return nil, fmt.Errorf("%w: ACE %d of size %d", errNTACL, i, asize)
		}
		sid, n, err := sidAt(a[:p+asize], uint32(p+8))
		if err != nil {
			return nil, fmt.Errorf("%w: ACE %d: %v", errNTACL, i, err)
		}
		if 8+n != asize {
			return nil, fmt.Errorf("%w: ACE %d has %d bytes after its SID", errNTACL, i, asize-8-n)
		}
		acl.ACEs = append(acl.ACEs, dump.ACE{Type: typ, Flags: flags, Mask: le.Uint32(a[p+4:]), SID: sid})
		p += asize
	}
	return acl, nil
}

// sidAt reads the binary SID at offset off of b and returns its text form
// and its length in bytes.
func sidAt(b []byte, off uint32) (string, int, error) {
	if uint64(off)+8 > uint64(len(b)) {
		return "", 0, fmt.Errorf("SID at %d outside %d bytes", off, len(b))
	}
	s := b[off:]
	if s[0] != 1 {
		return "", 0, fmt.Errorf("SID revision %d", s[0])
	}
	n := int(s[1])
	if n > maxSubAuths {
		return "", 0, fmt.Errorf("SID with %d sub-authorities", n)
	}
	if 8+4*n > len(s) {
		return "", 0, fmt.Errorf("SID cut short")
	}
	var auth uint64
	for _, c := range s[2:8] {
		auth = auth<<8 | uint64(c)
	}
	var sb strings.Builder
	sb.WriteString("S-1-")
	if auth < 1<<32 {
		sb.WriteString(strconv.FormatUint(auth, 10))
	} else {
		fmt.Fprintf(&sb, "0x%012X", auth)
	}
	for i := 0; i < n; i++ {
		sb.WriteByte('-')
		sb.WriteString(strconv.FormatUint(uint64(binary.LittleEndian.Uint32(s[8+4*i:])), 10))
	}
	return sb.String(), 8 + 4*n, nil
}

// appendSID appends the binary form of a textual SID.
func appendSID(b []byte, sid string) ([]byte, error) {
	parts := strings.Split(sid, "-")
	if len(parts) < 3 || parts[0] != "S" && parts[0] != "s" || parts[1] != "1" || len(parts)-3 > maxSubAuths {
		return nil, fmt.Errorf("%w: bad SID %q", errNTACL, sid)
	}
	var auth uint64
	var err error
	if h, ok := strings.CutPrefix(strings.ToLower(parts[2]), "0x"); ok {
		auth, err = strconv.ParseUint(h, 16, 48)
	} else {
		auth, err = strconv.ParseUint(parts[2], 10, 48)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: bad SID authority in %q", errNTACL, sid)
	}
	b = append(b, 1, byte(len(parts)-3))
	for i := 5; i >= 0; i-- {
		b = append(b, byte(auth>>(8*i)))
	}
	for _, p := range parts[3:] {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: bad SID sub-authority in %q", errNTACL, sid)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b, nil
}

// encodeSambaNTACL encodes acl as a version 4 security.NTACL value with
// hash type 0 (none).
func encodeSambaNTACL(acl *dump.NTACL) ([]byte, error) {
	if len(acl.ACEs) > dump.MaxACEs {
		return nil, fmt.Errorf("%w: %d ACEs (at most %d)", errNTACL, len(acl.ACEs), dump.MaxACEs)
	}
	le := binary.LittleEndian
	b := le.AppendUint16(nil, 4)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, ndrReferent1)
	b = le.AppendUint32(b, ndrReferent2)
	b = le.AppendUint16(b, hashTypeNone)
	b = append(b, make([]byte, ntaclHashSize)...)
	b = append(b, ntaclDescr...)
	b = append(b, 0)
	b = append(b, make([]byte, align4(len(b))-len(b))...)
	b = le.AppendUint64(b, 0) // NTTIME: not kept
	b = append(b, make([]byte, ntaclHashSize)...)
	b = append(b, make([]byte, align4(len(b))-len(b))...)

	control := acl.Control | seSelfRel
	if len(acl.ACEs) > 0 {
		control |= seDACLPresent
	}
	sd := make([]byte, 20)
	sd[0] = 1
	le.PutUint16(sd[2:], control)
	var err error
	if acl.Owner != "" {
		le.PutUint32(sd[4:], uint32(len(sd)))
		if sd, err = appendSID(sd, acl.Owner); err != nil {
			return nil, err
		}
	}
	if acl.Group != "" {
		le.PutUint32(sd[8:], uint32(len(sd)))
		if sd, err = appendSID(sd, acl.Group); err != nil {
			return nil, err
		}
	}
	if control&seDACLPresent != 0 {
		start := len(sd)
		le.PutUint32(sd[16:], uint32(start))
		sd = append(sd, aclRevision, 0, 0, 0)
		sd = le.AppendUint16(sd, uint16(len(acl.ACEs)))
		sd = append(sd, 0, 0)
		for _, x := range acl.ACEs {
			if x.Type > 3 {
				return nil, fmt.Errorf("%w: ACE type %d", errNTACL, x.Type)
			}
			at := len(sd)
			sd = append(sd, x.Type, x.Flags, 0, 0)
			sd = le.AppendUint32(sd, x.Mask)
			if sd, err = appendSID(sd, x.SID); err != nil {
				return nil, err
			}
			le.PutUint16(sd[at+2:], uint16(len(sd)-at))
		}
		if len(sd)-start > 0xffff {
			return nil, fmt.Errorf("%w: DACL of %d bytes", errNTACL, len(sd)-start)
		}
		le.PutUint16(sd[start+2:], uint16(len(sd)-start))
	}
	return append(b, sd...), nil
}

// inodeACL is the NT ACL of one dumped inode.
type inodeACL struct {
	ino uint32
	acl *dump.NTACL
}

// takeNTACL decodes the security.NTACL value v of n and keeps it for the
// ACL section; it returns false, and the caller keeps the raw xattr, when
// the value cannot be decoded.
func (w *walker) takeNTACL(n *node, v []byte) bool {
	acl, err := decodeSambaNTACL(v)
	if err != nil {
		return false
	}
	w.ntacls = append(w.ntacls, inodeACL{ino: n.ino, acl: acl})
	return true
}

// writeACLs writes the decoded NT ACLs in the ACL section (phase V, D3),
// in inode order.
func (w *walker) writeACLs(dw *dump.Writer) error {
	slices.SortStableFunc(w.ntacls, func(a, b inodeACL) int { return int(a.ino) - int(b.ino) })
	for _, a := range w.ntacls {
		if err := dw.WriteACL(a.ino, a.acl); err != nil {
			return fmt.Errorf("dump backup: NT ACL of inode %d: %w", a.ino, err)
		}
	}
	w.ntacls = nil
	return nil
}

// maxNTACLPayload bounds an NT ACL extension record: 1,024 ACEs with the
// longest SIDs stay below it.
const maxNTACLPayload = 1 << 20

// ntaclRecord handles, during the files stage of a restore, the start of
// the ACL section (the files are over: the last one is finished) and an NT
// ACL record, which becomes the security.NTACL xattr of its inode: with
// the inode's other attributes when it follows the inode or names a
// directory (set in stage 4), else set at once on the restored file. It
// returns the pending file. Only a damaged record is an error; a file
// whose ACL cannot be set is reported through OnName.
func (rs *restorer) ntaclRecord(r *dump.Reader, h *dump.Header, pend *pending, dirs map[uint32]*meta, files map[uint32][]string) (*pending, error) {
	if h.Ext == dump.ExtACLSection {
		rs.finish(pend)
		return nil, nil
	}
	b, err := r.Extension(maxNTACLPayload)
	if err != nil {
		return pend, fmt.Errorf("restore: NT ACL of inode %d: %w", h.Ino, err)
	}
	var acl dump.NTACL
	if err := acl.UnmarshalBinary(b); err != nil {
		return pend, fmt.Errorf("restore: NT ACL of inode %d: %w", h.Ino, err)
	}
	v, err := encodeSambaNTACL(&acl)
	x := dump.Xattr{Name: xattrNTACL, Value: v}
	switch {
	case pend != nil && pend.m.in.Ino == h.Ino:
		if err != nil {
			rs.nameResult(pend.path, h.Ino, err)
		} else {
			pend.m.xattrs = append(pend.m.xattrs, x)
		}
	case dirs[h.Ino] != nil:
		if err == nil {
			dirs[h.Ino].xattrs = append(dirs[h.Ino].xattrs, x)
		}
	case len(files[h.Ino]) > 0 && rs.opt.extractACL:
		p := files[h.Ino][0] // one inode: its other names share the xattr
		if err == nil {
			var pfd int
			var base string
			if pfd, base, err = rs.fs.parent(p); err == nil {
				err = unix.Lsetxattr(procPath(pfd, base), xattrNTACL, v, 0)
			}
		}
		if err != nil {
			rs.nameResult(p, h.Ino, fmt.Errorf("NT ACL: %w", err))
		}
	}
	return pend, nil
}
