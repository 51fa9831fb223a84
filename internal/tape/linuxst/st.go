//go:build linux

package linuxst

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// Drive is a tape drive reached through the st driver's no-rewind node
// (/dev/nstN), with an optional SCSI generic node for ExecuteCDB. It
// implements tape.Drive. Its methods are safe for concurrent use.
type Drive struct {
	sys  Sys
	path string
	sg   *SG // nil: ExecuteCDB not supported

	mu     sync.Mutex
	fd     int // -1 when closed
	opts   tape.OpenOptions
	ateof  bool // the last read stopped at a file mark (head on its BOT side)
	broken bool // the last close failed: the next one closes without I/O
	// changer serves the drive (SetChanger): ur closes load the next
	// cartridge through it.
	changer *changerLink
	// pos is the logical position (records and file marks from BOT)
	// before the next operation, kept by the operations themselves and
	// re-read after spacing; posKnown is false when it is not known.
	pos      int64
	posKnown bool
}

// NewDrive returns the drive behind a no-rewind st node; sg, if not nil,
// carries ExecuteCDB.
func NewDrive(sys Sys, nstPath string, sg *SG) *Drive {
	return &Drive{sys: sys, path: nstPath, sg: sg, fd: -1}
}

// Path returns the st device node.
func (d *Drive) Path() string { return d.path }

func (d *Drive) fail(op string, sentinel error, cause error) error {
	return &tape.Error{Op: op, Device: d.path, Err: sentinel, Cause: cause}
}

// mtop runs one MTIOCTOP.
func (d *Drive) mtop(op int16, count int32) error {
	m := Mtop{Op: op, Count: count}
	return d.sys.Ioctl(d.fd, MTIOCTOP, unsafe.Pointer(&m))
}

// mtget runs MTIOCGET.
func (d *Drive) mtget() (Mtget, error) {
	var g Mtget
	err := d.sys.Ioctl(d.fd, MTIOCGET, unsafe.Pointer(&g))
	return g, err
}

// Open implements tape.Drive. It opens the node (O_NONBLOCK so that a
// drive without a tape opens; the state then decides), checks that a
// tape is loaded (except in RawMode) and writable (in ReadWriteMode), and
// sets variable block mode, the density and the compression of the
// device name's compression type.
func (d *Drive) Open(ctx context.Context, o tape.OpenOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd >= 0 {
		return d.fail("open", tape.ErrBusy, errors.New("already open"))
	}
	flags := unix.O_RDWR
	switch o.Mode {
	case tape.ReadMode:
		flags = unix.O_RDONLY
	case tape.ReadWriteMode, tape.RawMode:
	default:
		return d.fail("open", tape.ErrIllegalArgs, fmt.Errorf("open mode %d", o.Mode))
	}
	fd, err := d.sys.Open(d.path, flags|unix.O_NONBLOCK)
	switch {
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EIO):
		return d.failure("open", openErr(err), err, nil)
	case errors.Is(err, unix.EROFS):
		return &tape.Error{Op: "open", Device: d.path, Err: tape.ErrWriteProtect, Msg: tape.MsgWriteFailedNewBroken, Cause: err}
	case err != nil:
		return d.fail("open", openErr(err), err)
	}
	d.fd = fd
	err = d.reserve(o)
	if err == nil {
		err = d.setup(o)
	}
	if err != nil {
		if o.Reservation == tape.ReservationsSCSI {
			d.release()
		}
		_ = d.sys.Close(fd)
		d.fd = -1
		return err
	}
	d.opts, d.ateof, d.broken = o, false, false
	return nil
}

func (d *Drive) setup(o tape.OpenOptions) error {
	g, err := d.mtget()
	if err != nil {
		return d.fail("open: MTIOCGET", tape.ErrIO, err)
	}
	if uint32(g.Gstat)&GmtOnline == 0 {
		if o.Mode == tape.RawMode {
			return nil
		}
		return d.fail("open", tape.ErrNoTape, nil)
	}
	if o.Mode == tape.ReadWriteMode && uint32(g.Gstat)&GmtWrProt != 0 {
		return d.fail("open", tape.ErrWriteProtect, nil)
	}
	if err := d.mtop(MTSETBLK, 0); err != nil {
		// st sets the block size with MODE SELECT, which a drive refuses
		// for a cartridge it cannot use.
		return d.failure("open: variable block mode", tape.ErrIO, err, func(diagnosis) string { return tape.MsgCouldNotInitializeMedia })
	}
	// Let BSR work with read-ahead; needs CAP_SYS_ADMIN, so a refusal only
	// means BSR may fail later.
	_ = d.mtop(MTSETDRVBUF, MtStSetBooleans|MtStCanBSR)
	if o.Density.Density != 0 {
		if err := d.mtop(MTSETDENSITY, int32(o.Density.Density)); err != nil {
			return &tape.Error{Op: fmt.Sprintf("open: density %#02x", o.Density.Density), Device: d.path, Err: tape.ErrIO, Msg: tape.MsgCouldNotInitializeMedia, Cause: err}
		}
	}
	on := int32(0)
	if o.Density.Algorithm != 0 {
		on = 1
	}
	if err := d.mtop(MTCOMPRESSION, on); err != nil && (on == 1 || !errors.Is(err, unix.EINVAL)) {
		return &tape.Error{Op: "open: compression", Device: d.path, Err: tape.ErrIO, Msg: tape.MsgCouldNotInitializeMedia, Cause: err}
	}
	d.syncPos()
	return nil
}

