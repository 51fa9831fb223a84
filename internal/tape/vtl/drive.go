package vtl

import (
	"errors"
	"fmt"
	"sync"

	"github.com/tapestry-ndmp/tapestry/format/simtap"
)

// OpenMode is how a drive is opened (the NDMP values).
type OpenMode int

// Open modes.
const (
	ReadMode      OpenMode = 0 // read only
	ReadWriteMode OpenMode = 1 // read and write; a tape must be loaded
	RawMode       OpenMode = 2 // read and write; opens with no tape loaded
)

// Compression letters of tape device names (T1) and the record
// compression each means.
var compressionBySuffix = map[byte]simtap.Compression{
	'l': simtap.None, 'm': simtap.Fast, 'h': simtap.Default, 'a': simtap.Better,
}

// CompressionForSuffix returns the record compression a device name's
// compression letter (l, m, h or a) selects.
func CompressionForSuffix(c byte) (simtap.Compression, error) {
	comp, ok := compressionBySuffix[c]
	if !ok {
		return 0, fmt.Errorf("vtl: compression letter %q not one of l, m, h, a: %w", c, ErrIllegalArgs)
	}
	return comp, nil
}

// OpenOptions tune Drive.Open; the NDMP layer derives them from the mode
// and the device name (nrst0a: no rewind, compression a).
type OpenOptions struct {
	Mode        OpenMode
	Compression simtap.Compression // how records written are stored
	NoRewind    bool               // do not rewind on close
	Unload      bool               // unload (eject) on close
	// PassFileMarks makes a Read that meets a file mark move past it, as
	// a Linux st device does. NDMP v4 (draft 3.4.7) wants the head to
	// stay on the BOT side of the mark, which is the default.
	PassFileMarks bool
}

// MTOp is an NDMP_TAPE_MTIO operation (the NDMP values).
type MTOp int

// MTIO operations.
const (
	MTFSF MTOp = 0 // forward space files
	MTBSF MTOp = 1 // backward space files
	MTFSR MTOp = 2 // forward space records
	MTBSR MTOp = 3 // backward space records
	MTREW MTOp = 4 // rewind
	MTEOF MTOp = 5 // write file marks
	MTOFF MTOp = 6 // rewind and unload
	MTTUR MTOp = 7 // test unit ready
)

// Bits of State.Flags (the NDMP values).
const (
	StateNoRewind = 0x08
	StateWrProt   = 0x10
	StateError    = 0x20
	StateUnload   = 0x40
)

// MaxMarksPerOp is the most file marks one operation may write.
const MaxMarksPerOp = 1 << 16

// Unknown is the all-ones value of a State field that is not known.
const Unknown = ^uint32(0)

// State is what NDMP_TAPE_GET_STATE reports.
type State struct {
	Unsupported uint32
	Flags       uint32
	FileNum     uint32
	SoftErrors  uint32
	BlockSize   uint32 // 0: variable block size
	BlockNo     uint32
	TotalSpace  uint64
	SpaceRemain uint64
}

// Stats are a drive's I/O statistics and error counters since it was
// created or ResetStats was called.
type Stats struct {
	BytesRead      int64
	BytesWritten   int64
	RecordsRead    int64
	RecordsWritten int64
	MarksWritten   int64
	ReadErrors     int64
	WriteErrors    int64
	Loads          int64
}

// Drive is a tape drive of the library. Its methods are safe for
// concurrent use; one opener at a time may do I/O.
type Drive struct {
	lib    *Library
	index  int
	serial string

	mu         sync.Mutex
	loaded     bool              // a cartridge is in the drive and threaded
	cart       *simtap.Cartridge // the loaded cartridge's image, opened on first use
	open       bool              // opened by a client
	opts       OpenOptions       // how it was opened
	closeErr   bool              // the last Close failed on I/O: the next one just closes
	dirty      bool              // records written and no file mark since
	fresh      bool              // nothing written since the cartridge was loaded
	ewPending  bool              // the last write entered the early-warning zone
	ewReported bool              // EOM was reported; writes go on until the hard end
	preempted  bool              // another initiator took the reservation
	errFlag    bool              // media error in the last operation
	stats      Stats             //
	sense      senseData         // pending sense for REQUEST SENSE
	lastRec    int               // length of the last record read
	_          [0]func()         // not comparable
}

