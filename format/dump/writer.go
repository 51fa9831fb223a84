package dump

import (
	"bytes"
	"cmp"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"slices"
	"sort"
	"syscall"
	"time"
)

// Options describe the dump a Writer makes.
type Options struct {
	Date     time.Time // dump date (c_date); time.Now() when zero
	BaseDate time.Time // date of the base dump (c_ddate); zero for level 0
	Level    int
	Label    string // c_label, at most 15 bytes ("none" when empty)
	Filesys  string // c_filesys
	Device   string // c_dev
	Host     string // c_host
	NTREC    int    // records per tape block, 1..MaxNTREC; DefaultNTREC when 0
	// BigEndian writes a byte-swapped image, as a big-endian host would.
	BigEndian bool
	// VolumeSize ends a volume after this many bytes (rounded down to whole
	// tape blocks); 0 means no limit. A write error that wraps
	// ErrEndOfMedium or ENOSPC also ends a volume.
	VolumeSize int64
	// NextVolume returns the writer for volume n (n >= 2). Without it a full
	// volume is an error.
	NextVolume func(n int) (io.Writer, error)
	// OffsetMap makes Close write an ExtOffsetMap record with the header
	// offset of every inode written.
	OffsetMap bool
}

// Position says where an inode's TS_INODE header is.
type Position struct {
	Ino uint32
	// Offset is the logical byte offset: the record index (c_tapea) times
	// RecordSize, counted over all volumes (each continuation volume's
	// TS_TAPE takes one record).
	Offset int64
	// Volume is the volume number (from 1) and VolumeOffset the byte offset
	// of the header inside that volume.
	Volume       int
	VolumeOffset int64
}

// Extent is a range of a sparse file that holds data; everything else up to
// the file size is a hole.
type Extent struct {
	Offset, Length int64
}

// recMeta describes one record in the pending block.
type recMeta struct {
	header bool
	index  int // index into w.index for an inode's first header, or -1
}

// Writer writes a dump image. Call WriteMaps, then WriteDir for every
// directory in ascending inode order, WriteFile or WriteSparseFile for every
// other inode in ascending inode order, optional extension records, and
// Close. A Writer is not safe for concurrent use.
type Writer struct {
	opt   Options
	order binary.ByteOrder
	out   io.Writer
	ntrec int

	block []byte
	meta  []recMeta
	nrec  int // records in block
	// own is the Writer's own block memory; lend, when the output lends
	// the memory of the next block (single volume only), block is that.
	own  []byte
	lend BlockLender

	tapea        int64 // index of the next record
	vol          int
	volStart     int64 // tapea of the volume's first record
	volBlocks    int64 // blocks written to the current volume
	volMaxBlocks int64 // 0: unlimited

	// multi: a next volume may follow (Options.NextVolume is set); only
	// then is the state below kept.
	multi bool
	// State of the last header placed, for continuation volume headers.
	last     raw
	dataLeft int
	// Snapshot of that state at the start of the pending block.
	blockLast     raw
	blockDataLeft int

	proto     raw // common fields of every header
	maxIno    uint32
	dumped    *Bitmap
	state     int
	lastIno   uint32
	lastDir   bool
	curIno    uint32 // inode that extension records attach to
	lastInode raw    // TS_INODE header of the inode written last
	lastEA    []byte // its EA buffer (nil when it has none)
	chain     []chainRec
	chainRecs int64
	index     []Position
	err       error
}

const (
	stNew = iota
	stMaps
	stDirs
	stFiles
	stACL
	stClosed
)

