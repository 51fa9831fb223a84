package smtape

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Magic opens every image header: the first eight bytes of an image and of
// every later tape of it.
const Magic = "TPSMTAPE"

// Version is the header and chunk format this package writes and reads.
const Version = 1

// BlockSize is the unit of a header's length: a header is padded with zeros
// to a multiple of 4 KB, the smallest tape record an SMTape image is
// written with (S6).
const BlockSize = 4096

// Limits a header keeps to (S2: at most 255 snapshots).
const (
	MaxSnapshots = 255
	MaxName      = 255
	maxHeader    = 1 << 20
	fixedHeader  = 96 // bytes before the strings, see docs/smtape-format.md
)

// Mode is how an image relates to earlier ones (S1, S3).
type Mode uint8

// The backup modes.
const (
	Baseline     Mode = 0 // the whole volume and its snapshots
	Incremental  Mode = 1 // changes since the previous image of the set
	Differential Mode = 2 // changes since the baseline of the set
)

// String returns the mode as `system smtape showheader` prints it.
func (m Mode) String() string {
	switch m {
	case Baseline:
		return "baseline"
	case Incremental:
		return "incremental"
	case Differential:
		return "differential"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// VolumeType is the type of the source volume.
type VolumeType uint8

// The volume types an image records.
const (
	VolumeRW VolumeType = 1 // read/write
	VolumeDP VolumeType = 2 // data protection (a mirror destination)
)

// String returns the type as ONTAP spells it.
func (v VolumeType) String() string {
	switch v {
	case VolumeRW:
		return "RW"
	case VolumeDP:
		return "DP"
	}
	return fmt.Sprintf("type(%d)", uint8(v))
}

// Snapshot is one snapshot carried by an image.
type Snapshot struct {
	Name    string
	Created time.Time
	ID      uint64 // the provider's identity of the snapshot (e.g. a btrfs generation)
}

// Header describes an image. The same header, with Tape and FirstChunk
// changed, opens every tape of a multi-tape image.
type Header struct {
	SetID        [16]byte  // the backup set id (SMTAPE_BACKUP_SET_ID), made by the baseline
	Time         time.Time // when this image's snapshot was taken (its DUMP_DATE)
	BaseTime     time.Time // the previous image's Time (BASE_DATE); zero for a baseline
	Mode         Mode
	Sequence     uint32 // 0 for the baseline, then 1, 2, ... for each image after it
	Node         string // the node that wrote the image
	SVM          string
	Volume       string
	FSType       string // the source's file system (btrfs, xfs, ...)
	VolumeType   VolumeType
	Capacity     uint64 // the volume's size in bytes
	Used         uint64 // bytes used on the volume
	BlockSize    uint32 // the tape record size the image was written with
	BaseSnapshot string // the snapshot an incremental or differential starts from
	Snapshots    []Snapshot
	Tape         uint16 // 1 for the first tape of the image
	FirstChunk   uint64 // the number of the first chunk on this tape
}

// validate checks what a writer must not write.
func (h *Header) validate() error {
	if len(h.Snapshots) > MaxSnapshots {
		return fail(ErrInternal, fmt.Sprintf("%d snapshots, at most %d", len(h.Snapshots), MaxSnapshots))
	}
	for _, s := range append([]string{h.Node, h.SVM, h.Volume, h.FSType, h.BaseSnapshot}, snapNames(h.Snapshots)...) {
		if len(s) > MaxName {
			return fail(ErrInternal, fmt.Sprintf("name of %d bytes, at most %d", len(s), MaxName))
		}
	}
	if h.Mode > Differential {
		return fail(ErrInternal, "unknown mode "+h.Mode.String())
	}
	return nil
}

func snapNames(ss []Snapshot) []string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.Name
	}
	return names
}

