package dump

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"time"
)

// Volume holds what the TS_TAPE header says about the dump and the volume.
// The same dates, level and names are in every header of a dump.
type Volume struct {
	Date     time.Time // c_date: when this dump was made (seconds)
	BaseDate time.Time // c_ddate: date of the base dump; zero time for level 0
	Level    int       // c_level
	Label    string    // c_label (at most 15 bytes)
	Filesys  string    // c_filesys: mount point or description (at most 63 bytes)
	Device   string    // c_dev (at most 63 bytes)
	Host     string    // c_host (at most 63 bytes)
	Number   int       // c_volume, counted from 1
	FirstRec int64     // c_firstrec: record index at which this volume starts
	NTREC    int       // c_ntrec: records per tape block
	Flags    uint32    // c_flags
	// Continued is the number of data records of an inode interrupted on
	// the previous volume that follow this volume header (c_count on a
	// continuation volume), and ContinuedIno that inode.
	Continued    int
	ContinuedIno uint32
	// Swapped reports a big-endian (byte-swapped) image.
	Swapped bool
}

// Inode holds the attributes a TS_INODE header carries.
type Inode struct {
	Ino   uint32 // c_inumber; root is 2
	Mode  uint32 // st_mode: file type bits and permissions (16 bits on tape)
	Nlink int    // link count
	UID   uint32 // owner (32-bit)
	GID   uint32 // group (32-bit)
	Size  int64  // di_size in bytes
	// Times. The BSD fields are {u32 seconds, u32 microseconds}; when that
	// loses anything (nanoseconds, times before 1970 or after 2106, a birth
	// time) the writer also stores the exact values in the header's spare
	// area, and the reader returns those.
	Atime, Mtime, Ctime time.Time
	Birthtime           time.Time
	Rdev                uint32 // device number of character and block devices, in Linux dev_t encoding (unix.Mkdev)
	Flags               uint32 // ext2 "chattr" flags (di_flags); restore applies them
	Gen                 int32  // di_gen
	Blocks              int32  // di_blocks (informational)
	MetaOnly            bool   // DR_METAONLY: the header has no data
}

// Unix file type bits as they appear in Inode.Mode.
const (
	ModeFmt  = 0o170000
	ModeSock = 0o140000
	ModeLnk  = 0o120000
	ModeReg  = 0o100000
	ModeBlk  = 0o060000
	ModeDir  = 0o040000
	ModeChr  = 0o020000
	ModeFifo = 0o010000
)

// IsDir reports whether the inode is a directory.
func (i *Inode) IsDir() bool { return i.Mode&ModeFmt == ModeDir }

