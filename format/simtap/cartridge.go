package simtap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// entry is one object of the image as the index keeps it.
type entry struct {
	off  int64  // offset of the leading length word
	word uint32 // the length word (class and length)
	ulen uint32 // uncompressed length for compressed records, 0 if unknown
}

func (e entry) isMark() bool      { return e.word == wordTapeMark }
func (e entry) class() uint32     { return e.word >> classShift }
func (e entry) stored() int64     { return int64(e.word & lengthMask) }
func (e entry) end() int64        { return objectEnd(e.off, e.word) }
func (e entry) bad() bool         { return e.class() == classBad }
func (e entry) comp() Compression { return classCompression(e.class()) }

// logical returns the record's uncompressed length, or -1 if not known.
func (e entry) logical() int {
	if e.comp() == None {
		return int(e.stored())
	}
	if e.ulen == 0 {
		return -1
	}
	return int(e.ulen)
}

func classCompression(class uint32) Compression {
	switch class {
	case 1:
		return Fast
	case 2:
		return Default
	case 3:
		return Better
	}
	return None
}

// objectEnd returns the offset just past an object that starts at off.
func objectEnd(off int64, word uint32) int64 {
	if word == wordTapeMark {
		return off + 4
	}
	n := int64(word & lengthMask)
	return off + 8 + n + n&1
}

// Options tune Open.
type Options struct {
	// ReadOnly opens the image without write access. A torn last record
	// is then ignored rather than cut off, and the index is not written.
	ReadOnly bool
}

// Cartridge is an open SIMH tape image with its sidecar index. Its
// methods are not safe for concurrent use.
type Cartridge struct {
	path     string
	f        *os.File
	idx      *os.File // nil when read-only
	ro       bool
	ents     []entry
	marks    []int64 // indexes in ents of the tape marks, ascending
	head     int64   // index in ents of the object in front of the head
	end      int64   // offset just past the last object
	fsize    int64   // size of the image file
	pc       int64   // entries the index file holds
	repaired int64   // bytes cut off a torn tail when opened
	codec    codec
	hdr      [4]byte
	trl      [4]byte
	closed   bool
	// wb is the write-behind of a writable cartridge (nil if read-only).
	wb *flusher
	// dirDirty: the image was replaced by a new file (see replaceImage)
	// and the directory entry is not synced yet.
	dirDirty bool
	// old holds the images replaced since the last Sync, open (and so
	// still taking their space) until the new data is on disk.
	old []*os.File
	// bg waits for the release of replaced images.
	bg sync.WaitGroup
	// checked is the end of the data when the image was last found to be
	// the file at path (see checkMedium); gone is the ErrMediumGone error
	// once it was not.
	checked int64
	gone    error
}

// IndexPath returns the path of the sidecar index of the image at path.
func IndexPath(path string) string { return path + ".idx" }

// Create creates a new, empty cartridge image at path (with its index),
// replacing any image that was there.
func Create(path string) (*Cartridge, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("simtap: create: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("simtap: create: %w", err)
	}
	_ = os.Remove(IndexPath(path))
	return Open(path, nil)
}

// Open opens the cartridge image at path. The sidecar index is loaded if it
// matches the image and rebuilt otherwise. Unless the cartridge is opened
// read-only, a torn last record (one whose writer was killed part way) is
// cut off; Repaired reports how many bytes went.
func Open(path string, opts *Options) (*Cartridge, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	flag := os.O_RDWR
	if o.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("simtap: open: %w", err)
	}
	c := &Cartridge{path: path, f: f, ro: o.ReadOnly}
	if !o.ReadOnly {
		// A replacement image a crash left before its rename.
		_ = os.Remove(path + ".new")
	}
	if err := c.load(); err != nil {
		c.closeFiles()
		return nil, err
	}
	return c, nil
}

func (c *Cartridge) closeFiles() {
	_ = c.f.Close()
	if c.idx != nil {
		_ = c.idx.Close()
	}
}

