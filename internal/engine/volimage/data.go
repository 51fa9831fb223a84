package volimage

import (
	"fmt"
	"io"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
)

// writeData writes the Extent and Map records of a regular file: each piece
// of data once per image, found again by its physical address when another
// file (or an earlier snapshot of the image) shares it. Holes and
// preallocated ranges get no record.
func (s *scanner) writeData(pr *probe) error {
	size := uint64(pr.st.Size)
	for _, e := range pr.fd.exts {
		if e.hole() || e.Logical >= size {
			continue
		}
		if e.Flags&extentEncoded != 0 && e.shareableEncoded() {
			done, err := s.encoded(pr.fd.f, pr.ino, e, size)
			if err != nil {
				return fmt.Errorf("%s: %w", pr.path, err)
			}
			if done {
				continue
			}
		}
		length := min(e.Length, size-e.Logical)
		for off := uint64(0); off < length; off += pieceSize {
			n := min(pieceSize, length-off)
			if err := s.piece(pr, e, off, n); err != nil {
				return fmt.Errorf("%s: %w", pr.path, err)
			}
		}
	}
	return nil
}

// piece writes n bytes at offset off of extent e: an Extent record unless
// the image already holds the same stored data, then its Map record.
func (s *scanner) piece(pr *probe, e extent, off, n uint64) error {
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
		if err := s.writeExtent(pr, id, e.Logical+off, n); err != nil {
			return err
		}
		if e.shareable() {
			s.pieces[key] = id
		}
	}
	return s.w.WriteRecord(&smtape.Map{Ino: pr.ino, Offset: e.Logical + off, Length: n, Extent: id})
}

// writeExtent writes n bytes of the file at off as extent id: from the
// data read ahead, or read now.
func (s *scanner) writeExtent(pr *probe, id, off, n uint64) error {
	var buf []byte
	if pr.data != nil && off+n <= uint64(len(pr.data)) {
		buf = pr.data[off : off+n]
	} else {
		if cap(s.buf) < int(n) {
			s.buf = make([]byte, n)
		}
		buf = s.buf[:n]
		if _, err := pr.fd.f.ReadAt(buf, int64(off)); err != nil && err != io.EOF {
			return fmt.Errorf("read at %d: %w", off, err)
		}
	}
	s.stats.Extents++
	s.stats.DataBytes += int64(n)
	return s.w.WriteRecord(&smtape.Extent{ID: id, Encoding: smtape.EncRaw, Length: n, Data: buf})
}

// encKey names a compressed extent's range by where the file system
// stores the extent and which part of it the file maps.
type encKey struct{ physical, off, length uint64 }

// encoded writes a compressed extent as btrfs stores it (S5): one Extent
// record per compressed extent of the file system, shared by every file
// that maps the same range of it. It reports false, having written
// nothing, when the file system cannot read it encoded.
func (s *scanner) encoded(f rawFile, ino uint64, e extent, size uint64) (bool, error) {
	if s.encBuf == nil {
		s.encBuf = make([]byte, maxEncoded)
	}
	end := min(e.Logical+e.Length, size)
	for off := e.Logical; off < end; {
		x, err := encodedRead(int(f.Fd()), off, s.encBuf)
		if err != nil || x.encoding == smtape.EncRaw {
			if off == e.Logical {
				return false, nil
			}
			return false, err
		}
		n := min(x.length, end-off)
		key := encKey{physical: e.Physical, off: x.unencodedOff, length: n}
		id, shared := s.encPieces[key]
		if shared {
			s.stats.SharedPieces++
		} else {
			s.nextExt++
			id = s.nextExt
			s.encPieces[key] = id
			s.stats.Extents++
			s.stats.DataBytes += int64(len(x.data))
			rec := &smtape.Extent{ID: id, Encoding: x.encoding, Length: x.unencodedLen, Data: x.data}
			if err := s.w.WriteRecord(rec); err != nil {
				return false, err
			}
		}
		if err := s.w.WriteRecord(&smtape.Map{Ino: ino, Offset: off, Length: n, Extent: id, ExtentOffset: x.unencodedOff}); err != nil {
			return false, err
		}
		off += n
	}
	return true, nil
}