// FileMode converts Mode to an io/fs file mode.
func (i *Inode) FileMode() fs.FileMode {
	m := fs.FileMode(i.Mode & 0o777)
	switch i.Mode & ModeFmt {
	case ModeDir:
		m |= fs.ModeDir
	case ModeLnk:
		m |= fs.ModeSymlink
	case ModeFifo:
		m |= fs.ModeNamedPipe
	case ModeSock:
		m |= fs.ModeSocket
	case ModeChr:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case ModeBlk:
		m |= fs.ModeDevice
	}
	if i.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if i.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if i.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// Directory entry types (d_type).
const (
	DTUnknown = 0
	DTFifo    = 1
	DTChr     = 2
	DTDir     = 4
	DTBlk     = 6
	DTReg     = 8
	DTLnk     = 10
	DTSock    = 12
)

// DTFromMode returns the d_type for a st_mode.
func DTFromMode(mode uint32) uint8 {
	switch mode & ModeFmt {
	case ModeFifo:
		return DTFifo
	case ModeChr:
		return DTChr
	case ModeDir:
		return DTDir
	case ModeBlk:
		return DTBlk
	case ModeReg:
		return DTReg
	case ModeLnk:
		return DTLnk
	case ModeSock:
		return DTSock
	}
	return DTUnknown
}

// DirEntry is one entry of a directory. Name holds raw bytes (any byte but
// NUL and '/'; not necessarily UTF-8), at most 255 bytes.
type DirEntry struct {
	Ino  uint32
	Type uint8
	Name string
}

// dirSize is DIRSIZ: the smallest record length for a name.
func dirSize(namlen int) int { return (8 + namlen + 1 + 3) &^ 3 }

// dirBlock is DIRBLKSIZ: entries never cross a 512-byte boundary.
const dirBlock = 512

// EncodeDir encodes entries as 4.4BSD directory chunks of 512 bytes, the
// form Linux restore reads. The result's length is a multiple of 512.
func EncodeDir(entries []DirEntry) ([]byte, error) {
	return encodeDir(entries, binary.LittleEndian)
}

func encodeDir(entries []DirEntry, o binary.ByteOrder) ([]byte, error) {
	var out []byte
	chunk := make([]byte, 0, dirBlock)
	lastOff := -1 // offset of the last entry in chunk
	flush := func() {
		if len(chunk) == 0 {
			return
		}
		// Pad the last entry to the end of the chunk.
		pad := dirBlock - len(chunk)
		rl := o.Uint16(chunk[lastOff+4:])
		o.PutUint16(chunk[lastOff+4:], rl+uint16(pad))
		chunk = append(chunk, make([]byte, pad)...)
		out = append(out, chunk...)
		chunk = chunk[:0]
		lastOff = -1
	}
	for _, e := range entries {
		n := len(e.Name)
		if n == 0 || n > 255 {
			return nil, fmt.Errorf("%w: directory entry name of %d bytes", ErrFormat, n)
		}
		for i := 0; i < n; i++ {
			if e.Name[i] == 0 || (e.Name[i] == '/') {
				return nil, fmt.Errorf("%w: directory entry name %q contains NUL or '/'", ErrFormat, e.Name)
			}
		}
		rl := dirSize(n)
		if len(chunk)+rl > dirBlock {
			flush()
		}
		lastOff = len(chunk)
		var hdr [8]byte
		o.PutUint32(hdr[0:], e.Ino)
		o.PutUint16(hdr[4:], uint16(rl))
		hdr[6] = e.Type
		hdr[7] = uint8(n) // 255 wraps to 255; 256 is rejected above
		chunk = append(chunk, hdr[:]...)
		chunk = append(chunk, e.Name...)
		chunk = append(chunk, make([]byte, rl-8-n)...)
	}
	flush()
	return out, nil
}

// ParseDir decodes 4.4BSD directory chunks in byte order o. It follows
// Linux restore: a malformed record skips the rest of its 512-byte chunk;
// entries with inode 0 are dropped. Entries whose record length is too
// short for their name (Linux dump writes these for 255-byte names) are
// returned with the name cut to what the record holds.
func ParseDir(b []byte, o binary.ByteOrder) []DirEntry {
	out, _ := parseDir(b, o)
	return out
}

// parseDir is ParseDir that also returns the byte offsets of the entries
// whose record length ended the parse of their chunk (the rest of that
// chunk is lost).
func parseDir(b []byte, o binary.ByteOrder) (out []DirEntry, bad []int) {
	for base := 0; base < len(b); base += dirBlock {
		end := min(base+dirBlock, len(b))
		off := base
		for off+8 <= end {
			ino := o.Uint32(b[off:])
			rl := int(o.Uint16(b[off+4:]))
			typ := b[off+6]
			nl := int(b[off+7])
			if rl < 8 || rl%4 != 0 || off+rl > end {
				bad = append(bad, off) // mangled: go to the next chunk
				break
			}
			if ino != 0 {
				n := min(nl, rl-8)
				name := b[off+8 : off+8+n]
				for i, c := range name {
					if c == 0 {
						name = name[:i]
						break
					}
				}
				if len(name) > 0 {
					out = append(out, DirEntry{Ino: ino, Type: typ, Name: string(name)})
				}
			}
			off += rl
		}
	}
	return out, bad
}

// Bitmap is an inode map as TS_CLRI and TS_BITS carry it: the bit for inode
// i is bit (i-1)%8 of byte (i-1)/8.
type Bitmap struct {
	b []byte
}

// NewBitmap returns an empty map that can hold inodes 1..maxIno.
func NewBitmap(maxIno uint32) *Bitmap {
	n := (int64(maxIno) + 7) / 8
	n = (n + RecordSize - 1) / RecordSize * RecordSize
	if n == 0 {
		n = RecordSize
	}
	return &Bitmap{b: make([]byte, n)}
}

// BitmapFromBytes wraps map bytes read from an image.
func BitmapFromBytes(b []byte) *Bitmap { return &Bitmap{b: b} }

// Set marks inode ino; inodes beyond the map are ignored.
func (m *Bitmap) Set(ino uint32) {
	if ino == 0 {
		return
	}
	i := int64(ino-1) / 8
	if i < int64(len(m.b)) {
		m.b[i] |= 1 << ((ino - 1) % 8)
	}
}

// Has reports whether inode ino is marked.
func (m *Bitmap) Has(ino uint32) bool {
	if m == nil || ino == 0 {
		return false
	}
	i := int64(ino-1) / 8
	return i < int64(len(m.b)) && m.b[i]&(1<<((ino-1)%8)) != 0
}

// MaxIno is the highest inode number the map can hold.
func (m *Bitmap) MaxIno() uint32 {
	n := int64(len(m.b)) * 8
	if n > 0xffffffff {
		return 0xffffffff
	}
	return uint32(n)
}

// Bytes returns the map bytes (a multiple of RecordSize long).
func (m *Bitmap) Bytes() []byte { return m.b }

// Inodes lists the marked inodes in ascending order.
func (m *Bitmap) Inodes() []uint32 {
	var out []uint32
	for i, c := range m.b {
		for c != 0 {
			bit := uint32(0)
			for c&(1<<bit) == 0 {
				bit++
			}
			c &^= 1 << bit
			out = append(out, uint32(i)*8+bit+1)
		}
	}
	return out
}