func (c *Cartridge) load() error {
	st, err := c.f.Stat()
	if err != nil {
		return fmt.Errorf("simtap: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("simtap: %s is not a regular file", c.path)
	}
	c.fsize = st.Size()
	if !c.ro {
		c.idx, err = os.OpenFile(IndexPath(c.path), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("simtap: index: %w", err)
		}
	}
	start, ok := c.loadIndex()
	if !ok {
		c.ents, c.marks, c.pc, start = nil, nil, 0, 0
	}
	torn, err := c.scan(start)
	if err != nil {
		return err
	}
	if torn >= 0 && !c.ro {
		if err := c.f.Truncate(torn); err != nil {
			return fmt.Errorf("simtap: cut torn record: %w", err)
		}
		c.repaired = c.fsize - torn
		c.fsize = torn
	}
	c.checked = c.end
	if !c.ro {
		c.wb = newFlusher(int(c.f.Fd()), c.end)
	}
	if !c.ro && (!ok || c.pc != int64(len(c.ents))) {
		if !ok {
			if err := c.writeHeader(0, 0); err != nil {
				return err
			}
			if err := c.idx.Truncate(idxHeaderSize); err != nil {
				return fmt.Errorf("simtap: index: %w", err)
			}
		}
		if err := c.flushIndex(); err != nil {
			return err
		}
	}
	return nil
}

// scan reads the image from offset start (the boundary of an object) and
// appends what it finds to the index. It returns the offset of a torn or
// malformed object that ends the data, or -1.
func (c *Cartridge) scan(start int64) (int64, error) {
	off := start
	c.end = start
	for {
		if off+4 > c.fsize {
			if off < c.fsize {
				return c.end, nil
			}
			return -1, nil
		}
		if _, err := c.f.ReadAt(c.hdr[:], off); err != nil {
			return -1, fmt.Errorf("simtap: scan at %d: %w", off, err)
		}
		w := binary.LittleEndian.Uint32(c.hdr[:])
		switch {
		case w == wordTapeMark:
			c.marks = append(c.marks, int64(len(c.ents)))
			c.ents = append(c.ents, entry{off: off, word: w})
			off += 4
			c.end = off
			continue
		case w == wordEOM:
			return -1, nil
		case w == wordGap:
			off += 4
			continue
		case w == wordHalfGap:
			off += 2
			continue
		}
		class := w >> classShift
		n := int64(w & lengthMask)
		if class >= 9 && class <= 0xD {
			off += 4 // SIMH private marker: carries no data
			continue
		}
		if class > 8 || n == 0 || n > MaxRecordSize {
			return c.end, nil
		}
		e := entry{off: off, word: w}
		end := e.end()
		if end > c.fsize {
			return c.end, nil
		}
		if _, err := c.f.ReadAt(c.trl[:], end-4); err != nil {
			return -1, fmt.Errorf("simtap: scan at %d: %w", off, err)
		}
		if binary.LittleEndian.Uint32(c.trl[:]) != w {
			return c.end, nil
		}
		if e.comp() != None {
			e.ulen = c.frameSize(off+4, n)
		}
		c.ents = append(c.ents, e)
		off = end
		c.end = off
	}
}

// Repaired returns how many bytes of a torn last record were cut off when
// the cartridge was opened.
func (c *Cartridge) Repaired() int64 { return c.repaired }

// Path returns the image's path.
func (c *Cartridge) Path() string { return c.path }

// ReadOnly reports whether the cartridge was opened read-only.
func (c *Cartridge) ReadOnly() bool { return c.ro }

// Len returns the number of objects (records and marks) on the tape.
func (c *Cartridge) Len() int64 { return int64(len(c.ents)) }

// Files returns the number of tape marks on the tape.
func (c *Cartridge) Files() int64 { return int64(len(c.marks)) }

// Size returns the number of bytes the recorded objects take in the image.
func (c *Cartridge) Size() int64 { return c.end }

// offsetOf returns the byte offset of object i (the end of data for i == Len).
func (c *Cartridge) offsetOf(i int64) int64 {
	if i < int64(len(c.ents)) {
		return c.ents[i].off
	}
	return c.end
}

// fileOf returns the number of tape marks before object i.
func (c *Cartridge) fileOf(i int64) int64 {
	return int64(sort.Search(len(c.marks), func(k int) bool { return c.marks[k] >= i }))
}

// Position returns where the head stands.
func (c *Cartridge) Position() Position {
	f := c.fileOf(c.head)
	rec := c.head
	if f > 0 {
		rec = c.head - c.marks[f-1] - 1
	}
	return Position{Index: c.head, File: f, Record: rec, Offset: c.offsetOf(c.head)}
}

// AtBOT reports whether the head is at the beginning of the tape.
func (c *Cartridge) AtBOT() bool { return c.head == 0 }

// AtEnd reports whether the head is at the end of the recorded data.
func (c *Cartridge) AtEnd() bool { return c.head == int64(len(c.ents)) }

// Peek describes the object in front of the head without moving it. It
// returns ErrEndOfData at the end of the recorded data.
func (c *Cartridge) Peek() (Object, error) {
	if c.closed {
		return Object{}, ErrClosed
	}
	if c.AtEnd() {
		return Object{}, ErrEndOfData
	}
	return c.object(c.head), nil
}

// ObjectAt describes object i (0 <= i < Len).
func (c *Cartridge) ObjectAt(i int64) (Object, error) {
	if i < 0 || i >= int64(len(c.ents)) {
		return Object{}, fmt.Errorf("simtap: object %d out of range [0,%d)", i, len(c.ents))
	}
	return c.object(i), nil
}

func (c *Cartridge) object(i int64) Object {
	e := c.ents[i]
	if e.isMark() {
		return Object{Kind: KindMark, Offset: e.off}
	}
	return Object{Kind: KindData, Length: e.logical(), Stored: int(e.stored()),
		Compression: e.comp(), Bad: e.bad(), Offset: e.off}
}

// Rewind moves the head to the beginning of the tape.
func (c *Cartridge) Rewind() error {
	if c.closed {
		return ErrClosed
	}
	c.head = 0
	return nil
}

// Locate moves the head in front of object i (i == Len is the end of
// data). It returns ErrEndOfData, leaving the head at the end of data, if
// i is beyond it.
func (c *Cartridge) Locate(i int64) error {
	if c.closed {
		return ErrClosed
	}
	if i < 0 {
		return fmt.Errorf("simtap: locate %d: negative position", i)
	}
	if i > int64(len(c.ents)) {
		c.head = int64(len(c.ents))
		return ErrEndOfData
	}
	c.head = i
	return nil
}

// LocateFile moves the head to the start of file n (just past tape mark n,
// or BOT for n == 0). It returns ErrEndOfData, leaving the head at the end
// of data, when the tape has fewer marks.
func (c *Cartridge) LocateFile(n int64) error {
	if c.closed {
		return ErrClosed
	}
	switch {
	case n < 0:
		return fmt.Errorf("simtap: locate file %d: negative", n)
	case n == 0:
		c.head = 0
	case n <= int64(len(c.marks)):
		c.head = c.marks[n-1] + 1
	default:
		c.head = int64(len(c.ents))
		return ErrEndOfData
	}
	return nil
}

// SpaceRecords moves the head over n records, forwards for n > 0 and
// backwards for n < 0. It never crosses a tape mark, the beginning of the
// tape or the end of data: it stops in front of (forwards) or just past
// (backwards) the obstacle and returns the number of records it could not
// space over.
func (c *Cartridge) SpaceRecords(n int64) (resid int64, err error) {
	if c.closed {
		return abs(n), ErrClosed
	}
	f := c.fileOf(c.head)
	if n >= 0 {
		limit := int64(len(c.ents))
		if f < int64(len(c.marks)) {
			limit = c.marks[f]
		}
		avail := limit - c.head
		if n <= avail {
			c.head += n
			return 0, nil
		}
		c.head = limit
		return n - avail, nil
	}
	n = -n
	first := int64(0)
	if f > 0 {
		first = c.marks[f-1] + 1
	}
	avail := c.head - first
	if n <= avail {
		c.head -= n
		return 0, nil
	}
	c.head = first
	return n - avail, nil
}

// SpaceFiles moves the head over n tape marks, forwards for n > 0 (ending
// just past the last mark) and backwards for n < 0 (ending in front of the
// last mark). At the end of data or the beginning of the tape it stops
// there and returns the number of marks it could not space over.
func (c *Cartridge) SpaceFiles(n int64) (resid int64, err error) {
	if c.closed {
		return abs(n), ErrClosed
	}
	f := c.fileOf(c.head)
	nm := int64(len(c.marks))
	if n >= 0 {
		if n == 0 {
			return 0, nil
		}
		k := f + n - 1
		if k < nm {
			c.head = c.marks[k] + 1
			return 0, nil
		}
		c.head = int64(len(c.ents))
		return n - (nm - f), nil
	}
	n = -n
	if f >= n {
		c.head = c.marks[f-n]
		return 0, nil
	}
	c.head = 0
	return n - f, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// ReadRecord reads the record in front of the head into p and moves the
// head past it. It returns the number of bytes placed in p. At a tape mark
// it returns ErrTapeMark and the head passes the mark; at the end of data
// it returns ErrEndOfData and the head stays. A record longer than p fills
// p and returns ErrTruncated (the rest is lost, as on a tape drive); a
// record flagged bad returns its data and ErrBadRecord.
func (c *Cartridge) ReadRecord(p []byte) (int, error) {
	if c.closed {
		return 0, ErrClosed
	}
	if c.AtEnd() {
		return 0, ErrEndOfData
	}
	e := c.ents[c.head]
	if e.isMark() {
		c.head++
		return 0, ErrTapeMark
	}
	var n int
	var err error
	if e.comp() == None {
		n, err = c.readPlain(e, p)
	} else {
		n, err = c.readCompressed(e, p)
	}
	if errors.Is(err, ErrCorrupt) {
		c.head++ // like a drive, pass the unreadable record
		return 0, err
	}
	if err != nil && !errors.Is(err, ErrTruncated) {
		return 0, err
	}
	c.head++
	if e.bad() {
		return n, ErrBadRecord
	}
	return n, err
}

func (c *Cartridge) readPlain(e entry, p []byte) (int, error) {
	l := int(e.stored())
	n := min(l, len(p))
	if _, err := c.f.ReadAt(p[:n], e.off+4); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("simtap: read record at %d: %w", e.off, err)
	}
	if l > len(p) {
		return n, ErrTruncated
	}
	return n, nil
}

func (c *Cartridge) readCompressed(e entry, p []byte) (int, error) {
	raw := c.codec.scratch(int(e.stored()))
	if _, err := c.f.ReadAt(raw, e.off+4); err != nil {
		return 0, fmt.Errorf("simtap: read record at %d: %w", e.off, err)
	}
	out, err := c.codec.decode(raw)
	if err != nil {
		return 0, fmt.Errorf("%w: record at %d: %v", ErrCorrupt, e.off, err)
	}
	n := copy(p, out)
	if len(out) > len(p) {
		return n, ErrTruncated
	}
	return n, nil
}

// ReadRecordAlloc reads the record in front of the head into a new slice;
// see ReadRecord for marks and end of data.
func (c *Cartridge) ReadRecordAlloc() ([]byte, error) {
	if c.closed {
		return nil, ErrClosed
	}
	if c.AtEnd() {
		return nil, ErrEndOfData
	}
	e := c.ents[c.head]
	if e.isMark() {
		c.head++
		return nil, ErrTapeMark
	}
	size := e.logical()
	if size < 0 {
		size = MaxRecordSize
	}
	buf := make([]byte, size)
	n, err := c.ReadRecord(buf)
	return buf[:n], err
}

// prepareWrite cuts the tape at the head: everything from the head on is
// discarded, first from the index file and then from the image.
func (c *Cartridge) prepareWrite() (int64, error) {
	if c.closed {
		return 0, ErrClosed
	}
	if c.ro {
		return 0, ErrReadOnly
	}
	if err := c.wb.takeErr(); err != nil {
		return 0, err
	}
	off := c.offsetOf(c.head)
	if err := c.checkMediumAt(off); err != nil {
		return 0, err
	}
	if c.head < int64(len(c.ents)) {
		if c.pc > c.head {
			if err := c.writeHeader(c.head, off); err != nil {
				return 0, err
			}
			if err := c.idx.Truncate(idxHeaderSize + c.head*idxEntrySize); err != nil {
				return 0, fmt.Errorf("simtap: index: %w", err)
			}
			c.pc = c.head
		}
		c.ents = c.ents[:c.head]
		c.marks = c.marks[:c.fileOf(c.head)]
		c.end = off
	}
	if c.fsize > off {
		// The write-behind must not work on the range being cut (or on
		// the file being replaced) any more.
		c.wb.reset(int(c.f.Fd()), off)
		if off == 0 {
			if err := c.replaceImage(); err != nil {
				return 0, err
			}
			c.wb.reset(int(c.f.Fd()), 0)
		} else if err := c.f.Truncate(off); err != nil {
			return 0, fmt.Errorf("simtap: truncate: %w", err)
		}
		c.fsize = off
	}
	return off, nil
}

// replaceImage empties the image for a write at the beginning of the tape
// by putting a new, empty file in its place (a rename, atomic) instead of
// truncating it: cutting a file of gigabytes takes the kernel a good part
// of a second (its cached pages and blocks are freed), which would delay
// the first record of the new data. The old file is closed, and so freed,
// by the next Sync once the new data is on disk (see releaseOld), not
// during the writes: freeing gigabytes makes the file system write its
// journal and discard the blocks, which competes with the new data for
// the disk and holds up the fsync. Sync also syncs the directory, so that
// the new file, not the old one, is what a crash leaves at the path once
// Sync returned. The index was emptied before (prepareWrite).
func (c *Cartridge) replaceImage() error {
	mode := os.FileMode(0o644)
	if st, err := c.f.Stat(); err == nil {
		mode = st.Mode().Perm()
	}
	tmp := c.path + ".new"
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("simtap: replace image: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		_ = nf.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("simtap: replace image: %w", err)
	}
	c.old = append(c.old, c.f)
	c.f, c.dirDirty, c.checked = nf, true, 0
	return nil
}

// releaseOld closes the replaced images on another goroutine, which frees
// them.
func (c *Cartridge) releaseOld() {
	if len(c.old) == 0 {
		return
	}
	old := c.old
	c.old = nil
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		for _, f := range old {
			_ = f.Close()
		}
	}()
}

