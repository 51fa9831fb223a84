// Package simtap reads and writes SIMH ".tap" tape cartridge files.
//
// A SIMH tape image is a sequence of objects. A data record is a 4-byte
// little-endian length word, the record's bytes (padded with one zero byte
// when the length is odd) and the same length word again; a length word of
// zero is a tape mark. The top four bits of a length word are its class:
// class 0 is a good record, class 8 (the high bit, MTR_ERF) a record read
// back with an error. The special words 0xFFFFFFFF (end of medium) and
// 0xFFFFFFFE (erase gap) are recognised: an erase gap is skipped, an end of
// medium word ends the recorded data.
//
// A Cartridge is an open tape image together with a sidecar index file
// (the image's path plus ".idx") holding the offset of every object, so
// that positioning to record N or file N and spacing backwards take
// constant (or logarithmic) time. The index is rebuilt from the image when
// it is missing or does not match. A record that was only partly written
// (the writer was killed) is detected when the cartridge is opened and cut
// off, so it is never read back as data.
//
// # Compression extension
//
// Records may be stored compressed with zstd. Tapestry marks such records
// with the SIMH "private data" classes 1, 2 and 3 in both length words (for
// the levels Fast, Default and Better); the class and the uncompressed
// length are also kept in the sidecar index. A compressed record reads back
// transparently through ReadRecord. Images written without compression are
// plain SIMH images that any SIMH tool reads.
//
// # Tape marks
//
// Like a real drive, ReadRecord passes over a tape mark: it returns
// ErrTapeMark and leaves the head on the far (end of tape) side of the mark.
// SpaceRecords never crosses a tape mark; SpaceFiles does.
package simtap

import (
	"errors"
	"fmt"
)

// Length word values and bits of the SIMH format.
const (
	wordTapeMark  = 0x00000000
	wordEOM       = 0xFFFFFFFF
	wordGap       = 0xFFFFFFFE
	wordHalfGap   = 0xFFFEFFFF
	classMask     = 0xF0000000
	classShift    = 28
	lengthMask    = 0x0FFFFFFF
	classBad      = 8
	MaxRecordSize = 0x00FFFFFF // the largest record SIMH allows (MTR_MAXLEN)
)

// Compression is how a record's data is stored on the cartridge.
type Compression uint8

// Compression types. None keeps the image a plain SIMH image.
const (
	None    Compression = iota // stored as written
	Fast                       // zstd, fastest level
	Default                    // zstd, default level
	Better                     // zstd, better compression level
)

// String returns a short name of the compression type.
func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Fast:
		return "zstd-fast"
	case Default:
		return "zstd-default"
	case Better:
		return "zstd-better"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// Errors returned by a Cartridge.
var (
	// ErrTapeMark is returned by ReadRecord when the head passes a tape
	// mark. It plays the role io.EOF plays for a file.
	ErrTapeMark = errors.New("simtap: tape mark")
	// ErrEndOfData is returned when the head stands at the end of the
	// recorded data (a real drive reports blank check).
	ErrEndOfData = errors.New("simtap: end of recorded data")
	// ErrBadRecord is returned with the data of a record that carries the
	// SIMH error flag.
	ErrBadRecord = errors.New("simtap: record flagged bad")
	// ErrTruncated is returned when a record is longer than the buffer
	// given to ReadRecord; the buffer holds the record's first bytes.
	ErrTruncated = errors.New("simtap: record longer than buffer")
	// ErrCorrupt is returned for a compressed record that does not
	// decompress; the head passes the record.
	ErrCorrupt = errors.New("simtap: corrupt compressed record")
	// ErrReadOnly is returned by write operations on a cartridge opened
	// read-only.
	ErrReadOnly = errors.New("simtap: cartridge opened read-only")
	// ErrRecordSize is returned for a record that is empty or larger than
	// MaxRecordSize.
	ErrRecordSize = errors.New("simtap: record size out of range")
	// ErrClosed is returned by operations on a closed cartridge.
	ErrClosed = errors.New("simtap: cartridge closed")
	// ErrMediumGone is returned by the writes, Sync and Close of a
	// cartridge whose image file was removed or replaced by another file
	// while it was open: what is written can no longer be found at the
	// image's path (a medium error). Once seen it stays.
	ErrMediumGone = errors.New("simtap: image file removed or replaced")
)

// Kind is the kind of an object on the tape.
type Kind uint8

// Kinds of tape objects.
const (
	KindData Kind = iota // a data record
	KindMark             // a tape mark
)

// Position is where the head stands.
type Position struct {
	Index  int64 // objects (records and marks) between BOT and the head
	File   int64 // tape marks between BOT and the head
	Record int64 // records between the preceding tape mark (or BOT) and the head
	Offset int64 // byte offset of the head in the image file
}

// Object describes the object in front of the head.
type Object struct {
	Kind        Kind
	Length      int // logical (uncompressed) length, -1 if not known yet
	Stored      int // bytes stored in the image (without length words)
	Compression Compression
	Bad         bool  // SIMH error flag set
	Offset      int64 // byte offset of the leading length word
}