// NewWriter returns a Writer that writes volume 1 to w.
func NewWriter(w io.Writer, opt Options) (*Writer, error) {
	if opt.NTREC == 0 {
		opt.NTREC = DefaultNTREC
	}
	if opt.NTREC < 1 || opt.NTREC > MaxNTREC {
		return nil, fmt.Errorf("dump: NTREC %d out of range 1..%d", opt.NTREC, MaxNTREC)
	}
	if opt.Date.IsZero() {
		opt.Date = time.Now()
	}
	if opt.Label == "" {
		opt.Label = "none"
	}
	wr := &Writer{opt: opt, out: w, ntrec: opt.NTREC, vol: 1, multi: opt.NextVolume != nil}
	wr.order = binary.LittleEndian
	if opt.BigEndian {
		wr.order = binary.BigEndian
	}
	wr.block = make([]byte, opt.NTREC*RecordSize)
	wr.own = wr.block
	if bl, ok := w.(BlockLender); ok && !wr.multi {
		wr.lend = bl
	}
	wr.meta = make([]recMeta, opt.NTREC)
	if opt.VolumeSize > 0 {
		wr.volMaxBlocks = opt.VolumeSize / int64(len(wr.block))
		if wr.volMaxBlocks < 2 {
			return nil, fmt.Errorf("dump: volume size %d is less than two tape blocks", opt.VolumeSize)
		}
	}
	p := &wr.proto
	p.order = wr.order
	p.date = dumpDate(opt.Date)
	p.ddate = dumpDate(opt.BaseDate)
	p.volume = 1
	p.level = int32(opt.Level)
	putCstr(p.label[:], opt.Label)
	putCstr(p.filesys[:], opt.Filesys)
	putCstr(p.dev[:], opt.Device)
	putCstr(p.host[:], opt.Host)
	p.flags = FlagNewInodeFmt
	p.ntrec = int32(opt.NTREC)
	return wr, nil
}

// Index returns the header position of every inode written so far, in the
// order written. The positions WriteDir and WriteFile return are final
// except when an end-of-medium error later moves the unwritten tape block
// they are in to the next volume (one record further on); Index always has
// the final positions, and Close writes them in the offset map.
func (w *Writer) Index() []Position { return append([]Position(nil), w.index...) }

// Records returns the number of records written or buffered so far.
func (w *Writer) Records() int64 { return w.tapea }

// BlockLender is an output that lends the Writer the memory of the next
// tape block: the Writer builds the block's records in it and then writes
// that memory (or a prefix of it) with Write, which takes it without a
// copy. LendBlock returns n bytes that stay valid until that Write, or nil
// to have the Writer use its own memory. Only a single-volume Writer
// (Options.NextVolume nil) borrows blocks.
type BlockLender interface {
	io.Writer
	LendBlock(n int) []byte
}

// isEOM reports whether err means the medium is full.
func isEOM(err error) bool {
	return errors.Is(err, ErrEndOfMedium) || errors.Is(err, syscall.ENOSPC)
}

// slot returns the next record slot of the pending block, starting a new
// volume first when the current one is full.
func (w *Writer) slot(header bool, index int) ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.nrec == 0 {
		if w.volMaxBlocks > 0 && w.volBlocks >= w.volMaxBlocks {
			if err := w.newVolume(); err != nil {
				return nil, err
			}
		}
		if w.multi {
			w.blockLast, w.blockDataLeft = w.last, w.dataLeft
		}
		if w.lend != nil {
			// Build the block where the output keeps it: no copy.
			if w.block = w.lend.LendBlock(len(w.own)); len(w.block) != len(w.own) {
				w.block = w.own
			}
		}
	}
	b := w.block[w.nrec*RecordSize : (w.nrec+1)*RecordSize]
	w.meta[w.nrec] = recMeta{header: header, index: index}
	w.nrec++
	w.tapea++
	if !header && w.dataLeft > 0 {
		w.dataLeft--
	}
	return b, nil
}

// commit flushes the block when it is full.
func (w *Writer) commit() error {
	if w.nrec == w.ntrec {
		return w.flush()
	}
	return nil
}

// flush writes the pending block, moving to a new volume on end of medium.
func (w *Writer) flush() error {
	if w.nrec == 0 {
		return nil
	}
	_, err := w.out.Write(w.block[:w.nrec*RecordSize])
	if err == nil {
		w.nrec = 0
		w.volBlocks++
		return nil
	}
	if !isEOM(err) || w.opt.NextVolume == nil || w.volBlocks == 0 {
		w.err = fmt.Errorf("dump: writing volume %d: %w", w.vol, err)
		return w.err
	}
	// The block did not make it: start a new volume and place its records
	// again after the new volume header.
	recs := append([]byte(nil), w.block[:w.nrec*RecordSize]...)
	metas := append([]recMeta(nil), w.meta[:w.nrec]...)
	w.tapea -= int64(w.nrec)
	w.nrec = 0
	w.last, w.dataLeft = w.blockLast, w.blockDataLeft
	if err := w.newVolume(); err != nil {
		return err
	}
	for i, m := range metas {
		r := recs[i*RecordSize : (i+1)*RecordSize]
		if m.header {
			var h raw
			if err := h.decode(r); err != nil {
				return fmt.Errorf("dump: internal: %w", err)
			}
			w.order.PutUint32(r[12:], uint32(w.vol))
			w.order.PutUint32(r[16:], uint32(w.tapea))
			setChecksum(r, w.order)
			w.place(m.index, w.tapea)
			w.last, w.dataLeft = h, countData(&h)
		}
		s, err := w.slot(m.header, m.index)
		if err != nil {
			return err
		}
		copy(s, r)
		if err := w.commit(); err != nil {
			return err
		}
	}
	return nil
}

