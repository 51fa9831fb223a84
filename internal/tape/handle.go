package tape

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// handle is a session's use of a device, from open to close.
type handle struct {
	r       *Registry
	d       *device
	p       *path
	session string
	name    string

	mu          sync.Mutex // serializes operations; guards closed
	closed      bool
	closeFailed bool // a Close failed; the next one releases the device
	closer      func() error
}

// begin checks that the handle may do op: open, and its reservation
// intact. Call with h.mu held.
func (h *handle) begin(op string) error {
	if h.closed {
		return &Error{Op: op, Device: h.p.ppn, Err: ErrNotOpen}
	}
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	if h.r.reservations != ReservationsOff && h.d.reservedBy != h.session {
		h.d.stats.OtherErrors++
		return &Error{Op: op, Device: h.p.ppn, Err: ErrReserved, Msg: MsgReservationPreempted,
			Cause: errors.New("the reservation was lost")}
	}
	return nil
}

// atPath names the device in a drive's or changer's *Error by the path
// it was reached through: after an alias is resolved, errors use the
// physical path name.
func (h *handle) atPath(err error) error {
	if te, ok := err.(*Error); ok {
		te.Device = h.p.ppn
	}
	return err
}

// end records an operation's outcome in the statistics and the trace.
func (h *handle) end(op string, count int64, err error, account func(*Stats)) {
	h.r.mu.Lock()
	if account != nil {
		account(&h.d.stats)
	}
	trace := h.d.trace
	h.r.mu.Unlock()
	if !trace {
		return
	}
	args := []any{"node", h.r.node, "device", h.name, "path", h.p.ppn, "session", h.session, "op", op, "count", count}
	if err != nil {
		args = append(args, "error", err.Error())
	}
	h.r.log.Info("tape trace", args...)
}

// close closes the device; with force the handle is released even when
// the device's close fails.
func (h *handle) close(force bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return &Error{Op: "close", Device: h.p.ppn, Err: ErrNotOpen}
	}
	err := h.atPath(h.closer())
	h.end("close", 0, err, nil)
	if err != nil && !force && !h.closeFailed {
		// Keep the device open for a second Close, which the drive
		// completes without further I/O; that one releases it whatever
		// happens.
		h.closeFailed = true
		return err
	}
	h.closed = true
	h.r.mu.Lock()
	h.r.releaseLocked(h.d)
	delete(h.r.handles, h)
	h.r.mu.Unlock()
	return err
}

// DriveHandle is a tape drive opened by a session through a device name.
// It counts statistics, traces operations when tracing is on and checks
// the session's reservation before each operation. Its methods are safe
// for concurrent use but operations run one at a time.
type DriveHandle struct {
	h    handle
	dev  DeviceName
	opts OpenOptions
}

