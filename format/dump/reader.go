package dump

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"time"
)

// Kind says what a Header returned by Reader.Next stands for.
type Kind int

// Kinds of headers.
const (
	KindVolume    Kind = iota + 1 // TS_TAPE of volume 1
	KindUsedMap                   // TS_CLRI: every live inode; Bitmap reads it
	KindDumpedMap                 // TS_BITS: every inode on the image; Bitmap reads it
	KindInode                     // TS_INODE of a directory or file; Read/DirEntries read its data
	KindXattr                     // EXT_XATTR record of the inode before; Xattrs reads it
	KindExtension                 // Tapestry extension record; Read or Extension reads the payload
	KindEnd                       // TS_END
	KindOtherExt                  // another inode extension (EXT_* Linux restore skips); data is skipped
)

// Header is one logical header of an image: a record with its TS_ADDR
// continuations merged.
type Header struct {
	Kind   Kind
	Type   int    // c_type of the first record
	Flags  uint32 // c_flags
	Offset int64  // logical byte offset (record index × RecordSize) of the header
	Volume int    // volume it was read from
	Ino    uint32
	// Inode holds the inode attributes (KindInode, KindXattr).
	Inode Inode
	// Dump holds the dump and volume information every header repeats; for
	// KindVolume it is the whole TS_TAPE header.
	Dump Volume
	// Ext and ExtSize describe a Tapestry extension record.
	Ext     ExtKind
	ExtSize int64
}

// Reader reads a dump image sequentially. A Reader is not safe for
// concurrent use.
type Reader struct {
	br     *bufio.Reader
	next   func(n int) (io.Reader, error)
	rec    int64 // index of the next record
	vol    int
	vols   []Volume
	date   int32
	first  bool         // the next header is the first of the stream
	midway bool         // started at an offset (NewReaderAt)
	src    *exactSource // the source of a Reader made by NewReaderAt
	done   bool
	err    error

	pending    *raw
	pendingOff int64
	hdr        *Header

	// Data of the current entry.
	cur        raw
	allPresent bool  // every c_count record is present (maps, EA, extensions)
	addrIdx    int   // next c_addr index in cur
	total      int64 // logical bytes of the entry
	delivered  int64
	piece      [RecordSize]byte
	pieceOff   int
	pieceLen   int
	pieceHole  bool
	missing    bool // continuation headers were missing: the rest reads as holes
	crc        hash.Hash32
	wantCRC    uint32
	rb         [RecordSize]byte
}

// NewReader returns a Reader for the image in r (volume 1).
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), vol: 1, first: true}
}

// SetNextVolume sets the function that opens volume n (n >= 2) when the
// current volume ends before TS_END, on a record boundary. It returns a nil
// reader when there is no volume n: the image is then truncated.
func (r *Reader) SetNextVolume(f func(n int) (io.Reader, error)) { r.next = f }

// NewReaderAt returns a Reader positioned at the header at byte offset off
// of a single volume (an offset from an offset map or file history). Next
// returns the header there; the reader can go on from it. It asks ra for
// the bytes it needs only: a header record, then the records that header
// announces together with the header after them, never more (each read of
// a direct access recovery costs a tape positioning).
func NewReaderAt(ra io.ReaderAt, off int64) (*Reader, error) {
	if off < 0 || off%RecordSize != 0 {
		return nil, fmt.Errorf("%w: offset %d is not a record boundary", ErrFormat, off)
	}
	src := &exactSource{ra: ra, off: off}
	r := NewReader(src)
	r.src = src
	r.rec = off / RecordSize
	r.midway = true
	return r, nil
}

// exactSource feeds a Reader made by NewReaderAt. It reads no byte the
// Reader does not need: one header record at a time, and after a header
// the records that header says are present plus the header that follows
// them (every header but TS_END has one after it). A direct access
// recovery reading through it thus asks for exactly the bytes it uses and
// never for bytes past the image's end (draft D.3: each read becomes a
// NOTIFY_DATA_READ the mover serves from tape).
type exactSource struct {
	ra  io.ReaderAt
	off int64 // next byte to read
	end int64 // the bytes before end are known to be needed
}

