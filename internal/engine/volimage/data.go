package volimage

import (
	"fmt"
	"io"
	"os"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"golang.org/x/sys/unix"
)

// writeData writes the Extent and Map records of a regular file: each piece
// of data once per image, found again by its physical address when another
// file (or an earlier snapshot of the image) shares it. Holes and
// preallocated ranges get no record.
func (s *scanner) writeData(p string, fd *fileData, st *unix.Stat_t, ino uint64) error {
	for _, e := range fd.exts {
		if e.hole() || e.Logical >= uint64(st.Size) {
			continue
		}
		length := min(e.Length, uint64(st.Size)-e.Logical)
		for off := uint64(0); off < length; off += pieceSize {
			n := min(pieceSize, length-off)
			if err := s.piece(fd.f, ino, e, off, n); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	return nil
}

// piece writes n bytes at offset off of extent e: an Extent record unless
// the image already holds the same stored data, then its Map record.
func (s *scanner) piece(f *os.File, ino uint64, e extent, off, n uint64) error {
	key := pieceKey{physical: e.Physical + off, length: n}
	id, shared := uint64(0), false
	if e.shareable() {
		id, shared = s.pieces[key]
	}
	if shared {
		s.stats.SharedPieces++
	} else {
		s.nextExt++
		id = s.nextExt
		if err := s.writeExtent(f, id, e.Logical+off, n); err != nil {
			return err
		}
		if e.shareable() {
			s.pieces[key] = id
		}
	}
	return s.w.WriteRecord(&smtape.Map{Ino: ino, Offset: e.Logical + off, Length: n, Extent: id})
}

// writeExtent reads n bytes of f at off and writes them as extent id.
func (s *scanner) writeExtent(f *os.File, id, off, n uint64) error {
	if cap(s.buf) < int(n) {
		s.buf = make([]byte, n)
	}
	buf := s.buf[:n]
	if _, err := f.ReadAt(buf, int64(off)); err != nil && err != io.EOF {
		return fmt.Errorf("read at %d: %w", off, err)
	}
	s.stats.Extents++
	s.stats.DataBytes += int64(n)
	return s.w.WriteRecord(&smtape.Extent{ID: id, Encoding: smtape.EncRaw, Length: n, Data: buf})
}