// Serial returns the drive's serial number.
func (d *Drive) Serial() string { return d.serial }

// Index returns the drive's number in the library (0-based).
func (d *Drive) Index() int { return d.index }

// Address returns the drive's element address in the changer.
func (d *Drive) Address() uint16 { return DriveBase + uint16(d.index) }

// Library returns the library the drive belongs to.
func (d *Drive) Library() *Library { return d.lib }

// barcode returns the barcode of the cartridge in the drive (loaded or
// ejected), "" if none. Call with d.mu held.
func (d *Drive) barcode() string { return d.lib.st.Drives[d.index].Barcode }

// Barcode returns the barcode of the cartridge in the drive, "" if none.
func (d *Drive) Barcode() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.barcode()
}

// Loaded reports whether a cartridge is loaded and ready.
func (d *Drive) Loaded() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.loaded
}

// IsOpen reports whether the drive is open.
func (d *Drive) IsOpen() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.open
}

// Stats returns the drive's statistics.
func (d *Drive) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// ResetStats zeroes the drive's statistics.
func (d *Drive) ResetStats() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats = Stats{}
}

// Preempt simulates another initiator taking the drive's reservation: the
// current opener's next operation fails with MsgReservationPreempted.
func (d *Drive) Preempt() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.open {
		d.preempted = true
	}
}

// Unload rewinds and ejects the cartridge (it stays in the drive element
// until the changer moves it). The drive must not be open.
func (d *Drive) Unload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.open {
		return newErr("unload "+d.serial, ErrBusy, "", nil)
	}
	if d.barcode() == "" {
		return newErr("unload "+d.serial, ErrNoTape, "", nil)
	}
	return d.unloadLocked()
}

// Load threads an ejected cartridge again, at BOT.
func (d *Drive) Load() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.barcode() == "" {
		return newErr("load "+d.serial, ErrNoTape, "", nil)
	}
	if !d.loaded {
		d.lib.mu.Lock()
		d.loadLocked()
		d.lib.mu.Unlock()
	}
	return nil
}

// loadLocked threads a cartridge just moved into the drive. Call with
// d.mu and d.lib.mu held.
func (d *Drive) loadLocked() {
	d.loaded = true
	if d.cart != nil {
		_ = d.cart.Close()
	}
	d.cart = nil
	d.fresh = true
	d.ewPending, d.ewReported, d.dirty = false, false, false
	d.stats.Loads++
}

// unloadLocked closes the cartridge image before the cartridge leaves the
// drive. Call with d.mu held.
func (d *Drive) unloadLocked() error {
	d.loaded = false
	if d.cart == nil {
		return nil
	}
	err := d.cart.Close()
	d.cart = nil
	if err != nil {
		return fmt.Errorf("vtl: drive %s: unload: %w", d.serial, err)
	}
	return nil
}

// shutdown closes the drive for Library.Close.
func (d *Drive) shutdown() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.open {
		d.open = false
		d.lib.mu.Lock()
		d.lib.active--
		d.lib.mu.Unlock()
	}
	if d.cart == nil {
		return nil
	}
	err := d.cart.Close()
	d.cart = nil
	return err
}

// meta returns a copy of the loaded cartridge's attributes.
func (d *Drive) meta() Cartridge {
	d.lib.mu.Lock()
	defer d.lib.mu.Unlock()
	c := d.lib.st.Carts[d.barcode()]
	if c == nil {
		return Cartridge{}
	}
	return *c
}