// Read reads at most the bytes known to be needed, or one record.
func (s *exactSource) Read(p []byte) (int, error) {
	n := int64(RecordSize)
	if s.end > s.off {
		n = s.end - s.off
	}
	n = min(n, int64(len(p)))
	m, err := s.ra.ReadAt(p[:n], s.off)
	s.off += int64(m)
	if int64(m) == n && err == io.EOF {
		err = nil
	}
	return m, err
}

// need tells an exactSource how far the current header reaches: its
// present records not yet read and the header after them (TS_END, the
// last header, never calls it).
func (r *Reader) need() {
	if r.src == nil {
		return
	}
	k := int64(0)
	for i := r.addrIdx; i < int(r.cur.count); i++ {
		if r.allPresent || r.cur.addr[i] != 0 {
			k++
		}
	}
	if end := (r.rec + k + 1) * RecordSize; end > r.src.end {
		r.src.end = end
	}
}

// Volumes returns the volume headers read so far.
func (r *Reader) Volumes() []Volume { return append([]Volume(nil), r.vols...) }

// readRecord reads the next record into b, switching volumes at the end of
// one.
func (r *Reader) readRecord(b []byte) error {
	for {
		n, err := io.ReadFull(r.br, b[:RecordSize])
		if err == nil {
			r.rec++
			return nil
		}
		if err != io.EOF && err != io.ErrUnexpectedEOF {
			return fmt.Errorf("dump: reading record %d: %w", r.rec, err)
		}
		// A volume ends on a record boundary: an image that ends inside a
		// record, or holds nothing, is cut short, whatever volumes follow.
		switch {
		case r.first && !r.midway && n == 0:
			return fmt.Errorf("%w: the image is empty", ErrTruncated)
		case n > 0:
			return fmt.Errorf("%w: the image ends inside record %d of volume %d (%d of its %d bytes)", ErrTruncated, r.rec, r.vol, n, RecordSize)
		case r.next == nil || r.done:
			return fmt.Errorf("%w: the image ends at record %d of volume %d, before its end record (TS_END)", ErrTruncated, r.rec, r.vol)
		}
		if err := r.nextVolume(); err != nil {
			return err
		}
	}
}

// nextVolume opens the next volume and checks its TS_TAPE header.
func (r *Reader) nextVolume() error {
	nr, err := r.next(r.vol + 1)
	if err != nil {
		return fmt.Errorf("dump: opening volume %d: %w", r.vol+1, err)
	}
	if nr == nil {
		return fmt.Errorf("%w: the image ends at record %d of volume %d, before its end record (TS_END), and there is no volume %d",
			ErrTruncated, r.rec, r.vol, r.vol+1)
	}
	r.br = bufio.NewReaderSize(nr, 64<<10)
	var b [RecordSize]byte
	if _, err := io.ReadFull(r.br, b[:]); err != nil {
		return fmt.Errorf("%w: volume %d has no header: %v", ErrTruncated, r.vol+1, err)
	}
	var h raw
	if err := h.decode(b[:]); err != nil {
		return fmt.Errorf("volume %d header: %w", r.vol+1, err)
	}
	if h.typ != TypeTape {
		return fmt.Errorf("%w: volume %d starts with record type %d", ErrFormat, r.vol+1, h.typ)
	}
	if int(h.volume) != r.vol+1 {
		return fmt.Errorf("%w: expected volume %d, got volume %d", ErrFormat, r.vol+1, h.volume)
	}
	if r.date != 0 && h.date != r.date {
		return fmt.Errorf("%w: volume %d belongs to another dump (date %d, want %d)", ErrFormat, h.volume, h.date, r.date)
	}
	r.vol++
	r.vols = append(r.vols, volumeOf(&h))
	// Records the previous volume already held (a block rewritten after an
	// end-of-medium error) are skipped.
	first := int64(h.firstrec)
	if first < 0 {
		return fmt.Errorf("%w: volume %d first record %d", ErrFormat, h.volume, first)
	}
	skip := r.rec - first
	r.rec = first + 1
	for ; skip > 0; skip-- {
		if _, err := io.ReadFull(r.br, b[:]); err != nil {
			return fmt.Errorf("%w: volume %d: %v", ErrTruncated, r.vol, err)
		}
		r.rec++
	}
	return nil
}

