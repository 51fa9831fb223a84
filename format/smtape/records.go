package smtape

import (
	"fmt"
	"time"
)

// Record is the decoded payload of a chunk of one of the types from
// TypeSnapshot to TypeSnapshotEnd.
type Record interface {
	// Type returns the chunk type the record travels in.
	Type() ChunkType
	encode(e *enc)
	decode(d *dec)
}

// SnapshotStart opens the tree of one snapshot of the image; the inodes,
// entries, extents and maps up to the matching SnapshotEnd belong to it.
type SnapshotStart struct{ Snapshot }

// SnapshotEnd closes the tree of a snapshot.
type SnapshotEnd struct{ Snapshot }

// Xattr is one extended attribute of an inode (ACLs travel as the
// system.posix_acl_* attributes).
type Xattr struct {
	Name  string
	Value []byte
}

// Inode holds the attributes of one file, directory, link or device. A
// later Inode record of the same number in the same snapshot replaces it.
type Inode struct {
	Ino                        uint64
	Mode                       uint32 // file type and permission bits, as st_mode
	UID, GID                   uint32
	Nlink                      uint32
	Size                       uint64
	Rdev                       uint64
	Flags                      uint32 // inode flags (FS_IOC_GETFLAGS)
	Atime, Mtime, Ctime, Btime time.Time
	Target                     string // a symbolic link's target
	Xattrs                     []Xattr
}

// Dirent names inode Ino in directory Dir.
type Dirent struct {
	Dir  uint64
	Name string
	Ino  uint64
}

// Encoding says how an extent's data is stored.
type Encoding uint8

// The extent encodings: raw bytes, or the compressed bytes of the source's
// extent exactly as the file system stored them (btrfs).
const (
	EncRaw  Encoding = 0
	EncZlib Encoding = 1
	EncLZO  Encoding = 2
	EncZstd Encoding = 3
)

// Extent is data stored once in an image; Map records place it in files,
// as often as the source shared it.
type Extent struct {
	ID       uint64 // unique in the image
	Encoding Encoding
	Length   uint64 // bytes of file data the extent holds once decoded
	Data     []byte // Length bytes when raw, the compressed bytes otherwise
}

// Map places Length bytes of extent Extent, from ExtentOffset in its
// decoded data, at Offset of inode Ino. A range of a file that no Map
// covers is a hole.
type Map struct {
	Ino          uint64
	Offset       uint64
	Length       uint64
	Extent       uint64
	ExtentOffset uint64
}

// Delete removes, in an incremental or differential image, the entry Name
// of directory Dir, or with an empty Name the inode Ino and every entry of it.
type Delete struct {
	Ino  uint64
	Dir  uint64
	Name string
}

// Type returns TypeSnapshot.
func (*SnapshotStart) Type() ChunkType { return TypeSnapshot }

// Type returns TypeSnapshotEnd.
func (*SnapshotEnd) Type() ChunkType { return TypeSnapshotEnd }

// Type returns TypeInode.
func (*Inode) Type() ChunkType { return TypeInode }

// Type returns TypeDirent.
func (*Dirent) Type() ChunkType { return TypeDirent }

// Type returns TypeExtent.
func (*Extent) Type() ChunkType { return TypeExtent }

// Type returns TypeMap.
func (*Map) Type() ChunkType { return TypeMap }

// Type returns TypeDelete.
func (*Delete) Type() ChunkType { return TypeDelete }

func (s *Snapshot) encode(e *enc) {
	e.str(s.Name)
	e.i64(unixNano(s.Created))
	e.u64(s.ID)
}

func (s *Snapshot) decode(d *dec) {
	s.Name, s.Created, s.ID = d.str(), fromUnixNano(d.i64()), d.u64()
}

func (i *Inode) encode(e *enc) {
	e.u64(i.Ino)
	e.u32(i.Mode)
	e.u32(i.UID)
	e.u32(i.GID)
	e.u32(i.Nlink)
	e.u64(i.Size)
	e.u64(i.Rdev)
	e.u32(i.Flags)
	for _, t := range []time.Time{i.Atime, i.Mtime, i.Ctime, i.Btime} {
		e.i64(unixNano(t))
	}
	e.str(i.Target)
	e.u32(uint32(len(i.Xattrs)))
	for _, x := range i.Xattrs {
		e.str(x.Name)
		e.bytes32(x.Value)
	}
}