// ensureCart opens the loaded cartridge's image. Call with d.mu held and
// d.loaded true.
func (d *Drive) ensureCart() error {
	if d.cart != nil {
		return nil
	}
	bc := d.barcode()
	if d.lib.fire(bc, FaultInit, -1) {
		return newErr("load "+bc, ErrIO, MsgCouldNotInitializeMedia, nil)
	}
	c, err := simtap.Open(d.lib.cartPath(bc), nil)
	if err != nil {
		return newErr("load "+bc, ErrIO, MsgCouldNotInitializeMedia, err)
	}
	d.cart = c
	return nil
}

// Open opens the drive. Without a loaded tape only RawMode succeeds; a
// write-protected tape opens only in ReadMode or RawMode.
func (d *Drive) Open(o OpenOptions) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	op := "open " + d.serial
	if d.open {
		return newErr(op, ErrBusy, "", nil)
	}
	if o.Mode < ReadMode || o.Mode > RawMode || o.Compression > simtap.Better {
		return newErr(op, ErrIllegalArgs, "", fmt.Errorf("mode %d compression %d", o.Mode, o.Compression))
	}
	if d.loaded {
		if err := d.ensureCart(); err != nil {
			return err
		}
		if o.Mode == ReadWriteMode && d.meta().WriteProtect {
			return newErr(op, ErrWriteProtect, "", nil)
		}
	} else if o.Mode != RawMode {
		return newErr(op, ErrNoTape, "", nil)
	}
	d.lib.mu.Lock()
	if d.lib.active >= d.lib.st.Config.MaxActive {
		d.lib.mu.Unlock()
		return newErr(op, ErrBusy, MsgNoAvailableThread, nil)
	}
	d.lib.active++
	d.lib.mu.Unlock()
	d.open, d.opts = true, o
	d.dirty, d.preempted, d.errFlag, d.closeErr = false, false, false, false
	return nil
}

// Close closes the drive: it writes a file mark if records were written
// since the last one (NDMP's implicit file mark), rewinds unless opened
// with NoRewind and unloads if opened with Unload. When that I/O fails the
// drive stays open and the error is returned; the next Close then closes
// without further I/O.
func (d *Drive) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.open {
		return newErr("close", ErrNotOpen, "", nil)
	}
	if !d.closeErr && !d.preempted && d.loaded && d.cart != nil {
		if err := d.closeIO(); err != nil {
			d.closeErr = true
			return err
		}
	}
	d.open = false
	d.lib.mu.Lock()
	d.lib.active--
	d.lib.mu.Unlock()
	return nil
}

func (d *Drive) closeIO() error {
	if err := d.implicitMark(); err != nil {
		return err
	}
	if !d.opts.NoRewind || d.opts.Unload {
		_ = d.cart.Rewind()
		d.updateEW()
	}
	if err := d.cart.Sync(); err != nil {
		return newErr("close", ErrIO, mediumMsg(err, ""), err)
	}
	if d.opts.Unload {
		return d.unloadLocked()
	}
	return nil
}

// begin starts a tape operation: the drive must be open, its reservation
// intact and (if needTape) a tape loaded.
func (d *Drive) begin(op string, needTape bool) error {
	if !d.open {
		return newErr(op, ErrNotOpen, "", nil)
	}
	d.closeErr = false
	if d.preempted {
		return newErr(op, ErrPreempted, MsgReservationPreempted, nil)
	}
	d.errFlag = false
	if needTape {
		if !d.loaded {
			return newErr(op, ErrNoTape, "", nil)
		}
		if err := d.ensureCart(); err != nil {
			return err
		}
	}
	return nil
}

// implicitMark writes the file mark NDMP requires before most operations
// when records were written since the last mark.
func (d *Drive) implicitMark() error {
	if !d.dirty || d.opts.Mode == ReadMode {
		return nil
	}
	if err := d.writeMarks(1); err != nil {
		return err
	}
	return nil
}