// countData returns the number of data records that follow header h.
func countData(h *raw) int {
	if h.typ == TypeClri || h.typ == TypeBits || h.flags&FlagExtAttributes != 0 {
		return int(h.count)
	}
	n := 0
	for i := 0; i < int(h.count) && i < maxAddr; i++ {
		if h.addr[i] != 0 {
			n++
		}
	}
	return n
}

// newVolume switches to the next volume and places its TS_TAPE header.
func (w *Writer) newVolume() error {
	if w.opt.NextVolume == nil {
		w.err = fmt.Errorf("dump: volume %d is full and there is no next volume: %w", w.vol, ErrEndOfMedium)
		return w.err
	}
	nw, err := w.opt.NextVolume(w.vol + 1)
	if err != nil {
		w.err = fmt.Errorf("dump: opening volume %d: %w", w.vol+1, err)
		return w.err
	}
	if nw == nil {
		w.err = fmt.Errorf("dump: no writer for volume %d: %w", w.vol+1, ErrEndOfMedium)
		return w.err
	}
	w.out = nw
	w.vol++
	w.volBlocks = 0
	w.volStart = w.tapea
	w.proto.volume = int32(w.vol)
	h := w.proto
	h.typ = TypeTape
	h.flags |= FlagNewHeader
	h.firstrec = int32(w.tapea)
	h.inumber = w.last.inumber
	h.count = int32(w.dataLeft)
	h.addr = w.last.addr
	h.tapea = uint32(w.tapea)
	last, left := w.last, w.dataLeft
	b, err := w.slot(true, -1)
	if err != nil {
		return err
	}
	h.encode(b)
	w.last, w.dataLeft = last, left
	return w.commit()
}

// place records in index entry i (if i >= 0) that its header is record
// tapea of the current volume.
func (w *Writer) place(i int, tapea int64) {
	if i < 0 {
		return
	}
	w.index[i].Offset = tapea * RecordSize
	w.index[i].Volume = w.vol
	w.index[i].VolumeOffset = (tapea - w.volStart) * RecordSize
}

// putHeader places a header record.
func (w *Writer) putHeader(h *raw, index int) error {
	if h.flags&FlagExtAttributes == 0 && len(w.chain) > 0 {
		if err := w.flushChain(true); err != nil {
			return err
		}
	}
	b, err := w.slot(true, index)
	if err != nil {
		return err
	}
	h.tapea = uint32(w.tapea - 1)
	h.volume = int32(w.vol)
	h.encode(b)
	w.place(index, int64(h.tapea))
	if w.multi {
		w.last, w.dataLeft = *h, countData(h)
	}
	return w.commit()
}

// keepTogether ends the current volume early (after a short block) when
// the next n records would not all fit in it.
func (w *Writer) keepTogether(n int64) error {
	if w.volMaxBlocks == 0 || w.err != nil {
		return w.err
	}
	capacity := w.volMaxBlocks * int64(w.ntrec)
	used := w.volBlocks*int64(w.ntrec) + int64(w.nrec)
	if w.nrec == 0 && w.volBlocks >= w.volMaxBlocks {
		used = 1 // a new volume starts with its TS_TAPE
	}
	if used+n <= capacity || n+1 > capacity {
		return nil
	}
	if err := w.flush(); err != nil {
		return err
	}
	w.volBlocks = w.volMaxBlocks // the next record starts a new volume
	return nil
}

// putData places a data record; p is at most RecordSize bytes and is padded
// with zeros.
func (w *Writer) putData(p []byte) error {
	b, err := w.slot(false, -1)
	if err != nil {
		return err
	}
	n := copy(b, p)
	clear(b[n:])
	return w.commit()
}

