package server

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// MaxRecordSize is the largest mover record size accepted.
const MaxRecordSize = 4 << 20

// mover is the MOVER service of a session (draft 3.6): it moves a data
// stream between a data connection and the session's tape drive.
type mover struct {
	ss   *session
	mu   sync.Mutex
	cond *sync.Cond

	st         ndmp.MoverState
	mode       ndmp.MoverMode
	pause      ndmp.MoverPauseReason
	halt       ndmp.MoverHaltReason
	recordSize uint32
	recordNum  uint32
	bytesMoved uint64
	seekPos    uint64
	bytesLeft  uint64
	winOff     uint64
	winLen     uint64
	// winSet tells a window the DMA set (MOVER_SET_WINDOW, even of
	// length 0) from none: the draft makes the window invalid (0, 0) at
	// IDLE and at SET_RECORD_SIZE.
	winSet bool
	addr   ndmp.Addr

	ln net.Listener
	dc net.Conn
	wg sync.WaitGroup
}

func newMover(ss *session) *mover {
	m := &mover{ss: ss, st: ndmp.MoverStateIdle, mode: ndmp.MoverModeNoaction}
	m.cond = sync.NewCond(&m.mu)
	return m
}

// state returns MOVER_GET_STATE's reply.
func (m *mover) state() ndmp.MoverGetStateReply {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := ndmp.MoverGetStateReply{
		Mode:               m.mode,
		State:              m.st,
		RecordSize:         m.recordSize,
		RecordNum:          m.recordNum,
		BytesMoved:         m.bytesMoved,
		SeekPosition:       m.seekPos,
		BytesLeftToRead:    m.bytesLeft,
		WindowOffset:       m.winOff,
		WindowLength:       m.winLen,
		DataConnectionAddr: m.addr,
	}
	if m.st == ndmp.MoverStatePaused {
		r.PauseReason = m.pause
	}
	if m.st == ndmp.MoverStateHalted {
		r.HaltReason = m.halt
	}
	return r
}

func (m *mover) setRecordSize(n uint32) ndmp.Error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st != ndmp.MoverStateIdle {
		return ndmp.ErrIllegalState
	}
	if n == 0 || n > MaxRecordSize {
		return ndmp.ErrIllegalArgs
	}
	m.recordSize = n
	m.winOff, m.winLen, m.winSet = 0, 0, false
	return ndmp.NoErr
}

// setWindow handles MOVER_SET_WINDOW, legal in IDLE and PAUSED (not in
// LISTEN for v4).
func (m *mover) setWindow(off, length uint64) ndmp.Error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.st {
	case ndmp.MoverStateIdle:
		// Lenient in IDLE: a DMA may set the window before the record
		// size; the mode-dependent checks happen at LISTEN/CONNECT.
		if length != 0 && off > math.MaxUint64-length {
			return ndmp.ErrIllegalArgs
		}
	case ndmp.MoverStatePaused:
		if m.recordSize == 0 {
			return ndmp.ErrPrecondition
		}
		if length == math.MaxUint64 {
			// The draft wants "all ones minus the offset" for a maximum
			// window after a pause; ndmjob (Amanda 3.5.1) sends all ones
			// with the next tape's offset when it changes tapes at EOM
			// (ndmca_media_set_window_current). It means the same: the
			// window reaches the end of the data stream.
			length = math.MaxUint64 - off
		}
		if length == 0 || off > math.MaxUint64-length {
			return ndmp.ErrIllegalArgs
		}
		rs := uint64(m.recordSize)
		if m.mode == ndmp.MoverModeRead && off+length != math.MaxUint64 && length%rs != 0 {
			return ndmp.ErrIllegalArgs
		}
		if m.mode == ndmp.MoverModeWrite && off%rs != 0 {
			return ndmp.ErrIllegalArgs
		}
	default:
		return ndmp.ErrIllegalState
	}
	m.winOff, m.winLen, m.winSet = off, length, true
	if m.recordSize > 0 {
		m.recordNum = uint32(off / uint64(m.recordSize))
	}
	return ndmp.NoErr
}