// updateEW forgets early warning once the head is back before the zone.
func (d *Drive) updateEW() {
	m := d.meta()
	if d.cart.Position().Offset <= m.effCapacity()-m.effEarlyWarning() {
		d.ewPending, d.ewReported = false, false
	}
}

// MTIO performs a tape movement or file-mark operation and returns the
// residual count (operations not done because BOT, a file mark, the end
// of data or an error came first). Semantics are NDMP v4's: FSF ends past
// the last mark crossed, BSF before it; FSR and BSR stop at a file mark
// without crossing it; at BOT or the end of data the rest is returned as
// residual with no error. A count of 0 does nothing.
func (d *Drive) MTIO(op MTOp, count uint32) (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := fmt.Sprintf("mtio %d", op)
	if op < MTFSF || op > MTTUR {
		if !d.open {
			return count, newErr(name, ErrNotOpen, "", nil)
		}
		return count, newErr(name, ErrIllegalArgs, "", nil)
	}
	if err := d.begin(name, op != MTTUR); err != nil {
		return count, err
	}
	if op == MTTUR {
		if !d.loaded {
			return 0, newErr(name, ErrNoTape, "", nil)
		}
		return 0, nil
	}
	if op != MTEOF {
		if err := d.implicitMark(); err != nil {
			return count, err
		}
	}
	var resid int64
	n := int64(count)
	switch op {
	case MTFSF:
		resid, _ = d.cart.SpaceFiles(n)
	case MTBSF:
		resid, _ = d.cart.SpaceFiles(-n)
	case MTFSR:
		resid, _ = d.cart.SpaceRecords(n)
	case MTBSR:
		resid, _ = d.cart.SpaceRecords(-n)
	case MTREW:
		_ = d.cart.Rewind()
	case MTOFF:
		_ = d.cart.Rewind()
		if err := d.cart.Sync(); err != nil {
			return count, newErr(name, ErrIO, mediumMsg(err, ""), err)
		}
		if err := d.unloadLocked(); err != nil {
			return count, newErr(name, ErrIO, "", err)
		}
		return 0, nil
	case MTEOF:
		if count > MaxMarksPerOp {
			return count, newErr(name, ErrIllegalArgs, "", fmt.Errorf("%d file marks in one operation, at most %d", count, MaxMarksPerOp))
		}
		if err := d.checkWritable(name); err != nil {
			return count, err
		}
		for i := int64(0); i < n; i++ {
			if err := d.writeMarks(1); err != nil {
				return uint32(n - i), err
			}
		}
		return 0, nil
	}
	d.updateEW()
	return uint32(resid), nil
}

// checkWritable refuses writes on a read-only open or a protected tape.
func (d *Drive) checkWritable(op string) error {
	if d.opts.Mode == ReadMode {
		return newErr(op, ErrPermission, "", nil)
	}
	m := d.meta()
	if m.WriteProtect {
		msg := MsgWriteFailed
		if d.fresh {
			msg = MsgWriteFailedNewBroken
		}
		d.stats.WriteErrors++
		return newErr(op, ErrWriteProtect, msg, nil)
	}
	if m.WORM && !d.cart.AtEnd() {
		d.stats.WriteErrors++
		return newErr(op, ErrIO, MsgWriteFailed, errors.New("WORM cartridge: overwriting refused"))
	}
	return nil
}

// room checks that n more bytes fit before the hard end of the tape.
func (d *Drive) room(op string, n int64) error {
	m := d.meta()
	if d.cart.Position().Offset+n <= m.effCapacity() {
		return nil
	}
	d.stats.WriteErrors++
	min := d.lib.Config().MinCapacity
	switch {
	case min > 0 && m.effCapacity() < min:
		return newErr(op, ErrIO, MsgMinimumCapacity(min>>20), nil)
	case d.fresh:
		return newErr(op, ErrIO, MsgWriteFailedNewAtEnd, nil)
	}
	return newErr(op, ErrIO, MsgWriteFailed, errors.New("physical end of medium"))
}

