//go:build linux

package sim

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst"
)

var _ linuxst.Sys = (*Host)(nil)

// stState is the st driver's state of one tape node set (one path).
type stState struct {
	open    bool
	writing bool  // the last operation wrote: a file mark is due at close
	eom     int   // early warning: 0 none, 1 the next write fails with ENOSPC, 2 the next is allowed
	eof     bool  // GMT_EOF: the last read or space stopped at a file mark
	eod     bool  // GMT_EOD: the end of data was hit
	eodRead bool  // a read returned 0 at the end of data: the next fails
	resid   int32 // residual count of the last operation
	blksize int32
}

// Open implements linuxst.Sys for the Host's device nodes.
func (h *Host) Open(path string, flags int) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.nodes[path]
	if n == nil {
		return -1, unix.ENOENT
	}
	p := n.path
	switch {
	case p.gone:
		return -1, unix.ENXIO
	case p.failed:
		return -1, unix.EIO
	}
	if n.kind == nodeST {
		if err := h.openST(p, flags); err != nil {
			return -1, err
		}
	}
	h.nextFD++
	h.fds[h.nextFD] = &file{n: n, flags: flags}
	return h.nextFD, nil
}

// openST is st_open: one opener at a time, the drive must not be
// reserved by another initiator, a tape must be ready unless O_NONBLOCK,
// and a write-protected tape cannot be opened for writing.
func (h *Host) openST(p *Path, flags int) error {
	st, d := &p.st, p.drive
	if st.open {
		return unix.EBUSY
	}
	if d.resv.busy(p.initiator()) {
		return unix.EBUSY
	}
	_, ready := d.ready()
	if !ready && flags&unix.O_NONBLOCK == 0 {
		return unix.EIO
	}
	if ready && d.cart.WriteProtect && flags&unix.O_ACCMODE != unix.O_RDONLY {
		return unix.EROFS
	}
	*st = stState{open: true}
	return nil
}

func (h *Host) file(fd int) (*file, error) {
	f := h.fds[fd]
	if f == nil {
		return nil, unix.EBADF
	}
	switch {
	case f.n.path.gone:
		return f, unix.ENXIO
	case f.n.path.failed:
		return f, unix.EIO
	}
	return f, nil
}

// Close implements linuxst.Sys. Closing an st node after writes writes a
// file mark; the rewinding nodes rewind.
func (h *Host) Close(fd int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, err := h.file(fd)
	delete(h.fds, fd)
	if f == nil {
		return err
	}
	if f.n.kind != nodeST {
		return err
	}
	p := f.n.path
	defer func() { p.st.open = false }()
	if err != nil {
		return err
	}
	d := p.drive
	if p.st.writing {
		p.st.writing = false
		if s, ok := d.writeMark(); !ok {
			d.sense = s
			return unix.EIO
		}
	}
	if f.n.rewind && d.cart != nil && d.threaded {
		d.head = 0
	}
	return nil
}

// Read implements linuxst.Sys: st_read in variable block mode.
func (h *Host) Read(fd int, b []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, err := h.file(fd)
	if err != nil {
		return -1, err
	}
	if f.n.kind != nodeST {
		return -1, unix.EINVAL
	}
	if f.flags&unix.O_ACCMODE == unix.O_WRONLY {
		return -1, unix.EBADF
	}
	p := f.n.path
	st, d := &p.st, p.drive
	if d.resv.busy(p.initiator()) {
		return -1, unix.EIO
	}
	if st.eodRead {
		return -1, unix.EIO
	}
	st.writing, st.eof, st.eom = false, false, 0
	data, s := d.read(len(b))
	switch {
	case s == senseNone:
		return copy(b, data), nil
	case s.ILI && s.Info < 0:
		return -1, unix.ENOMEM
	case s.Filemark:
		st.eof = true
		return 0, nil
	case s.Key == KeyBlankCheck:
		st.eod, st.eodRead = true, true
		return 0, nil
	}
	d.sense = s
	return -1, unix.EIO
}

// Write implements linuxst.Sys: st_write in variable block mode, with the
// early-warning behaviour of st.rst.
func (h *Host) Write(fd int, b []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, err := h.file(fd)
	if err != nil {
		return -1, err
	}
	if f.n.kind != nodeST {
		return -1, unix.EINVAL
	}
	if f.flags&unix.O_ACCMODE == unix.O_RDONLY {
		return -1, unix.EBADF
	}
	p := f.n.path
	st, d := &p.st, p.drive
	if d.resv.busy(p.initiator()) {
		return -1, unix.EIO
	}
	if _, ok := d.ready(); ok && d.cart.WriteProtect {
		return -1, unix.EACCES
	}
	st.eof, st.eod, st.eodRead = false, false, false
	if st.eom == 1 {
		st.eom = 2
		return -1, unix.ENOSPC
	}
	if p.failIn > 0 {
		p.failIn--
		if p.failIn == 0 {
			if p.failWritten {
				d.write(b)
			}
			p.failed = true
			return -1, unix.EIO
		}
	}
	s, written := d.write(b)
	if written {
		st.writing = true
		if s.EOM {
			st.eom = 1
		}
		return len(b), nil
	}
	d.sense = s
	if s.Key == KeyVolumeOverflow {
		st.eom = 1
		return -1, unix.ENOSPC
	}
	return -1, unix.EIO
}