// WriteMaps writes the TS_TAPE volume header, the TS_CLRI map of every live
// inode (which also fixes the largest inode number the image may hold) and
// the TS_BITS map of every inode this image will contain.
func (w *Writer) WriteMaps(used, dumped *Bitmap) error {
	if w.state != stNew {
		return fmt.Errorf("%w: WriteMaps called twice", ErrWriter)
	}
	if used == nil || dumped == nil {
		return fmt.Errorf("%w: WriteMaps needs both maps", ErrWriter)
	}
	if len(dumped.b) > len(used.b) {
		return fmt.Errorf("%w: the dumped-inode map is larger than the used-inode map", ErrWriter)
	}
	w.state = stMaps
	w.maxIno = used.MaxIno()
	w.dumped = dumped
	h := w.proto
	h.typ = TypeTape
	h.flags |= FlagNewHeader
	if err := w.putHeader(&h, -1); err != nil {
		return err
	}
	if err := w.writeMap(TypeClri, w.maxIno, used.b); err != nil {
		return err
	}
	mapBits := dumped.b
	if len(mapBits) < len(used.b) {
		mapBits = append(append([]byte(nil), mapBits...), make([]byte, len(used.b)-len(mapBits))...)
	}
	// The first inode of the dump, and room in the index for them all.
	first, count := uint32(0), 0
	for i, c := range dumped.b {
		if c == 0 {
			continue
		}
		if first == 0 {
			first = uint32(i)*8 + uint32(bits.TrailingZeros8(c)) + 1
		}
		count += bits.OnesCount8(c)
	}
	if first == 0 {
		first = RootIno
	}
	w.index = make([]Position, 0, count)
	return w.writeMap(TypeBits, first, mapBits)
}

func (w *Writer) writeMap(typ int32, ino uint32, m []byte) error {
	h := w.proto
	h.typ = typ
	h.inumber = ino
	n := len(m) / RecordSize
	h.count = int32(n)
	h.size = uint64(len(m))
	if err := w.putHeader(&h, -1); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := w.putData(m[i*RecordSize : (i+1)*RecordSize]); err != nil {
			return err
		}
	}
	return nil
}

// inodeHeader makes h the TS_INODE header of in.
func (w *Writer) inodeHeader(h *raw, in *Inode) {
	*h = w.proto
	h.typ = TypeInode
	h.inumber = in.Ino
	h.mode = uint16(in.Mode)
	h.nlink = int16(min(in.Nlink, 0x7fff))
	h.uid, h.gid = in.UID, in.GID
	h.ouid, h.ogid = uint16(min(in.UID, 0xffff)), uint16(min(in.GID, 0xffff))
	h.size = uint64(in.Size)
	h.atime, h.atimeUsec = tapeTime(in.Atime)
	h.mtime, h.mtimeUsec = tapeTime(in.Mtime)
	h.ctime, h.ctimeUsec = tapeTime(in.Ctime)
	if t := in.Mode & ModeFmt; t == ModeChr || t == ModeBlk {
		h.db[0] = in.Rdev
	}
	if needTimes(in) {
		h.exact = true
		for i, t := range []time.Time{in.Atime, in.Mtime, in.Ctime, in.Birthtime} {
			if t.IsZero() {
				h.exactSec[i] = noTime
				continue
			}
			h.exactSec[i], h.exactNsec[i] = t.Unix(), uint32(t.Nanosecond())
		}
	}
	h.diFlags = in.Flags
	h.gen = in.Gen
	h.blocks = in.Blocks
	if in.MetaOnly {
		h.flags |= FlagMetaOnly
	}
}