// mediumMsg returns the ONTAP message of a failed write or flush of the
// cartridge image: a media error when the image file was removed or
// replaced under the drive (the data written is lost), msg otherwise.
func mediumMsg(err error, msg string) string {
	if errors.Is(err, simtap.ErrMediumGone) {
		return MsgMediaErrorOnWrite
	}
	return msg
}

// afterWrite notes a successful write and early warning.
func (d *Drive) afterWrite() {
	d.fresh = false
	m := d.meta()
	if d.cart.Position().Offset > m.effCapacity()-m.effEarlyWarning() && !d.ewReported {
		d.ewPending = true
	}
}

func (d *Drive) writeMarks(n int) error {
	for i := 0; i < n; i++ {
		if err := d.room("write file mark", 4); err != nil {
			return err
		}
		if err := d.cart.WriteMark(); err != nil {
			d.stats.WriteErrors++
			d.errFlag = true
			return newErr("write file mark", ErrIO, mediumMsg(err, MsgWriteFailed), err)
		}
		d.stats.MarksWritten++
		d.dirty = false
		d.afterWrite()
	}
	return nil
}

// Write writes p as one record at the head (discarding whatever followed
// it) and returns the bytes written. Writing into the early-warning zone
// succeeds; the write after that fails with ErrEOM and writes nothing;
// later writes succeed until the hard end of the tape (ErrIO).
func (d *Drive) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	const op = "write"
	if !d.open {
		return 0, newErr(op, ErrNotOpen, "", nil)
	}
	if d.opts.Mode == ReadMode {
		return 0, newErr(op, ErrPermission, "", nil)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > simtap.MaxRecordSize {
		return 0, newErr(op, ErrIllegalArgs, "", fmt.Errorf("record of %d bytes exceeds %d", len(p), simtap.MaxRecordSize))
	}
	if err := d.begin(op, true); err != nil {
		return 0, err
	}
	if err := d.checkWritable(op); err != nil {
		return 0, err
	}
	if d.ewPending {
		d.ewPending, d.ewReported = false, true
		return 0, newErr(op, ErrEOM, "", nil)
	}
	if err := d.room(op, int64(len(p))+8); err != nil {
		return 0, err
	}
	bc := d.barcode()
	at := d.cart.Position().Index
	if d.lib.fire(bc, FaultWriteMedia, at) {
		d.stats.WriteErrors++
		d.errFlag = true
		msg := MsgMediaErrorOnWrite
		if d.fresh {
			msg = MsgWriteFailedNewMediaError
		}
		return 0, newErr(op, ErrIO, msg, fmt.Errorf("injected at position %d", at))
	}
	if d.lib.fire(bc, FaultWrite, at) {
		d.stats.WriteErrors++
		d.errFlag = true
		return 0, newErr(op, ErrIO, MsgWriteFailed, fmt.Errorf("injected at position %d", at))
	}
	if err := d.cart.WriteRecordCompressed(p, d.opts.Compression); err != nil {
		d.stats.WriteErrors++
		d.errFlag = true
		return 0, newErr(op, ErrIO, mediumMsg(err, MsgWriteFailed), err)
	}
	d.dirty = true
	d.stats.BytesWritten += int64(len(p))
	d.stats.RecordsWritten++
	d.afterWrite()
	return len(p), nil
}

