//go:build linux

package linuxst

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recorder is the Sys of the tests: it logs every call with the
// arguments decoded from the raw bytes at the offsets of the C
// structures, and answers as scripted.
type recorder struct {
	t  *testing.T
	mu sync.Mutex

	calls  []string
	nextFD int

	// MTIOCGET answers.
	gstat, dsreg, resid int
	fileno, blkno       int32
	posBlk              int

	openErr  error
	closeErr error
	// opErr maps "MTFSR" etc. to the error the next such MTIOCTOP returns.
	opErr map[string]error
	// opGstat replaces gstat after a failing MTIOCTOP.
	reads  []readResult
	writes []writeResult

	// sg answers SG_IO: it gets the decoded command and returns status,
	// data in, sense, host status.
	sg func(dir int32, cdb, dataOut []byte) (status uint8, dataIn, sense []byte, host uint16)
	// sgSeen keeps the raw header fields of the last SG_IO.
	sgSeen sgRaw
}

type readResult struct {
	data []byte
	err  error
	// gstat after the read
	gstat int
}

type writeResult struct {
	n   int
	err error
}

type sgRaw struct {
	interfaceID, dir int32
	cmdLen, mxSbLen  uint8
	dxferLen         uint32
	timeout          uint32
	cmd              []byte
}

func newRecorder(t *testing.T) *recorder {
	return &recorder{t: t, nextFD: 7, opErr: map[string]error{}, gstat: GmtOnline | GmtBOT}
}

func (r *recorder) log(format string, args ...any) {
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
}

// take returns and clears the log.
func (r *recorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.calls, "; ")
	r.calls = nil
	return s
}

func flagNames(flags int) string {
	var s []string
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		s = append(s, "O_RDONLY")
	case unix.O_RDWR:
		s = append(s, "O_RDWR")
	case unix.O_WRONLY:
		s = append(s, "O_WRONLY")
	}
	if flags&unix.O_NONBLOCK != 0 {
		s = append(s, "O_NONBLOCK")
	}
	return strings.Join(s, "|")
}

func (r *recorder) Open(path string, flags int) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log("open %s %s", path, flagNames(flags))
	if r.openErr != nil {
		return -1, r.openErr
	}
	r.nextFD++
	return r.nextFD, nil
}

func (r *recorder) Close(fd int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log("close %d", fd)
	return r.closeErr
}

func (r *recorder) Read(fd int, p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log("read %d", len(p))
	if len(r.reads) == 0 {
		r.t.Errorf("unscripted read")
		return 0, unix.EIO
	}
	rr := r.reads[0]
	r.reads = r.reads[1:]
	if rr.gstat != 0 {
		r.gstat = rr.gstat
	}
	if rr.err != nil {
		return -1, rr.err
	}
	return copy(p, rr.data), nil
}

func (r *recorder) Write(fd int, p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log("write %d", len(p))
	if len(r.writes) == 0 {
		return len(p), nil
	}
	w := r.writes[0]
	r.writes = r.writes[1:]
	return w.n, w.err
}

var mtNames = map[int16]string{
	MTRESET: "MTRESET", MTFSF: "MTFSF", MTBSF: "MTBSF", MTFSR: "MTFSR", MTBSR: "MTBSR", MTWEOF: "MTWEOF",
	MTREW: "MTREW", MTOFFL: "MTOFFL", MTSETBLK: "MTSETBLK", MTSETDENSITY: "MTSETDENSITY", MTSETDRVBUF: "MTSETDRVBUF", MTCOMPRESSION: "MTCOMPRESSION",
}

// raw returns n bytes at p.
func raw(p unsafe.Pointer, n uintptr) []byte { return unsafe.Slice((*byte)(p), n) }