// checkActivateLocked runs the checks LISTEN and CONNECT share. Call with m.mu
// held.
func (m *mover) checkActivateLocked(mode ndmp.MoverMode, t ndmp.AddrType) ndmp.Error {
	if m.st != ndmp.MoverStateIdle {
		return ndmp.ErrIllegalState
	}
	if mode != ndmp.MoverModeRead && mode != ndmp.MoverModeWrite {
		return ndmp.ErrIllegalArgs
	}
	if e := m.ss.validConnType(t); e != ndmp.NoErr {
		return e
	}
	if m.recordSize == 0 {
		return ndmp.ErrPrecondition
	}
	m.ss.mu.Lock()
	open, tmode := m.ss.dev.drive != nil, m.ss.dev.driveMode
	m.ss.mu.Unlock()
	if !open {
		return ndmp.ErrDevNotOpen
	}
	if mode == ndmp.MoverModeRead && tmode == ndmp.TapeReadMode {
		return ndmp.ErrPermission
	}
	if !m.winSet {
		// No window was set: allow the whole stream. A window the DMA
		// set to length 0 stays empty: the mover pauses at the first
		// record (Amanda's NDMP device sets (0, 0) before it listens).
		m.winOff, m.winLen = 0, math.MaxUint64
	}
	rs := uint64(m.recordSize)
	if mode == ndmp.MoverModeRead && m.winOff+m.winLen != math.MaxUint64 && m.winLen%rs != 0 {
		return ndmp.ErrIllegalArgs
	}
	if mode == ndmp.MoverModeWrite && m.winOff%rs != 0 {
		return ndmp.ErrIllegalArgs
	}
	return ndmp.NoErr
}

// listen handles MOVER_LISTEN.
func (m *mover) listen(ctx context.Context, mode ndmp.MoverMode, t ndmp.AddrType) (ndmp.Body, ndmp.Error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.checkActivateLocked(mode, t); e != ndmp.NoErr {
		return nil, e
	}
	if t == ndmp.AddrLocal {
		m.mode, m.st = mode, ndmp.MoverStateListen
		m.addr = ndmp.Addr{AddrType: ndmp.AddrLocal}
		return &ndmp.MoverListenReply{ConnectAddr: m.addr}, ndmp.NoErr
	}
	ln, a, e := m.ss.listenData(ctx, t)
	if e != ndmp.NoErr {
		return nil, e
	}
	m.mode, m.st, m.ln, m.addr = mode, ndmp.MoverStateListen, ln, a
	m.wg.Add(1)
	go m.acceptLoop(ln)
	return &ndmp.MoverListenReply{ConnectAddr: a}, ndmp.NoErr
}

func (m *mover) acceptLoop(ln net.Listener) {
	defer m.wg.Done()
	c, err := ln.Accept()
	m.mu.Lock()
	if m.st != ndmp.MoverStateListen || m.ln != ln {
		m.mu.Unlock()
		if c != nil {
			_ = c.Close()
		}
		return
	}
	_ = ln.Close()
	m.ln = nil
	if err != nil {
		m.haltAndNotifyLocked(ndmp.MoverHaltConnectError)
		return
	}
	m.startLocked(c)
	m.cond.Broadcast() // a MOVER_READ may wait for the connection (read)
	m.mu.Unlock()
}

// listenGrace is how long a MOVER_READ waits for a listening mover to take
// a connection the kernel has already established (read).
const listenGrace = 2 * time.Second

// waitAcceptLocked waits, up to listenGrace, while the mover listens on
// TCP: a DMA learns that the data connection is up from the other server's
// DATA_CONNECT reply, which can reach it before this mover's accept
// goroutine has run, and it may then send MOVER_READ at once. Call with
// m.mu held.
func (m *mover) waitAcceptLocked() {
	if m.st != ndmp.MoverStateListen || m.ln == nil {
		return
	}
	expired := false
	t := time.AfterFunc(listenGrace, func() {
		m.mu.Lock()
		expired = true
		m.cond.Broadcast()
		m.mu.Unlock()
	})
	defer t.Stop()
	for m.st == ndmp.MoverStateListen && !expired {
		m.cond.Wait()
	}
}

// acceptLocal connects the data service to a mover listening LOCAL; it
// returns the data service's end of the connection.
func (m *mover) acceptLocal() (net.Conn, ndmp.Error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st != ndmp.MoverStateListen || m.addr.AddrType != ndmp.AddrLocal {
		return nil, ndmp.ErrIllegalState
	}
	a, b := newLocalPipeSize(localPipeSizeFor(int(m.recordSize)))
	m.startLocked(a)
	return b, ndmp.NoErr
}