// Read reads the record at the head into p and moves past it. A record
// longer than p is cut to len(p) (the rest is lost). At a file mark it
// returns ErrEOF and the head stays on the BOT side of the mark, so reads
// keep returning ErrEOF until the mark is spaced over (MTFSF). At the end
// of the recorded data it returns ErrEOM. len(p) == 0 does nothing.
func (d *Drive) Read(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	const op = "read"
	if !d.open {
		return 0, newErr(op, ErrNotOpen, "", nil)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := d.begin(op, true); err != nil {
		return 0, err
	}
	o, err := d.cart.Peek()
	if errors.Is(err, simtap.ErrEndOfData) {
		return 0, newErr(op, ErrEOM, MsgAlreadyAtEnd, nil)
	}
	if err != nil {
		return 0, newErr(op, ErrIO, MsgReadError, err)
	}
	if o.Kind == simtap.KindMark {
		if d.opts.PassFileMarks {
			_, _ = d.cart.SpaceFiles(1)
			d.updateEW()
		}
		return 0, newErr(op, ErrEOF, "", nil)
	}
	bc := d.barcode()
	at := d.cart.Position().Index
	for _, f := range []struct {
		kind FaultKind
		msg  string
	}{{FaultReadMedia, MsgMediaErrorOnRead}, {FaultRead, MsgReadError}} {
		if d.lib.fire(bc, f.kind, at) {
			d.stats.ReadErrors++
			d.errFlag = true
			_, _ = d.cart.SpaceRecords(1)
			return 0, newErr(op, ErrIO, f.msg, fmt.Errorf("injected at position %d", at))
		}
	}
	n, err := d.cart.ReadRecord(p)
	switch {
	case err == nil || errors.Is(err, simtap.ErrTruncated):
	case errors.Is(err, simtap.ErrBadRecord):
		d.stats.ReadErrors++
		d.errFlag = true
		return 0, newErr(op, ErrIO, MsgMediaErrorOnRead, err)
	default:
		d.stats.ReadErrors++
		d.errFlag = true
		return 0, newErr(op, ErrIO, MsgReadError, err)
	}
	d.lastRec = o.Length
	d.stats.BytesRead += int64(n)
	d.stats.RecordsRead++
	return n, nil
}

// NextRecordLength returns the length of the record at the head without
// reading it (-1 if not known), or ErrEOF / ErrEOM as Read would.
func (d *Drive) NextRecordLength() (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("peek", true); err != nil {
		return 0, err
	}
	o, err := d.cart.Peek()
	if errors.Is(err, simtap.ErrEndOfData) {
		return 0, newErr("peek", ErrEOM, MsgAlreadyAtEnd, nil)
	}
	if err != nil {
		return 0, newErr("peek", ErrIO, MsgReadError, err)
	}
	if o.Kind == simtap.KindMark {
		return 0, newErr("peek", ErrEOF, "", nil)
	}
	return o.Length, nil
}

// LastRecordLength returns the full length of the record the last
// successful Read returned (longer than what Read returned if the record
// was cut).
func (d *Drive) LastRecordLength() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastRec
}

// State returns what NDMP_TAPE_GET_STATE reports.
func (d *Drive) State() (State, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.open {
		return State{}, newErr("get state", ErrNotOpen, "", nil)
	}
	s := State{FileNum: Unknown, BlockNo: Unknown, TotalSpace: ^uint64(0), SpaceRemain: ^uint64(0)}
	if d.opts.NoRewind {
		s.Flags |= StateNoRewind
	}
	if d.opts.Unload {
		s.Flags |= StateUnload
	}
	if d.errFlag {
		s.Flags |= StateError
	}
	if d.loaded && d.ensureCart() == nil {
		m := d.meta()
		if m.WriteProtect {
			s.Flags |= StateWrProt
		}
		pos := d.cart.Position()
		s.FileNum, s.BlockNo = uint32(pos.File), uint32(pos.Record)
		s.TotalSpace = uint64(m.effCapacity())
		s.SpaceRemain = uint64(max(0, m.effCapacity()-pos.Offset))
	}
	return s, nil
}

// Position returns the file number and the record number within the file
// of the head; ok is false when no tape is loaded.
func (d *Drive) Position() (file, record int64, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.loaded || d.ensureCart() != nil {
		return 0, 0, false
	}
	p := d.cart.Position()
	return p.File, p.Record, true
}
