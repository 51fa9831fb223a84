package server

import (
	"context"
	"errors"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// MaxTapeIO is the largest TAPE_READ count and TAPE_WRITE size accepted; a
// larger TAPE_READ gets NDMP_ILLEGAL_ARGS_ERR.
const MaxTapeIO = 8 << 20

// devState is the one device (tape drive or medium changer) a session may
// have open (draft 2.11.4).
type devState struct {
	drive       *tape.DriveHandle
	driveName   string
	driveMode   ndmp.TapeOpenMode
	changer     *tape.ChangerHandle
	changerName string
}

func (ss *session) deviceNames() (string, string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.dev.driveName, ss.dev.changerName
}

// openDrive returns the open drive, or DEV_NOT_OPEN.
func (ss *session) openDrive() (*tape.DriveHandle, ndmp.Error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.dev.drive == nil {
		return nil, ndmp.ErrDevNotOpen
	}
	return ss.dev.drive, ndmp.NoErr
}

// closeDevice closes whatever device the session has open.
func (ss *session) closeDevice() {
	ss.mu.Lock()
	d, c := ss.dev.drive, ss.dev.changer
	ss.dev = devState{}
	ss.mu.Unlock()
	if d != nil {
		if err := d.Close(); err != nil {
			ss.log.Warn("close tape drive", "err", err)
		}
	}
	if c != nil {
		if err := c.Close(); err != nil {
			ss.log.Warn("close medium changer", "err", err)
		}
	}
}

func (ss *session) deviceOpen() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.dev.drive != nil || ss.dev.changer != nil
}

// tapeOpen handles TAPE_OPEN.
func (ss *session) tapeOpen(ctx context.Context, req *ndmp.TapeOpenRequest) ndmp.Error {
	switch req.Mode {
	case ndmp.TapeReadMode, ndmp.TapeRDWRMode, ndmp.TapeRawMode:
	default:
		return ndmp.ErrIllegalArgs
	}
	if ss.deviceOpen() {
		return ndmp.ErrDeviceOpened
	}
	r := ss.srv.o.Tapes
	if r == nil || !ss.tapesVisible() {
		return ndmp.ErrNoDevice
	}
	h, err := r.OpenDrive(ctx, ss.sid, req.Device, tape.OpenMode(req.Mode))
	if err != nil {
		ss.deviceError("TAPE_OPEN "+req.Device, err)
		return tapeErr(err)
	}
	ss.mu.Lock()
	ss.dev = devState{drive: h, driveName: req.Device, driveMode: req.Mode}
	ss.mu.Unlock()
	return ndmp.NoErr
}

// deviceError logs a tape error and tells the DMA its ONTAP message.
func (ss *session) deviceError(op string, err error) {
	ss.log.Info("tape operation failed", "op", op, "err", err)
	if msg := tape.Message(err); msg != "" {
		ss.logMessage(ndmp.LogError, msg)
	}
}

// tapeBusy reports whether the mover keeps the tape from the TAPE service:
// while it is active only TAPE_GET_STATE may run (draft 2.11.4); with
// listening set, a listening mover keeps it too (TAPE_CLOSE, TAPE_WRITE
// and TAPE_READ answer DEVICE_BUSY then, draft 3.4.3, 3.4.6, 3.4.7).
func (ss *session) tapeBusy(listening bool) bool {
	st := ss.mover.state().State
	return st == ndmp.MoverStateActive || (listening && st == ndmp.MoverStateListen)
}

func (ss *session) tapeClose() ndmp.Error {
	if _, e := ss.openDrive(); e != ndmp.NoErr {
		return e
	}
	if ss.tapeBusy(true) {
		return ndmp.ErrDeviceBusy
	}
	ss.mu.Lock()
	d := ss.dev.drive
	ss.dev = devState{}
	ss.mu.Unlock()
	if err := d.Close(); err != nil {
		ss.deviceError("TAPE_CLOSE", err)
		return tapeErr(err)
	}
	return ndmp.NoErr
}

func (ss *session) tapeGetState() (ndmp.Body, ndmp.Error) {
	d, e := ss.openDrive()
	if e != ndmp.NoErr {
		return nil, e
	}
	st, err := d.State()
	if err != nil {
		return nil, tapeErr(err)
	}
	r := &ndmp.TapeGetStateReply{
		Unsupported: st.Unsupported,
		Flags:       st.Flags,
		FileNum:     st.FileNum,
		SoftErrors:  st.SoftErrors,
		BlockSize:   st.BlockSize,
		BlockNo:     st.BlockNo,
		TotalSpace:  st.TotalSpace,
		SpaceRemain: st.SpaceRemain,
	}
	if st.BlockNo == tape.Unknown {
		r.Unsupported |= ndmp.TapeStateBlockNoUns
	}
	if st.FileNum == tape.Unknown {
		r.Unsupported |= ndmp.TapeStateFileNumUns
	}
	ss.mu.Lock()
	if ss.dev.driveMode == ndmp.TapeReadMode {
		r.Flags |= ndmp.TapeStateWrProt
	}
	ss.mu.Unlock()
	return r, ndmp.NoErr
}

