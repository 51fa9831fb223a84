//go:build linux

package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst"
)

func newLib(t *testing.T, o LibraryOptions) *Library {
	t.Helper()
	l, err := NewLibrary(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// T9, issue 15 item 7: linuxst.Discover finds the simulated devices in the
// simulated sysfs tree: the changer, drive 0 on two addresses and drive 1,
// with their nst and sg nodes and serial numbers.
func TestDiscoverSimulatedTree(t *testing.T) {
	l := newLib(t, LibraryOptions{})
	found, err := linuxst.Discover(l.Host.SysRoot(), l.Host.DevRoot())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range found {
		got = append(got, fmt.Sprintf("%s %s %s/%s %s %s %s", f.Addr.PPN(), f.Kind, f.Vendor, f.Product, f.Serial, f.Tape, f.Generic))
	}
	dev := l.Host.DevRoot()
	want := []string{
		fmt.Sprintf("2a.0 media changer STK/L700 XYZZYSIMA0  %s/sg0", dev),
		fmt.Sprintf("2a.1 tape drive HP/Ultrium 5-SCSI HU1951SIM0 %s/nst0 %s/sg1", dev, dev),
		fmt.Sprintf("2a.2 tape drive IBM/ULT3580-TD5 1013SIM001 %s/nst2 %s/sg3", dev, dev),
		fmt.Sprintf("3a.1 tape drive HP/Ultrium 5-SCSI HU1951SIM0 %s/nst1 %s/sg2", dev, dev),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("discovered\n%q\nwant\n%q", got, want)
	}
	if err := l.Host.Detach(l.Paths[1][0]); err != nil {
		t.Fatal(err)
	}
	found, err = linuxst.Discover(l.Host.SysRoot(), l.Host.DevRoot())
	if err != nil || len(found) != 3 {
		t.Fatalf("after detaching drive 1: %d devices, %v", len(found), err)
	}
}

// move sends MOVE MEDIUM to the changer through its sg node.
func move(t *testing.T, l *Library, src, dst int) {
	t.Helper()
	sg := linuxst.NewSG(l.Host, l.Host.DevRoot()+"/sg0")
	defer sg.Close()
	cdb := make([]byte, 12)
	cdb[0] = 0xA5
	put16(cdb[2:], TransportAddr)
	put16(cdb[4:], src)
	put16(cdb[6:], dst)
	res, err := sg.ExecuteCDB(context.Background(), tape.CDB{CDB: cdb})
	if err != nil || res.Status != 0 {
		t.Fatalf("MOVE MEDIUM %#x -> %#x: %v status %#x sense % x", src, dst, err, res.Status, res.Sense)
	}
}

func openDrive(t *testing.T, l *Library, node string, mode tape.OpenMode) *linuxst.Drive {
	t.Helper()
	d := linuxst.NewDrive(l.Host, l.Host.DevRoot()+"/"+node, nil)
	if err := d.Open(context.Background(), tape.OpenOptions{Mode: mode, Rewind: tape.NoRewind}); err != nil {
		t.Fatalf("open %s: %v", node, err)
	}
	return d
}

// Issue 15 items 3 and 7: records and file marks written through
// linuxst.Drive on the simulated st node read back as written, with
// NDMP's file mark and end-of-data semantics.
func TestDriveRecordsAndMarks(t *testing.T) {
	l := newLib(t, LibraryOptions{})
	move(t, l, SlotBase, DriveBase)
	d := openDrive(t, l, "nst0", tape.ReadWriteMode)
	recs := [][]byte{bytes.Repeat([]byte{1}, 1000), bytes.Repeat([]byte{2}, 65536), {3}}
	for _, r := range recs {
		if n, err := d.Write(r); err != nil || n != len(r) {
			t.Fatalf("write: %d %v", n, err)
		}
	}
	if _, err := d.WriteFilemarks(1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write([]byte("second file")); err != nil {
		t.Fatal(err)
	}
	if err := d.Rewind(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<17)
	for i, r := range recs {
		n, err := d.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], r) {
			t.Fatalf("record %d: %d bytes, %v", i, n, err)
		}
	}
	if _, err := d.Read(buf); !errors.Is(err, tape.ErrEOF) {
		t.Fatalf("at the file mark: %v, want ErrEOF", err)
	}
	if _, err := d.Read(buf); !errors.Is(err, tape.ErrEOF) {
		t.Fatalf("again at the file mark: %v, want ErrEOF", err)
	}
	if resid, err := d.Space(tape.SpaceFSF, 1); err != nil || resid != 0 {
		t.Fatalf("fsf: %d %v", resid, err)
	}
	if n, err := d.Read(buf); err != nil || string(buf[:n]) != "second file" {
		t.Fatalf("second file: %q %v", buf[:n], err)
	}
	// st wrote a file mark before rewinding after the writes.
	if _, err := d.Read(buf); !errors.Is(err, tape.ErrEOF) {
		t.Fatalf("after the second file: %v, want ErrEOF", err)
	}
	if resid, err := d.Space(tape.SpaceFSF, 1); err != nil || resid != 0 {
		t.Fatalf("fsf: %d %v", resid, err)
	}
	if _, err := d.Read(buf); !errors.Is(err, tape.ErrEOM) {
		t.Fatalf("end of data: %v, want ErrEOM", err)
	}
	st, err := d.State()
	if err != nil || st.FileNum != 2 || st.BlockNo != 0 {
		t.Fatalf("state %+v %v", st, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	got := l.Cartridges[0].Records()
	if len(got) != 6 || got[3] != nil || string(got[4]) != "second file" || got[5] != nil {
		t.Fatalf("cartridge holds %d entries", len(got))
	}
}

// Issue 15 item 3: the early warning. The write entering the zone
// succeeds, the next is ErrEOM (st's ENOSPC) and writes nothing, the one
// after succeeds (a trailer), and at the physical end writes fail with
// ErrEOM and write nothing.
func TestDriveEarlyWarning(t *testing.T) {
	l := newLib(t, LibraryOptions{Capacity: 100 << 10, EarlyWarning: 20 << 10})
	move(t, l, SlotBase, DriveBase)
	d := openDrive(t, l, "nst0", tape.ReadWriteMode)
	rec := make([]byte, 10<<10)
	var seq []string
	for i := 0; i < 14; i++ {
		_, err := d.Write(rec)
		switch {
		case err == nil:
			seq = append(seq, "ok")
		case errors.Is(err, tape.ErrEOM):
			seq = append(seq, "eom")
		default:
			t.Fatalf("write %d: %v", i, err)
		}
	}
	// 8 records reach 80 KiB (the zone starts after 80 KiB), the 9th
	// enters it; then ENOSPC and trailers alternate until 100 KiB.
	want := "[ok ok ok ok ok ok ok ok ok eom ok eom eom eom]"
	if fmt.Sprint(seq) != want {
		t.Fatalf("writes %v, want %s", seq, want)
	}
	if n := len(l.Cartridges[0].Records()); n != 10 {
		t.Fatalf("%d records on the cartridge, want 10", n)
	}
}