// connect handles MOVER_CONNECT.
func (m *mover) connect(ctx context.Context, mode ndmp.MoverMode, a ndmp.Addr) ndmp.Error {
	m.mu.Lock()
	e := m.checkActivateLocked(mode, a.AddrType)
	m.mu.Unlock()
	if e != ndmp.NoErr {
		return e
	}
	c, e := m.ss.openData(ctx, a, m.ss.data.acceptLocal)
	if e != ndmp.NoErr {
		return e
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st != ndmp.MoverStateIdle {
		_ = c.Close()
		return ndmp.ErrIllegalState
	}
	m.mode, m.addr = mode, a
	m.startLocked(c)
	return ndmp.NoErr
}

// startLocked makes the mover ACTIVE on data connection c. Call with m.mu
// held.
func (m *mover) startLocked(c net.Conn) {
	m.dc, m.st = c, ndmp.MoverStateActive
	m.wg.Add(1)
	if m.mode == ndmp.MoverModeRead {
		go m.backupLoop(c)
	} else {
		m.wg.Add(1)
		go m.watchClose(c)
		go m.restoreLoop(c)
	}
}

// haltAndNotifyLocked moves to HALTED and posts NOTIFY_MOVER_HALTED. Call
// with m.mu held; it returns with m.mu released.
func (m *mover) haltAndNotifyLocked(r ndmp.MoverHaltReason) {
	if !m.haltLocked(r) {
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.ss.postQuiet(&ndmp.NotifyMoverHaltedPost{Reason: r})
}

// haltLocked moves to HALTED unless already halted or idle and reports
// whether it did.
func (m *mover) haltLocked(r ndmp.MoverHaltReason) bool {
	if m.st == ndmp.MoverStateHalted || m.st == ndmp.MoverStateIdle {
		return false
	}
	m.st, m.halt, m.pause = ndmp.MoverStateHalted, r, ndmp.MoverPauseNA
	if m.ln != nil {
		_ = m.ln.Close()
		m.ln = nil
	}
	if m.dc != nil {
		_ = m.dc.Close()
	}
	m.cond.Broadcast()
	return true
}

// pauseLocked moves to PAUSED, posts NOTIFY_MOVER_PAUSED and waits until
// the DMA continues (true) or the mover halts (false). Call with m.mu held;
// it returns with m.mu held.
func (m *mover) pauseLocked(r ndmp.MoverPauseReason, pos uint64) bool {
	m.st, m.pause, m.seekPos = ndmp.MoverStatePaused, r, pos
	m.mu.Unlock()
	m.ss.postQuiet(&ndmp.NotifyMoverPausedPost{Reason: r, SeekPosition: pos})
	m.mu.Lock()
	for m.st == ndmp.MoverStatePaused {
		m.cond.Wait()
	}
	return m.st == ndmp.MoverStateActive
}

// drive returns the session's open drive; the DMA may change tapes while
// the mover is paused, so the mover looks it up for every record.
func (m *mover) drive() *tape.DriveHandle {
	d, _ := m.ss.openDrive()
	return d
}

// backupLoop reads the data connection and writes records to tape (mode
// READ). From a LOCAL data connection whose ring holds a record it takes
// each record straight out of the ring (no copy into a buffer of its own).
func (m *mover) backupLoop(c net.Conn) {
	defer m.wg.Done()
	m.mu.Lock()
	rs := int(m.recordSize)
	m.mu.Unlock()
	buf := make([]byte, rs)
	lc, local := c.(*localConn)
	local = local && rs <= lc.rx.size
	var rr *recordReader
	if !local {
		rr = newRecordReader(c, rs)
	}
	for {
		var (
			rec  []byte
			n    int
			rerr error
		)
		if local {
			rec, rerr = lc.rx.peek(rs, buf)
			n = len(rec)
			if n > 0 && n < rs {
				// The last, short record: pad it with zeros.
				copy(buf, rec)
				lc.rx.release()
				clear(buf[n:])
				rec = buf
			}
		} else {
			rec, n, rerr = rr.next()
		}
		if n == 0 {
			m.mu.Lock()
			reason := ndmp.MoverHaltConnectClosed
			if rerr != nil && !errors.Is(rerr, io.EOF) && m.st == ndmp.MoverStateActive {
				m.ss.log.Warn("Message from Read Socket: " + rerr.Error())
				reason = ndmp.MoverHaltConnectError
			}
			m.haltAndNotifyLocked(reason)
			return
		}
		ok := m.writeRecord(rec, n)
		if local {
			lc.rx.release()
		}
		if !ok {
			return
		}
		if n < rs {
			m.mu.Lock()
			m.haltAndNotifyLocked(ndmp.MoverHaltConnectClosed)
			return
		}
	}
}

// writeRecord writes one record, pausing for end of window and end of
// medium. It reports false when the mover halted.
func (m *mover) writeRecord(rec []byte, n int) bool {
	m.mu.Lock()
	for {
		if m.st != ndmp.MoverStateActive {
			m.mu.Unlock()
			return false
		}
		rs := uint64(m.recordSize)
		pos := uint64(m.recordNum) * rs
		if m.winOff+m.winLen != math.MaxUint64 && pos+rs > m.winOff+m.winLen {
			if !m.pauseLocked(ndmp.MoverPauseEOW, pos) {
				m.mu.Unlock()
				return false
			}
			continue
		}
		m.mu.Unlock()
		d := m.drive()
		var err error
		if d == nil {
			err = tape.ErrNotOpen
		} else {
			_, err = d.Write(rec)
		}
		m.mu.Lock()
		if err == nil {
			m.recordNum++
			m.bytesMoved += uint64(n)
			m.ss.srv.moverBytes.Add(uint64(n))
			m.ss.srv.moverRecords.Add(1)
			m.mu.Unlock()
			return true
		}
		if m.st != ndmp.MoverStateActive {
			m.mu.Unlock()
			return false
		}
		if errors.Is(err, tape.ErrEOM) || errors.Is(err, tape.ErrNotOpen) || errors.Is(err, tape.ErrNoTape) {
			if !m.pauseLocked(ndmp.MoverPauseEOM, pos) {
				m.mu.Unlock()
				return false
			}
			continue
		}
		m.ss.deviceError("mover write", err)
		m.haltAndNotifyLocked(ndmp.MoverHaltMediaError)
		return false
	}
}

// watchClose halts the mover when the peer closes a WRITE-mode data
// connection (the data service has read all it needs).
func (m *mover) watchClose(c net.Conn) {
	defer m.wg.Done()
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			break
		}
	}
	m.mu.Lock()
	if m.dc == c {
		m.haltAndNotifyLocked(ndmp.MoverHaltConnectClosed)
		return
	}
	m.mu.Unlock()
}