func (ss *session) tapeMTIO(req *ndmp.TapeMTIORequest) (ndmp.Body, ndmp.Error) {
	d, e := ss.openDrive()
	if e != ndmp.NoErr {
		return nil, e
	}
	if ss.tapeBusy(false) {
		return nil, ndmp.ErrDeviceBusy
	}
	var resid uint32
	var err error
	switch req.TapeOp {
	case ndmp.MTIOFSF, ndmp.MTIOBSF, ndmp.MTIOFSR, ndmp.MTIOBSR:
		if req.Count == 0 {
			return &ndmp.TapeMTIOReply{}, ndmp.NoErr
		}
		resid, err = d.Space(tape.SpaceOp(req.TapeOp), req.Count)
	case ndmp.MTIOREW:
		err = d.Rewind()
	case ndmp.MTIOEOF:
		if req.Count == 0 {
			return &ndmp.TapeMTIOReply{}, ndmp.NoErr
		}
		resid, err = d.WriteFilemarks(req.Count)
	case ndmp.MTIOOff:
		err = d.Unload()
	case ndmp.MTIOTUR:
		var st tape.State
		st, err = d.State()
		if err == nil && st.Flags&ndmp.TapeStateUnload != 0 {
			err = tape.ErrNoTape
		}
	default:
		return nil, ndmp.ErrIllegalArgs
	}
	r := &ndmp.TapeMTIOReply{ResidCount: resid}
	if err != nil {
		if !errors.Is(err, tape.ErrEOF) && !errors.Is(err, tape.ErrEOM) {
			ss.deviceError("TAPE_MTIO "+req.TapeOp.String(), err)
		}
		r.Error = tapeErr(err)
	}
	return r, r.Error
}

func (ss *session) tapeRead(req *ndmp.TapeReadRequest) (ndmp.Body, ndmp.Error) {
	d, e := ss.openDrive()
	if e != ndmp.NoErr {
		return nil, e
	}
	if ss.tapeBusy(true) {
		return nil, ndmp.ErrDeviceBusy
	}
	if req.Count == 0 {
		return &ndmp.TapeReadReply{}, ndmp.NoErr
	}
	if req.Count > MaxTapeIO {
		return nil, ndmp.ErrIllegalArgs
	}
	buf := make([]byte, req.Count)
	n, err := d.Read(buf)
	if err != nil {
		if !errors.Is(err, tape.ErrEOF) && !errors.Is(err, tape.ErrEOM) {
			ss.deviceError("TAPE_READ", err)
		}
		return nil, tapeErr(err)
	}
	return &ndmp.TapeReadReply{DataIn: buf[:n]}, ndmp.NoErr
}

func (ss *session) tapeWrite(req *ndmp.TapeWriteRequest) (ndmp.Body, ndmp.Error) {
	d, e := ss.openDrive()
	if e != ndmp.NoErr {
		return nil, e
	}
	if ss.tapeBusy(true) {
		return nil, ndmp.ErrDeviceBusy
	}
	ss.mu.Lock()
	mode := ss.dev.driveMode
	ss.mu.Unlock()
	if mode == ndmp.TapeReadMode {
		return nil, ndmp.ErrPermission
	}
	if len(req.DataOut) == 0 {
		return &ndmp.TapeWriteReply{}, ndmp.NoErr
	}
	if len(req.DataOut) > MaxTapeIO {
		return nil, ndmp.ErrIllegalArgs
	}
	n, err := d.Write(req.DataOut)
	r := &ndmp.TapeWriteReply{Count: uint32(n)}
	if err != nil {
		if !errors.Is(err, tape.ErrEOM) {
			ss.deviceError("TAPE_WRITE", err)
		}
		r.Error = tapeErr(err)
	}
	return r, r.Error
}