// checkInode validates the order and the inode number of the next inode.
func (w *Writer) checkInode(in *Inode, dir bool) error {
	if w.err != nil {
		return w.err
	}
	switch {
	case w.state < stMaps:
		return fmt.Errorf("%w: WriteMaps must come first", ErrWriter)
	case w.state > stFiles:
		return fmt.Errorf("%w: inode %d after the ACL section or Close", ErrWriter, in.Ino)
	case dir && w.state == stFiles:
		return fmt.Errorf("%w: directory %d after the first non-directory", ErrWriter, in.Ino)
	case w.state == stMaps && (!dir || in.Ino != RootIno):
		return fmt.Errorf("%w: the first inode must be the root directory %d", ErrWriter, RootIno)
	case in.Ino <= 1 || in.Ino > w.maxIno:
		return fmt.Errorf("%w: inode %d outside 2..%d", ErrWriter, in.Ino, w.maxIno)
	case w.lastIno != 0 && (dir == w.lastDir) && in.Ino <= w.lastIno:
		return fmt.Errorf("%w: inode %d after %d (inodes must ascend)", ErrWriter, in.Ino, w.lastIno)
	case in.Size < 0 || in.Size > maxFileSize:
		return fmt.Errorf("%w: inode %d size %d", ErrWriter, in.Ino, in.Size)
	case !w.dumped.Has(in.Ino):
		return fmt.Errorf("%w: inode %d is not in the dumped-inode map", ErrWriter, in.Ino)
	}
	if dir != in.IsDir() {
		return fmt.Errorf("%w: inode %d mode %o does not match the call", ErrWriter, in.Ino, in.Mode)
	}
	return nil
}

// writeInode writes the TS_INODE and TS_ADDR headers and the data records
// of an inode. isData says which pieces hold data; fill reads a data piece
// into a record slot.
func (w *Writer) writeInode(in *Inode, isData func(i int64) bool, fill func(i int64, b []byte) error) (Position, error) {
	// The header is built in lastInode, which extension records copy.
	h := &w.lastInode
	w.inodeHeader(h, in)
	w.lastEA = nil
	pieces := (in.Size + RecordSize - 1) / RecordSize
	if in.MetaOnly {
		pieces = 0
	}
	pos := Position{Ino: in.Ino}
	idx := len(w.index)
	first := true
	for p := int64(0); first || p < pieces; {
		n := min(pieces-p, maxAddr)
		clear(h.addr[:])
		h.count = int32(n)
		for i := int64(0); i < n; i++ {
			if isData(p + i) {
				h.addr[i] = 1
			}
		}
		if first {
			w.index = append(w.index, Position{Ino: in.Ino})
			if err := w.putHeader(h, idx); err != nil {
				return pos, err
			}
		} else if err := w.putHeader(h, -1); err != nil {
			return pos, err
		}
		for i := int64(0); i < n; i++ {
			if h.addr[i] == 0 {
				continue
			}
			b, err := w.slot(false, -1)
			if err != nil {
				return pos, err
			}
			if err := fill(p+i, b); err != nil {
				w.err = err
				return pos, err
			}
			if err := w.commit(); err != nil {
				return pos, err
			}
		}
		p += n
		h.typ = TypeAddr
		first = false
	}
	return w.index[idx], nil
}

// afterInode writes the EA record and, for attributes that do not fit in
// it, an xattrs extension record.
func (w *Writer) afterInode(in *Inode, xattrs []Xattr) error {
	w.curIno = in.Ino
	rest := xattrs
	if len(xattrs) > 0 {
		var buf []byte
		buf, rest = encodeXattrs(xattrs)
		w.lastEA = buf
		if buf != nil {
			h := w.lastInode // the header of in
			h.typ = TypeInode
			h.flags |= FlagExtAttributes
			h.extattributes = extXattr
			h.size = uint64(len(buf))
			n := (len(buf) + RecordSize - 1) / RecordSize
			h.count = int32(n)
			clear(h.addr[:])
			for i := 0; i < n; i++ {
				h.addr[i] = 1
			}
			if err := w.queueEA(h, buf); err != nil {
				return err
			}
		}
	}
	if len(rest) > 0 {
		p, err := EncodeXattrs(rest)
		if err != nil {
			return err
		}
		if err := w.WriteExtension(ExtXattrs, p); err != nil {
			return err
		}
	}
	return nil
}

// needTimes reports whether the header's {sec, usec} times lose anything.
func needTimes(in *Inode) bool {
	if !in.Birthtime.IsZero() {
		return true
	}
	for _, t := range []time.Time{in.Atime, in.Mtime, in.Ctime} {
		if t.IsZero() {
			continue
		}
		if t.Nanosecond()%1000 != 0 || t.Unix() < 0 || t.Unix() > 0xffffffff {
			return true
		}
	}
	return false
}

