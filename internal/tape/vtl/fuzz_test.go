package vtl

import (
	"os"
	"path/filepath"
	"testing"
)

// checkResult asserts the invariants of any CDB reply.
func checkResult(t *testing.T, r CDBResult, dataInLen int) {
	t.Helper()
	switch r.Status {
	case StatusGood:
		if r.Sense != nil {
			t.Fatalf("good status with sense %x", r.Sense)
		}
	case StatusCheckCondition:
		if len(r.Sense) != 18 || r.Sense[0]&0x7F != 0x70 || r.Sense[7] != 10 {
			t.Fatalf("bad check condition: sense %x data %d bytes", r.Sense, len(r.DataIn))
		}
	default:
		t.Fatalf("status %#x", r.Status)
	}
	if len(r.DataIn) > dataInLen {
		t.Fatalf("%d data-in bytes for a %d-byte buffer", len(r.DataIn), dataInLen)
	}
}

// FuzzExecuteCDB sends arbitrary CDBs to the changer and to a drive: no
// panic, a well-formed reply, data-in within the caller's buffer, and the
// library's bookkeeping still consistent (every cartridge in one place).
func FuzzExecuteCDB(f *testing.F) {
	for _, c := range [][]byte{
		{0x00, 0, 0, 0, 0, 0},
		{0x03, 0, 0, 0, 18, 0},
		{0x12, 0, 0, 0, 96, 0},
		{0x12, 1, 0x83, 0, 96, 0},
		{0x1A, 0, 0x3F, 0, 255, 0},
		{0x5A, 0, 0x1D, 0, 0, 0, 0, 1, 0, 0},
		{0xB8, 0x10, 0, 0, 0xFF, 0xFF, 1, 0, 4, 0, 0, 0},
		{0xB8, 0x14, 0x01, 0xF4, 0, 2, 1, 0, 0, 8, 0, 0},
		{0xA5, 0, 0, 0, 0x03, 0xE8, 0x01, 0xF5, 0, 0, 0, 0},
		{0xA5, 0, 0, 0, 0x01, 0xF4, 0x00, 0x0A, 0, 0, 0, 0},
		{0x37, 1, 0x03, 0xE8, 0, 0, 0, 4, 0, 0},
		{0x1E, 0, 0, 0, 1, 0},
		{0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0},
		{0x34, 6, 0, 0, 0, 0, 0, 0, 0, 0},
		{0x05, 0, 0, 0, 0, 0},
		{},
	} {
		f.Add(c, uint16(255), false)
		f.Add(c, uint16(8), true)
	}
	dir := f.TempDir()
	l, err := Create(filepath.Join(dir, "lib"), Config{Drives: 2, Slots: 6, IESlots: 2, Capacity: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	for _, bc := range []string{"C1", "C2", "C3"} {
		if err := l.AddCartridge(bc, 0); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, cdb []byte, alloc uint16, toDrive bool) {
		req := CDB{CDB: cdb, Dir: DirIn, DataInLen: int(alloc)}
		var r CDBResult
		if toDrive {
			r = l.drives[0].ExecuteCDB(req)
		} else {
			r = l.ExecuteCDB(req)
		}
		checkResult(t, r, int(alloc))
		if n := cartridgesInside(t, l); n != 3 {
			t.Fatalf("%d cartridges inside, want 3", n)
		}
		if l.st.Prevent {
			_ = l.SetPrevent(false)
		}
	})
}

// FuzzOpenState feeds arbitrary state files to Open: an error or a
// library whose inventory is consistent, never a panic.
func FuzzOpenState(f *testing.F) {
	seedDir := f.TempDir()
	l, err := CreateDefault(filepath.Join(seedDir, "lib"))
	if err != nil {
		f.Fatal(err)
	}
	_ = l.Close()
	good, err := os.ReadFile(filepath.Join(seedDir, "lib", stateFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"Version":1,"Config":{"Drives":1,"Slots":1},"Drives":[{"Barcode":"X"}],"Slots":[{}],"Carts":{}}`))
	f.Add([]byte(`{"Version":1,"Config":{"Drives":1,"Slots":1},"Drives":[{"Barcode":"X"}],"Slots":[{"Barcode":"X"}],"Carts":{"X":{"Barcode":"X"}}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, state []byte) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "cartridges"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, stateFile), state, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir)
		if err != nil {
			return
		}
		defer l.Close()
		cartridgesInside(t, l)
		for _, d := range l.Drives() {
			_ = d.Open(OpenOptions{Mode: ReadMode})
			_, _ = d.Read(make([]byte, 16))
			_ = d.Close()
		}
	})
}

// cartridgesInside returns how many cartridges the library's elements
// hold, failing t if one cartridge is in two elements.
func cartridgesInside(t *testing.T, l *Library) int {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range l.Inventory() {
		if e.Full {
			if seen[e.Barcode] {
				t.Fatalf("cartridge %s in two places", e.Barcode)
			}
			seen[e.Barcode] = true
		}
	}
	return len(seen)
}
