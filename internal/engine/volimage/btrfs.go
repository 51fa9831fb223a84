package volimage

import (
	"encoding/binary"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On btrfs the engine reads a file's extents from the file system tree
// (BTRFS_IOC_TREE_SEARCH_V2) instead of FIEMAP: btrfs's FIEMAP finds out
// for every extent whether it is shared by walking its back references,
// which costs about 85 us a file on a snapshot (whose every extent is
// shared with the volume), more than reading a small file's data.
const (
	btrfsIocTreeSearchV2    = 0xC0709411
	btrfsExtentDataKey      = 108
	btrfsFileExtentInline   = 0
	btrfsFileExtentReg      = 1
	btrfsFileExtentPrealloc = 2
	searchBuf               = 16 << 10
)

type searchKey struct {
	treeID, minObjectID, maxObjectID, minOffset, maxOffset, minTransID, maxTransID uint64
	minType, maxType, nrItems, _                                                   uint32
	_                                                                              [4]uint64
}

type searchArgsV2 struct {
	key     searchKey
	bufSize uint64
	buf     [searchBuf]byte
}

var searchPool = sync.Pool{New: func() any { return new(searchArgsV2) }}

// btrfsExtents returns the extents of inode ino of the subvolume the open
// file fd is in, as FIEMAP would describe them (without the shared flag).
func btrfsExtents(fd int, ino uint64) ([]extent, error) {
	a := searchPool.Get().(*searchArgsV2)
	defer searchPool.Put(a)
	var out []extent
	for offset := uint64(0); ; {
		a.key = searchKey{minObjectID: ino, maxObjectID: ino, minOffset: offset, maxOffset: ^uint64(0),
			maxTransID: ^uint64(0), minType: btrfsExtentDataKey, maxType: btrfsExtentDataKey, nrItems: 4096}
		a.bufSize = searchBuf
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), btrfsIocTreeSearchV2, uintptr(unsafe.Pointer(a))); errno != 0 {
			return nil, fmt.Errorf("btrfs tree search: %w", errno)
		}
		n, used, last, err := parseExtentItems(a.buf[:], int(a.key.nrItems), ino, &out)
		if err != nil {
			return nil, err
		}
		// The search stops at the end of the items or of the buffer; with
		// room left for another item, it was the items.
		if n == 0 || used+32+4096 < searchBuf {
			break
		}
		offset = last + 1
	}
	if len(out) > 0 {
		out[len(out)-1].Flags |= extentLast
	}
	return out, nil
}

// parseExtentItems decodes n search results of file extent items; it
// returns how many it read, the bytes they took and the last key offset.
func parseExtentItems(buf []byte, n int, ino uint64, out *[]extent) (int, int, uint64, error) {
	var last uint64
	pos := 0
	for i := 0; i < n; i++ {
		if pos+32 > len(buf) {
			return i, pos, last, fmt.Errorf("btrfs tree search: result %d beyond the buffer", i)
		}
		objectID := binary.LittleEndian.Uint64(buf[pos+8:])
		offset := binary.LittleEndian.Uint64(buf[pos+16:])
		typ := binary.LittleEndian.Uint32(buf[pos+24:])
		length := int(binary.LittleEndian.Uint32(buf[pos+28:]))
		item := buf[pos+32 : min(pos+32+length, len(buf))]
		pos += 32 + length
		last = offset
		if objectID != ino || typ != btrfsExtentDataKey || len(item) < 21 {
			continue
		}
		if e, ok := fileExtent(offset, item); ok {
			*out = append(*out, e)
		}
	}
	return n, pos, last, nil
}

// fileExtent turns a btrfs_file_extent_item at file offset off into an
// extent; a hole (no disk address) is none.
func fileExtent(off uint64, item []byte) (extent, bool) {
	ramBytes := binary.LittleEndian.Uint64(item[8:])
	compression := item[16]
	switch item[20] {
	case btrfsFileExtentInline:
		e := extent{Logical: off, Length: ramBytes, Flags: extentInline | extentNotAlign}
		if compression != 0 {
			e.Flags |= extentEncoded
		}
		return e, true
	case btrfsFileExtentReg, btrfsFileExtentPrealloc:
		if len(item) < 53 {
			return extent{}, false
		}
		diskBytenr := binary.LittleEndian.Uint64(item[21:])
		extOffset := binary.LittleEndian.Uint64(item[37:])
		numBytes := binary.LittleEndian.Uint64(item[45:])
		if diskBytenr == 0 {
			return extent{}, false // a hole
		}
		e := extent{Logical: off, Physical: diskBytenr + extOffset, Length: numBytes}
		if compression != 0 {
			e.Physical, e.Flags = diskBytenr, extentEncoded
		}
		if item[20] == btrfsFileExtentPrealloc {
			e.Flags |= extentUnwritten
		}
		return e, true
	}
	return extent{}, false
}
