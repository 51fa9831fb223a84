//go:build linux

package linuxst

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

func TestSGExecuteCDB(t *testing.T) {
	r := newRecorder(t)
	inquiry := make([]byte, 36)
	copy(inquiry[8:], "HP      Ultrium 5-SCSI  ")
	var gotOut []byte
	r.sg = func(dir int32, cdb, out []byte) (uint8, []byte, []byte, uint16) {
		switch cdb[0] {
		case 0x12:
			return tape.StatusGood, inquiry, nil, 0
		case 0xA5: // MOVE MEDIUM to an empty source: CHECK CONDITION
			return tape.StatusCheckCondition, nil, []byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x3B, 0x0E, 0, 0, 0, 0}, 0
		case 0x15: // MODE SELECT
			gotOut = out
			return tape.StatusGood, nil, nil, 0
		}
		return tape.StatusGood, nil, nil, 0x0001 // DID_NO_CONNECT
	}
	sg := NewSG(r, "/dev/sg4")
	res, err := sg.ExecuteCDB(ctx, tape.CDB{CDB: []byte{0x12, 0, 0, 0, 96, 0}, Dir: tape.DirIn, DataInLen: 96})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != tape.StatusGood || len(res.DataIn) != 36 || string(res.DataIn[8:16]) != "HP      " || res.Sense != nil {
		t.Fatalf("inquiry result %+v", res)
	}
	seen := r.sgSeen
	if seen.interfaceID != 'S' || seen.dir != SgDxferFromDev || seen.cmdLen != 6 || seen.mxSbLen != 64 ||
		seen.dxferLen != 96 || seen.timeout != uint32(DefaultTimeout/time.Millisecond) || !bytes.Equal(seen.cmd, []byte{0x12, 0, 0, 0, 96, 0}) {
		t.Fatalf("sg_io_hdr as the kernel sees it: %+v", seen)
	}
	if got := r.take(); got != "open /dev/sg4 O_RDWR|O_NONBLOCK; SG_IO S dir=-3 cdb=12 00 00 00 60 00 len=96" {
		t.Fatalf("calls: %s", got)
	}

	// CHECK CONDITION comes back as status and sense, not as an error.
	res, err = sg.ExecuteCDB(ctx, tape.CDB{CDB: []byte{0xA5, 0, 0, 0, 0x03, 0xE8, 0x01, 0xF4, 0, 0, 0, 0}, Timeout: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != tape.StatusCheckCondition || len(res.Sense) != 18 || res.Sense[2] != 0x05 || res.Sense[12] != 0x3B {
		t.Fatalf("move result %+v", res)
	}
	if r.sgSeen.dir != SgDxferNone || r.sgSeen.dxferLen != 0 || r.sgSeen.timeout != 90000 || r.sgSeen.cmdLen != 12 {
		t.Fatalf("move header %+v", r.sgSeen)
	}

	// Data out reaches the device unchanged.
	page := []byte{0, 0, 0x10, 0, 0x0F, 0x0E, 0xC0, 0x80}
	if _, err := sg.ExecuteCDB(ctx, tape.CDB{CDB: []byte{0x15, 0x10, 0, 0, 8, 0}, Dir: tape.DirOut, DataOut: page}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotOut, page) || r.sgSeen.dir != SgDxferToDev || r.sgSeen.dxferLen != 8 {
		t.Fatalf("data out %x, header %+v", gotOut, r.sgSeen)
	}

	// Transport failures are errors.
	if _, err := sg.ExecuteCDB(ctx, tape.CDB{CDB: []byte{0x00, 0, 0, 0, 0, 0}}); !errors.Is(err, tape.ErrIO) {
		t.Fatalf("host status: %v", err)
	}
	r.take()
	// Bad requests never reach the kernel.
	for _, req := range []tape.CDB{
		{},
		{CDB: make([]byte, 17)},
		{CDB: []byte{0}, Dir: tape.DirNone, DataOut: []byte{1}},
		{CDB: []byte{0}, Dir: tape.DirNone, DataInLen: 4},
		{CDB: []byte{0}, Dir: tape.DirIn, DataInLen: -1},
		{CDB: []byte{0}, Dir: tape.DirIn, DataInLen: MaxTransfer + 1},
		{CDB: []byte{0}, Dir: tape.DirIn, DataInLen: 4, DataOut: []byte{1}},
		{CDB: []byte{0}, Dir: tape.DirOut, DataOut: make([]byte, MaxTransfer+1)},
		{CDB: []byte{0}, Dir: tape.DirOut, DataInLen: 4},
		{CDB: []byte{0}, Dir: 7},
	} {
		if _, err := sg.ExecuteCDB(ctx, req); !errors.Is(err, tape.ErrIllegalArgs) {
			t.Errorf("ExecuteCDB(%+v) = %v", req, err)
		}
	}
	if got := r.take(); got != "" {
		t.Fatalf("bad requests reached the driver: %s", got)
	}
	if err := sg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sg.Close(); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); got != "close 8" {
		t.Fatalf("calls: %s", got)
	}
	r.openErr = unix.ENOENT
	if _, err := sg.ExecuteCDB(ctx, tape.CDB{CDB: []byte{0, 0, 0, 0, 0, 0}}); !errors.Is(err, tape.ErrNoDevice) {
		t.Fatalf("missing node: %v", err)
	}
}

// A drive's ExecuteCDB goes through its sg node; InquirySerial reads VPD
// page 80h.
func TestDriveCDBAndInquirySerial(t *testing.T) {
	r := newRecorder(t)
	r.sg = func(dir int32, cdb, out []byte) (uint8, []byte, []byte, uint16) {
		if cdb[0] == 0x12 && cdb[1] == 1 && cdb[2] == 0x80 {
			return tape.StatusGood, append([]byte{0x01, 0x80, 0, 12}, "  HU1234567 "...), nil, 0
		}
		return tape.StatusCheckCondition, nil, []byte{0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0}, 0
	}
	d := NewDrive(r, "/dev/nst0", NewSG(r, "/dev/sg1"))
	sn, err := InquirySerial(ctx, d)
	if err != nil || sn != "HU1234567" {
		t.Fatalf("serial %q %v", sn, err)
	}
	if !bytes.Equal(r.sgSeen.cmd, []byte{0x12, 0x01, 0x80, 0, 255, 0}) {
		t.Fatalf("cdb % x", r.sgSeen.cmd)
	}
	r.sg = func(dir int32, cdb, out []byte) (uint8, []byte, []byte, uint16) {
		return tape.StatusCheckCondition, nil, []byte{0x70, 0, 5}, 0
	}
	if _, err := InquirySerial(ctx, d); err == nil {
		t.Fatal("CHECK CONDITION accepted")
	}
}