// syncPos reads the position from the drive (MTIOCPOS, READ POSITION).
func (d *Drive) syncPos() {
	var p Mtpos
	err := d.sys.Ioctl(d.fd, MTIOCPOS, unsafe.Pointer(&p))
	d.pos, d.posKnown = int64(p.Blkno), err == nil && p.Blkno >= 0
}

// TrackedPosition implements tape.Failover.
func (d *Drive) TrackedPosition() (int64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pos, d.posKnown
}

// ReadPosition implements tape.Failover: MTIOCPOS on the open drive.
func (d *Drive) ReadPosition() (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("read position"); err != nil {
		return 0, err
	}
	var p Mtpos
	if err := d.sys.Ioctl(d.fd, MTIOCPOS, unsafe.Pointer(&p)); err != nil {
		return 0, d.fail("read position", tape.ErrIO, err)
	}
	return int64(p.Blkno), nil
}

// Abandon implements tape.Failover: it closes the node without tape I/O
// (no rewind, no reservation release), for a path that failed.
func (d *Drive) Abandon() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return nil
	}
	_ = d.sys.Close(d.fd) // the path is gone: the close may fail
	d.fd = -1
	return nil
}

var _ tape.Failover = (*Drive)(nil)

// Close implements tape.Drive. The st driver itself writes a file mark
// when a node written to is closed; the no-rewind node does not rewind,
// so Close rewinds (r devices) or rewinds and unloads (ur devices) first.
// For ur, a drive whose changer is known (SetChanger) then has the
// changer put the cartridge back and load the next one. If that I/O fails the drive
// stays open and the next Close closes without I/O.
func (d *Drive) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return d.fail("close", tape.ErrNotOpen, nil)
	}
	if !d.broken {
		var err error
		switch d.opts.Rewind {
		case tape.RewindOnClose:
			err = d.mtop(MTREW, 1)
		case tape.UnloadReload:
			err = d.mtop(MTOFFL, 1)
		}
		if err != nil && !errors.Is(err, unix.ENOMEDIUM) {
			d.broken = true
			return d.fail("close", tape.ErrIO, err)
		}
	}
	err := d.sys.Close(d.fd)
	d.fd = -1
	if d.opts.Reservation == tape.ReservationsSCSI {
		d.release()
	}
	if err != nil {
		// st reports a failed final file mark here.
		return d.fail("close", tape.ErrIO, err)
	}
	if d.opts.Rewind == tape.UnloadReload && d.changer != nil && !d.broken {
		if err := d.changer.reload(context.Background()); err != nil {
			return &tape.Error{Op: "close", Device: d.path, Err: tape.ErrIO, Msg: "Failed to load new tape", Cause: err}
		}
	}
	return nil
}

func (d *Drive) begin(op string) error {
	if d.fd < 0 {
		return d.fail(op, tape.ErrNotOpen, nil)
	}
	return nil
}

// Read implements tape.Drive. At a file mark it returns tape.ErrEOF and
// leaves the head on the BOT side of the mark (the st driver has crossed
// it; Read spaces back), so reads keep returning ErrEOF until SpaceFSF. At
// the end of recorded data it returns tape.ErrEOM.
func (d *Drive) Read(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("read"); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if d.ateof {
		return 0, d.fail("read", tape.ErrEOF, nil)
	}
	n, err := d.sys.Read(d.fd, p)
	switch {
	case err == nil && n > 0:
		d.pos++
		return n, nil
	case errors.Is(err, unix.ENOMEM):
		d.pos++ // st moved past the record
		return 0, &tape.Error{Op: "read", Device: d.path, Err: tape.ErrIO, Msg: tape.MsgRecordSizeTooSmall, Cause: err}
	case err != nil:
		g, gerr := d.mtget()
		if gerr == nil && uint32(g.Gstat)&GmtEOD != 0 {
			return 0, &tape.Error{Op: "read", Device: d.path, Err: tape.ErrEOM, Msg: tape.MsgAlreadyAtEnd, Cause: err}
		}
		return 0, d.failure("read", tape.ErrIO, err, readMessage)
	}
	// n == 0: a file mark, or the end of data.
	g, err := d.mtget()
	if err != nil {
		return 0, d.fail("read: MTIOCGET", tape.ErrIO, err)
	}
	if uint32(g.Gstat)&GmtEOD != 0 {
		return 0, &tape.Error{Op: "read", Device: d.path, Err: tape.ErrEOM, Msg: tape.MsgAlreadyAtEnd}
	}
	if err := d.mtop(MTBSF, 1); err != nil {
		return 0, d.fail("read: back over file mark", tape.ErrIO, err)
	}
	d.ateof = true
	return 0, d.fail("read", tape.ErrEOF, nil)
}

