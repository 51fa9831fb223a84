//go:build linux

package linuxst

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// Limits of SG commands.
const (
	MaxCDBLen      = 16
	MaxTransfer    = 16 << 20
	senseLen       = 64
	DefaultTimeout = 5 * time.Minute
)

// SG is a SCSI generic device node (/dev/sgN). It implements tape.Changer;
// a Drive uses one for ExecuteCDB. The node is opened at the first command
// and kept open until Close. Commands run one at a time.
type SG struct {
	sys  Sys
	path string

	mu sync.Mutex
	fd int // -1 when closed
}

// NewSG returns the SG of a device node.
func NewSG(sys Sys, path string) *SG { return &SG{sys: sys, path: path, fd: -1} }

// Path returns the device node.
func (s *SG) Path() string { return s.path }

// ExecuteCDB implements tape.Changer: it sends the command with SG_IO and
// returns the SCSI status, the data read and the sense data. The error
// reports failures of the system call or the transport (host or driver
// status), not SCSI errors, which come back as CHECK CONDITION with sense.
func (s *SG) ExecuteCDB(ctx context.Context, req tape.CDB) (tape.CDBResult, error) {
	if err := ctx.Err(); err != nil {
		return tape.CDBResult{}, err
	}
	if err := checkCDB(req); err != nil {
		return tape.CDBResult{}, &tape.Error{Op: "execute cdb", Device: s.path, Err: tape.ErrIllegalArgs, Cause: err}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		fd, err := s.sys.Open(s.path, unix.O_RDWR|unix.O_NONBLOCK)
		if err != nil {
			return tape.CDBResult{}, &tape.Error{Op: "open", Device: s.path, Err: openErr(err), Cause: err}
		}
		s.fd = fd
	}
	cdb := append([]byte(nil), req.CDB...)
	sense := make([]byte, senseLen)
	h := SgIoHdr{InterfaceID: 'S', CmdLen: uint8(len(cdb)), MxSbLen: senseLen, Cmdp: &cdb[0], Sbp: &sense[0]}
	var data []byte
	switch req.Dir {
	case tape.DirNone:
		h.DxferDirection = SgDxferNone
	case tape.DirOut:
		h.DxferDirection = SgDxferToDev
		data = append([]byte(nil), req.DataOut...)
	case tape.DirIn:
		h.DxferDirection = SgDxferFromDev
		data = make([]byte, req.DataInLen)
	}
	if len(data) > 0 {
		h.DxferLen = uint32(len(data))
		h.Dxferp = &data[0]
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	h.Timeout = uint32(timeout / time.Millisecond)
	err := s.sys.Ioctl(s.fd, SG_IO, unsafe.Pointer(&h))
	runtime.KeepAlive(cdb)
	runtime.KeepAlive(sense)
	runtime.KeepAlive(data)
	if err != nil {
		return tape.CDBResult{}, &tape.Error{Op: fmt.Sprintf("SG_IO opcode %#02x", cdb[0]), Device: s.path, Err: tape.ErrIO, Cause: err}
	}
	if h.HostStatus != 0 || h.DriverStatus&^driverSense != 0 {
		return tape.CDBResult{}, &tape.Error{Op: fmt.Sprintf("SG_IO opcode %#02x", cdb[0]), Device: s.path, Err: tape.ErrIO,
			Cause: fmt.Errorf("host status %#x, driver status %#x", h.HostStatus, h.DriverStatus)}
	}
	res := tape.CDBResult{Status: h.Status}
	if req.Dir == tape.DirIn {
		n := len(data) - int(h.Resid)
		if n < 0 || int(h.Resid) < 0 {
			n = len(data)
		}
		res.DataIn = data[:n]
	}
	if sb := int(h.SbLenWr); sb > 0 {
		res.Sense = sense[:min(sb, senseLen)]
	}
	return res, nil
}

func checkCDB(req tape.CDB) error {
	if len(req.CDB) == 0 || len(req.CDB) > MaxCDBLen {
		return fmt.Errorf("CDB of %d bytes (1 to %d)", len(req.CDB), MaxCDBLen)
	}
	switch req.Dir {
	case tape.DirNone:
		if len(req.DataOut) != 0 || req.DataInLen != 0 {
			return errors.New("data given for a command without data transfer")
		}
	case tape.DirOut:
		if len(req.DataOut) > MaxTransfer {
			return fmt.Errorf("%d bytes out, more than %d", len(req.DataOut), MaxTransfer)
		}
		if req.DataInLen != 0 {
			return errors.New("data-in length given for a data-out command")
		}
	case tape.DirIn:
		if req.DataInLen < 0 || req.DataInLen > MaxTransfer {
			return fmt.Errorf("data-in length %d (0 to %d)", req.DataInLen, MaxTransfer)
		}
		if len(req.DataOut) != 0 {
			return errors.New("data-out given for a data-in command")
		}
	default:
		return fmt.Errorf("unknown data direction %d", req.Dir)
	}
	return nil
}

// Close closes the device node if it is open.
func (s *SG) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return nil
	}
	err := s.sys.Close(s.fd)
	s.fd = -1
	if err != nil {
		return fmt.Errorf("linuxst: close %s: %w", s.path, err)
	}
	return nil
}

// openErr maps an open(2) error to a tape sentinel.
func openErr(err error) error {
	switch {
	case errors.Is(err, unix.EBUSY):
		return tape.ErrBusy
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		return tape.ErrNoDevice
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return tape.ErrPermission
	case errors.Is(err, unix.EROFS):
		return tape.ErrWriteProtect
	}
	return tape.ErrIO
}

// Release implements tape.Releaser: it closes the device node.
func (s *SG) Release() error { return s.Close() }
