package dump

import (
	"encoding/binary"
	"errors"
	"time"
)

// Format constants of the BSD "new" dump format as Linux dump writes it.
const (
	RecordSize   = 1024  // TP_BSIZE: bytes in a header or data record
	DefaultNTREC = 10    // records per tape block unless Options.NTREC says otherwise
	MaxNTREC     = 256   // largest tape block (256 KB) the writer and reader accept
	NFSMagic     = 60012 // c_magic of every header
	checksumSum  = 84446 // CHECKSUM: the sum of a header's 256 words
	maxAddr      = 512   // TP_NINDIR: c_addr entries in one header
	RootIno      = 2     // inode number of the root directory
	// XattrRecordMax is the largest ext2 EA buffer Linux restore accepts
	// (XATTR_MAXSIZE); larger attribute sets go into an extension record.
	XattrRecordMax = 4096
)

// Record types (c_type).
const (
	TypeTape  = 1 // TS_TAPE: volume header
	TypeInode = 2 // TS_INODE: start of an inode
	TypeBits  = 3 // TS_BITS: map of the inodes on this dump
	TypeAddr  = 4 // TS_ADDR: continuation of an inode's block map
	TypeEnd   = 5 // TS_END: end of the dump
	TypeClri  = 6 // TS_CLRI: map of every live inode
)

// Header flags (c_flags).
const (
	FlagNewHeader     = 0x1    // DR_NEWHEADER: TS_TAPE has valid c_firstrec and c_count
	FlagNewInodeFmt   = 0x2    // DR_NEWINODEFMT: 32-bit uid/gid, BSD directories with d_type
	FlagCompressed    = 0x80   // DR_COMPRESSED: compressed tape blocks (not supported)
	FlagMetaOnly      = 0x100  // DR_METAONLY: inode without data (dump -m)
	FlagExtAttributes = 0x8000 // DR_EXTATTRIBUTES: the record is an inode extension
	// FlagTapestry marks a Tapestry extension record (a TS_INODE record
	// shaped like an empty EXT_XATTR record). Linux restore ignores the bit.
	FlagTapestry = 0x40000000
)

// Values of c_extattributes on DR_EXTATTRIBUTES records.
const (
	extXattr = 3 // EXT_XATTR
)

// Sentinel errors. Errors returned by this package wrap one of them when the
// image is at fault, so callers can test with errors.Is.
var (
	ErrChecksum    = errors.New("dump: header checksum mismatch")
	ErrMagic       = errors.New("dump: not a dump header (bad magic)")
	ErrTruncated   = errors.New("dump: image truncated")
	ErrCount       = errors.New("dump: absurd count or size in header")
	ErrFormat      = errors.New("dump: malformed image")
	ErrCompressed  = errors.New("dump: compressed dump images are not supported")
	ErrEndOfMedium = errors.New("dump: end of medium")
	ErrWriter      = errors.New("dump: writer used out of order")
)

// Limits the reader enforces so that no header makes it allocate without
// bound.
const (
	maxMapRecords  = 1 << 19  // a map for 2^32 inodes
	maxDirSize     = 64 << 20 // largest directory the reader parses
	maxXattrRecord = 64       // records in one EA record (restore itself stops at 4)
	maxExtPayload  = 1 << 40  // largest extension payload (streams may be big)
	maxFileSize    = 1 << 60  // a sanity bound on di_size
)

// raw is a decoded header record, field by field as on tape.
type raw struct {
	typ      int32
	date     int32
	ddate    int32
	volume   int32
	tapea    uint32
	inumber  uint32
	magic    int32
	checksum int32

	mode               uint16
	nlink              int16
	ouid, ogid         uint16
	size               uint64
	atime, atimeUsec   uint32
	mtime, mtimeUsec   uint32
	ctime, ctimeUsec   uint32
	db                 [12]uint32
	ib                 [3]uint32
	diFlags            uint32
	blocks             int32
	gen                int32
	uid, gid           uint32
	count              int32
	addr               [maxAddr]byte
	label              [16]byte
	level              int32
	filesys, dev, host [64]byte
	flags              int32
	firstrec           int32
	ntrec              int32
	extattributes      int32
	spare              [120]byte // c_spare, where Tapestry keeps its extension fields
	order              binary.ByteOrder
	swapped            bool
	tapestry           bool
	extKind, extPart   uint32
	extTotal           uint64
	extCRC             uint32
	extIno             uint32
	exact              bool     // exact times in c_spare (Tapestry)
	exactSec           [4]int64 // atime, mtime, ctime, birth time
	exactNsec          [4]uint32
}

// tapestryMagic is at c_spare offset 0 of every Tapestry extension record.
var tapestryMagic = [8]byte{'T', 'P', 'S', 'T', 'R', 'Y', 'X', '1'}