func (i *Inode) decode(d *dec) {
	i.Ino, i.Mode, i.UID, i.GID, i.Nlink = d.u64(), d.u32(), d.u32(), d.u32(), d.u32()
	i.Size, i.Rdev, i.Flags = d.u64(), d.u64(), d.u32()
	for _, t := range []*time.Time{&i.Atime, &i.Mtime, &i.Ctime, &i.Btime} {
		*t = fromUnixNano(d.i64())
	}
	i.Target = d.str()
	n := int(d.u32())
	for k := 0; k < n && !d.short; k++ {
		x := Xattr{Name: d.str()}
		x.Value = append([]byte(nil), d.bytes32()...)
		i.Xattrs = append(i.Xattrs, x)
	}
}

func (r *Dirent) encode(e *enc) { e.u64(r.Dir); e.str(r.Name); e.u64(r.Ino) }
func (r *Dirent) decode(d *dec) { r.Dir, r.Name, r.Ino = d.u64(), d.str(), d.u64() }

func (x *Extent) encode(e *enc) {
	e.u64(x.ID)
	e.u8(uint8(x.Encoding))
	e.u64(x.Length)
	e.bytes32(x.Data)
}

func (x *Extent) decode(d *dec) {
	x.ID, x.Encoding, x.Length = d.u64(), Encoding(d.u8()), d.u64()
	x.Data = d.bytes32()
}

func (m *Map) encode(e *enc) {
	e.u64(m.Ino)
	e.u64(m.Offset)
	e.u64(m.Length)
	e.u64(m.Extent)
	e.u64(m.ExtentOffset)
}

func (m *Map) decode(d *dec) {
	m.Ino, m.Offset, m.Length, m.Extent, m.ExtentOffset = d.u64(), d.u64(), d.u64(), d.u64(), d.u64()
}

func (r *Delete) encode(e *enc) { e.u64(r.Ino); e.u64(r.Dir); e.str(r.Name) }
func (r *Delete) decode(d *dec) { r.Ino, r.Dir, r.Name = d.u64(), d.u64(), d.str() }

// FlagData, on an Inode chunk, says that the inode's data follows in Map
// records and replaces what an earlier snapshot of the image (or the image
// an incremental is based on) held; without it only the attributes changed.
const FlagData = 0x1

// WriteRecord writes rec as one chunk.
func (w *Writer) WriteRecord(rec Record) error { return w.WriteRecordFlags(rec, 0) }

// WriteRecordFlags writes rec as one chunk with the chunk flags flags.
func (w *Writer) WriteRecordFlags(rec Record, flags uint16) error {
	e := enc{}
	rec.encode(&e)
	if e.tooLong {
		return fail(ErrInternal, fmt.Sprintf("%T record with a string over 65,535 bytes", rec))
	}
	return w.WriteChunk(rec.Type(), flags, e.b)
}

// DecodeRecord decodes the payload of c. An Extent's Data aliases the
// chunk's payload, valid until the Reader's next call; copy it to keep it.
func DecodeRecord(c *Chunk) (Record, error) {
	var rec Record
	switch c.Type {
	case TypeSnapshot:
		rec = &SnapshotStart{}
	case TypeSnapshotEnd:
		rec = &SnapshotEnd{}
	case TypeInode:
		rec = &Inode{}
	case TypeDirent:
		rec = &Dirent{}
	case TypeExtent:
		rec = &Extent{}
	case TypeMap:
		rec = &Map{}
	case TypeDelete:
		rec = &Delete{}
	default:
		return nil, fail(ErrChunkFormat, fmt.Sprintf("chunk %d of type %d holds no record", c.Seq, c.Type))
	}
	d := dec{b: c.Payload}
	rec.decode(&d)
	if d.short || len(d.b) != 0 {
		return nil, fail(ErrReadImage, fmt.Sprintf("chunk %d: %T record does not fill its payload", c.Seq, rec))
	}
	if x, ok := rec.(*Extent); ok && x.Encoding == EncRaw && uint64(len(x.Data)) != x.Length {
		return nil, fail(ErrReadImage, fmt.Sprintf("chunk %d: raw extent of %d bytes says %d", c.Seq, len(x.Data), x.Length))
	}
	return rec, nil
}