// toCDB converts an EXECUTE_CDB request.
func toCDB(req *ndmp.ExecuteCDBRequest) (tape.CDB, ndmp.Error) {
	if len(req.CDB) == 0 || len(req.CDB) > 16 {
		return tape.CDB{}, ndmp.ErrIllegalArgs
	}
	c := tape.CDB{CDB: req.CDB, Timeout: time.Duration(req.Timeout) * time.Millisecond}
	switch req.Flags {
	case 0:
		c.Dir = tape.DirNone
	case ndmp.SCSIDataIn:
		c.Dir, c.DataInLen = tape.DirIn, int(req.DataInLen)
		if req.DataInLen > MaxTapeIO {
			return tape.CDB{}, ndmp.ErrIllegalArgs
		}
	case ndmp.SCSIDataOut:
		c.Dir, c.DataOut = tape.DirOut, req.DataOut
	default:
		return tape.CDB{}, ndmp.ErrIllegalArgs
	}
	return c, ndmp.NoErr
}

func cdbReply(req *ndmp.ExecuteCDBRequest, res tape.CDBResult) *ndmp.ExecuteCDBReply {
	r := &ndmp.ExecuteCDBReply{Status: res.Status, DataIn: res.DataIn, ExtSense: res.Sense}
	if req.Flags == ndmp.SCSIDataOut && res.Status == tape.StatusGood {
		r.DataOutLen = uint32(len(req.DataOut))
	}
	return r
}

func (ss *session) tapeExecuteCDB(ctx context.Context, req *ndmp.ExecuteCDBRequest) (ndmp.Body, ndmp.Error) {
	d, e := ss.openDrive()
	if e != ndmp.NoErr {
		return nil, e
	}
	if ss.tapeBusy(false) {
		return nil, ndmp.ErrDeviceBusy
	}
	c, e := toCDB(req)
	if e != ndmp.NoErr {
		return nil, e
	}
	res, err := d.ExecuteCDB(ctx, c)
	if err != nil {
		ss.deviceError("TAPE_EXECUTE_CDB", err)
		return nil, tapeErr(err)
	}
	r := cdbReply(req, res)
	return (*ndmp.TapeExecuteCDBReply)(r), ndmp.NoErr
}

// scsiOpen handles SCSI_OPEN of a medium changer alias such as mc0.
func (ss *session) scsiOpen(ctx context.Context, dev string) ndmp.Error {
	if ss.deviceOpen() {
		return ndmp.ErrDeviceOpened
	}
	r := ss.srv.o.Tapes
	if r == nil || !ss.tapesVisible() || dev == "" {
		return ndmp.ErrNoDevice
	}
	h, err := r.OpenChanger(ctx, ss.sid, dev)
	if err != nil {
		ss.deviceError("SCSI_OPEN "+dev, err)
		return tapeErr(err)
	}
	ss.mu.Lock()
	ss.dev = devState{changer: h, changerName: dev}
	ss.mu.Unlock()
	return ndmp.NoErr
}

func (ss *session) openChanger() (*tape.ChangerHandle, string, ndmp.Error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.dev.changer == nil {
		return nil, "", ndmp.ErrDevNotOpen
	}
	return ss.dev.changer, ss.dev.changerName, ndmp.NoErr
}

func (ss *session) scsiClose() ndmp.Error {
	c, _, e := ss.openChanger()
	if e != ndmp.NoErr {
		return e
	}
	ss.mu.Lock()
	ss.dev = devState{}
	ss.mu.Unlock()
	if err := c.Close(); err != nil {
		return tapeErr(err)
	}
	return ndmp.NoErr
}

func (ss *session) scsiGetState() (ndmp.Body, ndmp.Error) {
	if _, _, e := ss.openChanger(); e != ndmp.NoErr {
		return nil, e
	}
	// The changer of a library is target 0, LUN 0 on its adapter.
	return &ndmp.SCSIGetStateReply{TargetController: 0, TargetID: 0, TargetLun: 0}, ndmp.NoErr
}

func (ss *session) scsiReset(ctx context.Context) ndmp.Error {
	_, name, e := ss.openChanger()
	if e != ndmp.NoErr {
		return e
	}
	if err := ss.srv.o.Tapes.Reset(ctx, name); err != nil {
		ss.deviceError("SCSI_RESET_DEVICE", err)
		return tapeErr(err)
	}
	return ndmp.NoErr
}

func (ss *session) scsiExecuteCDB(ctx context.Context, req *ndmp.ExecuteCDBRequest, _ ndmp.MessageCode) (ndmp.Body, ndmp.Error) {
	c, _, e := ss.openChanger()
	if e != ndmp.NoErr {
		return nil, e
	}
	cdb, e := toCDB(req)
	if e != ndmp.NoErr {
		return nil, e
	}
	res, err := c.ExecuteCDB(ctx, cdb)
	if err != nil {
		ss.deviceError("SCSI_EXECUTE_CDB", err)
		return nil, tapeErr(err)
	}
	return (*ndmp.SCSIExecuteCDBReply)(cdbReply(req, res)), ndmp.NoErr
}
