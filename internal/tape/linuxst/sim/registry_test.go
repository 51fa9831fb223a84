//go:build linux

package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// scanned returns a registry of node n1 with the HP tape configuration
// file loaded and the library's devices found by a linuxst.Scanner.
func scanned(t *testing.T, l *Library) (*tape.Registry, *linuxst.Scanner) {
	t.Helper()
	reg, err := tape.NewRegistry(testutil.OpenCatalog(t, filepath.Join(t.TempDir(), "cat.db")), "n1", tape.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tcf, err := os.ReadFile("../../testdata/hp-lto5.tcf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "HP.TCF"), tcf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := reg.LoadConfigs(dir); err != nil {
		t.Fatal(err)
	}
	s := linuxst.NewScanner(reg, l.Host, l.Host.SysRoot(), l.Host.DevRoot())
	if _, _, err := s.Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return reg, s
}

// T1, issue 15 items 3 and 4: the scanner reads the drives' device
// identifiers from the changer (READ ELEMENT STATUS with DVCID), so the
// unload-reload device of drive 0 (urst0l) returns the cartridge to its
// slot at close and loads the next one, through the changer's sg node.
func TestUnloadReloadLoadsNext(t *testing.T) {
	l := newLib(t, LibraryOptions{Slots: 3})
	reg, _ := scanned(t, l)
	move(t, l, SlotBase, DriveBase)
	ctx := context.Background()
	dh, err := reg.OpenDrive(ctx, "s1", "urst0l", tape.ReadWriteMode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dh.Write([]byte("first cartridge")); err != nil {
		t.Fatal(err)
	}
	if err := dh.Close(); err != nil {
		t.Fatal(err)
	}
	if c := l.Drives[0].Cartridge(); c == nil || c.Barcode != "SIM001L5" {
		t.Fatalf("after the ur close drive 0 holds %v, want SIM001L5", c)
	}
	if c := l.Changer.Slot(0); c == nil || c.Barcode != "SIM000L5" || len(c.Records()) != 2 {
		t.Fatalf("slot 0 holds %v, want SIM000L5 with a record and a file mark", c)
	}
}

// T7, issue 15 item 6: drive 0 is one drive with two paths; when its
// primary path fails in the middle of writing, the open drive moves to
// the other path at that record and the writing goes on, whether the
// failed write reached the tape (the position read through the new path
// says so) or not; every record is on the cartridge once, in order.
func TestPathFailover(t *testing.T) {
	for _, written := range []bool{false, true} {
		t.Run(fmt.Sprintf("written=%v", written), func(t *testing.T) {
			l := newLib(t, LibraryOptions{})
			reg, _ := scanned(t, l)
			move(t, l, SlotBase, DriveBase)
			ctx := context.Background()
			dh, err := reg.OpenDrive(ctx, "s1", "nrst0l", tape.ReadWriteMode)
			if err != nil {
				t.Fatal(err)
			}
			if dh.Path() != "2a.1" {
				t.Fatalf("opened through %s, want the primary path 2a.1", dh.Path())
			}
			l.Paths[0][0].FailAfterWrites(5, written)
			for i := 0; i < 10; i++ {
				if _, err := dh.Write([]byte{byte(i)}); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
			}
			if dh.Path() != "3a.1" {
				t.Fatalf("after the failure the drive is used through %s, want 3a.1", dh.Path())
			}
			if err := dh.Rewind(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			for i := 0; i < 10; i++ {
				n, err := dh.Read(buf)
				if err != nil || n != 1 || buf[0] != byte(i) {
					t.Fatalf("record %d: % x %v", i, buf[:n], err)
				}
			}
			if err := dh.Close(); err != nil {
				t.Fatal(err)
			}
			if got := len(l.Cartridges[0].Records()); got != 11 {
				t.Fatalf("%d records and marks on the cartridge, want 10 and a mark", got)
			}
		})
	}
}

// T4, issue 15 item 2: the HP drive's tape configuration file gives each
// device name its density and compression (MTSETDENSITY and
// MTCOMPRESSION at open: h is 0x58 without compression, a 0x58 with) and
// its command timeouts (cmd_timeout_0x12=500ms on TAPE_EXECUTE_CDB
// INQUIRY); the IBM drive, which no file qualifies, cannot be opened.
func TestConfigurationAppliedToDrive(t *testing.T) {
	l := newLib(t, LibraryOptions{})
	reg, _ := scanned(t, l)
	move(t, l, SlotBase, DriveBase)
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		density  byte
		compress bool
	}{{"nrst0h", 0x58, false}, {"nrst0a", 0x58, true}} {
		dh, err := reg.OpenDrive(ctx, "s1", c.name, tape.ReadMode)
		if err != nil {
			t.Fatal(err)
		}
		if d, comp := l.Drives[0].Density(); d != c.density || comp != c.compress {
			t.Errorf("%s: density %#x compression %v, want %#x %v", c.name, d, comp, c.density, c.compress)
		}
		if c.name == "nrst0a" {
			res, err := dh.ExecuteCDB(ctx, tape.CDB{CDB: []byte{0x12, 0, 0, 0, 96, 0}, Dir: tape.DirIn, DataInLen: 96})
			if err != nil || res.Status != 0 || string(res.DataIn[8:10]) != "HP" {
				t.Fatalf("INQUIRY: %v %+v", err, res)
			}
			if ms := l.Drives[0].CommandTimeout(0x12); ms != 500 {
				t.Errorf("INQUIRY timeout %d ms, want 500 (cmd_timeout_0x12)", ms)
			}
		}
		if err := dh.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.OpenDrive(ctx, "s1", "nrst1l", tape.ReadMode); !errors.Is(err, tape.ErrNotQualified) {
		t.Fatalf("open of the nonqualified IBM drive: %v", err)
	}
}

// T9, T3, issue 15 item 1: a device whose sysfs entry has no vpd_pg80 (an
// older kernel) is asked for its serial number through SG_IO (INQUIRY,
// VPD page 80h), so its alias is still bound to the serial number.
func TestScannerAsksSerialOverSGIO(t *testing.T) {
	l := newLib(t, LibraryOptions{})
	vpd := filepath.Join(l.Host.SysRoot(), "bus/scsi/devices", Drive1Addr.String(), "vpd_pg80")
	if err := os.Remove(vpd); err != nil {
		t.Fatal(err)
	}
	reg, _ := scanned(t, l)
	devs, err := reg.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.Paths[0] == Drive1Addr.PPN() {
			if d.Serial != IBMDrive.Serial || d.Alias != "st1" {
				t.Fatalf("drive 1: serial %q alias %q, want %q st1", d.Serial, d.Alias, IBMDrive.Serial)
			}
			return
		}
	}
	t.Fatalf("drive 1 not found: %+v", devs)
}