// MarshalBinary encodes the header padded to a multiple of BlockSize.
func (h *Header) MarshalBinary() ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	e := enc{b: make([]byte, 0, BlockSize)}
	e.raw([]byte(Magic))
	e.u16(Version)
	e.u16(0) // flags
	e.u32(0) // length, set below
	e.raw(h.SetID[:])
	e.i64(unixNano(h.Time))
	e.i64(unixNano(h.BaseTime))
	e.u8(uint8(h.Mode))
	e.u8(uint8(h.VolumeType))
	e.u16(h.Tape)
	e.u32(h.Sequence)
	e.u32(h.BlockSize)
	e.u32(0) // reserved
	e.u64(h.Capacity)
	e.u64(h.Used)
	e.u64(h.FirstChunk)
	e.u16(uint16(len(h.Snapshots)))
	e.u16(0) // reserved
	e.u32(0) // reserved
	for _, s := range []string{h.Node, h.SVM, h.Volume, h.FSType, h.BaseSnapshot} {
		e.str(s)
	}
	for _, s := range h.Snapshots {
		e.str(s.Name)
		e.i64(unixNano(s.Created))
		e.u64(s.ID)
	}
	binary.BigEndian.PutUint32(e.b[12:], uint32(len(e.b)+4))
	e.u32(checksum(e.b))
	if pad := len(e.b) % BlockSize; pad != 0 {
		e.raw(make([]byte, BlockSize-pad))
	}
	return e.b, nil
}

// unixNano returns t in nanoseconds since 1970, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano is the inverse of unixNano.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// ReadHeader reads one header from r: the 4 KB block that starts it and the
// blocks its length says follow. It does not check the tape number.
func ReadHeader(r io.Reader) (*Header, error) {
	first := make([]byte, BlockSize)
	if _, err := io.ReadFull(r, first); err != nil {
		return nil, fail(ErrHeader, "image starts with "+readErr(err))
	}
	return readHeaderRest(r, first)
}

// readHeaderRest decodes a header whose first block is first, reading the
// rest of it from r.
func readHeaderRest(r io.Reader, first []byte) (*Header, error) {
	if !bytes.HasPrefix(first, []byte(Magic)) {
		return nil, fail(ErrMagic, fmt.Sprintf("%q", first[:len(Magic)]))
	}
	if v := binary.BigEndian.Uint16(first[8:]); v != Version {
		return nil, fail(ErrChunkFormat, fmt.Sprintf("header version %d", v))
	}
	n := int(binary.BigEndian.Uint32(first[12:]))
	if n < fixedHeader+4 || n > maxHeader {
		return nil, fail(ErrHeader, fmt.Sprintf("header length %d", n))
	}
	buf := first
	if padded := (n + BlockSize - 1) / BlockSize * BlockSize; padded > BlockSize {
		buf = append(buf, make([]byte, padded-BlockSize)...)
		if _, err := io.ReadFull(r, buf[BlockSize:]); err != nil {
			return nil, fail(ErrHeader, "header cut short: "+readErr(err))
		}
	}
	if got, want := checksum(buf[:n-4]), binary.BigEndian.Uint32(buf[n-4:]); got != want {
		return nil, fail(ErrHeader, fmt.Sprintf("header checksum %08x, expected %08x", got, want))
	}
	return decodeHeader(buf[:n-4])
}

// decodeHeader decodes the checked bytes of a header.
func decodeHeader(b []byte) (*Header, error) {
	d := dec{b: b[16:]}
	h := &Header{}
	copy(h.SetID[:], d.take(16))
	h.Time = fromUnixNano(d.i64())
	h.BaseTime = fromUnixNano(d.i64())
	h.Mode = Mode(d.u8())
	h.VolumeType = VolumeType(d.u8())
	h.Tape = d.u16()
	h.Sequence = d.u32()
	h.BlockSize = d.u32()
	d.u32()
	h.Capacity, h.Used, h.FirstChunk = d.u64(), d.u64(), d.u64()
	nsnap := int(d.u16())
	d.take(6)
	for _, p := range []*string{&h.Node, &h.SVM, &h.Volume, &h.FSType, &h.BaseSnapshot} {
		*p = d.str()
	}
	if nsnap > MaxSnapshots || h.Mode > Differential {
		return nil, fail(ErrHeader, fmt.Sprintf("%d snapshots, mode %d", nsnap, h.Mode))
	}
	for i := 0; i < nsnap && !d.short; i++ {
		s := Snapshot{Name: d.str(), Created: fromUnixNano(d.i64()), ID: d.u64()}
		h.Snapshots = append(h.Snapshots, s)
	}
	if d.short || len(d.b) != 0 {
		return nil, fail(ErrHeader, "header fields do not fill its length")
	}
	return h, nil
}

// readErr says what a failed read found.
func readErr(err error) string {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return "end of data"
	}
	return err.Error()
}
