package vtl

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

func TestCreateValidation(t *testing.T) {
	for _, cfg := range []Config{
		{Drives: 0, Slots: 1}, {Drives: 65, Slots: 1}, {Drives: 1, Slots: 0},
		{Drives: 1, Slots: 1, IESlots: 17}, {Drives: 1, Slots: 1, Capacity: -1},
		{Drives: 1, Slots: 1, Serial: "A-SERIAL-NUMBER-FAR-TOO-LONG-FOR-IT"},
	} {
		if _, err := Create(t.TempDir(), cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	dir := t.TempDir()
	l, err := Create(dir, Config{Drives: 1, Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Errorf("second open of a library in use: %v", err)
	}
	_ = l.Close()
	if _, err := Create(dir, Config{Drives: 1, Slots: 1}); err == nil {
		t.Error("second library created over the first")
	}
	l, err = Open(dir)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	_ = l.Close()
	if _, err := Open(t.TempDir()); err == nil {
		t.Error("opened a directory without a library")
	}
	bad := t.TempDir()
	_ = os.WriteFile(filepath.Join(bad, stateFile), []byte(`{"Version":1,"Config":{"Drives":2,"Slots":1},"Drives":[{}],"Slots":[{}]}`), 0o644)
	if _, err := Open(bad); err == nil {
		t.Error("state with wrong element counts accepted")
	}
}

func TestDefaultLibrary(t *testing.T) {
	l, err := CreateDefault(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	inv := l.Inventory()
	counts := map[ElementType]int{}
	full := 0
	for _, e := range inv {
		counts[e.Type]++
		if e.Full {
			full++
		}
	}
	if counts[TypeDrive] != 4 || counts[TypeSlot] != 20 || counts[TypeIE] != 4 || counts[TypeTransport] != 1 || full != 10 {
		t.Fatalf("inventory counts %v, %d full", counts, full)
	}
	if len(l.Cartridges()) != 10 || l.Cartridges()[9].Barcode != "TAP010L8" || l.Cartridges()[0].Capacity != DefaultCapacity {
		t.Fatalf("cartridges %+v", l.Cartridges())
	}
	seen := map[string]bool{}
	for i, d := range l.Drives() {
		if d.Barcode() != fmt.Sprintf("TAP%03dL8", i+1) || !d.Loaded() || seen[d.Serial()] || d.Serial() == "" {
			t.Fatalf("drive %d: %q loaded %v serial %q", i, d.Barcode(), d.Loaded(), d.Serial())
		}
		seen[d.Serial()] = true
		if got, _ := l.DriveBySerial(d.Serial()); got != d {
			t.Fatal("DriveBySerial")
		}
	}
}

func TestCartridgeManagement(t *testing.T) {
	l, err := Create(t.TempDir(), Config{Drives: 1, Slots: 2, IESlots: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wantErr(t, l.AddCartridge("bad barcode!", 0), ErrBadBarcode)
	if err := l.AddCartridge("A1", 1<<20); err != nil {
		t.Fatal(err)
	}
	wantErr(t, l.AddCartridge("A1", 0), ErrExists)
	if err := l.AddCartridge("A2", 0); err != nil {
		t.Fatal(err)
	}
	wantErr(t, l.AddCartridge("A3", 0), ErrNoSpace)
	if err := l.Import("A3"); err != nil { // new cartridge through the I/E slot
		t.Fatal(err)
	}
	wantErr(t, l.Import("A4"), ErrNoSpace)
	if err := l.Move(SlotBase, DriveBase); err != nil {
		t.Fatal(err)
	}
	wantErr(t, l.RemoveCartridge("A1"), ErrInDrive)
	wantErr(t, l.Label("A1", "B1"), ErrInDrive)
	wantErr(t, l.Export("A2"), ErrIllegalArgs) // not in an I/E slot
	if err := l.Label("A2", "B2"); err != nil {
		t.Fatal(err)
	}
	if el, in, _ := l.Locate("B2"); !in || el.Addr != SlotBase+1 {
		t.Fatalf("relabelled cartridge at %+v %v", el, in)
	}
	if _, err := os.Stat(l.cartPath("B2")); err != nil {
		t.Fatal("relabel did not move the image")
	}
	if err := l.Export("A3"); err != nil {
		t.Fatal(err)
	}
	if _, in, _ := l.Locate("A3"); in {
		t.Fatal("exported cartridge still inside")
	}
	if err := l.RemoveCartridge("A3"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, l.RemoveCartridge("A3"), ErrNoCartridge)
	if _, err := os.Stat(l.cartPath("A3")); !os.IsNotExist(err) {
		t.Fatal("removed cartridge's image remains")
	}
	if c := l.Cartridges(); len(c) != 2 || c[0].Capacity != 1<<20 || c[0].EarlyWarning != 1<<15 {
		t.Fatalf("cartridges %+v", c)
	}
}

// TestRestartKeepsPlacesAndContents writes through a drive, moves
// cartridges, closes the library and opens it again.
func TestRestartKeepsPlacesAndContents(t *testing.T) {
	dir := t.TempDir()
	l, err := CreateDefault(dir)
	if err != nil {
		t.Fatal(err)
	}
	serials := []string{}
	for _, d := range l.Drives() {
		serials = append(serials, d.Serial())
	}
	d := l.drives[2]
	mustOpen(t, d, OpenOptions{Mode: ReadWriteMode, Compression: 2})
	for i := 0; i < 10; i++ {
		_, _ = d.Write(pattern(2, i, 3000))
	}
	_ = d.Close()
	_ = l.Move(DriveBase+3, IEBase+2)
	_ = l.Move(SlotBase+9, DriveBase+3)
	_ = l.SetWriteProtect("TAP007L8", true)
	_ = l.InjectFault("TAP008L8", Fault{Kind: FaultRead, At: 3, Count: 2})
	before := l.Inventory()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	after := l.Inventory()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("inventory changed across restart\nbefore %v\nafter  %v", before, after)
	}
	for i, d := range l.Drives() {
		if d.Serial() != serials[i] {
			t.Fatalf("drive %d serial %q, was %q", i, d.Serial(), serials[i])
		}
	}
	cs := l.Cartridges()
	if !cs[6].WriteProtect || len(cs[7].Faults) != 1 || cs[7].Faults[0].Count != 2 {
		t.Fatalf("cartridge attributes lost: %+v %+v", cs[6], cs[7])
	}
	d = l.drives[2]
	if !d.Loaded() || d.Barcode() != "TAP003L8" {
		t.Fatal("drive 2 lost its cartridge")
	}
	mustOpen(t, d, OpenOptions{Mode: ReadMode})
	buf := make([]byte, 4000)
	for i := 0; i < 10; i++ {
		n, err := d.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], pattern(2, i, 3000)) {
			t.Fatalf("record %d after restart: %v", i, err)
		}
	}
	_, err = d.Read(buf)
	wantErr(t, err, ErrEOF)
	_ = d.Close()
}

const vtlWriterEnv = "VTL_KILLED_WRITER_DIR"

// TestVTLWriterHelper is the writer process of TestKilledDriveWriter.
func TestVTLWriterHelper(t *testing.T) {
	dir := os.Getenv(vtlWriterEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := l.drives[0]
	if err := d.Open(OpenOptions{Mode: ReadWriteMode}); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := d.Write(pattern(9, i, 65536+i%1000)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKilledDriveWriter kills a process writing through a drive with
// SIGKILL; the library opens again with every whole record intact.
func TestKilledDriveWriter(t *testing.T) {
	dir := t.TempDir()
	l, err := CreateDefault(dir)
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestVTLWriterHelper$")
	cmd.Env = append(os.Environ(), vtlWriterEnv+"="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tap := filepath.Join(dir, "cartridges", "TAP001L8.tap")
	deadline := time.Now().Add(testutil.HangGuard)
	for {
		if st, err := os.Stat(tap); err == nil && st.Size() > 16<<20 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal("writer made no progress")
		}
		time.Sleep(2 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("writer ended otherwise: %v", err)
	}
	l, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := l.drives[0]
	mustOpen(t, d, OpenOptions{Mode: ReadMode})
	buf := make([]byte, 70000)
	n := 0
	for ; ; n++ {
		got, err := d.Read(buf)
		if errors.Is(err, ErrEOM) {
			break
		}
		if err != nil || !bytes.Equal(buf[:got], pattern(9, n, 65536+n%1000)) {
			t.Fatalf("record %d: %v", n, err)
		}
	}
	if n < 200 {
		t.Fatalf("only %d records survived", n)
	}
	t.Logf("%d whole records after SIGKILL", n)
	_ = d.Close()
}

func TestUnloadReloadNext(t *testing.T) {
	l, err := CreateDefault(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := l.drives[0] // TAP001L8 from slot 0
	got := []string{}
	for {
		bc, err := l.LoadNext(d)
		if err != nil {
			wantErr(t, err, ErrNoCartridge)
			break
		}
		got = append(got, bc)
	}
	want := "[TAP005L8 TAP006L8 TAP007L8 TAP008L8 TAP009L8 TAP010L8]"
	if fmt.Sprint(got) != want {
		t.Fatalf("loaded %v, want %s", got, want)
	}
	if el, in, _ := l.Locate("TAP001L8"); !in || el.Addr != SlotBase {
		t.Fatalf("TAP001L8 not back in its slot: %+v", el)
	}
	if err := d.Unload(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, d.Open(OpenOptions{Mode: ReadMode}), ErrNoTape)
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, d, OpenOptions{Mode: ReadMode})
	wantErr(t, d.Unload(), ErrBusy)
	_ = d.Close()
}