// Write implements tape.Drive: one record per write(2). ENOSPC (early
// warning or end of medium) is tape.ErrEOM.
func (d *Drive) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("write"); err != nil {
		return 0, err
	}
	if d.opts.Mode == tape.ReadMode {
		return 0, d.fail("write", tape.ErrPermission, nil)
	}
	if len(p) == 0 {
		return 0, nil
	}
	d.ateof = false
	n, err := d.sys.Write(d.fd, p)
	if n < 0 {
		n = 0 // write(2) returns -1 with the error
	}
	switch {
	case errors.Is(err, unix.ENOSPC):
		e := d.fail("write", tape.ErrEOM, err)
		if d.atBOT() {
			e.(*tape.Error).Msg = tape.MsgWriteFailedNewAtEnd
		}
		return n, e
	case errors.Is(err, unix.EROFS), errors.Is(err, unix.EACCES):
		msg := tape.MsgWriteFailed
		if d.atBOT() {
			msg = tape.MsgWriteFailedNewBroken
		}
		return n, &tape.Error{Op: "write", Device: d.path, Err: tape.ErrWriteProtect, Msg: msg, Cause: err}
	case err != nil:
		atBOT := d.atBOT()
		return n, d.failure("write", tape.ErrIO, err, func(g diagnosis) string { return writeMessage(g, atBOT) })
	case n < len(p):
		d.pos++
		return n, d.fail("write", tape.ErrEOM, fmt.Errorf("short write %d of %d bytes", n, len(p)))
	}
	d.pos++
	return n, nil
}

// WriteFilemarks implements tape.Drive (MTWEOF).
func (d *Drive) WriteFilemarks(n uint32) (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("write filemarks"); err != nil {
		return n, err
	}
	if d.opts.Mode == tape.ReadMode {
		return n, d.fail("write filemarks", tape.ErrPermission, nil)
	}
	if n == 0 {
		return 0, nil
	}
	if n > math.MaxInt32 {
		return n, d.fail("write filemarks", tape.ErrIllegalArgs, fmt.Errorf("count %d", n))
	}
	d.ateof = false
	if err := d.mtop(MTWEOF, int32(n)); err != nil {
		resid := d.resid(n)
		if errors.Is(err, unix.ENOSPC) {
			return resid, d.fail("write filemarks", tape.ErrEOM, err)
		}
		return resid, d.fail("write filemarks", tape.ErrIO, err)
	}
	d.pos += int64(n)
	return 0, nil
}

// resid returns the residual count of the last operation, at most count.
func (d *Drive) resid(count uint32) uint32 {
	g, err := d.mtget()
	if err != nil || g.Resid < 0 || uint64(g.Resid) > uint64(count) {
		return count
	}
	return uint32(g.Resid)
}

// Space implements tape.Drive. When BOT, a file mark (FSR/BSR) or the end
// of data stops the movement early the rest is returned as the residual
// count without an error, as NDMP asks.
func (d *Drive) Space(op tape.SpaceOp, count uint32) (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin(op.String()); err != nil {
		return count, err
	}
	var mt int16
	switch op {
	case tape.SpaceFSF:
		mt = MTFSF
	case tape.SpaceBSF:
		mt = MTBSF
	case tape.SpaceFSR:
		mt = MTFSR
	case tape.SpaceBSR:
		mt = MTBSR
	default:
		return count, d.fail("space", tape.ErrIllegalArgs, fmt.Errorf("operation %d", op))
	}
	if count == 0 {
		return 0, nil
	}
	if count > math.MaxInt32 {
		return count, d.fail(op.String(), tape.ErrIllegalArgs, fmt.Errorf("count %d", count))
	}
	err := d.mtop(mt, int32(count))
	d.ateof = false
	defer d.syncPos()
	if err == nil {
		return 0, nil
	}
	resid := d.resid(count)
	g, gerr := d.mtget()
	if gerr != nil || !errors.Is(err, unix.EIO) {
		return resid, d.fail(op.String(), tape.ErrIO, err)
	}
	switch {
	case uint32(g.Gstat)&GmtEOF != 0 && op == tape.SpaceFSR:
		// The drive stopped on the EOM side of the mark; NDMP stops
		// before it.
		if err := d.mtop(MTBSF, 1); err != nil {
			return resid, d.fail("fsr: back over file mark", tape.ErrIO, err)
		}
		d.ateof = true
		return resid, nil
	case uint32(g.Gstat)&GmtEOF != 0 && op == tape.SpaceBSR:
		// Likewise backwards: step forward over the mark again.
		if err := d.mtop(MTFSF, 1); err != nil {
			return resid, d.fail("bsr: forward over file mark", tape.ErrIO, err)
		}
		return resid, nil
	case uint32(g.Gstat)&(GmtBOT|GmtEOD) != 0:
		return resid, nil
	}
	return resid, d.fail(op.String(), tape.ErrIO, err)
}

