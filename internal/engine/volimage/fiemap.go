package volimage

import (
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The FIEMAP ioctl (linux/fiemap.h): a file's extents with their physical
// addresses, which is how the engine finds data stored once.
const (
	fsIocFiemap     = 0xC020660B
	extentLast      = 0x1
	extentUnknown   = 0x2
	extentDelalloc  = 0x4
	extentEncoded   = 0x8
	extentNotAlign  = 0x100
	extentInline    = 0x200
	extentTail      = 0x400
	extentUnwritten = 0x800
	extentShared    = 0x2000
	fiemapBatch     = 256
)

type fiemapHeader struct {
	Start, Length                        uint64
	Flags, Mapped, ExtentCount, Reserved uint32
}

type fiemapExtent struct {
	Logical, Physical, Length uint64
	_                         [2]uint64
	Flags                     uint32
	_                         [3]uint32
}

// extent is one mapped range of a file.
type extent struct {
	Logical, Physical, Length uint64
	Flags                     uint32
}

// shareable reports whether the extent's physical address identifies its
// data, so that two files mapping the same address share it.
func (e extent) shareable() bool {
	return e.Physical != 0 && e.Flags&(extentUnknown|extentDelalloc|extentNotAlign|extentInline|extentTail) == 0
}

// shareableEncoded reports a compressed extent with an address.
func (e extent) shareableEncoded() bool {
	return e.Physical != 0 && e.Flags&(extentUnknown|extentDelalloc|extentInline|extentTail) == 0
}

// hole reports an extent that reads as zeros (preallocated, unwritten).
func (e extent) hole() bool { return e.Flags&extentUnwritten != 0 }

// fiemapRequest is the ioctl's argument with room for fiemapBatch extents.
type fiemapRequest struct {
	h fiemapHeader
	e [fiemapBatch]fiemapExtent
}

// fiemapPool reuses requests: one is 14 KB, and a scan maps every file.
var fiemapPool = sync.Pool{New: func() any { return new(fiemapRequest) }}

// fiemap returns the extents of the open file fd in logical order. The
// snapshots it maps are frozen, so it does not ask the file system to
// flush first.
func fiemap(fd int) ([]extent, error) {
	req := fiemapPool.Get().(*fiemapRequest)
	defer fiemapPool.Put(req)
	var out []extent
	var start uint64
	for {
		req.h = fiemapHeader{Start: start, Length: ^uint64(0) - start, ExtentCount: fiemapBatch}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), fsIocFiemap, uintptr(unsafe.Pointer(req))); errno != 0 {
			return nil, fmt.Errorf("FIEMAP: %w", errno)
		}
		n := int(req.h.Mapped)
		for _, fe := range req.e[:n] {
			out = append(out, extent{Logical: fe.Logical, Physical: fe.Physical, Length: fe.Length, Flags: fe.Flags})
		}
		if n == 0 || req.e[n-1].Flags&extentLast != 0 {
			return out, nil
		}
		last := req.e[n-1]
		start = last.Logical + last.Length
	}
}