// readHeader reads and decodes the next header record.
func (r *Reader) readHeader() (*raw, error) {
	if r.pending != nil {
		h := r.pending
		r.pending = nil
		return h, nil
	}
	if err := r.readRecord(r.rb[:]); err != nil {
		return nil, err
	}
	h := new(raw)
	if err := h.decode(r.rb[:]); err != nil {
		return nil, fmt.Errorf("record %d: %w", r.rec-1, err)
	}
	return h, nil
}

func volumeOf(h *raw) Volume {
	v := Volume{
		Level:    int(h.level),
		Label:    cstr(h.label[:]),
		Filesys:  cstr(h.filesys[:]),
		Device:   cstr(h.dev[:]),
		Host:     cstr(h.host[:]),
		Number:   int(h.volume),
		FirstRec: int64(h.firstrec),
		NTREC:    int(h.ntrec),
		Flags:    uint32(h.flags),
		Swapped:  h.swapped,
	}
	if h.date != 0 {
		v.Date = time.Unix(int64(h.date), 0)
	}
	if h.ddate != 0 {
		v.BaseDate = time.Unix(int64(h.ddate), 0)
	}
	if h.typ == TypeTape && h.volume > 1 {
		v.Continued = int(h.count)
		v.ContinuedIno = h.inumber
	}
	return v
}

func inodeOf(h *raw) Inode {
	in := Inode{
		Ino:      h.inumber,
		Mode:     uint32(h.mode),
		Nlink:    int(h.nlink),
		UID:      h.uid,
		GID:      h.gid,
		Size:     int64(h.size),
		Atime:    unixTime(h.atime, h.atimeUsec),
		Mtime:    unixTime(h.mtime, h.mtimeUsec),
		Ctime:    unixTime(h.ctime, h.ctimeUsec),
		Flags:    h.diFlags,
		Gen:      h.gen,
		Blocks:   h.blocks,
		MetaOnly: h.flags&FlagMetaOnly != 0,
	}
	if h.flags&FlagNewInodeFmt == 0 {
		in.UID, in.GID = uint32(h.ouid), uint32(h.ogid)
	}
	if h.exact {
		ts := []*time.Time{&in.Atime, &in.Mtime, &in.Ctime, &in.Birthtime}
		for i, t := range ts {
			switch {
			case h.exactSec[i] == noTime:
				*t = time.Time{}
			case h.exactNsec[i] < 1e9:
				*t = time.Unix(h.exactSec[i], int64(h.exactNsec[i]))
			}
		}
	}
	if t := in.Mode & ModeFmt; t == ModeChr || t == ModeBlk {
		in.Rdev = h.db[0]
		if in.Rdev == 0 {
			// Linux dump copies ext2's i_block: large device numbers are in
			// the new encoding in the second word.
			in.Rdev = h.db[1]
		}
	}
	return in
}

// Next advances to the next header, skipping any unread data of the
// current one. It returns io.EOF after TS_END.
func (r *Reader) Next() (*Header, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.done {
		return nil, io.EOF
	}
	h, err := r.next1()
	if err != nil {
		r.err = err
		return nil, err
	}
	r.hdr = h
	return h, nil
}

