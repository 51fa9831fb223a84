package smtape

import (
	"encoding/binary"
	"fmt"
)

// ChunkMagic opens every chunk header.
const ChunkMagic = "TPCK"

// ChunkHeaderSize is the size of a chunk header.
const ChunkHeaderSize = 32

// MaxPayload is the largest chunk payload: 16 MB.
const MaxPayload = 16 << 20

// ChunkType says what a chunk's payload holds.
type ChunkType uint16

// The chunk types. Records of the types from TypeSnapshot to TypeDelete are
// described in records.go; TypeEnd closes the image.
const (
	TypeSnapshot    ChunkType = 1 // a snapshot's tree starts
	TypeInode       ChunkType = 2 // an inode's attributes
	TypeDirent      ChunkType = 3 // a directory entry
	TypeExtent      ChunkType = 4 // data stored once in the image
	TypeMap         ChunkType = 5 // a range of a file mapped onto an extent
	TypeDelete      ChunkType = 6 // an inode or directory entry gone since the base
	TypeSnapshotEnd ChunkType = 7 // a snapshot's tree ends
	TypeEnd         ChunkType = 0xffff
)

// Chunk is one chunk of an image.
type Chunk struct {
	Type    ChunkType
	Seq     uint64 // numbered from 0 without a gap over the whole image
	Flags   uint16
	Payload []byte
}

// chunkHeader encodes the 32-byte header of c.
func chunkHeader(c *Chunk) []byte {
	e := enc{b: make([]byte, 0, ChunkHeaderSize)}
	e.raw([]byte(ChunkMagic))
	e.u16(Version)
	e.u16(uint16(c.Type))
	e.u64(c.Seq)
	e.u32(uint32(len(c.Payload)))
	e.u16(c.Flags)
	e.u16(0)
	e.u32(checksum(c.Payload))
	e.u32(checksum(e.b))
	return e.b
}

// parsedHeader is a decoded chunk header whose checksum held.
type parsedHeader struct {
	typ    ChunkType
	seq    uint64
	length int
	flags  uint16
	sum    uint32
}

// parseChunkHeader checks and decodes a chunk header. The caller has
// already ruled out an image header (the next tape's) in its place.
func parseChunkHeader(b []byte) (parsedHeader, error) {
	if string(b[:4]) != ChunkMagic {
		return parsedHeader{}, fail(ErrReadImage, fmt.Sprintf("no chunk header: %q", b[:4]))
	}
	if got, want := checksum(b[:28]), binary.BigEndian.Uint32(b[28:]); got != want {
		return parsedHeader{}, fail(ErrChecksum, fmt.Sprintf("chunk header checksum %08x, expected %08x", got, want))
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != Version {
		return parsedHeader{}, fail(ErrChunkFormat, fmt.Sprintf("chunk format %d", v))
	}
	p := parsedHeader{
		typ:    ChunkType(binary.BigEndian.Uint16(b[6:])),
		seq:    binary.BigEndian.Uint64(b[8:]),
		length: int(binary.BigEndian.Uint32(b[16:])),
		flags:  binary.BigEndian.Uint16(b[20:]),
		sum:    binary.BigEndian.Uint32(b[24:]),
	}
	if p.length > MaxPayload {
		return parsedHeader{}, fail(ErrChunkFormat, fmt.Sprintf("chunk of %d bytes", p.length))
	}
	if !knownType(p.typ) {
		return parsedHeader{}, fail(ErrChunkFormat, fmt.Sprintf("chunk type %d", p.typ))
	}
	return p, nil
}

// knownType reports whether t is a chunk type of this version.
func knownType(t ChunkType) bool {
	return t == TypeEnd || (t >= TypeSnapshot && t <= TypeSnapshotEnd)
}

// endPayload encodes the end chunk's payload: the number of chunks before
// it and the sum of their payload lengths.
func endPayload(chunks, bytes uint64) []byte {
	e := enc{}
	e.u64(chunks)
	e.u64(bytes)
	return e.b
}