// WriteDir writes a directory inode with its entries (include "." and
// ".."), its extended attributes and, when needed, exact times in the header.
// Directories come before all other inodes, in ascending inode order, root
// first. in.Size is set to the encoded size.
func (w *Writer) WriteDir(in *Inode, xattrs []Xattr, entries []DirEntry) (Position, error) {
	if err := w.checkInode(in, true); err != nil {
		return Position{}, err
	}
	data, err := encodeDir(entries, w.order)
	if err != nil {
		return Position{}, err
	}
	if len(data) >= 0xfffffff {
		return Position{}, fmt.Errorf("%w: directory %d of %d bytes (restore misreads directories over 256 MiB)", ErrCount, in.Ino, len(data))
	}
	in.Size = int64(len(data))
	w.state = stDirs
	w.lastIno, w.lastDir = in.Ino, true
	pos, err := w.writeInode(in, func(int64) bool { return true }, func(i int64, b []byte) error {
		n := copy(b, data[i*RecordSize:min(int64(len(data)), (i+1)*RecordSize)])
		clear(b[n:])
		return nil
	})
	if err != nil {
		return pos, err
	}
	return pos, w.afterInode(in, xattrs)
}

// WriteFile writes a non-directory inode whose data (in.Size bytes) comes
// from r: file contents, or the target of a symbolic link. Devices, FIFOs
// and sockets have Size 0 and a nil r. Inodes come in ascending order after
// all directories.
func (w *Writer) WriteFile(in *Inode, xattrs []Xattr, r io.Reader) (Position, error) {
	if err := w.beginFile(in); err != nil {
		return Position{}, err
	}
	if r == nil && in.Size > 0 && !in.MetaOnly {
		return Position{}, fmt.Errorf("%w: inode %d has %d bytes and no reader", ErrWriter, in.Ino, in.Size)
	}
	pos, err := w.writeInode(in, func(int64) bool { return true }, func(i int64, b []byte) error {
		n := min(in.Size-i*RecordSize, RecordSize)
		if _, err := io.ReadFull(r, b[:n]); err != nil {
			return fmt.Errorf("dump: reading data of inode %d: %w", in.Ino, err)
		}
		clear(b[n:])
		return nil
	})
	if err != nil {
		return pos, err
	}
	return pos, w.afterInode(in, xattrs)
}

// WriteSparseFile writes a regular file whose data is in the given extents
// of r; every 1 KB piece no extent touches is written as a hole.
func (w *Writer) WriteSparseFile(in *Inode, xattrs []Xattr, r io.ReaderAt, extents []Extent) (Position, error) {
	if err := w.beginFile(in); err != nil {
		return Position{}, err
	}
	ext := make([]Extent, 0, len(extents))
	for _, e := range extents {
		if e.Length > 0 && e.Offset >= 0 && e.Offset < in.Size {
			ext = append(ext, e)
		}
	}
	sort.Slice(ext, func(i, j int) bool { return ext[i].Offset < ext[j].Offset })
	k := 0
	// isData is asked about pieces in ascending order.
	isData := func(i int64) bool {
		lo, hi := i*RecordSize, (i+1)*RecordSize
		for k < len(ext) && ext[k].Offset+ext[k].Length <= lo {
			k++
		}
		for j := k; j < len(ext) && ext[j].Offset < hi; j++ {
			if ext[j].Offset+ext[j].Length > lo {
				return true
			}
		}
		return false
	}
	pos, err := w.writeInode(in, isData, func(i int64, b []byte) error {
		n := min(in.Size-i*RecordSize, RecordSize)
		m, err := r.ReadAt(b[:n], i*RecordSize)
		if int64(m) < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("dump: reading data of inode %d: %w", in.Ino, err)
		}
		clear(b[n:])
		return nil
	})
	if err != nil {
		return pos, err
	}
	return pos, w.afterInode(in, xattrs)
}

func (w *Writer) beginFile(in *Inode) error {
	if err := w.checkInode(in, false); err != nil {
		return err
	}
	w.state = stFiles
	w.lastIno, w.lastDir = in.Ino, false
	return nil
}

// WriteExtension writes a Tapestry extension record of the given kind for
// the inode written last (or, in the ACL section, for the inode the record
// names; see WriteACL).
func (w *Writer) WriteExtension(kind ExtKind, payload []byte) error {
	if w.state < stDirs || w.state == stClosed {
		return fmt.Errorf("%w: extension record without an inode", ErrWriter)
	}
	return w.writeExtBytes(w.curIno, kind, payload)
}