func (r *Reader) next1() (*Header, error) {
	if r.hdr != nil {
		if err := r.skipRest(); err != nil {
			return nil, err
		}
	}
	for {
		off := r.pendingOff
		pend := r.pending != nil
		h, err := r.readHeader()
		if err != nil {
			return nil, err
		}
		if !pend {
			off = (r.rec - 1) * RecordSize
		}
		if h.flags&FlagCompressed != 0 {
			return nil, ErrCompressed
		}
		if r.first {
			r.first = false
			if r.date == 0 {
				r.date = h.date
			}
			if !r.midway && h.typ != TypeTape {
				return nil, fmt.Errorf("%w: image starts with record type %d, not TS_TAPE", ErrFormat, h.typ)
			}
		}
		hd := &Header{Type: int(h.typ), Flags: uint32(h.flags), Offset: off, Volume: r.vol, Ino: h.inumber, Dump: volumeOf(h)}
		r.startEntry(h)
		switch h.typ {
		case TypeTape:
			if h.volume != 1 && !r.midway {
				return nil, fmt.Errorf("%w: image is volume %d, not volume 1", ErrFormat, h.volume)
			}
			if h.ntrec < 0 || h.ntrec > 1<<16 {
				return nil, fmt.Errorf("%w: c_ntrec %d", ErrCount, h.ntrec)
			}
			r.vols = append(r.vols, hd.Dump)
			hd.Kind = KindVolume
			r.total = 0
			r.need()
			return hd, nil
		case TypeClri, TypeBits:
			if h.count < 0 || h.count > maxMapRecords {
				return nil, fmt.Errorf("%w: map of %d records", ErrCount, h.count)
			}
			hd.Kind = KindUsedMap
			if h.typ == TypeBits {
				hd.Kind = KindDumpedMap
			}
			r.allPresent = true
			r.total = int64(h.count) * RecordSize
			r.need()
			return hd, nil
		case TypeInode:
			if err := checkCount(h); err != nil {
				return nil, err
			}
			if h.size > maxFileSize {
				return nil, fmt.Errorf("%w: inode %d size %d", ErrCount, h.inumber, h.size)
			}
			hd.Inode = inodeOf(h)
			if h.tapestry {
				if h.extPart != 0 {
					return nil, fmt.Errorf("%w: extension record part %d without part 0", ErrFormat, h.extPart)
				}
				if h.extTotal > maxExtPayload || h.count < 1 || int64(h.extTotal) > int64(h.count)*RecordSize && h.count < maxAddr {
					return nil, fmt.Errorf("%w: extension of %d bytes in %d records", ErrCount, h.extTotal, h.count)
				}
				hd.Kind = KindExtension
				hd.Ext = ExtKind(h.extKind)
				hd.ExtSize = int64(h.extTotal)
				hd.Ino = h.extIno
				r.allPresent = true
				r.total = int64(h.extTotal)
				if h.extCRC != 0 {
					r.crc = crc32.NewIEEE()
					r.wantCRC = h.extCRC
				}
				r.need()
				if err := r.skipStub(); err != nil {
					return nil, err
				}
				return hd, nil
			}
			if h.flags&FlagExtAttributes != 0 {
				r.allPresent = true
				if h.extattributes != extXattr {
					hd.Kind = KindOtherExt
					r.total = int64(h.count) * RecordSize
					r.need()
					return hd, nil
				}
				if h.count > maxXattrRecord || h.size > uint64(h.count)*RecordSize {
					return nil, fmt.Errorf("%w: EA record of %d bytes in %d records", ErrCount, h.size, h.count)
				}
				hd.Kind = KindXattr
				r.total = int64(h.size)
				r.need()
				return hd, nil
			}
			hd.Kind = KindInode
			r.total = int64(h.size)
			if hd.Inode.MetaOnly {
				r.total = 0
			}
			r.need()
			if err := r.finishIfDone(); err != nil {
				return nil, err
			}
			return hd, nil
		case TypeAddr:
			if err := checkCount(h); err != nil {
				return nil, err
			}
			// A continuation without an inode (Linux restore skips these too).
			r.need()
			if err := r.skipRest(); err != nil {
				return nil, err
			}
			continue
		case TypeEnd:
			hd.Kind = KindEnd
			r.done = true
			r.total = 0
			return hd, nil
		default:
			return nil, fmt.Errorf("%w: unknown record type %d at record %d", ErrFormat, h.typ, r.rec-1)
		}
	}
}

