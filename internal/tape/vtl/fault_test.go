package vtl

import (
	"errors"
	"os"
	"testing"
)

// TestEveryT10Message produces each tape error message of ONTAP's list
// (T10) through an injected fault or the condition it names, and checks
// the exact text and the NDMP error class.
func TestEveryT10Message(t *testing.T) {
	produced := map[string]bool{}
	expect := func(err error, sentinel error, msg string) {
		t.Helper()
		if !errors.Is(err, sentinel) || Message(err) != msg {
			t.Fatalf("got %v (message %q), want %v with %q", err, Message(err), sentinel, msg)
		}
		produced[msg] = true
	}
	rec := make([]byte, 4096)

	l, err := Create(t.TempDir(), Config{Drives: 2, Slots: 6, MaxActive: 1, MinCapacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, bc := range []string{"F1", "F2", "F3", "F4", "F5", "F6"} {
		if err := l.AddCartridge(bc, 0); err != nil {
			t.Fatal(err)
		}
	}
	load := func(slot int, drive int) *Drive {
		t.Helper()
		d := l.drives[drive]
		if d.Barcode() != "" {
			free := -1
			for i, e := range l.st.Slots {
				if e.Barcode == "" {
					free = i
					break
				}
			}
			if err := l.Move(d.Address(), SlotBase+uint16(free)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Move(SlotBase+uint16(slot), d.Address()); err != nil {
			t.Fatal(err)
		}
		return d
	}

	// Resource limitation: one drive may be open (MaxActive 1).
	d0 := load(0, 0)
	mustOpen(t, d0, OpenOptions{Mode: RawMode})
	expect(l.drives[1].Open(OpenOptions{Mode: RawMode}), ErrBusy, MsgNoAvailableThread)

	// Tape reservation preempted.
	d0.Preempt()
	_, err = d0.Write(rec)
	expect(err, ErrPreempted, MsgReservationPreempted)
	_ = d0.Close()

	// Could not initialize media: injected, and a damaged image.
	_ = l.InjectFault("F1", Fault{Kind: FaultInit, At: -1, Count: 1})
	load(1, 0) // F2 in the drive, F1 back to a slot
	d0 = load(0, 0)
	expect(d0.Open(OpenOptions{Mode: ReadMode}), ErrIO, MsgCouldNotInitializeMedia)
	mustOpen(t, d0, OpenOptions{Mode: ReadMode}) // the fault fired once
	_ = d0.Close()

	// A media error on the first write to a new tape, then on a later one.
	d0 = load(1, 0) // F2
	_ = l.InjectFault("F2", Fault{Kind: FaultWriteMedia, At: 0, Count: 1})
	_ = l.InjectFault("F2", Fault{Kind: FaultWriteMedia, At: 3, Count: 1})
	_ = l.InjectFault("F2", Fault{Kind: FaultWrite, At: 3, Count: 1})
	mustOpen(t, d0, OpenOptions{Mode: ReadWriteMode})
	_, err = d0.Write(rec)
	expect(err, ErrIO, MsgWriteFailedNewMediaError)
	for i := 0; i < 3; i++ {
		if _, err := d0.Write(rec); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	_, err = d0.Write(rec)
	expect(err, ErrIO, MsgMediaErrorOnWrite)
	if s, _ := d0.State(); s.Flags&StateError == 0 {
		t.Fatalf("ERROR flag not set after a media error: %#x", s.Flags)
	}
	_, err = d0.Write(rec)
	expect(err, ErrIO, MsgWriteFailed)
	if _, err := d0.Write(rec); err != nil { // faults were one-shot
		t.Fatal(err)
	}
	if s, _ := d0.State(); s.Flags&StateError != 0 {
		t.Fatal("ERROR flag not cleared by the next operation")
	}
	if st := d0.Stats(); st.WriteErrors != 3 {
		t.Fatalf("write errors %d", st.WriteErrors)
	}

	// Read faults: media error and plain read error; then blank tape.
	_ = l.InjectFault("F2", Fault{Kind: FaultReadMedia, At: 0})
	_ = l.InjectFault("F2", Fault{Kind: FaultRead, At: 1, Count: 1})
	mtio(t, d0, MTREW, 0)
	_, err = d0.Read(rec)
	expect(err, ErrIO, MsgMediaErrorOnRead)
	_, err = d0.Read(rec)
	expect(err, ErrIO, MsgReadError)
	if n, err := d0.Read(rec); n != len(rec) || err != nil {
		t.Fatalf("read after faults: %d %v", n, err)
	}
	mtio(t, d0, MTFSF, 1)
	_, err = d0.Read(rec)
	expect(err, ErrEOM, MsgAlreadyAtEnd)
	if st := d0.Stats(); st.ReadErrors != 2 {
		t.Fatalf("read errors %d", st.ReadErrors)
	}
	_ = d0.Close()

	// A new tape that is write protected.
	d0 = load(2, 0) // F3
	_ = l.SetWriteProtect("F3", true)
	mustOpen(t, d0, OpenOptions{Mode: RawMode})
	_, err = d0.Write(rec)
	expect(err, ErrWriteProtect, MsgWriteFailedNewBroken)
	_ = d0.Close()

	// A new tape already at its end (a short tape of 100 bytes; no
	// minimum capacity check for this library).
	l2, err := Create(t.TempDir(), Config{Drives: 1, Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	_ = l2.AddCartridge("S1", 0)
	_ = l2.SetShortTape("S1", 100)
	_ = l2.Move(SlotBase, DriveBase)
	mustOpen(t, l2.drives[0], OpenOptions{Mode: ReadWriteMode})
	_, err = l2.drives[0].Write(rec)
	expect(err, ErrIO, MsgWriteFailedNewAtEnd)
	_ = l2.drives[0].Close()

	// A tape below the minimum capacity (1 MiB) reaching its end.
	d0 = load(3, 0) // F4
	_ = l.SetShortTape("F4", 64<<10)
	mustOpen(t, d0, OpenOptions{Mode: ReadWriteMode})
	for {
		if _, err = d0.Write(rec); err != nil && !errors.Is(err, ErrEOM) {
			break
		}
	}
	expect(err, ErrIO, MsgMinimumCapacity(1))
	_ = d0.Close()
	_ = l.ClearFaults("F4")
	if c := l.Cartridges()[3]; c.ShortTape != 0 || len(c.Faults) != 0 {
		t.Fatalf("faults not cleared: %+v", c)
	}

	// Record sizes.
	expect(CheckRecordSize(1024), ErrIllegalArgs, MsgRecordSizeRange)
	expect(CheckRecordSize(512<<10), ErrIllegalArgs, MsgRecordSizeRange)
	expect(CheckRecordSize(10000), ErrIllegalArgs, MsgRecordSizeRange)
	if CheckRecordSize(64<<10) != nil {
		t.Fatal("64 KB rejected")
	}
	d0 = load(1, 0) // F2, whose records are 4 KiB
	mustOpen(t, d0, OpenOptions{Mode: ReadMode})
	mtio(t, d0, MTFSR, 1)
	onTape, err := d0.NextRecordLength()
	if err != nil || onTape != 4096 {
		t.Fatalf("next record length %d %v", onTape, err)
	}
	expect(CheckRestoreRecordSize(2048, onTape, false), ErrIllegalArgs, MsgRecordSizeTooSmall)
	expect(CheckRestoreRecordSize(8192, onTape, true), ErrIllegalArgs, MsgRecordSizeShould(4096, 8192))
	if CheckRestoreRecordSize(8192, onTape, false) != nil || CheckRestoreRecordSize(4096, onTape, true) != nil {
		t.Fatal("fitting record sizes rejected")
	}
	_ = d0.Close()

	for _, m := range []string{MsgNoAvailableThread, MsgReservationPreempted, MsgCouldNotInitializeMedia,
		MsgMediaErrorOnWrite, MsgWriteFailed, MsgWriteFailedNewMediaError, MsgWriteFailedNewBroken,
		MsgWriteFailedNewAtEnd, MsgMinimumCapacity(1), MsgMediaErrorOnRead, MsgReadError, MsgAlreadyAtEnd,
		MsgRecordSizeTooSmall, MsgRecordSizeShould(4096, 8192), MsgRecordSizeRange} {
		if !produced[m] {
			t.Errorf("message never produced: %q", m)
		}
	}
}

func TestDamagedCartridgeImage(t *testing.T) {
	l, d := newLib(t, 0)
	_ = os.Remove(l.cartPath("VOL001"))
	err := d.Open(OpenOptions{Mode: ReadMode})
	if !errors.Is(err, ErrIO) || Message(err) != MsgCouldNotInitializeMedia {
		t.Fatalf("missing image: %v", err)
	}
	if err := l.InjectFault("VOL001", Fault{Kind: "melt"}); err == nil {
		t.Fatal("unknown fault kind accepted")
	}
	if err := l.InjectFault("NOPE", Fault{Kind: FaultRead}); !errors.Is(err, ErrNoCartridge) {
		t.Fatalf("fault on unknown cartridge: %v", err)
	}
}
