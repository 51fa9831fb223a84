package filedump

import (
	"errors"
	"io"
	"slices"
	"sort"
)

// Direct access recovery reads the image through the mover: every read
// becomes a NOTIFY_DATA_READ(offset, length) that the DMA turns into a
// MOVER_READ, and the mover positions the tape and sends exactly those
// bytes (draft 4.1.5, D.3). A read that reaches past the image's end makes
// the mover pause at the tape's file mark, which a DMA takes for the end of
// the job; a read that goes back makes a tape seek backwards. So the
// restore asks for the bytes it needs only, each once, in increasing order
// as far as the image allows: format/dump's NewReaderAt reads one header
// and then exactly the records that header announces plus the next header;
// when the offset map is known, each inode's records end where the next
// inode's header starts (or at ACL_START for the last), and the reads of
// the inodes wanted are planned ahead as merged ranges.

// byteRange is the half-open range [off, end) of image bytes.
type byteRange struct{ off, end int64 }

// mergeRanges sorts rs by offset and merges overlapping and adjacent
// ranges; empty ranges are dropped.
func mergeRanges(rs []byteRange) []byteRange {
	rs = slices.DeleteFunc(slices.Clone(rs), func(r byteRange) bool { return r.end <= r.off })
	slices.SortFunc(rs, func(a, b byteRange) int {
		switch {
		case a.off < b.off:
			return -1
		case a.off > b.off:
			return 1
		}
		return 0
	})
	var out []byteRange
	for _, r := range rs {
		if n := len(out); n > 0 && r.off <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, r.end)
			continue
		}
		out = append(out, r)
	}
	return out
}

// extents knows where the records of each inode of an image end, from its
// offset map: at the next inode's header, the last one at ACL_START, where
// the ACL section begins.
type extents struct {
	starts []int64 // header offsets, ascending
	end    int64   // ACL_START
}

// newExtents builds the extents of the inodes of an offset map whose ACL
// section starts at aclStart.
func newExtents(offsets map[uint32]int64, aclStart int64) *extents {
	e := &extents{end: aclStart}
	for _, off := range offsets {
		if off < aclStart {
			e.starts = append(e.starts, off)
		}
	}
	slices.Sort(e.starts)
	e.starts = slices.Compact(e.starts)
	return e
}

// of returns the records of the inode whose header is at off; ok is false
// when no inode of the map starts there.
func (e *extents) of(off int64) (r byteRange, ok bool) {
	if e == nil {
		return byteRange{}, false
	}
	i := sort.Search(len(e.starts), func(i int) bool { return e.starts[i] >= off })
	if i == len(e.starts) || e.starts[i] != off {
		return byteRange{}, false
	}
	r = byteRange{off: off, end: e.end}
	if i+1 < len(e.starts) {
		r.end = e.starts[i+1]
	}
	return r, true
}

// plan returns the merged ranges that hold the inodes whose headers are at
// offs (offsets the map does not know are left out).
func (e *extents) plan(offs []int64) []byteRange {
	var rs []byteRange
	for _, off := range offs {
		if r, ok := e.of(off); ok {
			rs = append(rs, r)
		}
	}
	return mergeRanges(rs)
}

// darChunk bounds one read of a planned range (and the memory it takes).
const darChunk = 1 << 20

// darInput is the image as a direct access recovery reads it. It keeps the
// bytes of its last read, so that bytes asked for again (the header that
// one inode's reader read after its records and the next inode's reader
// starts with) are not read twice, and it reads a planned range in reads
// of up to darChunk bytes rather than in the pieces a reader asks for.
type darInput struct {
	ra     io.ReaderAt
	plan   []byteRange // merged ranges known to be needed
	buf    []byte      // the bytes of the last read
	bufOff int64
	read   int64 // bytes read from ra, for the restore's result and End line
}

// addPlan adds ranges known to be needed.
func (d *darInput) addPlan(rs []byteRange) {
	d.plan = mergeRanges(append(d.plan, rs...))
}

// planned returns the planned range holding off.
func (d *darInput) planned(off int64) (byteRange, bool) {
	i := sort.Search(len(d.plan), func(i int) bool { return d.plan[i].end > off })
	if i < len(d.plan) && d.plan[i].off <= off {
		return d.plan[i], true
	}
	return byteRange{}, false
}

// ReadAt implements io.ReaderAt.
func (d *darInput) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		o := off + int64(n)
		if o >= d.bufOff && o < d.bufOff+int64(len(d.buf)) {
			n += copy(p[n:], d.buf[o-d.bufOff:])
			continue
		}
		if err := d.fetch(o, int64(len(p)-n)); err != nil {
			return n, err
		}
	}
	return n, nil
}

// fetch reads want bytes at off, or up to darChunk bytes of the planned
// range that holds off, into the buffer.
func (d *darInput) fetch(off, want int64) error {
	end := off + want
	if r, ok := d.planned(off); ok {
		end = max(end, min(r.end, off+darChunk))
	}
	if int64(cap(d.buf)) < end-off {
		d.buf = make([]byte, end-off)
	}
	b := d.buf[:end-off]
	m, err := d.ra.ReadAt(b, off)
	d.buf, d.bufOff = b[:m], off
	d.read += int64(m)
	if m > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// errExtentEnd ends the reads of one inode at the end of its records.
var errExtentEnd = errors.New("end of the inode's records")

// boundedAt reads ra up to end and no further.
type boundedAt struct {
	ra  io.ReaderAt
	end int64
}

// ReadAt implements io.ReaderAt; a read that reaches end stops there with
// errExtentEnd.
func (b boundedAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= b.end {
		return 0, errExtentEnd
	}
	if int64(len(p)) <= b.end-off {
		return b.ra.ReadAt(p, off)
	}
	n, err := b.ra.ReadAt(p[:b.end-off], off)
	if err == nil {
		err = errExtentEnd
	}
	return n, err
}