// Ioctl implements linuxst.Sys: MTIOCTOP, MTIOCGET and MTIOCPOS on st
// nodes, SG_IO on sg nodes.
func (h *Host) Ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.fds[fd]
	if f == nil {
		return unix.EBADF
	}
	if f.n.path.gone {
		return unix.ENXIO
	}
	switch {
	case f.n.kind == nodeSG && req == linuxst.SG_IO:
		return h.sgIO(f.n.path, (*linuxst.SgIoHdr)(arg))
	case f.n.kind != nodeST:
		return unix.ENOTTY
	}
	if f.n.path.failed {
		return unix.EIO
	}
	switch req {
	case linuxst.MTIOCTOP:
		return h.mtop(f.n.path, (*linuxst.Mtop)(arg))
	case linuxst.MTIOCGET:
		h.mtget(f.n.path, (*linuxst.Mtget)(arg))
		return nil
	case linuxst.MTIOCPOS:
		d := f.n.path.drive
		if _, ok := d.ready(); !ok {
			return unix.EIO
		}
		(*linuxst.Mtpos)(arg).Blkno = d.head
		return nil
	}
	return unix.ENOTTY
}

// mtget fills struct mtget.
func (h *Host) mtget(p *Path, g *linuxst.Mtget) {
	st, d := &p.st, p.drive
	*g = linuxst.Mtget{Type: 0x72, Resid: int(st.resid), Dsreg: int(st.blksize) | int(d.density)<<24}
	g.Fileno, g.Blkno = d.position()
	gstat := uint32(0)
	if d.cart != nil && d.threaded { // loaded, even if the drive cannot use it
		gstat |= linuxst.GmtOnline
		if d.head == 0 {
			gstat |= linuxst.GmtBOT
		}
		if d.atEW() {
			gstat |= linuxst.GmtEOT
		}
		if d.cart.WriteProtect {
			gstat |= linuxst.GmtWrProt
		}
	} else if d.cart == nil || !d.threaded {
		gstat |= linuxst.GmtDrOpen
	}
	if st.eof {
		gstat |= linuxst.GmtEOF
	}
	if st.eod {
		gstat |= linuxst.GmtEOD
	}
	g.Gstat = int(gstat)
}

// sgIO runs one SG_IO: the command goes to the path's device as from the
// path's initiator; sense is returned as autosense.
func (h *Host) sgIO(p *Path, hdr *linuxst.SgIoHdr) error {
	if hdr.InterfaceID != 'S' || hdr.CmdLen == 0 || hdr.Cmdp == nil {
		return unix.EINVAL
	}
	if p.failed {
		hdr.HostStatus = 0x01 // DID_NO_CONNECT
		return nil
	}
	cdb := append([]byte(nil), unsafe.Slice(hdr.Cmdp, int(hdr.CmdLen))...)
	var out []byte
	if hdr.DxferDirection == linuxst.SgDxferToDev && hdr.DxferLen > 0 {
		out = append(out, unsafe.Slice(hdr.Dxferp, int(hdr.DxferLen))...)
	}
	inLen := 0
	if hdr.DxferDirection == linuxst.SgDxferFromDev {
		inLen = int(hdr.DxferLen)
	}
	var r cmdResult
	if p.drive != nil {
		if p.drive.timeouts == nil {
			p.drive.timeouts = map[byte]uint32{}
		}
		p.drive.timeouts[cdb[0]] = hdr.Timeout
		r = p.drive.scsi(p.initiator(), cdb, out, inLen)
	} else {
		r = p.changer.scsi(p.initiator(), cdb, out, inLen)
	}
	hdr.Status, hdr.MaskedStatus = r.status, r.status>>1
	hdr.HostStatus, hdr.DriverStatus, hdr.SbLenWr, hdr.Resid = 0, 0, 0, 0
	if inLen > 0 {
		n := copy(unsafe.Slice(hdr.Dxferp, inLen), r.data)
		hdr.Resid = int32(inLen - n)
	}
	if r.status == statusCheck && hdr.Sbp != nil && hdr.MxSbLen > 0 {
		n := copy(unsafe.Slice(hdr.Sbp, int(hdr.MxSbLen)), r.sense.Fixed())
		hdr.SbLenWr, hdr.DriverStatus = uint8(n), 0x08
	}
	runtime.KeepAlive(hdr)
	return nil
}