func (r *recorder) Ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ne := binary.NativeEndian
	switch req {
	case 0x40086d01: // MTIOCTOP, struct mtop {short mt_op; int mt_count;}
		b := raw(arg, 8)
		op := int16(ne.Uint16(b[0:]))
		count := int32(ne.Uint32(b[4:]))
		name := mtNames[op]
		if name == "" {
			name = fmt.Sprintf("op%d", op)
		}
		r.log("MTIOCTOP %s %d", name, count)
		if err := r.opErr[name]; err != nil {
			delete(r.opErr, name)
			return err
		}
		return nil
	case mtgetReq():
		r.log("MTIOCGET")
		b := raw(arg, unsafe.Sizeof(Mtget{}))
		if wordSize == 8 {
			ne.PutUint64(b[8:], uint64(r.resid))
			ne.PutUint64(b[16:], uint64(r.dsreg))
			ne.PutUint64(b[24:], uint64(r.gstat))
			ne.PutUint32(b[40:], uint32(r.fileno))
			ne.PutUint32(b[44:], uint32(r.blkno))
		} else {
			ne.PutUint32(b[4:], uint32(r.resid))
			ne.PutUint32(b[8:], uint32(r.dsreg))
			ne.PutUint32(b[12:], uint32(r.gstat))
			ne.PutUint32(b[20:], uint32(r.fileno))
			ne.PutUint32(b[24:], uint32(r.blkno))
		}
		return nil
	case mtposReq():
		r.log("MTIOCPOS")
		b := raw(arg, wordSize)
		if wordSize == 8 {
			ne.PutUint64(b, uint64(r.posBlk))
		} else {
			ne.PutUint32(b, uint32(r.posBlk))
		}
		return nil
	case 0x2285:
		return r.sgIO(arg)
	}
	r.t.Errorf("unexpected ioctl request %#x", req)
	return unix.ENOTTY
}

const wordSize = unsafe.Sizeof(uintptr(0))

func mtgetReq() uintptr {
	if wordSize == 8 {
		return 0x80306d02
	}
	return 0x801c6d02
}

func mtposReq() uintptr {
	if wordSize == 8 {
		return 0x80086d03
	}
	return 0x80046d03
}

// sgIO decodes struct sg_io_hdr from its C offsets (64-bit layout, or the
// 32-bit one) and fills in the outputs.
func (r *recorder) sgIO(arg unsafe.Pointer) error {
	ne := binary.NativeEndian
	size := uintptr(88)
	offPtr := [3]uintptr{16, 24, 32} // dxferp, cmdp, sbp
	offTimeout, offStatus, offResid := uintptr(40), uintptr(64), uintptr(72)
	if wordSize == 4 {
		size = 64
		offPtr = [3]uintptr{16, 20, 24}
		offTimeout, offStatus, offResid = 28, 44, 52
	}
	b := raw(arg, size)
	ptr := func(off uintptr) unsafe.Pointer {
		return *(*unsafe.Pointer)(unsafe.Add(arg, off))
	}
	s := sgRaw{
		interfaceID: int32(ne.Uint32(b[0:])),
		dir:         int32(ne.Uint32(b[4:])),
		cmdLen:      b[8],
		mxSbLen:     b[9],
		dxferLen:    ne.Uint32(b[12:]),
		timeout:     ne.Uint32(b[offTimeout:]),
	}
	s.cmd = append([]byte(nil), raw(ptr(offPtr[1]), uintptr(s.cmdLen))...)
	r.sgSeen = s
	r.log("SG_IO %c dir=%d cdb=% x len=%d", rune(s.interfaceID), s.dir, s.cmd, s.dxferLen)
	var dataOut []byte
	if s.dir == SgDxferToDev && s.dxferLen > 0 {
		dataOut = append([]byte(nil), raw(ptr(offPtr[0]), uintptr(s.dxferLen))...)
	}
	var status uint8
	var in, sense []byte
	var host uint16
	if r.sg != nil { // unscripted: GOOD, no data (a drive with nothing to say)
		status, in, sense, host = r.sg(s.dir, s.cmd, dataOut)
	}
	if s.dir == SgDxferFromDev && s.dxferLen > 0 {
		n := copy(raw(ptr(offPtr[0]), uintptr(s.dxferLen)), in)
		ne.PutUint32(b[offResid:], uint32(int(s.dxferLen)-n))
	}
	if len(sense) > 0 {
		n := copy(raw(ptr(offPtr[2]), uintptr(s.mxSbLen)), sense)
		b[offStatus+3] = byte(n) // sb_len_wr
		ne.PutUint16(b[offStatus+6:], driverSense)
	}
	b[offStatus] = status
	ne.PutUint16(b[offStatus+4:], host)
	return nil
}