// writeExtBytes writes payload p, with its CRC, as an extension record for
// inode target (an empty payload has CRC 0, "not checked").
func (w *Writer) writeExtBytes(target uint32, kind ExtKind, p []byte) error {
	return w.writeExt(target, kind, int64(len(p)), crc32.ChecksumIEEE(p), bytes.NewReader(p))
}

// emptyEA is a valid in-inode EA buffer with no attributes.
var emptyEA = []byte{0x01, 0x00, 0x02, 0xea, 0, 0, 0, 0}

// writeExt writes an extension payload of size bytes from r for inode
// target as one or more records shaped like Linux EXT_XATTR records of the
// inode written last. Each starts with a copy of that inode's EA buffer (or
// an empty one), which is all Linux restore reads from it; restore applies
// the same attributes again and skips the payload records.
func (w *Writer) writeExt(target uint32, kind ExtKind, size int64, crc uint32, r io.Reader) error {
	if w.err != nil {
		return w.err
	}
	if size < 0 || size > maxExtPayload {
		return fmt.Errorf("%w: extension of %d bytes", ErrCount, size)
	}
	stub := w.lastEA
	if stub == nil {
		stub = emptyEA
	}
	stubRecs := int64(len(stub)+RecordSize-1) / RecordSize
	pieces := (size + RecordSize - 1) / RecordSize
	h := w.lastInode
	h.typ = TypeInode
	h.flags |= FlagExtAttributes | FlagTapestry
	h.extattributes = extXattr
	h.size = uint64(len(stub))
	h.tapestry = true
	h.extKind = uint32(kind)
	h.extTotal = uint64(size)
	h.extCRC = crc
	h.extIno = target
	for p, part := int64(0), uint32(0); part == 0 || p < pieces; part++ {
		n := min(pieces-p, maxAddr-stubRecs)
		h.extPart = part
		h.count = int32(stubRecs + n)
		clear(h.addr[:])
		for i := 0; i < int(h.count); i++ {
			h.addr[i] = 1
		}
		recs := make([]byte, (stubRecs+n)*RecordSize)
		copy(recs, stub)
		for i := int64(0); i < n; i++ {
			m := min(size-(p+i)*RecordSize, RecordSize)
			off := (stubRecs + i) * RecordSize
			if _, err := io.ReadFull(r, recs[off:off+m]); err != nil {
				w.err = fmt.Errorf("dump: reading extension data: %w", err)
				return w.err
			}
		}
		if err := w.queueEA(h, recs); err != nil {
			return err
		}
		p += n
	}
	return nil
}

// maxChain is the most EA-shaped records the writer holds back to keep them
// on one volume with the header that follows them.
const maxChain = 1 << 20

// queueEA places an EA-shaped record (header h with data records recs,
// a multiple of RecordSize or shorter for the last record). On volumes of a
// known size such records are held back until the next other header, so
// that all of them and that header land on one volume: Linux restore
// (0.4b47) drops an EA record whose data or following header is on the
// next volume, because it reads them in its "unknown file" state.
func (w *Writer) queueEA(h raw, recs []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.volMaxBlocks == 0 {
		return w.placeEA(&h, recs)
	}
	w.chain = append(w.chain, chainRec{h: h, data: recs})
	w.chainRecs += 1 + int64(len(recs)+RecordSize-1)/RecordSize
	if w.chainRecs*RecordSize > maxChain {
		return w.flushChain(false)
	}
	return nil
}

type chainRec struct {
	h    raw
	data []byte
}

// flushChain places the held-back EA-shaped records, first ending the
// volume early when they and one more header would not fit in it.
func (w *Writer) flushChain(keep bool) error {
	if len(w.chain) == 0 {
		return nil
	}
	chain, n := w.chain, w.chainRecs
	w.chain, w.chainRecs = nil, 0
	if keep {
		// The held-back records and the header that follows them.
		if err := w.keepTogether(n + 1); err != nil {
			return err
		}
	}
	for i := range chain {
		if err := w.placeEA(&chain[i].h, chain[i].data); err != nil {
			return err
		}
	}
	return nil
}

// placeEA writes an EA-shaped header and its data records now.
func (w *Writer) placeEA(h *raw, recs []byte) error {
	if err := w.putHeader(h, -1); err != nil {
		return err
	}
	for off := 0; off < len(recs); off += RecordSize {
		if err := w.putData(recs[off:min(len(recs), off+RecordSize)]); err != nil {
			return err
		}
	}
	return nil
}