// timesMagic is at c_spare offset 0 of inode headers that carry exact
// times.
var timesMagic = [8]byte{'T', 'P', 'S', 'T', 'R', 'Y', 'T', '1'}

// encode writes h into b (RecordSize bytes) in h.order (little-endian when
// nil) and sets the checksum.
func (h *raw) encode(b []byte) {
	o := h.order
	if o == nil {
		o = binary.LittleEndian
	}
	clear(b[:RecordSize])
	o.PutUint32(b[0:], uint32(h.typ))
	o.PutUint32(b[4:], uint32(h.date))
	o.PutUint32(b[8:], uint32(h.ddate))
	o.PutUint32(b[12:], uint32(h.volume))
	o.PutUint32(b[16:], h.tapea)
	o.PutUint32(b[20:], h.inumber)
	o.PutUint32(b[24:], NFSMagic)
	o.PutUint16(b[32:], h.mode)
	o.PutUint16(b[34:], uint16(h.nlink))
	o.PutUint16(b[36:], h.ouid)
	o.PutUint16(b[38:], h.ogid)
	o.PutUint64(b[40:], h.size)
	o.PutUint32(b[48:], h.atime)
	o.PutUint32(b[52:], h.atimeUsec)
	o.PutUint32(b[56:], h.mtime)
	o.PutUint32(b[60:], h.mtimeUsec)
	o.PutUint32(b[64:], h.ctime)
	o.PutUint32(b[68:], h.ctimeUsec)
	for i, v := range h.db {
		o.PutUint32(b[72+4*i:], v)
	}
	for i, v := range h.ib {
		o.PutUint32(b[120+4*i:], v)
	}
	o.PutUint32(b[132:], h.diFlags)
	o.PutUint32(b[136:], uint32(h.blocks))
	o.PutUint32(b[140:], uint32(h.gen))
	o.PutUint32(b[144:], h.uid)
	o.PutUint32(b[148:], h.gid)
	o.PutUint32(b[160:], uint32(h.count))
	copy(b[164:676], h.addr[:])
	copy(b[676:692], h.label[:])
	o.PutUint32(b[692:], uint32(h.level))
	copy(b[696:760], h.filesys[:])
	copy(b[760:824], h.dev[:])
	copy(b[824:888], h.host[:])
	o.PutUint32(b[888:], uint32(h.flags))
	o.PutUint32(b[892:], uint32(h.firstrec))
	o.PutUint32(b[896:], uint32(h.ntrec))
	o.PutUint32(b[900:], uint32(h.extattributes))
	copy(b[904:1024], h.spare[:])
	if h.tapestry {
		copy(b[904:912], tapestryMagic[:])
		o.PutUint32(b[912:], h.extKind)
		o.PutUint32(b[916:], h.extPart)
		o.PutUint64(b[920:], h.extTotal)
		o.PutUint32(b[928:], h.extCRC)
		o.PutUint32(b[932:], h.extIno)
	} else if h.exact {
		copy(b[904:912], timesMagic[:])
		for i := 0; i < 4; i++ {
			o.PutUint64(b[912+12*i:], uint64(h.exactSec[i]))
			o.PutUint32(b[920+12*i:], h.exactNsec[i])
		}
	}
	setChecksum(b, o)
}

// setChecksum stores c_checksum so that the header's words sum to CHECKSUM.
func setChecksum(b []byte, o binary.ByteOrder) {
	o.PutUint32(b[28:], 0)
	o.PutUint32(b[28:], uint32(checksumSum)-sumWords(b, o))
}

// sumWords adds the header's 256 words in byte order o.
func sumWords(b []byte, o binary.ByteOrder) uint32 {
	b = b[:RecordSize]
	switch o {
	case binary.LittleEndian:
		// Two words per load, without a call per word.
		var s uint32
		for i := 0; i < RecordSize; i += 8 {
			v := binary.LittleEndian.Uint64(b[i:])
			s += uint32(v) + uint32(v>>32)
		}
		return s
	case binary.BigEndian:
		var s uint32
		for i := 0; i < RecordSize; i += 8 {
			v := binary.BigEndian.Uint64(b[i:])
			s += uint32(v) + uint32(v>>32)
		}
		return s
	}
	var s uint32
	for i := 0; i < RecordSize; i += 4 {
		s += o.Uint32(b[i:])
	}
	return s
}