// restoreLoop serves MOVER_READ requests: it reads records from tape and
// writes the requested bytes to the data connection (mode WRITE).
func (m *mover) restoreLoop(c net.Conn) {
	defer m.wg.Done()
	var cache []byte
	cacheRec := uint64(math.MaxUint64)
	m.mu.Lock()
	for {
		for m.st == ndmp.MoverStateActive && m.bytesLeft == 0 {
			m.cond.Wait()
		}
		if m.st != ndmp.MoverStateActive {
			m.mu.Unlock()
			return
		}
		rs := uint64(m.recordSize)
		pos := m.seekPos
		if pos < m.winOff || pos-m.winOff >= m.winLen {
			reason := ndmp.MoverPauseSeek
			if m.winOff+m.winLen == math.MaxUint64 {
				reason = ndmp.MoverPauseEOF
			}
			if !m.pauseLocked(reason, pos) {
				m.mu.Unlock()
				return
			}
			cache, cacheRec = nil, math.MaxUint64
			continue
		}
		rec := pos / rs
		if rec != cacheRec {
			cur := uint64(m.recordNum)
			m.mu.Unlock()
			d := m.drive()
			var err error
			if d == nil {
				err = tape.ErrNotOpen
			} else if rec > cur {
				_, err = d.Space(tape.SpaceFSR, uint32(rec-cur))
			} else if rec < cur {
				_, err = d.Space(tape.SpaceBSR, uint32(cur-rec))
			}
			buf := make([]byte, rs)
			n := 0
			if err == nil {
				n, err = d.Read(buf)
			}
			m.mu.Lock()
			if m.st != ndmp.MoverStateActive {
				m.mu.Unlock()
				return
			}
			if err != nil {
				var reason ndmp.MoverPauseReason
				switch {
				case errors.Is(err, tape.ErrEOF):
					reason = ndmp.MoverPauseEOF
				case errors.Is(err, tape.ErrEOM), errors.Is(err, tape.ErrNotOpen), errors.Is(err, tape.ErrNoTape):
					reason = ndmp.MoverPauseEOM
				default:
					m.ss.deviceError("mover read", err)
					m.haltAndNotifyLocked(ndmp.MoverHaltMediaError)
					return
				}
				// The DMA repositions the tape (or changes it) and sets a
				// new window before it continues.
				if !m.pauseLocked(reason, pos) {
					m.mu.Unlock()
					return
				}
				cache, cacheRec = nil, math.MaxUint64
				continue
			}
			cache, cacheRec = buf[:n], rec
			m.recordNum = uint32(rec + 1)
			m.ss.srv.moverRecords.Add(1)
		}
		off := pos - rec*rs
		if off >= uint64(len(cache)) {
			// A short record: the stream has no byte here.
			if !m.pauseLocked(ndmp.MoverPauseEOF, pos) {
				m.mu.Unlock()
				return
			}
			cache, cacheRec = nil, math.MaxUint64
			continue
		}
		chunk := cache[off:]
		if uint64(len(chunk)) > m.bytesLeft {
			chunk = chunk[:m.bytesLeft]
		}
		// Account before writing: once the peer has the bytes it may send
		// the next MOVER_READ at once.
		n := uint64(len(chunk))
		m.seekPos += n
		m.bytesLeft -= n
		m.bytesMoved += n
		m.ss.srv.moverBytes.Add(n)
		m.mu.Unlock()
		_, err := c.Write(chunk)
		m.mu.Lock()
		if err != nil {
			if m.st == ndmp.MoverStateActive {
				m.ss.log.Warn("Message from Write Dirnet: " + err.Error())
			}
			m.haltAndNotifyLocked(ndmp.MoverHaltConnectClosed)
			return
		}
	}
}