func checkCount(h *raw) error {
	if h.count < 0 || h.count > maxAddr {
		return fmt.Errorf("%w: c_count %d (at most %d)", ErrCount, h.count, maxAddr)
	}
	return nil
}

// startEntry resets the data state for header h.
func (r *Reader) startEntry(h *raw) {
	r.cur = *h
	if h.typ == TypeTape || h.typ == TypeEnd {
		r.cur.count = 0 // their c_count and c_addr are stale or for random access
	}
	r.allPresent = false
	r.addrIdx = 0
	r.total, r.delivered = 0, 0
	r.pieceOff, r.pieceLen = 0, 0
	r.missing = false
	r.crc = nil
}

// finishIfDone discards the rest of the current header's records once the
// entry's bytes are all delivered.
func (r *Reader) finishIfDone() error {
	if r.delivered < r.total {
		return nil
	}
	for r.addrIdx < int(r.cur.count) {
		present := r.allPresent || r.cur.addr[r.addrIdx] != 0
		r.addrIdx++
		if present {
			if err := r.readRecord(r.rb[:]); err != nil {
				return err
			}
		}
	}
	return nil
}

// skipStub reads the EA buffer at the start of an extension part (what
// Linux restore parses there).
func (r *Reader) skipStub() error {
	stub := int((r.cur.size + RecordSize - 1) / RecordSize)
	if r.cur.size > XattrRecordMax || stub < 1 || stub > int(r.cur.count) {
		return fmt.Errorf("%w: extension record with a %d-byte EA buffer in %d records", ErrFormat, r.cur.size, r.cur.count)
	}
	for i := 0; i < stub; i++ {
		if err := r.readRecord(r.rb[:]); err != nil {
			return err
		}
	}
	r.addrIdx = stub
	return nil
}

// isContinuation reports whether h continues the current entry.
func (r *Reader) isContinuation(h *raw) bool {
	if r.cur.tapestry {
		return h.tapestry && h.extKind == r.cur.extKind && h.extPart == r.cur.extPart+1
	}
	return h.typ == TypeAddr
}

// nextPiece loads the next 1 KB piece of the current entry.
func (r *Reader) nextPiece() error {
	if r.delivered >= r.total {
		return io.EOF
	}
	if r.missing {
		r.pieceHole = true
	} else {
		for r.addrIdx >= int(r.cur.count) {
			h, err := r.readHeader()
			if err != nil {
				return err
			}
			if !r.isContinuation(h) {
				if r.cur.tapestry || r.allPresent {
					return fmt.Errorf("%w: record type %d where a continuation of inode %d was expected", ErrFormat, h.typ, r.cur.inumber)
				}
				// Like Linux restore, a missing tail reads as a hole, but
				// only up to what one header could have described: a lying
				// size must not turn a short image into endless zeros.
				if left := r.total - r.delivered; left > maxAddr*RecordSize {
					return fmt.Errorf("%w: inode %d: %d bytes without TS_ADDR headers", ErrTruncated, r.cur.inumber, left)
				}
				r.pending = h
				r.pendingOff = (r.rec - 1) * RecordSize
				r.missing = true
				break
			}
			if err := checkCount(h); err != nil {
				return err
			}
			r.cur = *h
			r.addrIdx = 0
			r.need()
			if h.tapestry {
				if err := r.skipStub(); err != nil {
					return err
				}
			}
		}
		if r.missing {
			r.pieceHole = true
		} else {
			present := r.allPresent || r.cur.addr[r.addrIdx] != 0
			r.addrIdx++
			r.pieceHole = !present
			if present {
				if err := r.readRecord(r.piece[:]); err != nil {
					return err
				}
			}
		}
	}
	n := min(r.total-r.delivered, RecordSize)
	r.pieceOff, r.pieceLen = 0, int(n)
	r.delivered += n
	if r.pieceHole {
		clear(r.piece[:n])
	}
	if r.crc != nil {
		r.crc.Write(r.piece[:n])
		if r.delivered >= r.total && r.crc.Sum32() != r.wantCRC {
			return fmt.Errorf("%w: extension payload CRC", ErrChecksum)
		}
	}
	if r.delivered >= r.total && !r.missing {
		return r.finishIfDone()
	}
	return nil
}