// Rewind implements tape.Drive (MTREW).
func (d *Drive) Rewind() error { return d.rewindOp("rewind", MTREW) }

// Unload implements tape.Drive (MTOFFL: rewind and unload).
func (d *Drive) Unload() error { return d.rewindOp("unload", MTOFFL) }

// rewindOp runs MTREW or MTOFFL on the open drive.
func (d *Drive) rewindOp(op string, mt int16) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin(op); err != nil {
		return err
	}
	d.ateof = false
	if err := d.mtop(mt, 1); err != nil {
		d.posKnown = false
		return d.fail(op, tape.ErrIO, err)
	}
	d.pos, d.posKnown = 0, true
	return nil
}

// State implements tape.Drive from MTIOCGET and MTIOCPOS. The st driver
// knows neither the capacity nor the soft error count, which are reported
// unsupported.
func (d *Drive) State() (tape.State, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin("state"); err != nil {
		return tape.State{}, err
	}
	g, err := d.mtget()
	if err != nil {
		return tape.State{}, d.fail("state: MTIOCGET", tape.ErrIO, err)
	}
	var pos Mtpos
	posErr := d.sys.Ioctl(d.fd, MTIOCPOS, unsafe.Pointer(&pos))
	s := tape.State{
		Unsupported: tape.StateSoftErrorsUns | tape.StateTotalSpaceUns | tape.StateSpaceRemainUns,
		BlockSize:   uint32(g.Dsreg & 0xFFFFFF),
		SoftErrors:  tape.Unknown,
		TotalSpace:  math.MaxUint64,
		SpaceRemain: math.MaxUint64,
	}
	if uint32(g.Gstat)&GmtWrProt != 0 {
		s.Flags |= tape.StateWrProt
	}
	switch d.opts.Rewind {
	case tape.NoRewind:
		s.Flags |= tape.StateNoRewind
	case tape.UnloadReload:
		s.Flags |= tape.StateUnload
	}
	if g.Fileno < 0 {
		s.Unsupported |= tape.StateFileNumUns
		s.FileNum = tape.Unknown
	} else {
		s.FileNum = uint32(g.Fileno)
	}
	switch {
	case g.Blkno >= 0:
		s.BlockNo = uint32(g.Blkno)
	case posErr == nil && pos.Blkno >= 0:
		s.BlockNo = uint32(pos.Blkno)
	default:
		s.Unsupported |= tape.StateBlockNoUns
		s.BlockNo = tape.Unknown
	}
	return s, nil
}

// ExecuteCDB implements tape.Drive through the drive's SCSI generic node.
func (d *Drive) ExecuteCDB(ctx context.Context, req tape.CDB) (tape.CDBResult, error) {
	if d.sg == nil {
		return tape.CDBResult{}, d.fail("execute cdb", tape.ErrNotSupported, errors.New("no SCSI generic node"))
	}
	return d.sg.ExecuteCDB(ctx, req)
}

// Reset implements tape.Resetter: MTRESET on an open drive, otherwise on a
// short-lived descriptor.
func (d *Drive) Reset(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fd := d.fd
	if fd < 0 {
		var err error
		fd, err = d.sys.Open(d.path, unix.O_RDONLY|unix.O_NONBLOCK)
		if err != nil {
			return d.fail("reset", openErr(err), err)
		}
		defer d.sys.Close(fd)
	}
	m := Mtop{Op: MTRESET, Count: 1}
	if err := d.sys.Ioctl(fd, MTIOCTOP, unsafe.Pointer(&m)); err != nil {
		return d.fail("reset", tape.ErrIO, err)
	}
	d.ateof = false
	return nil
}

// Release implements tape.Releaser: it closes the drive's SCSI generic
// node, if any. The st node is closed by Close.
func (d *Drive) Release() error {
	if d.sg == nil {
		return nil
	}
	return d.sg.Close()
}