// WriteNTACL writes the NT ACL of the inode written last.
func (w *Writer) WriteNTACL(acl *NTACL) error { return w.writeMarshaled(ExtNTACL, acl) }

// WriteDOS writes the DOS attributes of the inode written last.
func (w *Writer) WriteDOS(info *DOSInfo) error { return w.writeMarshaled(ExtDOS, info) }

// WriteQtree writes the qtree information of the directory written last.
func (w *Writer) WriteQtree(q *QtreeInfo) error { return w.writeMarshaled(ExtQtree, q) }

// WriteLUN marks the file written last as a LUN.
func (w *Writer) WriteLUN(l *LUNInfo) error { return w.writeMarshaled(ExtLUN, l) }

// writeMarshaled writes m's binary encoding as an extension of the given kind.
func (w *Writer) writeMarshaled(kind ExtKind, m encoding.BinaryMarshaler) error {
	p, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	return w.WriteExtension(kind, p)
}

// WriteStream writes one NT named stream (size bytes from r) of the inode
// written last.
func (w *Writer) WriteStream(name string, size int64, r io.Reader) error {
	if w.state < stDirs || w.state == stClosed {
		return fmt.Errorf("%w: stream without an inode", ErrWriter)
	}
	hdr, err := EncodeStreamHeader(name)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("%w: stream of %d bytes", ErrCount, size)
	}
	// The CRC is in every part header, so a small stream is buffered to
	// compute it first; a large one is written with CRC 0 ("not checked").
	cr := io.MultiReader(bytes.NewReader(hdr), io.LimitReader(r, size))
	total := int64(len(hdr)) + size
	if total <= 1<<20 {
		buf, err := io.ReadAll(cr)
		if err != nil {
			return fmt.Errorf("dump: reading stream %q: %w", name, err)
		}
		if int64(len(buf)) != total {
			return fmt.Errorf("dump: stream %q: %w", name, io.ErrUnexpectedEOF)
		}
		return w.writeExtBytes(w.curIno, ExtStream, buf)
	}
	return w.writeExt(w.curIno, ExtStream, total, 0, cr)
}

// BeginACLSection starts the ACL section (phase V), after the last file.
// WriteACL then adds the NT ACL of any inode on the image.
func (w *Writer) BeginACLSection() error {
	if w.state < stDirs || w.state >= stACL {
		return fmt.Errorf("%w: ACL section out of order", ErrWriter)
	}
	w.state = stACL
	return w.writeExtBytes(0, ExtACLSection, nil)
}

// WriteACL writes the NT ACL of inode ino in the ACL section.
func (w *Writer) WriteACL(ino uint32, acl *NTACL) error {
	if w.state != stACL {
		return fmt.Errorf("%w: WriteACL outside the ACL section", ErrWriter)
	}
	p, err := acl.MarshalBinary()
	if err != nil {
		return err
	}
	return w.writeExtBytes(ino, ExtNTACL, p)
}

// Close writes the offset map (if Options.OffsetMap is set) and the TS_END
// records that fill the last tape block, and flushes. It does not close the
// underlying writers.
func (w *Writer) Close() error {
	if w.state == stClosed {
		return w.err
	}
	if w.err != nil {
		return w.err
	}
	if w.state < stDirs {
		return fmt.Errorf("%w: Close before the root directory was written", ErrWriter)
	}
	if w.opt.OffsetMap {
		m := make([]OffsetEntry, len(w.index))
		for i, p := range w.index {
			m[i] = OffsetEntry{Ino: p.Ino, Offset: p.Offset}
		}
		// Directories, then files, each ascending: sorted here without
		// reflection, so that the encoder finds them in order.
		slices.SortFunc(m, func(a, b OffsetEntry) int { return cmp.Compare(a.Ino, b.Ino) })
		p := EncodeOffsetMap(m)
		if err := w.writeExtBytes(0, ExtOffsetMap, p); err != nil {
			return err
		}
	}
	w.state = stClosed
	h := w.proto
	h.typ = TypeEnd
	h.inumber = w.maxIno - 1
	if err := w.putHeader(&h, -1); err != nil {
		return err
	}
	for w.nrec != 0 {
		if err := w.putHeader(&h, -1); err != nil {
			return err
		}
	}
	return w.err
}
