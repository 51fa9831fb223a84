package simtap

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// The sidecar index file: a 32-byte header
//
//	magic "TPSTIDX1" | u64 count | u64 covered | u64 reserved
//
// followed by count 16-byte entries
//
//	u64 offset | u32 length word | u32 uncompressed length (0 if unknown)
//
// all little-endian. "covered" is the image offset just past the last
// entry. The index only ever describes a prefix of the image: before the
// image is changed below "covered" the header is shrunk first.
const (
	idxMagic      = "TPSTIDX1"
	idxHeaderSize = 32
	idxEntrySize  = 16
)

func (c *Cartridge) writeHeader(count, covered int64) error {
	var h [idxHeaderSize]byte
	copy(h[:], idxMagic)
	binary.LittleEndian.PutUint64(h[8:], uint64(count))
	binary.LittleEndian.PutUint64(h[16:], uint64(covered))
	if _, err := c.idx.WriteAt(h[:], 0); err != nil {
		return fmt.Errorf("simtap: index header: %w", err)
	}
	return nil
}

// loadIndex reads the sidecar index and checks it against the image. It
// returns the image offset from which scanning must go on.
func (c *Cartridge) loadIndex() (int64, bool) {
	r := c.idx
	if c.ro {
		f, err := os.Open(IndexPath(c.path))
		if err != nil {
			return 0, false
		}
		defer f.Close()
		r = f
	}
	st, err := r.Stat()
	if err != nil || st.Size() < idxHeaderSize {
		return 0, false
	}
	size := st.Size()
	var h [idxHeaderSize]byte
	if _, err := r.ReadAt(h[:], 0); err != nil || string(h[:8]) != idxMagic {
		return 0, false
	}
	count := int64(binary.LittleEndian.Uint64(h[8:]))
	covered := int64(binary.LittleEndian.Uint64(h[16:]))
	if count < 0 || covered < 0 || covered > c.fsize || count > covered/4 ||
		size != idxHeaderSize+count*idxEntrySize {
		return 0, false
	}
	ents := make([]entry, 0, count)
	var marks []int64
	br := bufio.NewReaderSize(io.NewSectionReader(r, idxHeaderSize, count*idxEntrySize), 1<<16)
	var b [idxEntrySize]byte
	prevEnd := int64(0)
	for i := int64(0); i < count; i++ {
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return 0, false
		}
		e := entry{
			off:  int64(binary.LittleEndian.Uint64(b[0:])),
			word: binary.LittleEndian.Uint32(b[8:]),
			ulen: binary.LittleEndian.Uint32(b[12:]),
		}
		if e.off < prevEnd || (!e.isMark() && (e.class() > 8 || e.stored() == 0 || e.stored() > MaxRecordSize)) {
			return 0, false
		}
		prevEnd = e.end()
		if e.isMark() {
			marks = append(marks, i)
		}
		ents = append(ents, e)
	}
	if prevEnd != covered {
		return 0, false
	}
	if count > 0 && !c.checkEntry(ents[count-1]) {
		return 0, false
	}
	if count > 0 && !c.checkEntry(ents[0]) {
		return 0, false
	}
	c.ents, c.marks, c.pc = ents, marks, count
	return covered, true
}

// checkEntry reports whether the image holds the object e describes.
func (c *Cartridge) checkEntry(e entry) bool {
	if e.end() > c.fsize {
		return false
	}
	var b [4]byte
	if _, err := c.f.ReadAt(b[:], e.off); err != nil || binary.LittleEndian.Uint32(b[:]) != e.word {
		return false
	}
	if e.isMark() {
		return true
	}
	if _, err := c.f.ReadAt(b[:], e.end()-4); err != nil || binary.LittleEndian.Uint32(b[:]) != e.word {
		return false
	}
	return true
}

// flushIndex writes the entries the index file lacks and then its header.
func (c *Cartridge) flushIndex() error {
	n := int64(len(c.ents))
	if c.pc == n {
		return nil
	}
	if c.pc > n { // cannot happen: prepareWrite shrinks the file first
		c.pc = 0
	}
	w := bufio.NewWriterSize(io.NewOffsetWriter(c.idx, idxHeaderSize+c.pc*idxEntrySize), 1<<16)
	var b [idxEntrySize]byte
	for _, e := range c.ents[c.pc:] {
		binary.LittleEndian.PutUint64(b[0:], uint64(e.off))
		binary.LittleEndian.PutUint32(b[8:], e.word)
		binary.LittleEndian.PutUint32(b[12:], e.ulen)
		if _, err := w.Write(b[:]); err != nil {
			return fmt.Errorf("simtap: index: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("simtap: index: %w", err)
	}
	covered := int64(0)
	if n > 0 {
		covered = c.ents[n-1].end()
	}
	if err := c.idx.Truncate(idxHeaderSize + n*idxEntrySize); err != nil {
		return fmt.Errorf("simtap: index: %w", err)
	}
	if err := c.writeHeader(n, covered); err != nil {
		return err
	}
	c.pc = n
	return nil
}