// WriteRecord writes p as one record at the head, discarding everything
// that followed the head.
func (c *Cartridge) WriteRecord(p []byte) error {
	return c.WriteRecordCompressed(p, None)
}

// WriteRecordCompressed writes p as one record stored with the given
// compression (see the package documentation), discarding everything that
// followed the head. Data that does not shrink is stored uncompressed.
func (c *Cartridge) WriteRecordCompressed(p []byte, comp Compression) error {
	if len(p) == 0 || len(p) > MaxRecordSize {
		return fmt.Errorf("%w: %d bytes", ErrRecordSize, len(p))
	}
	if comp > Better {
		return fmt.Errorf("simtap: unknown compression %d", comp)
	}
	off, err := c.prepareWrite()
	if err != nil {
		return err
	}
	data := p
	var class uint32
	if comp != None {
		z, err := c.codec.encode(p, comp)
		if err != nil {
			return fmt.Errorf("simtap: compress: %w", err)
		}
		if len(z) < len(p) {
			data = z
			class = uint32(comp)
		}
	}
	w := class<<classShift | uint32(len(data))
	binary.LittleEndian.PutUint32(c.hdr[:], w)
	binary.LittleEndian.PutUint32(c.trl[:], w)
	iov := [][]byte{c.hdr[:], data, c.trl[:]}
	if len(data)&1 == 1 {
		iov = [][]byte{c.hdr[:], data, {0}, c.trl[:]}
	}
	if err := c.pwritev(iov, off); err != nil {
		return err
	}
	e := entry{off: off, word: w}
	if class != 0 {
		e.ulen = uint32(len(p))
	}
	c.ents = append(c.ents, e)
	c.head++
	c.end = e.end()
	c.fsize = c.end
	c.wb.wrote(c.end)
	return nil
}

