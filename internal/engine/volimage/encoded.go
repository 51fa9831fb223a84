package volimage

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"unsafe"

	"github.com/klauspost/compress/zstd"
	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"golang.org/x/sys/unix"
)

// btrfs encoded I/O (linux/btrfs.h, Linux 5.18): a compressed extent read
// and written as the file system stores it, so that it travels compressed
// and lands compressed.
const (
	btrfsIocEncodedRead  = 0x80809440
	btrfsIocEncodedWrite = 0x40809440
	maxEncoded           = 128 << 10 // btrfs compresses in extents of at most 128 KiB
)

// btrfs's compression numbers of encoded I/O.
const (
	btrfsEncNone  = 0
	btrfsEncZlib  = 1
	btrfsEncZstd  = 2
	btrfsEncLZO4K = 3
)

type encodedArgs struct {
	iov             uintptr
	iovcnt          uint64
	offset          int64
	flags           uint64
	length          uint64
	unencodedLen    uint64
	unencodedOffset uint64
	compression     uint32
	encryption      uint32
	_               [64]byte
}

// encodedExtent is what an encoded read returned: len bytes of the file
// from the offset read are unencodedOffset.. of an extent of unencodedLen
// bytes stored as data.
type encodedExtent struct {
	data                       []byte
	length                     uint64
	unencodedLen, unencodedOff uint64
	encoding                   smtape.Encoding
}

// encodedRead reads the extent of f at offset as btrfs stores it. It fails
// on other file systems and without CAP_SYS_ADMIN; the caller reads plain
// data then.
func encodedRead(f int, offset uint64, buf []byte) (*encodedExtent, error) {
	iov := unix.Iovec{Base: &buf[0]}
	iov.SetLen(len(buf))
	a := encodedArgs{iov: uintptr(unsafe.Pointer(&iov)), iovcnt: 1, offset: int64(offset)}
	n, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(f), btrfsIocEncodedRead, uintptr(unsafe.Pointer(&a)))
	if errno != 0 {
		return nil, fmt.Errorf("encoded read at %d: %w", offset, errno)
	}
	enc, ok := fromBtrfs(a.compression)
	if !ok || a.encryption != 0 || a.length == 0 {
		return nil, fmt.Errorf("encoded read at %d: compression %d, encryption %d: %w", offset, a.compression, a.encryption, unix.EOPNOTSUPP)
	}
	return &encodedExtent{data: buf[:n], length: a.length, unencodedLen: a.unencodedLen, unencodedOff: a.unencodedOffset, encoding: enc}, nil
}

func fromBtrfs(c uint32) (smtape.Encoding, bool) {
	switch c {
	case btrfsEncNone:
		return smtape.EncRaw, true
	case btrfsEncZlib:
		return smtape.EncZlib, true
	case btrfsEncZstd:
		return smtape.EncZstd, true
	case btrfsEncLZO4K:
		return smtape.EncLZO, true
	}
	return 0, false
}

func toBtrfs(e smtape.Encoding) uint32 {
	switch e {
	case smtape.EncZlib:
		return btrfsEncZlib
	case smtape.EncZstd:
		return btrfsEncZstd
	case smtape.EncLZO:
		return btrfsEncLZO4K
	}
	return btrfsEncNone
}

// encodedWrite writes a range of a compressed extent into f at offset as
// it is, so the file system stores it compressed without recompressing.
func encodedWrite(f int, offset uint64, m *smtape.Map, x *smtape.Extent) error {
	if len(x.Data) == 0 {
		return unix.EINVAL
	}
	iov := unix.Iovec{Base: &x.Data[0]}
	iov.SetLen(len(x.Data))
	a := encodedArgs{
		iov: uintptr(unsafe.Pointer(&iov)), iovcnt: 1, offset: int64(offset), length: m.Length,
		unencodedLen: x.Length, unencodedOffset: m.ExtentOffset, compression: toBtrfs(x.Encoding),
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(f), btrfsIocEncodedWrite, uintptr(unsafe.Pointer(&a))); errno != 0 {
		return fmt.Errorf("encoded write at %d: %w", offset, errno)
	}
	return nil
}

// decode returns the plain data of an extent, for a destination that
// cannot take it encoded.
func decode(x *smtape.Extent) ([]byte, error) {
	var out []byte
	var err error
	switch x.Encoding {
	case smtape.EncRaw:
		return x.Data, nil
	case smtape.EncZlib:
		var r io.ReadCloser
		if r, err = zlib.NewReader(bytes.NewReader(x.Data)); err == nil {
			out, err = io.ReadAll(io.LimitReader(r, int64(x.Length)))
			r.Close()
		}
	case smtape.EncZstd:
		// One frame; btrfs pads the stored data to whole sectors after it.
		var d *zstd.Decoder
		if d, err = zstd.NewReader(bytes.NewReader(x.Data), zstd.WithDecoderMaxMemory(maxEncoded*4)); err == nil {
			out = make([]byte, x.Length)
			_, err = io.ReadFull(d, out)
			d.Close()
		}
	default:
		err = errors.New("LZO-compressed extents restore only onto btrfs")
	}
	if err == nil && uint64(len(out)) < x.Length {
		out = append(out, make([]byte, x.Length-uint64(len(out)))...)
	}
	if err != nil {
		return nil, fmt.Errorf("decode extent %d: %w", x.ID, err)
	}
	return out, nil
}