// OpenDrive opens the drive a device name (nrst0a) names for a session
// (NDMP TAPE_OPEN). The alias must be bound to an attached, online,
// qualified drive; a drive another session has open is busy
// (MsgInUse), and one another session holds reserved gives
// MsgReservationPreempted. The device name's rewind and compression types
// become the OpenOptions, with the density of the drive's configuration.
func (r *Registry) OpenDrive(ctx context.Context, session, name string, mode OpenMode) (*DriveHandle, error) {
	dn, err := ParseDeviceName(name)
	if err != nil {
		return nil, &Error{Op: "open", Device: name, Err: ErrNoDevice, Cause: err}
	}
	if mode != ReadMode && mode != ReadWriteMode && mode != RawMode {
		return nil, &Error{Op: "open", Device: name, Err: ErrIllegalArgs, Cause: fmt.Errorf("unknown open mode %d", mode)}
	}
	if _, err := r.Reservations(ctx); err != nil {
		return nil, err
	}
	if _, err := r.LoadBalancing(ctx); err != nil {
		return nil, err
	}
	as, err := r.aliases(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	d, err := r.lookupLocked(as, dn.Alias)
	if err != nil {
		r.mu.Unlock()
		return nil, err
	}
	p, err := r.claimLocked(d, session)
	if err != nil {
		r.mu.Unlock()
		return nil, err
	}
	opts := OpenOptions{Mode: mode, Rewind: dn.Rewind, Compression: dn.Compression, Reservation: r.reservations, ReservationKey: r.key}
	if d.cfg != nil {
		opts.Density = d.cfg.Density(dn.Compression)
	}
	r.mu.Unlock()

	dh := &DriveHandle{dev: dn, opts: opts}
	dh.h = handle{r: r, d: d, p: p, session: session, name: name}
	// The path may change (failover): close through the current one.
	dh.h.closer = func() error { return dh.h.p.drive.Close() }
	err = p.drive.Open(ctx, opts)
	if errors.Is(err, ErrPathDown) {
		err = dh.openOtherPath(ctx, err)
	}
	err = dh.h.atPath(err)
	dh.h.end("open", int64(mode), err, func(s *Stats) {
		if err != nil {
			s.OtherErrors++
		}
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.releaseLocked(d)
		return nil, err
	}
	r.handles[&dh.h] = true
	return dh, nil
}

// failover moves the handle to the other path of its drive after its
// path failed during op (T7): the failed path is closed without I/O, the
// other is opened with the same options, and the drive's position read
// through it is compared with the position before op: equal, op was not
// done (retry it); one further, op was done. Anything else, or a drive
// with one path, returns an error wrapping cause. Call with h.mu held.
func (dh *DriveHandle) failover(op string, cause error) (done bool, err error) {
	h := &dh.h
	old, ok := h.p.drive.(Failover)
	if !ok {
		return false, cause
	}
	before, known := old.TrackedPosition()
	h.r.mu.Lock()
	var alt *path
	for _, p := range h.d.paths {
		if p != h.p {
			alt = p
		}
	}
	h.r.mu.Unlock()
	fo, ok := alt.driveFailover()
	if alt == nil || !ok || !known {
		return false, cause
	}
	_ = old.Abandon()
	from := h.p.ppn
	h.r.mu.Lock()
	h.p, h.d.openPath = alt, alt
	h.r.mu.Unlock()
	if err := alt.drive.Open(context.Background(), dh.opts); err != nil {
		return false, errors.Join(cause, err)
	}
	now, err := fo.ReadPosition()
	if err != nil {
		return false, errors.Join(cause, err)
	}
	h.r.log.Warn("tape path failed; the drive goes on over its other path", "node", h.r.node, "device", h.name,
		"session", h.session, "from", from, "to", alt.ppn, "op", op, "position", now, "before", before)
	switch now {
	case before:
		return false, nil
	case before + 1:
		return true, nil
	}
	msg := MsgWriteFailed
	if op == "read" {
		msg = MsgReadError
	}
	return false, &Error{Op: op, Device: alt.ppn, Err: ErrIO, Msg: msg,
		Cause: fmt.Errorf("after the path failed the drive is at %d, it was at %d: %w", now, before, cause)}
}

// openOtherPath opens the drive through its other path when the open
// through the first failed because the path is down (T7).
func (dh *DriveHandle) openOtherPath(ctx context.Context, cause error) error {
	h := &dh.h
	h.r.mu.Lock()
	var alt *path
	for _, p := range h.d.paths {
		if p != h.p {
			alt = p
		}
	}
	if alt != nil {
		h.r.log.Warn("tape path failed at open; using the other path", "node", h.r.node, "device", h.name,
			"from", h.p.ppn, "to", alt.ppn, "err", cause.Error())
		h.p, h.d.openPath = alt, alt
	}
	h.r.mu.Unlock()
	if alt == nil {
		return cause
	}
	return alt.drive.Open(ctx, dh.opts)
}

// driveFailover returns the path's drive as a Failover.
func (p *path) driveFailover() (Failover, bool) {
	if p == nil {
		return nil, false
	}
	f, ok := p.drive.(Failover)
	return f, ok
}

// Name returns the device name the drive was opened with.
func (dh *DriveHandle) Name() DeviceName { return dh.dev }

// Path returns the physical path name the drive is used through.
func (dh *DriveHandle) Path() string { return dh.h.p.ppn }

// Options returns the options the drive was opened with.
func (dh *DriveHandle) Options() OpenOptions { return dh.opts }

// Read reads one record (see Drive.Read).
func (dh *DriveHandle) Read(p []byte) (int, error) {
	h := &dh.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin("read"); err != nil {
		return 0, err
	}
	n, err := h.p.drive.Read(p)
	if errors.Is(err, ErrPathDown) {
		var done bool
		if done, err = dh.failover("read", err); err == nil {
			if done { // the drive read the record; the data was lost
				_, err = h.p.drive.Space(SpaceBSR, 1)
			}
			if err == nil {
				n, err = h.p.drive.Read(p)
			}
		}
	}
	err = h.atPath(err)
	h.end("read", int64(n), err, func(s *Stats) {
		s.BytesRead += int64(n)
		if n > 0 {
			s.RecordsRead++
		}
		if err != nil && !errors.Is(err, ErrEOF) && !errors.Is(err, ErrEOM) {
			s.ReadErrors++
		}
	})
	return n, err
}

// Write writes one record (see Drive.Write).
func (dh *DriveHandle) Write(p []byte) (int, error) {
	h := &dh.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin("write"); err != nil {
		return 0, err
	}
	n, err := h.p.drive.Write(p)
	if errors.Is(err, ErrPathDown) {
		var done bool
		if done, err = dh.failover("write", err); err == nil {
			if done {
				n = len(p)
			} else {
				n, err = h.p.drive.Write(p)
			}
		}
	}
	err = h.atPath(err)
	h.end("write", int64(n), err, func(s *Stats) {
		s.BytesWritten += int64(n)
		if n > 0 {
			s.RecordsWritten++
		}
		if err != nil && !errors.Is(err, ErrEOM) {
			s.WriteErrors++
		}
	})
	return n, err
}

// WriteFilemarks writes n file marks.
func (dh *DriveHandle) WriteFilemarks(n uint32) (uint32, error) {
	h := &dh.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin("weof"); err != nil {
		return n, err
	}
	resid, err := h.p.drive.WriteFilemarks(n)
	err = h.atPath(err)
	h.end("weof", int64(n), err, func(s *Stats) {
		s.FilemarksWritten += int64(n - resid)
		if err != nil {
			s.WriteErrors++
		}
	})
	return resid, err
}

// Space moves the tape (see Drive.Space).
func (dh *DriveHandle) Space(op SpaceOp, count uint32) (uint32, error) {
	h := &dh.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if op < SpaceFSF || op > SpaceBSR {
		return count, &Error{Op: "space", Device: h.p.ppn, Err: ErrIllegalArgs, Cause: fmt.Errorf("unknown space operation %d", op)}
	}
	if err := h.begin(op.String()); err != nil {
		return count, err
	}
	resid, err := h.p.drive.Space(op, count)
	err = h.atPath(err)
	h.end(op.String(), int64(count), err, otherError(err))
	return resid, err
}

func otherError(err error) func(*Stats) {
	return func(s *Stats) {
		if err != nil {
			s.OtherErrors++
		}
	}
}

// Rewind rewinds the tape.
func (dh *DriveHandle) Rewind() error {
	h := &dh.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin("rewind"); err != nil {
		return err
	}
	err := h.atPath(h.p.drive.Rewind())
	h.end("rewind", 0, err, otherError(err))
	return err
}

// Unload rewinds and unloads the tape.
func (dh *DriveHandle) Unload() error {
	h := &dh.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin("unload"); err != nil {
		return err
	}
	err := h.atPath(h.p.drive.Unload())
	h.end("unload", 0, err, otherError(err))
	return err
}

// State reports the drive's state (TAPE_GET_STATE).
func (dh *DriveHandle) State() (State, error) {
	h := &dh.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin("state"); err != nil {
		return State{}, err
	}
	st, err := h.p.drive.State()
	return st, h.atPath(err)
}

// ExecuteCDB passes a SCSI command to the drive (TAPE_EXECUTE_CDB).
func (dh *DriveHandle) ExecuteCDB(ctx context.Context, req CDB) (CDBResult, error) {
	h := &dh.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin("execute cdb"); err != nil {
		return CDBResult{}, err
	}
	if req.Timeout == 0 && h.d.cfg != nil && len(req.CDB) > 0 {
		// The drive's tape configuration file may set the timeout of
		// this operation code (cmd_timeout_0xNN, T4).
		req.Timeout = h.d.cfg.Timeouts[req.CDB[0]]
	}
	res, err := h.p.drive.ExecuteCDB(ctx, req)
	err = h.atPath(err)
	h.end("execute cdb", int64(len(req.CDB)), err, otherError(err))
	return res, err
}

// Close closes the drive and ends the session's use of it. If the drive's
// close fails (for example the final file mark cannot be written) the error
// is returned and the drive stays open; a second Close then releases it.
func (dh *DriveHandle) Close() error {
	return dh.h.close(false)
}

// ChangerHandle is a medium changer opened by a session (NDMP SCSI_OPEN).
type ChangerHandle struct {
	h handle
}

// OpenChanger opens the medium changer an alias (mc0) names for a session.
// Busy and reservation rules are those of OpenDrive.
func (r *Registry) OpenChanger(ctx context.Context, session, alias string) (*ChangerHandle, error) {
	k, _, err := ParseAlias(alias)
	if err != nil {
		return nil, &Error{Op: "open", Device: alias, Err: ErrNoDevice, Cause: err}
	}
	if k != KindChanger {
		return nil, &Error{Op: "open", Device: alias, Err: ErrNoDevice, Cause: errors.New("not a media changer alias")}
	}
	if _, err := r.Reservations(ctx); err != nil {
		return nil, err
	}
	as, err := r.aliases(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.lookupLocked(as, alias)
	if err != nil {
		return nil, err
	}
	p, err := r.claimLocked(d, session)
	if err != nil {
		return nil, err
	}
	ch := &ChangerHandle{}
	ch.h = handle{r: r, d: d, p: p, session: session, name: alias, closer: func() error { return nil }}
	r.handles[&ch.h] = true
	return ch, nil
}

// Path returns the physical path name the changer is used through.
func (ch *ChangerHandle) Path() string { return ch.h.p.ppn }

// ExecuteCDB passes a SCSI command to the changer (SCSI_EXECUTE_CDB).
func (ch *ChangerHandle) ExecuteCDB(ctx context.Context, req CDB) (CDBResult, error) {
	h := &ch.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.begin("execute cdb"); err != nil {
		return CDBResult{}, err
	}
	res, err := h.p.changer.ExecuteCDB(ctx, req)
	err = h.atPath(err)
	h.end("execute cdb", int64(len(req.CDB)), err, otherError(err))
	return res, err
}

// Close ends the session's use of the changer.
func (ch *ChangerHandle) Close() error { return ch.h.close(true) }

// PositionOp is an operation of storage tape position.
type PositionOp string

// Position operations.
const (
	PositionWEOF   PositionOp = "weof"
	PositionFSF    PositionOp = "fsf"
	PositionBSF    PositionOp = "bsf"
	PositionFSR    PositionOp = "fsr"
	PositionBSR    PositionOp = "bsr"
	PositionRewind PositionOp = "rewind"
	PositionUnload PositionOp = "offline"
)

// Position moves the cartridge of an idle drive (storage tape position
// -operation op -count count) on behalf of the administrator, who acts as
// the session "storage tape position". It returns the count not done.
func (r *Registry) Position(ctx context.Context, alias string, op PositionOp, count uint32) (uint32, error) {
	const session = "storage tape position"
	mode := ReadMode
	switch op {
	case PositionWEOF:
		mode = ReadWriteMode
	case PositionFSF, PositionBSF, PositionFSR, PositionBSR, PositionRewind, PositionUnload:
	default:
		return count, &Error{Op: "position", Device: alias, Err: ErrNotSupported, Cause: fmt.Errorf("operation %q (supported: weof, fsf, bsf, fsr, bsr, rewind, offline)", op)}
	}
	dh, err := r.OpenDrive(ctx, session, "nr"+alias+"l", mode)
	if err != nil {
		return count, err
	}
	var resid uint32
	switch op {
	case PositionWEOF:
		resid, err = dh.WriteFilemarks(count)
	case PositionFSF:
		resid, err = dh.Space(SpaceFSF, count)
	case PositionBSF:
		resid, err = dh.Space(SpaceBSF, count)
	case PositionFSR:
		resid, err = dh.Space(SpaceFSR, count)
	case PositionBSR:
		resid, err = dh.Space(SpaceBSR, count)
	case PositionRewind:
		err = dh.Rewind()
	case PositionUnload:
		err = dh.Unload()
	}
	if cerr := dh.Close(); cerr != nil {
		_ = dh.Close()
		if err == nil {
			err = cerr
		}
	}
	if r.method() == ReservationsPersistent {
		_ = r.ReleaseSession(session)
	}
	return resid, err
}
