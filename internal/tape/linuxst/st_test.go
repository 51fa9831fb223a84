//go:build linux

package linuxst

import (
	"context"
	"errors"
	"math"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

var ctx = context.Background()

// The request numbers and structure layouts are those of the kernel
// headers.
func TestIoctlEncoding(t *testing.T) {
	if MTIOCTOP != 0x40086d01 || SG_IO != 0x2285 {
		t.Fatalf("MTIOCTOP %#x SG_IO %#x", MTIOCTOP, SG_IO)
	}
	if MTIOCGET != mtgetReq() || MTIOCPOS != mtposReq() {
		t.Fatalf("MTIOCGET %#x MTIOCPOS %#x", MTIOCGET, MTIOCPOS)
	}
	if unsafe.Sizeof(Mtop{}) != 8 || unsafe.Offsetof(Mtop{}.Count) != 4 {
		t.Fatal("struct mtop layout")
	}
	var h SgIoHdr
	if wordSize == 8 {
		if unsafe.Sizeof(Mtget{}) != 48 || unsafe.Offsetof(Mtget{}.Fileno) != 40 {
			t.Fatal("struct mtget layout")
		}
		offs := []uintptr{unsafe.Offsetof(h.DxferLen), unsafe.Offsetof(h.Dxferp), unsafe.Offsetof(h.Cmdp), unsafe.Offsetof(h.Sbp),
			unsafe.Offsetof(h.Timeout), unsafe.Offsetof(h.UsrPtr), unsafe.Offsetof(h.Status), unsafe.Offsetof(h.HostStatus),
			unsafe.Offsetof(h.Resid), unsafe.Offsetof(h.Info), unsafe.Sizeof(h)}
		want := []uintptr{12, 16, 24, 32, 40, 56, 64, 68, 72, 80, 88}
		for i := range want {
			if offs[i] != want[i] {
				t.Fatalf("sg_io_hdr offsets %v, want %v", offs, want)
			}
		}
	} else if unsafe.Sizeof(h) != 64 || unsafe.Sizeof(Mtget{}) != 28 {
		t.Fatal("32-bit layouts")
	}
}

func openDrive(t *testing.T, r *recorder, o tape.OpenOptions) *Drive {
	t.Helper()
	d := NewDrive(r, "/dev/nst0", NewSG(r, "/dev/sg1"))
	if err := d.Open(ctx, o); err != nil {
		t.Fatal(err)
	}
	r.take()
	return d
}

func TestOpen(t *testing.T) {
	r := newRecorder(t)
	d := NewDrive(r, "/dev/nst0", nil)
	o := tape.OpenOptions{Mode: tape.ReadWriteMode, Rewind: tape.NoRewind, Compression: tape.Highest,
		Density: tape.Density{Density: 0x58, Algorithm: 0x01}}
	if err := d.Open(ctx, o); err != nil {
		t.Fatal(err)
	}
	want := "open /dev/nst0 O_RDWR|O_NONBLOCK; MTIOCGET; MTIOCTOP MTSETBLK 0; MTIOCTOP MTSETDRVBUF 805306624; MTIOCTOP MTSETDENSITY 88; MTIOCTOP MTCOMPRESSION 1; MTIOCPOS"
	if got := r.take(); got != want {
		t.Fatalf("calls:\n%s\nwant:\n%s", got, want)
	}
	if err := d.Open(ctx, o); !errors.Is(err, tape.ErrBusy) {
		t.Fatalf("second open: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); got != "close 8" {
		t.Fatalf("nr close: %s", got)
	}

	// Read mode, density 0 (not set), compression off; a drive without
	// compression (EINVAL) is fine then.
	// Without CAP_SYS_ADMIN the driver option is refused: not fatal.
	r.opErr["MTCOMPRESSION"], r.opErr["MTSETDRVBUF"] = unix.EINVAL, unix.EPERM
	if err := d.Open(ctx, tape.OpenOptions{Mode: tape.ReadMode}); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); got != "open /dev/nst0 O_RDONLY|O_NONBLOCK; MTIOCGET; MTIOCTOP MTSETBLK 0; MTIOCTOP MTSETDRVBUF 805306624; MTIOCTOP MTCOMPRESSION 0; MTIOCPOS" {
		t.Fatalf("read open: %s", got)
	}
	d.Close()
	r.take()

	// Compression asked for but refused: an error, and the node is closed.
	r.opErr["MTCOMPRESSION"] = unix.EINVAL
	if err := d.Open(ctx, tape.OpenOptions{Mode: tape.ReadMode, Density: tape.Density{Algorithm: 1}}); !errors.Is(err, tape.ErrIO) {
		t.Fatalf("refused compression: %v", err)
	}
	if got := r.take(); got != "open /dev/nst0 O_RDONLY|O_NONBLOCK; MTIOCGET; MTIOCTOP MTSETBLK 0; MTIOCTOP MTSETDRVBUF 805306624; MTIOCTOP MTCOMPRESSION 1; close 10" {
		t.Fatalf("calls: %s", got)
	}

	// No tape: only raw mode opens.
	r.gstat = GmtDrOpen
	if err := d.Open(ctx, tape.OpenOptions{Mode: tape.ReadMode}); !errors.Is(err, tape.ErrNoTape) {
		t.Fatalf("no tape: %v", err)
	}
	if got := r.take(); got != "open /dev/nst0 O_RDONLY|O_NONBLOCK; MTIOCGET; close 11" {
		t.Fatalf("calls: %s", got)
	}
	if err := d.Open(ctx, tape.OpenOptions{Mode: tape.RawMode}); err != nil {
		t.Fatalf("raw without tape: %v", err)
	}
	d.Close()

	// Write protected: no read-write open.
	r.gstat = GmtOnline | GmtWrProt
	if err := d.Open(ctx, tape.OpenOptions{Mode: tape.ReadWriteMode}); !errors.Is(err, tape.ErrWriteProtect) {
		t.Fatalf("write protected: %v", err)
	}
	r.openErr = unix.EBUSY
	if err := d.Open(ctx, tape.OpenOptions{Mode: tape.ReadMode}); !errors.Is(err, tape.ErrBusy) {
		t.Fatalf("EBUSY: %v", err)
	}
	r.openErr = unix.ENOENT
	if err := d.Open(ctx, tape.OpenOptions{Mode: tape.ReadMode}); !errors.Is(err, tape.ErrNoDevice) {
		t.Fatalf("ENOENT: %v", err)
	}
	if err := d.Open(ctx, tape.OpenOptions{Mode: 9}); !errors.Is(err, tape.ErrIllegalArgs) {
		t.Fatalf("bad mode: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Open(cctx, tape.OpenOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	for _, op := range []func() error{
		func() error { _, err := d.Read(make([]byte, 1)); return err },
		func() error { _, err := d.Write(make([]byte, 1)); return err },
		func() error { _, err := d.Space(tape.SpaceFSF, 1); return err },
		func() error { _, err := d.WriteFilemarks(1); return err },
		d.Rewind, d.Unload, d.Close,
		func() error { _, err := d.State(); return err },
	} {
		if err := op(); !errors.Is(err, tape.ErrNotOpen) {
			t.Errorf("on a closed drive: %v", err)
		}
	}
}

// Close rewinds for r devices and unloads for ur devices; a failure keeps
// the drive open for one more Close.
func TestCloseRewindTypes(t *testing.T) {
	r := newRecorder(t)
	d := openDrive(t, r, tape.OpenOptions{Mode: tape.ReadMode, Rewind: tape.RewindOnClose})
	d.Close()
	if got := r.take(); got != "MTIOCTOP MTREW 1; close 8" {
		t.Fatalf("r close: %s", got)
	}
	d = openDrive(t, r, tape.OpenOptions{Mode: tape.ReadMode, Rewind: tape.UnloadReload})
	d.Close()
	if got := r.take(); got != "MTIOCTOP MTOFFL 1; close 9" {
		t.Fatalf("ur close: %s", got)
	}
	d = openDrive(t, r, tape.OpenOptions{Mode: tape.ReadWriteMode, Rewind: tape.RewindOnClose})
	r.opErr["MTREW"] = unix.EIO
	if err := d.Close(); !errors.Is(err, tape.ErrIO) {
		t.Fatalf("failing close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if got := r.take(); got != "MTIOCTOP MTREW 1; close 10" {
		t.Fatalf("calls: %s", got)
	}
	// close(2) failing (the st driver's final file mark) is reported.
	d = openDrive(t, r, tape.OpenOptions{Mode: tape.ReadWriteMode, Rewind: tape.NoRewind})
	r.closeErr = unix.EIO
	if err := d.Close(); !errors.Is(err, tape.ErrIO) {
		t.Fatalf("close(2) error: %v", err)
	}
}

func TestWrite(t *testing.T) {
	r := newRecorder(t)
	d := openDrive(t, r, tape.OpenOptions{Mode: tape.ReadWriteMode, Rewind: tape.NoRewind})
	r.writes = []writeResult{{65536, nil}, {0, unix.ENOSPC}, {0, unix.EIO}, {100, nil}, {0, unix.EROFS}}
	r.gstat = GmtOnline // past BOT: not a new tape
	// After EIO the drive is asked why: TEST UNIT READY, then TapeAlert
	// (LOG SENSE page 2Eh) with flag 4 (media) set.
	r.sg = func(dir int32, cdb, out []byte) (uint8, []byte, []byte, uint16) {
		if cdb[0] == 0x4D {
			return 0, []byte{0x2E, 0, 0, 10, 0, 3, 3, 1, 0, 0, 4, 3, 1, 1}, nil, 0
		}
		return 0, nil, nil, 0
	}
	if n, err := d.Write(make([]byte, 65536)); n != 65536 || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	if _, err := d.Write(make([]byte, 65536)); !errors.Is(err, tape.ErrEOM) {
		t.Fatalf("ENOSPC: %v", err)
	}
	_, err := d.Write(make([]byte, 65536))
	if !errors.Is(err, tape.ErrIO) || tape.Message(err) != "Media error on tape write" {
		t.Fatalf("EIO: %v", err)
	}
	if n, err := d.Write(make([]byte, 200)); n != 100 || !errors.Is(err, tape.ErrEOM) {
		t.Fatalf("short write: %d %v", n, err)
	}
	if _, err := d.Write(make([]byte, 1)); !errors.Is(err, tape.ErrWriteProtect) {
		t.Fatalf("EROFS: %v", err)
	}
	if n, err := d.Write(nil); n != 0 || err != nil {
		t.Fatalf("empty write: %d %v", n, err)
	}
	if resid, err := d.WriteFilemarks(2); resid != 0 || err != nil {
		t.Fatalf("weof: %d %v", resid, err)
	}
	if resid, err := d.WriteFilemarks(0); resid != 0 || err != nil {
		t.Fatalf("weof 0: %d %v", resid, err)
	}
	want := "write 65536; write 65536; MTIOCGET; write 65536; MTIOCGET; open /dev/sg1 O_RDWR|O_NONBLOCK; " +
		"SG_IO S dir=-1 cdb=00 00 00 00 00 00 len=0; SG_IO S dir=-3 cdb=4d 00 6e 00 00 00 00 01 44 00 len=324; " +
		"write 200; write 1; MTIOCGET; MTIOCTOP MTWEOF 2"
	if got := r.take(); got != want {
		t.Fatalf("calls:\n%s\nwant\n%s", got, want)
	}
	r.opErr["MTWEOF"] = unix.ENOSPC
	r.resid = 1
	if resid, err := d.WriteFilemarks(3); resid != 1 || !errors.Is(err, tape.ErrEOM) {
		t.Fatalf("weof at end: %d %v", resid, err)
	}
	if _, err := d.WriteFilemarks(math.MaxUint32); !errors.Is(err, tape.ErrIllegalArgs) {
		t.Fatalf("huge count: %v", err)
	}
	d.Close()
	d = openDrive(t, r, tape.OpenOptions{Mode: tape.ReadMode})
	if _, err := d.Write(make([]byte, 1)); !errors.Is(err, tape.ErrPermission) {
		t.Fatalf("write read-only: %v", err)
	}
	if _, err := d.WriteFilemarks(1); !errors.Is(err, tape.ErrPermission) {
		t.Fatalf("weof read-only: %v", err)
	}
	if got := r.take(); got != "" {
		t.Fatalf("read-only writes reached the driver: %s", got)
	}
}

// NDMP semantics on top of st: a read at a file mark returns ErrEOF and
// leaves the head before the mark until FSF; the end of data is ErrEOM.
func TestReadFileMarkAndEOD(t *testing.T) {
	r := newRecorder(t)
	d := openDrive(t, r, tape.OpenOptions{Mode: tape.ReadMode, Rewind: tape.NoRewind})
	r.reads = []readResult{
		{data: []byte("record-1")},
		{data: nil, gstat: GmtOnline | GmtEOF},
		{data: []byte("file-2")},
		{data: nil, gstat: GmtOnline | GmtEOD},
		{err: unix.ENOMEM},
		{err: unix.EIO, gstat: GmtOnline},
		{err: unix.EIO, gstat: GmtOnline | GmtEOD},
	}
	buf := make([]byte, 64)
	if n, err := d.Read(buf); err != nil || string(buf[:n]) != "record-1" {
		t.Fatalf("read: %q %v", buf[:n], err)
	}
	for i := 0; i < 2; i++ {
		if _, err := d.Read(buf); !errors.Is(err, tape.ErrEOF) {
			t.Fatalf("read %d at mark: %v", i, err)
		}
	}
	if got := r.take(); got != "read 64; read 64; MTIOCGET; MTIOCTOP MTBSF 1" {
		t.Fatalf("calls: %s", got)
	}
	if resid, err := d.Space(tape.SpaceFSF, 1); resid != 0 || err != nil {
		t.Fatalf("fsf: %d %v", resid, err)
	}
	if n, err := d.Read(buf); err != nil || string(buf[:n]) != "file-2" {
		t.Fatalf("read after fsf: %q %v", buf[:n], err)
	}
	if _, err := d.Read(buf); !errors.Is(err, tape.ErrEOM) {
		t.Fatalf("read at EOD: %v", err)
	}
	if got := r.take(); got != "MTIOCTOP MTFSF 1; MTIOCPOS; read 64; read 64; MTIOCGET" {
		t.Fatalf("calls: %s", got)
	}
	_, err := d.Read(buf)
	if !errors.Is(err, tape.ErrIO) || tape.Message(err) != tape.MsgRecordSizeTooSmall {
		t.Fatalf("ENOMEM: %v", err)
	}
	_, err = d.Read(buf)
	if !errors.Is(err, tape.ErrIO) || tape.Message(err) != "Tape read error" {
		t.Fatalf("EIO: %v", err)
	}
	if _, err := d.Read(buf); !errors.Is(err, tape.ErrEOM) {
		t.Fatalf("EIO at EOD: %v", err)
	}
	if n, err := d.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %v", err)
	}
}

func TestSpace(t *testing.T) {
	r := newRecorder(t)
	d := openDrive(t, r, tape.OpenOptions{Mode: tape.ReadMode, Rewind: tape.NoRewind})
	for op, name := range map[tape.SpaceOp]string{tape.SpaceFSF: "MTFSF", tape.SpaceBSF: "MTBSF", tape.SpaceFSR: "MTFSR", tape.SpaceBSR: "MTBSR"} {
		if resid, err := d.Space(op, 5); resid != 0 || err != nil {
			t.Fatalf("%v: %d %v", op, resid, err)
		}
		if got := r.take(); got != "MTIOCTOP "+name+" 5; MTIOCPOS" {
			t.Fatalf("%v: %s", op, got)
		}
	}
	// FSR into a file mark: the drive stops after it, we step back.
	r.opErr["MTFSR"], r.gstat, r.resid = unix.EIO, GmtOnline|GmtEOF, 3
	if resid, err := d.Space(tape.SpaceFSR, 10); resid != 3 || err != nil {
		t.Fatalf("fsr into mark: %d %v", resid, err)
	}
	if got := r.take(); got != "MTIOCTOP MTFSR 10; MTIOCGET; MTIOCGET; MTIOCTOP MTBSF 1; MTIOCPOS" {
		t.Fatalf("calls: %s", got)
	}
	// ...and a read then sees the mark without I/O.
	if _, err := d.Read(make([]byte, 8)); !errors.Is(err, tape.ErrEOF) || r.take() != "" {
		t.Fatal("read after fsr to mark")
	}
	// BSR into a file mark: step forward over it again.
	r.opErr["MTBSR"], r.resid = unix.EIO, 2
	if resid, err := d.Space(tape.SpaceBSR, 4); resid != 2 || err != nil {
		t.Fatalf("bsr into mark: %d %v", resid, err)
	}
	if got := r.take(); got != "MTIOCTOP MTBSR 4; MTIOCGET; MTIOCGET; MTIOCTOP MTFSF 1; MTIOCPOS" {
		t.Fatalf("calls: %s", got)
	}
	// BSF at BOT: the rest is the residual, no error.
	r.opErr["MTBSF"], r.gstat, r.resid = unix.EIO, GmtOnline|GmtBOT, 7
	if resid, err := d.Space(tape.SpaceBSF, 9); resid != 7 || err != nil {
		t.Fatalf("bsf at BOT: %d %v", resid, err)
	}
	// A real error stays an error.
	r.opErr["MTFSF"], r.gstat = unix.EIO, GmtOnline
	if _, err := d.Space(tape.SpaceFSF, 1); !errors.Is(err, tape.ErrIO) {
		t.Fatalf("fsf error: %v", err)
	}
	// A resid the driver reports larger than the count is not trusted.
	r.opErr["MTFSF"], r.gstat, r.resid = unix.EIO, GmtOnline|GmtEOD, 99
	if resid, _ := d.Space(tape.SpaceFSF, 4); resid != 4 {
		t.Fatalf("resid %d", resid)
	}
	if _, err := d.Space(tape.SpaceOp(8), 1); !errors.Is(err, tape.ErrIllegalArgs) {
		t.Fatalf("bad op: %v", err)
	}
	if _, err := d.Space(tape.SpaceFSF, math.MaxUint32); !errors.Is(err, tape.ErrIllegalArgs) {
		t.Fatalf("huge count: %v", err)
	}
	r.take()
	if resid, err := d.Space(tape.SpaceFSF, 0); resid != 0 || err != nil || r.take() != "" {
		t.Fatal("count 0 moved the tape")
	}
	if err := d.Rewind(); err != nil {
		t.Fatal(err)
	}
	if err := d.Unload(); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); got != "MTIOCTOP MTREW 1; MTIOCTOP MTOFFL 1" {
		t.Fatalf("calls: %s", got)
	}
	r.opErr["MTREW"], r.opErr["MTOFFL"] = unix.EIO, unix.EIO
	if d.Rewind() == nil || d.Unload() == nil {
		t.Fatal("errors of rewind/unload lost")
	}
}

func TestState(t *testing.T) {
	r := newRecorder(t)
	d := openDrive(t, r, tape.OpenOptions{Mode: tape.ReadMode, Rewind: tape.NoRewind})
	r.gstat, r.fileno, r.blkno, r.dsreg = GmtOnline|GmtWrProt, 2, 5, 0x58<<24
	s, err := d.State()
	if err != nil {
		t.Fatal(err)
	}
	if s.FileNum != 2 || s.BlockNo != 5 || s.BlockSize != 0 || s.Flags != tape.StateWrProt|tape.StateNoRewind {
		t.Fatalf("state %+v", s)
	}
	if s.Unsupported != tape.StateSoftErrorsUns|tape.StateTotalSpaceUns|tape.StateSpaceRemainUns {
		t.Fatalf("unsupported %#x", s.Unsupported)
	}
	if got := r.take(); got != "MTIOCGET; MTIOCPOS" {
		t.Fatalf("calls: %s", got)
	}
	// Unknown file and block numbers: the block number from MTIOCPOS.
	r.fileno, r.blkno, r.posBlk, r.dsreg = -1, -1, 1234, 0x58<<24|32768
	s, _ = d.State()
	if s.FileNum != tape.Unknown || s.Unsupported&tape.StateFileNumUns == 0 || s.BlockNo != 1234 || s.BlockSize != 32768 {
		t.Fatalf("state %+v", s)
	}
	r.posBlk = -1
	s, _ = d.State()
	if s.BlockNo != tape.Unknown || s.Unsupported&tape.StateBlockNoUns == 0 {
		t.Fatalf("state %+v", s)
	}
	d.Close()
	d = openDrive(t, r, tape.OpenOptions{Mode: tape.ReadMode, Rewind: tape.UnloadReload})
	if s, _ := d.State(); s.Flags&tape.StateUnload == 0 {
		t.Fatalf("ur flags %#x", s.Flags)
	}
}

func TestReset(t *testing.T) {
	r := newRecorder(t)
	d := NewDrive(r, "/dev/nst3", nil)
	if err := d.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); got != "open /dev/nst3 O_RDONLY|O_NONBLOCK; MTIOCTOP MTRESET 1; close 8" {
		t.Fatalf("calls: %s", got)
	}
	d = openDrive(t, r, tape.OpenOptions{Mode: tape.ReadMode})
	r.opErr["MTRESET"] = unix.EIO
	if err := d.Reset(ctx); !errors.Is(err, tape.ErrIO) {
		t.Fatalf("reset error: %v", err)
	}
	if got := r.take(); got != "MTIOCTOP MTRESET 1" {
		t.Fatalf("calls: %s", got)
	}
	if _, err := NewDrive(r, "/dev/nst3", nil).ExecuteCDB(ctx, tape.CDB{CDB: []byte{0}}); !errors.Is(err, tape.ErrNotSupported) {
		t.Fatalf("cdb without sg: %v", err)
	}
}