// Read reads the data of the current header: file contents (holes read as
// zeros), a symbolic link's target, directory chunks, map bytes, an EA
// buffer or an extension payload.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n := 0
	for n < len(p) {
		if r.pieceOff >= r.pieceLen {
			if err := r.nextPiece(); err != nil {
				if err == io.EOF {
					if n > 0 {
						return n, nil
					}
					return 0, io.EOF
				}
				r.err = err
				return n, err
			}
		}
		c := copy(p[n:], r.piece[r.pieceOff:r.pieceLen])
		r.pieceOff += c
		n += c
	}
	return n, nil
}

// ReadChunk returns the next piece of the current entry's data: its offset,
// its bytes (at most RecordSize, valid until the next call) and whether it
// is a hole (then data is all zeros). It returns io.EOF at the end.
func (r *Reader) ReadChunk() (off int64, data []byte, hole bool, err error) {
	if r.err != nil {
		return 0, nil, false, r.err
	}
	if r.pieceOff < r.pieceLen {
		off = r.delivered - int64(r.pieceLen) + int64(r.pieceOff)
		data = r.piece[r.pieceOff:r.pieceLen]
		r.pieceOff = r.pieceLen
		return off, data, r.pieceHole, nil
	}
	if err := r.nextPiece(); err != nil {
		if err != io.EOF {
			r.err = err
		}
		return 0, nil, false, err
	}
	r.pieceOff = r.pieceLen
	return r.delivered - int64(r.pieceLen), r.piece[:r.pieceLen], r.pieceHole, nil
}

// skipRest reads and drops the rest of the current entry.
func (r *Reader) skipRest() error {
	for {
		err := r.nextPiece()
		if err == io.EOF {
			if r.missing {
				return nil
			}
			return r.finishIfDone()
		}
		if err != nil {
			return err
		}
	}
}