// read handles MOVER_READ.
func (m *mover) read(off, length uint64) ndmp.Error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.waitAcceptLocked()
	if m.st != ndmp.MoverStateActive || m.mode != ndmp.MoverModeWrite {
		return ndmp.ErrIllegalState
	}
	if m.bytesLeft > 0 {
		return ndmp.ErrReadInProgress
	}
	if length == 0 || off > math.MaxUint64-length {
		return ndmp.ErrIllegalArgs
	}
	m.seekPos, m.bytesLeft = off, length
	m.cond.Broadcast()
	return ndmp.NoErr
}

func (m *mover) cont() ndmp.Error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st != ndmp.MoverStatePaused {
		return ndmp.ErrIllegalState
	}
	m.st, m.pause = ndmp.MoverStateActive, ndmp.MoverPauseNA
	m.cond.Broadcast()
	return ndmp.NoErr
}

func (m *mover) abort() ndmp.Error {
	m.mu.Lock()
	if m.st == ndmp.MoverStateIdle {
		m.mu.Unlock()
		return ndmp.ErrIllegalState
	}
	if m.st == ndmp.MoverStateHalted {
		m.mu.Unlock()
		return ndmp.NoErr
	}
	m.haltAndNotifyLocked(ndmp.MoverHaltAborted)
	return ndmp.NoErr
}

// closeReq handles MOVER_CLOSE, legal in PAUSED.
func (m *mover) closeReq() ndmp.Error {
	m.mu.Lock()
	if m.st != ndmp.MoverStatePaused {
		m.mu.Unlock()
		return ndmp.ErrIllegalState
	}
	m.haltAndNotifyLocked(ndmp.MoverHaltConnectClosed)
	return ndmp.NoErr
}

// stop handles MOVER_STOP: HALTED to IDLE, once the transfer goroutines
// have ended.
func (m *mover) stop() ndmp.Error {
	m.mu.Lock()
	if m.st != ndmp.MoverStateHalted {
		m.mu.Unlock()
		return ndmp.ErrIllegalState
	}
	m.mu.Unlock()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resetLocked()
	return ndmp.NoErr
}

func (m *mover) resetLocked() {
	m.st, m.mode = ndmp.MoverStateIdle, ndmp.MoverModeNoaction
	m.pause, m.halt = ndmp.MoverPauseNA, ndmp.MoverHaltNA
	m.recordNum, m.bytesMoved, m.seekPos, m.bytesLeft, m.winOff, m.winLen = 0, 0, 0, 0, 0, 0
	m.winSet = false
	m.addr, m.ln, m.dc = ndmp.Addr{}, nil, nil
}

// shutdown aborts the mover when the session ends and waits for its
// goroutines.
func (m *mover) shutdown() {
	m.mu.Lock()
	if m.haltLocked(ndmp.MoverHaltAborted) {
		m.ss.log.Info("mover aborted: session ended")
	}
	m.mu.Unlock()
	m.wg.Wait()
}
