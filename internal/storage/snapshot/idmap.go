package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"
)

// An identity map file (.snapshot/.<name>.idmap) holds, for every file of a
// reflink or copy snapshot, its snapshot inode, its live inode and the
// change time (ctime) the live file had when it was copied, sorted by
// snapshot inode:
//
//	magic "TPSIDMAP", version byte 2,
//	uvarint count,
//	count times: uvarint (snap - previous snap), varint (live - previous live),
//	             varint (ctime - previous ctime),
//	CRC-32C (Castagnoli) of all that, 4 bytes little-endian.
//
// ctime is in nanoseconds since the Unix epoch; 0 means unknown. The first
// entry's deltas are from 0. Snapshot inodes are strictly increasing; live
// inodes may repeat (never for files the snapshot made, but the format does
// not care). Version 1, written before ctimes were kept, is the same
// without the ctime field; it still loads (every ctime unknown).
const (
	idMapMagic   = "TPSIDMAP"
	idMapVersion = 2
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// idMap is a loaded identity map: parallel slices sorted by snap. ctime is
// nil for a version 1 map.
type idMap struct {
	snap, live []uint64
	ctime      []int64
}

// LiveCtimer is implemented by the identity maps of providers whose
// snapshot files do not keep the live files' change times (reflink and
// copy: every file of such a snapshot is new, so its ctime is the time of
// the copy).
type LiveCtimer interface {
	// LiveCtime returns the change time the live file had when the file
	// whose snapshot inode is snapIno was copied into the snapshot, and
	// false when the map does not know it (an unknown inode, or a map
	// written before change times were kept).
	LiveCtime(snapIno uint64) (time.Time, bool)
}

// LiveCtime implements LiveCtimer.
func (m *idMap) LiveCtime(snapIno uint64) (time.Time, bool) {
	if m.ctime == nil {
		return time.Time{}, false
	}
	i, ok := slices.BinarySearch(m.snap, snapIno)
	if !ok || m.ctime[i] == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, m.ctime[i]), true
}

// Live implements IdentityMap.
func (m *idMap) Live(snapIno uint64) (uint64, bool) {
	i, ok := slices.BinarySearch(m.snap, snapIno)
	if !ok {
		return 0, false
	}
	return m.live[i], true
}

// Len returns the number of entries.
func (m *idMap) Len() int { return len(m.snap) }

// idPair is one entry while a snapshot is being made: ctime is the live
// file's change time in nanoseconds (0 unknown).
type idPair struct {
	snap, live uint64
	ctime      int64
}

// encodeIDMap sorts pairs by snapshot inode and encodes them. Duplicate
// snapshot inodes (hard links) must carry the same live inode; only one is
// kept.
func encodeIDMap(pairs []idPair) ([]byte, error) {
	slices.SortFunc(pairs, func(a, b idPair) int {
		switch {
		case a.snap < b.snap:
			return -1
		case a.snap > b.snap:
			return 1
		}
		return 0
	})
	pairs = slices.CompactFunc(pairs, func(a, b idPair) bool { return a == b })
	for i := 1; i < len(pairs); i++ {
		if pairs[i].snap == pairs[i-1].snap {
			return nil, fmt.Errorf("snapshot: identity map: snapshot inode %d maps to both (%d, ctime %d) and (%d, ctime %d)", pairs[i].snap, pairs[i-1].live, pairs[i-1].ctime, pairs[i].live, pairs[i].ctime)
		}
	}
	buf := make([]byte, 0, len(idMapMagic)+1+binary.MaxVarintLen64+len(pairs)*10+4)
	buf = append(buf, idMapMagic...)
	buf = append(buf, idMapVersion)
	buf = binary.AppendUvarint(buf, uint64(len(pairs)))
	var ps, pl uint64
	var pc int64
	for _, p := range pairs {
		buf = binary.AppendUvarint(buf, p.snap-ps)
		buf = binary.AppendVarint(buf, int64(p.live-pl))
		buf = binary.AppendVarint(buf, p.ctime-pc)
		ps, pl, pc = p.snap, p.live, p.ctime
	}
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, crcTable)), nil
}

var errIDMapCorrupt = errors.New("snapshot: identity map is corrupt")

// decodeIDMap parses an identity map file of version 1 or 2.
func decodeIDMap(b []byte) (*idMap, error) {
	head := len(idMapMagic) + 1
	if len(b) < head+1+4 || string(b[:len(idMapMagic)]) != idMapMagic {
		return nil, fmt.Errorf("%w: bad magic or too short (%d bytes)", errIDMapCorrupt, len(b))
	}
	version := b[len(idMapMagic)]
	if version != 1 && version != idMapVersion {
		return nil, fmt.Errorf("%w: unknown version %d", errIDMapCorrupt, version)
	}
	minEntry := uint64(2)
	if version >= 2 {
		minEntry = 3
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", errIDMapCorrupt)
	}
	p := body[head:]
	n, k := binary.Uvarint(p)
	if k <= 0 {
		return nil, fmt.Errorf("%w: bad entry count", errIDMapCorrupt)
	}
	p = p[k:]
	// Every entry takes at least one byte per field.
	if n > uint64(len(p))/minEntry {
		return nil, fmt.Errorf("%w: %d entries cannot fit in %d bytes", errIDMapCorrupt, n, len(p))
	}
	m := &idMap{snap: make([]uint64, 0, n), live: make([]uint64, 0, n)}
	if version >= 2 {
		m.ctime = make([]int64, 0, n)
	}
	var ps, pl uint64
	var pc int64
	for i := uint64(0); i < n; i++ {
		ds, k := binary.Uvarint(p)
		if k <= 0 {
			return nil, fmt.Errorf("%w: entry %d: bad snapshot inode", errIDMapCorrupt, i)
		}
		p = p[k:]
		dl, k := binary.Varint(p)
		if k <= 0 {
			return nil, fmt.Errorf("%w: entry %d: bad live inode", errIDMapCorrupt, i)
		}
		p = p[k:]
		if version >= 2 {
			dc, k := binary.Varint(p)
			if k <= 0 {
				return nil, fmt.Errorf("%w: entry %d: bad change time", errIDMapCorrupt, i)
			}
			p = p[k:]
			pc += dc
			m.ctime = append(m.ctime, pc)
		}
		if (i > 0 && ds == 0) || ps+ds < ps {
			return nil, fmt.Errorf("%w: entry %d: snapshot inodes not increasing", errIDMapCorrupt, i)
		}
		ps += ds
		pl += uint64(dl)
		m.snap = append(m.snap, ps)
		m.live = append(m.live, pl)
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last entry", errIDMapCorrupt, len(p))
	}
	return m, nil
}