// decode parses a header record, detecting the byte order from c_magic and
// verifying the checksum.
func (h *raw) decode(b []byte) error {
	if len(b) < RecordSize {
		return ErrTruncated
	}
	switch {
	case binary.LittleEndian.Uint32(b[24:]) == NFSMagic:
		h.order, h.swapped = binary.LittleEndian, false
	case binary.BigEndian.Uint32(b[24:]) == NFSMagic:
		h.order, h.swapped = binary.BigEndian, true
	default:
		return ErrMagic
	}
	o := h.order
	if sumWords(b, o) != checksumSum {
		return ErrChecksum
	}
	h.typ = int32(o.Uint32(b[0:]))
	h.date = int32(o.Uint32(b[4:]))
	h.ddate = int32(o.Uint32(b[8:]))
	h.volume = int32(o.Uint32(b[12:]))
	h.tapea = o.Uint32(b[16:])
	h.inumber = o.Uint32(b[20:])
	h.magic = NFSMagic
	h.checksum = int32(o.Uint32(b[28:]))
	h.mode = o.Uint16(b[32:])
	h.nlink = int16(o.Uint16(b[34:]))
	h.ouid = o.Uint16(b[36:])
	h.ogid = o.Uint16(b[38:])
	h.size = o.Uint64(b[40:])
	h.atime = o.Uint32(b[48:])
	h.atimeUsec = o.Uint32(b[52:])
	h.mtime = o.Uint32(b[56:])
	h.mtimeUsec = o.Uint32(b[60:])
	h.ctime = o.Uint32(b[64:])
	h.ctimeUsec = o.Uint32(b[68:])
	for i := range h.db {
		h.db[i] = o.Uint32(b[72+4*i:])
	}
	for i := range h.ib {
		h.ib[i] = o.Uint32(b[120+4*i:])
	}
	h.diFlags = o.Uint32(b[132:])
	h.blocks = int32(o.Uint32(b[136:]))
	h.gen = int32(o.Uint32(b[140:]))
	h.uid = o.Uint32(b[144:])
	h.gid = o.Uint32(b[148:])
	h.count = int32(o.Uint32(b[160:]))
	copy(h.addr[:], b[164:676])
	copy(h.label[:], b[676:692])
	h.level = int32(o.Uint32(b[692:]))
	copy(h.filesys[:], b[696:760])
	copy(h.dev[:], b[760:824])
	copy(h.host[:], b[824:888])
	h.flags = int32(o.Uint32(b[888:]))
	h.firstrec = int32(o.Uint32(b[892:]))
	h.ntrec = int32(o.Uint32(b[896:]))
	h.extattributes = int32(o.Uint32(b[900:]))
	copy(h.spare[:], b[904:1024])
	h.tapestry = false
	if h.typ == TypeInode && h.flags&FlagTapestry != 0 && h.flags&FlagExtAttributes != 0 && [8]byte(b[904:912]) == tapestryMagic {
		h.tapestry = true
		h.extKind = o.Uint32(b[912:])
		h.extPart = o.Uint32(b[916:])
		h.extTotal = o.Uint64(b[920:])
		h.extCRC = o.Uint32(b[928:])
		h.extIno = o.Uint32(b[932:])
	}
	h.exact = false
	if !h.tapestry && (h.typ == TypeInode || h.typ == TypeAddr) && [8]byte(b[904:912]) == timesMagic {
		h.exact = true
		for i := 0; i < 4; i++ {
			h.exactSec[i] = int64(o.Uint64(b[912+12*i:]))
			h.exactNsec[i] = o.Uint32(b[920+12*i:])
		}
	}
	return nil
}

// cstr returns the NUL-terminated string in b.
func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// putCstr copies s into b, truncating it so that a NUL always fits.
func putCstr(b []byte, s string) {
	clear(b)
	if len(s) > len(b)-1 {
		s = s[:len(b)-1]
	}
	copy(b, s)
}

// unixTime converts an on-tape {sec, usec} pair.
func unixTime(sec, usec uint32) time.Time {
	if usec >= 1000000 {
		usec = 0
	}
	return time.Unix(int64(sec), int64(usec)*1000)
}

// tapeTime converts t to the on-tape {sec, usec} pair; times outside the
// unsigned 32-bit range are clamped (the exact times in the header's spare
// area keep the exact value).
func tapeTime(t time.Time) (sec, usec uint32) {
	if t.IsZero() {
		return 0, 0
	}
	s := t.Unix()
	switch {
	case s < 0:
		return 0, 0
	case s > 0xffffffff:
		return 0xffffffff, 0
	}
	return uint32(s), uint32(t.Nanosecond() / 1000)
}

// dumpDate converts a dump date (signed 32-bit seconds).
func dumpDate(t time.Time) int32 {
	if t.IsZero() {
		return 0
	}
	s := t.Unix()
	if s > 0x7fffffff || s < -0x80000000 {
		return 0x7fffffff
	}
	return int32(s)
}