// readAll reads the rest of the entry, up to limit bytes.
func (r *Reader) readAll(limit int64, what string) ([]byte, error) {
	if r.total-r.delivered > limit {
		return nil, fmt.Errorf("%w: %s of %d bytes (limit %d)", ErrCount, what, r.total, limit)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (r *Reader) expect(k Kind, what string) error {
	if r.hdr == nil || r.hdr.Kind != k {
		return fmt.Errorf("%w: %s called on the wrong kind of header", ErrWriter, what)
	}
	return nil
}

// order returns the byte order of the current header.
func (r *Reader) order() binary.ByteOrder {
	if r.cur.order != nil {
		return r.cur.order
	}
	return binary.LittleEndian
}

// DirDamageError is returned by DirEntries, together with the entries it
// could read, when directory data holds entries with impossible record
// lengths: the names in the rest of each such 512-byte chunk are lost.
type DirDamageError struct {
	Ino     uint32
	Offsets []int // byte offsets in the directory's data of the mangled entries
}

// Error implements error.
func (e *DirDamageError) Error() string {
	return fmt.Sprintf("%v: directory inode %d is damaged: mangled entry at byte %d of its data (the names after it in that %d-byte block are lost)",
		ErrFormat, e.Ino, e.Offsets[0], dirBlock)
}

// Unwrap makes a DirDamageError an ErrFormat.
func (e *DirDamageError) Unwrap() error { return ErrFormat }

// DirEntries reads the current directory inode's entries. Damaged entries
// give the entries read and a *DirDamageError.
func (r *Reader) DirEntries() ([]DirEntry, error) {
	if err := r.expect(KindInode, "DirEntries"); err != nil {
		return nil, err
	}
	if !r.hdr.Inode.IsDir() {
		return nil, fmt.Errorf("%w: inode %d is not a directory", ErrWriter, r.hdr.Ino)
	}
	o := r.order()
	b, err := r.readAll(maxDirSize, "directory")
	if err != nil {
		return nil, err
	}
	ents, bad := parseDir(b, o)
	if len(bad) > 0 {
		return ents, &DirDamageError{Ino: r.hdr.Ino, Offsets: bad}
	}
	return ents, nil
}

// Bitmap reads the current TS_CLRI or TS_BITS map.
func (r *Reader) Bitmap() (*Bitmap, error) {
	if r.hdr == nil || (r.hdr.Kind != KindUsedMap && r.hdr.Kind != KindDumpedMap) {
		return nil, fmt.Errorf("%w: Bitmap called on the wrong kind of header", ErrWriter)
	}
	b, err := r.readAll(maxMapRecords*RecordSize, "map")
	if err != nil {
		return nil, err
	}
	return BitmapFromBytes(b), nil
}

// Xattrs reads the current EA record, or the current ExtXattrs extension.
func (r *Reader) Xattrs() ([]Xattr, error) {
	if r.hdr != nil && r.hdr.Kind == KindExtension && r.hdr.Ext == ExtXattrs {
		b, err := r.readAll(64<<20, "xattr extension")
		if err != nil {
			return nil, err
		}
		return DecodeXattrs(b)
	}
	if err := r.expect(KindXattr, "Xattrs"); err != nil {
		return nil, err
	}
	b, err := r.readAll(maxXattrRecord*RecordSize, "EA record")
	if err != nil {
		return nil, err
	}
	return parseXattrs(b)
}

// Extension reads the whole payload of the current extension record; it
// refuses payloads larger than limit bytes (use Read for big streams).
func (r *Reader) Extension(limit int64) ([]byte, error) {
	if err := r.expect(KindExtension, "Extension"); err != nil {
		return nil, err
	}
	return r.readAll(limit, "extension "+r.hdr.Ext.String())
}

// ReadStream reads the header of the current ExtStream record and returns
// the stream name; Read then returns the stream's bytes.
func (r *Reader) ReadStream() (string, error) {
	if err := r.expect(KindExtension, "ReadStream"); err != nil {
		return "", err
	}
	if r.hdr.Ext != ExtStream {
		return "", fmt.Errorf("%w: extension %s is not a stream", ErrWriter, r.hdr.Ext)
	}
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return "", fmt.Errorf("%w: stream header: %v", ErrFormat, err)
	}
	n := int(binary.LittleEndian.Uint16(l[:]))
	name := make([]byte, n)
	if _, err := io.ReadFull(r, name); err != nil {
		return "", fmt.Errorf("%w: stream name: %v", ErrFormat, err)
	}
	return string(name), nil
}

// ReadInodeAt reads the inode whose TS_INODE header is at byte offset off of
// a single-volume image and returns its header and a reader for its data
// (directory entries come from the returned Reader's DirEntries). This is
// direct access recovery: nothing before off is read.
func ReadInodeAt(ra io.ReaderAt, off int64) (*Header, *Reader, error) {
	r, err := NewReaderAt(ra, off)
	if err != nil {
		return nil, nil, err
	}
	h, err := r.Next()
	if err != nil {
		return nil, nil, err
	}
	if h.Kind != KindInode {
		return nil, nil, fmt.Errorf("%w: offset %d holds a header of type %d, not an inode", ErrFormat, off, h.Type)
	}
	return h, r, nil
}
