//go:build linux

package sim

import (
	"context"
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