// WriteMark writes a tape mark at the head, discarding everything that
// followed the head.
func (c *Cartridge) WriteMark() error {
	off, err := c.prepareWrite()
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(c.hdr[:], wordTapeMark)
	if err := c.pwritev([][]byte{c.hdr[:]}, off); err != nil {
		return err
	}
	c.marks = append(c.marks, int64(len(c.ents)))
	c.ents = append(c.ents, entry{off: off, word: wordTapeMark})
	c.head++
	c.end = off + 4
	c.fsize = c.end
	return nil
}

// Truncate discards everything from the head on, as a write there would.
func (c *Cartridge) Truncate() error {
	_, err := c.prepareWrite()
	return err
}

func (c *Cartridge) pwritev(iov [][]byte, off int64) error {
	total := 0
	for _, b := range iov {
		total += len(b)
	}
	n, err := unix.Pwritev(int(c.f.Fd()), iov, off)
	if err == nil && n < total {
		// Finish a short write the simple way.
		rest := make([]byte, 0, total)
		for _, b := range iov {
			rest = append(rest, b...)
		}
		_, err = c.f.WriteAt(rest[n:], off+int64(n))
	}
	if err != nil {
		return fmt.Errorf("simtap: write at %d: %w", off, err)
	}
	return nil
}

// Sync writes the index and flushes the image and the index to stable
// storage.
func (c *Cartridge) Sync() error {
	if c.closed {
		return ErrClosed
	}
	if c.ro {
		return nil
	}
	if err := c.wb.takeErr(); err != nil {
		return err
	}
	if err := c.checkMedium(); err != nil {
		return err
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("simtap: sync: %w", err)
	}
	if c.dirDirty {
		if err := syncDir(filepath.Dir(c.path)); err != nil {
			return fmt.Errorf("simtap: sync: %w", err)
		}
		c.dirDirty = false
	}
	if err := c.flushIndex(); err != nil {
		return err
	}
	if err := c.idx.Sync(); err != nil {
		return fmt.Errorf("simtap: sync index: %w", err)
	}
	c.releaseOld()
	return nil
}

// Close writes the index and closes the cartridge. It returns
// ErrMediumGone (and leaves the index alone) when the image is no longer
// the file at the cartridge's path.
func (c *Cartridge) Close() error {
	if c.closed {
		return ErrClosed
	}
	var err error
	if !c.ro {
		c.wb.stop()
		if err = c.checkMedium(); err == nil {
			err = c.flushIndex()
		}
		err = errors.Join(c.wb.takeErr(), err)
	}
	c.closed = true
	c.releaseOld()
	c.closeFiles()
	c.codec.close()
	c.bg.Wait()
	return err
}

// syncDir flushes the directory dir (a rename in it) to stable storage.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
