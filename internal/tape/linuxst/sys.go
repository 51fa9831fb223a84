//go:build linux

// Package linuxst drives real tape drives and medium changers through the
// Linux st and sg drivers, implementing tape.Drive and tape.Changer.
//
// A Drive reads and writes variable-size records on a no-rewind node
// (/dev/nstN) and moves the tape with the MTIOCTOP, MTIOCGET and MTIOCPOS
// ioctls of <linux/mtio.h>. An SG executes SCSI commands on a SCSI generic
// node (/dev/sgN) with the SG_IO ioctl and its sg_io_hdr structure; it is
// the Changer of a medium changer and carries a drive's
// TAPE_EXECUTE_CDB. Discover finds the drives and changers of a host in
// sysfs (/sys/class/scsi_tape, /sys/class/scsi_generic and
// /sys/bus/scsi/devices/*/{type,vendor,model,rev,vpd_pg80}).
//
// Every system call goes through the Sys interface, so the tests replace it
// with a recorder that checks the exact ioctl request numbers and the
// structures passed, and discovery is tested on a fake sysfs tree.
//
// This package has not met real hardware yet: the ioctl encodings and
// structure layouts follow the kernel headers (the asm-generic _IOC
// encoding used by x86, arm, arm64, riscv, loongarch and s390), and the
// mapping of the st driver's behaviour at file marks, early warning and the
// end of data onto NDMP's semantics follows the st(4) manual page, but
// neither has been checked against a drive.
package linuxst

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sys is the system call interface of the package. System returns the
// real one; tests substitute a recorder.
type Sys interface {
	Open(path string, flags int) (fd int, err error)
	Close(fd int) error
	Read(fd int, p []byte) (int, error)
	Write(fd int, p []byte) (int, error)
	// Ioctl performs ioctl(fd, req, arg).
	Ioctl(fd int, req uintptr, arg unsafe.Pointer) error
}

type realSys struct{}

// System returns the Sys that makes real system calls.
func System() Sys { return realSys{} }

func (realSys) Open(path string, flags int) (int, error) {
	return unix.Open(path, flags|unix.O_CLOEXEC, 0)
}

func (realSys) Close(fd int) error { return unix.Close(fd) }

func (realSys) Read(fd int, p []byte) (int, error) { return unix.Read(fd, p) }

func (realSys) Write(fd int, p []byte) (int, error) { return unix.Write(fd, p) }

func (realSys) Ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

// Directions of the asm-generic ioctl number encoding:
// dir<<30 | size<<16 | type<<8 | nr.
const (
	iocWrite = 1
	iocRead  = 2
)

// Mtop is struct mtop, the argument of MTIOCTOP.
type Mtop struct {
	Op    int16 // MT* operation
	_     int16
	Count int32
}

// Mtget is struct mtget, the result of MTIOCGET. The C long fields are Go
// ints (both are the word size on Linux); daddr_t is a C int.
type Mtget struct {
	Type   int   // type of magtape device
	Resid  int   // residual count of the last operation
	Dsreg  int   // block size (bits 0-23) and density (bits 24-31)
	Gstat  int   // generic status bits (GMT_*)
	Erreg  int   // error register
	Fileno int32 // file number of the current position
	Blkno  int32 // block number of the current position
}

// Mtpos is struct mtpos, the result of MTIOCPOS.
type Mtpos struct {
	Blkno int // current block number
}

// Ioctl request numbers of <linux/mtio.h> (constants: unsafe.Sizeof is one).
const (
	MTIOCTOP = iocWrite<<30 | unsafe.Sizeof(Mtop{})<<16 | 'm'<<8 | 1
	MTIOCGET = iocRead<<30 | unsafe.Sizeof(Mtget{})<<16 | 'm'<<8 | 2
	MTIOCPOS = iocRead<<30 | unsafe.Sizeof(Mtpos{})<<16 | 'm'<<8 | 3
)

// SG_IO is the SCSI generic ioctl (0x2285).
const SG_IO = 0x2285

// Magnetic tape operations (mt_op).
const (
	MTRESET       = 0
	MTFSF         = 1
	MTBSF         = 2
	MTFSR         = 3
	MTBSR         = 4
	MTWEOF        = 5
	MTREW         = 6
	MTOFFL        = 7
	MTNOP         = 8
	MTEOM         = 12
	MTSETBLK      = 20
	MTSETDENSITY  = 21
	MTSETDRVBUF   = 24
	MTLOAD        = 30
	MTUNLOAD      = 31
	MTCOMPRESSION = 32
)

// Driver options set with MTSETDRVBUF.
const (
	MtStSetBooleans = 0x30000000
	MtStCanBSR      = 0x100 // backspacing records is allowed despite read-ahead
)

// Generic status bits of Mtget.Gstat (GMT_*).
const (
	GmtEOF    = 0x80000000
	GmtBOT    = 0x40000000
	GmtEOT    = 0x20000000
	GmtSM     = 0x10000000
	GmtEOD    = 0x08000000
	GmtWrProt = 0x04000000
	GmtOnline = 0x01000000
	GmtDrOpen = 0x00040000
)

// SgIoHdr is struct sg_io_hdr, the argument of SG_IO.
type SgIoHdr struct {
	InterfaceID    int32 // 'S'
	DxferDirection int32 // SG_DXFER_*
	CmdLen         uint8
	MxSbLen        uint8
	IovecCount     uint16
	DxferLen       uint32
	Dxferp         *byte
	Cmdp           *byte
	Sbp            *byte
	Timeout        uint32 // milliseconds
	Flags          uint32
	PackID         int32
	UsrPtr         *byte
	Status         uint8
	MaskedStatus   uint8
	MsgStatus      uint8
	SbLenWr        uint8
	HostStatus     uint16
	DriverStatus   uint16
	Resid          int32
	Duration       uint32
	Info           uint32
}

// SG_IO data directions.
const (
	SgDxferNone    = -1
	SgDxferToDev   = -2
	SgDxferFromDev = -3
)

// driverSense is the DRIVER_SENSE bit of sg_io_hdr.driver_status: sense
// data was returned, which is not a transport failure.
const driverSense = 0x08
