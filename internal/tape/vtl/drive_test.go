package vtl

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/tapestry-ndmp/tapestry/format/simtap"
)

// newLib makes a library with one drive, 4 slots, 2 I/E slots and a
// cartridge of the given capacity loaded in the drive.
func newLib(t *testing.T, capacity int64) (*Library, *Drive) {
	t.Helper()
	l, err := Create(t.TempDir(), Config{Drives: 2, Slots: 4, IESlots: 2, Capacity: capacity, Serial: "TESTLIB"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if err := l.AddCartridge("VOL001", 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Move(SlotBase, DriveBase); err != nil {
		t.Fatal(err)
	}
	d, _ := l.Drive(0)
	return l, d
}

func mustOpen(t *testing.T, d *Drive, o OpenOptions) {
	t.Helper()
	if err := d.Open(o); err != nil {
		t.Fatal(err)
	}
}

func mtio(t *testing.T, d *Drive, op MTOp, n uint32) uint32 {
	t.Helper()
	r, err := d.MTIO(op, n)
	if err != nil {
		t.Fatalf("mtio %d %d: %v", op, n, err)
	}
	return r
}

func wantErr(t *testing.T, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("got error %v, want %v", err, sentinel)
	}
}

func pos(t *testing.T, d *Drive) (uint32, uint32) {
	t.Helper()
	s, err := d.State()
	if err != nil {
		t.Fatal(err)
	}
	return s.FileNum, s.BlockNo
}

// pattern is the content of record r of file f, as ndmjob fills it.
func pattern(f, r, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(f*31 + r*7 + i)
	}
	return b
}

// TestOpenCloseRules pins NDMP_TAPE_OPEN/CLOSE behaviour (ndmjob T-OC).
func TestOpenCloseRules(t *testing.T) {
	l, d := newLib(t, 0)
	wantErr(t, d.Close(), ErrNotOpen)
	_, err := d.State()
	wantErr(t, err, ErrNotOpen)
	wantErr(t, d.Open(OpenOptions{Mode: 123}), ErrIllegalArgs)
	mustOpen(t, d, OpenOptions{Mode: ReadMode})
	wantErr(t, d.Open(OpenOptions{Mode: ReadMode}), ErrBusy)
	_, err = d.Write([]byte("x"))
	wantErr(t, err, ErrPermission)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	empty, _ := l.Drive(1)
	wantErr(t, empty.Open(OpenOptions{Mode: ReadWriteMode}), ErrNoTape)
	wantErr(t, empty.Open(OpenOptions{Mode: ReadMode}), ErrNoTape)
	mustOpen(t, empty, OpenOptions{Mode: RawMode})
	_, err = empty.Read(make([]byte, 10))
	wantErr(t, err, ErrNoTape)
	if _, err := empty.MTIO(MTTUR, 0); !errors.Is(err, ErrNoTape) {
		t.Fatalf("TUR without tape: %v", err)
	}
	s, _ := empty.State()
	if s.FileNum != Unknown || s.BlockNo != Unknown {
		t.Fatalf("state without tape %+v", s)
	}
	_ = empty.Close()
}

// TestNDMPTapeBasics pins the ndmjob T-BW, T-BR and T-BWR expectations.
func TestNDMPTapeBasics(t *testing.T) {
	_, d := newLib(t, 0)
	mustOpen(t, d, OpenOptions{Mode: ReadWriteMode})
	if n, err := d.Write(nil); n != 0 || err != nil {
		t.Fatalf("write 0: %d %v", n, err)
	}
	if n, err := d.Read(nil); n != 0 || err != nil {
		t.Fatalf("read 0: %d %v", n, err)
	}
	// At BOT: backspacing leaves everything as residual.
	if r := mtio(t, d, MTBSR, 100); r != 100 {
		t.Fatalf("BSR 100 at BOT resid %d", r)
	}
	if r := mtio(t, d, MTBSF, 100); r != 100 {
		t.Fatalf("BSF 100 at BOT resid %d", r)
	}
	// A file mark at BOT: BSF 100 -> 99, FSF 100 -> 99.
	mtio(t, d, MTEOF, 1)
	if r := mtio(t, d, MTBSF, 100); r != 99 {
		t.Fatalf("BSF over one mark resid %d", r)
	}
	if f, b := pos(t, d); f != 0 || b != 0 {
		t.Fatalf("after BSF at %d/%d", f, b)
	}
	// Reading the mark: EOF, head stays on the BOT side, EOF again.
	for i := 0; i < 2; i++ {
		_, err := d.Read(make([]byte, 100))
		wantErr(t, err, ErrEOF)
		if f, b := pos(t, d); f != 0 || b != 0 {
			t.Fatalf("after EOF read %d at %d/%d, want 0/0", i, f, b)
		}
	}
	if r := mtio(t, d, MTFSF, 100); r != 99 {
		t.Fatalf("FSF 100 over one mark resid %d", r)
	}
	for i := 0; i < 2; i++ {
		_, err := d.Read(make([]byte, 100))
		wantErr(t, err, ErrEOM)
		if Message(err) != MsgAlreadyAtEnd {
			t.Fatalf("blank check message %q", Message(err))
		}
	}
	mtio(t, d, MTREW, 0)
	// Count 0 does nothing.
	for _, op := range []MTOp{MTFSF, MTBSF, MTFSR, MTBSR, MTEOF} {
		if r := mtio(t, d, op, 0); r != 0 {
			t.Fatalf("op %d count 0 resid %d", op, r)
		}
	}
	if f, b := pos(t, d); f != 0 || b != 0 {
		t.Fatalf("count 0 moved the head to %d/%d", f, b)
	}
	if _, err := d.MTIO(MTEOF, MaxMarksPerOp+1); !errors.Is(err, ErrIllegalArgs) {
		t.Fatalf("huge EOF count: %v", err)
	}
	if _, err := d.MTIO(42, 1); !errors.Is(err, ErrIllegalArgs) {
		t.Fatalf("bad op: %v", err)
	}
	// 1 KB record: a 2 KB read returns 1 KB, a 512-byte read cuts it.
	if n, err := d.Write(pattern(0, 0, 1024)); n != 1024 || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	mtio(t, d, MTREW, 0)
	buf := make([]byte, 2048)
	if n, err := d.Read(buf); n != 1024 || err != nil || !bytes.Equal(buf[:n], pattern(0, 0, 1024)) {
		t.Fatalf("read: %d %v", n, err)
	}
	wantErr(t, func() error { _, err := d.Read(buf); return err }(), ErrEOF) // the implicit mark of REW
	mtio(t, d, MTREW, 0)
	if n, err := d.Read(buf[:512]); n != 512 || err != nil || d.LastRecordLength() != 1024 {
		t.Fatalf("short read: %d %v full %d", n, err, d.LastRecordLength())
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNDMPWriteReadMTIO runs ndmjob's T-WRITE, T-READ and T-MTIO series
// against a drive.
func TestNDMPWriteReadMTIO(t *testing.T) {
	_, d := newLib(t, 0)
	files := []struct{ n, size int }{{1, 512}, {100, 1024}, {1, 512}, {100, 139}, {1, 512}, {99, 10240}, {1, 512}, {3, 32768}, {1, 512}}
	mustOpen(t, d, OpenOptions{Mode: ReadWriteMode})
	for f, spec := range files {
		for r := 0; r < spec.n; r++ {
			if _, err := d.Write(pattern(f, r, spec.size)); err != nil {
				t.Fatal(err)
			}
			if fn, bn := pos(t, d); fn != uint32(f) || bn != uint32(r+1) {
				t.Fatalf("file %d rec %d: state %d/%d", f, r, fn, bn)
			}
		}
		mtio(t, d, MTEOF, 1)
		if fn, bn := pos(t, d); fn != uint32(f+1) || bn != 0 {
			t.Fatalf("after mark %d: state %d/%d", f, fn, bn)
		}
	}
	mtio(t, d, MTREW, 0)
	buf := make([]byte, 65536)
	for f, spec := range files {
		for r := 0; r < spec.n; r++ {
			n, err := d.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], pattern(f, r, spec.size)) {
				t.Fatalf("read file %d rec %d: %d %v", f, r, n, err)
			}
		}
		_, err := d.Read(buf)
		wantErr(t, err, ErrEOF)
		if fn, bn := pos(t, d); fn != uint32(f) || bn != uint32(spec.n) {
			t.Fatalf("after EOF of file %d: %d/%d", f, fn, bn)
		}
		mtio(t, d, MTFSF, 1)
	}
	for f, spec := range files {
		n := uint32(spec.n)
		if r := mtio(t, d, MTREW, 0); r != 0 {
			t.Fatal("rewind resid")
		}
		if r := mtio(t, d, MTFSF, uint32(f)); r != 0 {
			t.Fatalf("FSF %d resid %d", f, r)
		}
		if r := mtio(t, d, MTFSR, 1_000_000); r != 1_000_000-n {
			t.Fatalf("file %d FSR resid %d", f, r)
		}
		if fn, bn := pos(t, d); fn != uint32(f) || bn != n {
			t.Fatalf("file %d after FSR at %d/%d", f, fn, bn)
		}
		if r := mtio(t, d, MTFSR, 5); r != 5 {
			t.Fatalf("FSR at a mark resid %d", r)
		}
		if r := mtio(t, d, MTBSR, 1_000_000); r != 1_000_000-n {
			t.Fatalf("file %d BSR resid %d", f, r)
		}
		if fn, bn := pos(t, d); fn != uint32(f) || bn != 0 {
			t.Fatalf("file %d after BSR at %d/%d", f, fn, bn)
		}
		if r := mtio(t, d, MTFSR, n/2); r != 0 {
			t.Fatalf("FSR n/2 resid %d", r)
		}
		got, err := d.Read(buf)
		if err != nil || !bytes.Equal(buf[:got], pattern(f, int(n/2), spec.size)) {
			t.Fatalf("file %d record %d after FSR: %v", f, n/2, err)
		}
		if n >= 2 {
			if r := mtio(t, d, MTBSR, 2); r != 0 {
				t.Fatalf("BSR 2 resid %d", r)
			}
			got, err := d.Read(buf)
			if err != nil || !bytes.Equal(buf[:got], pattern(f, int(n/2)-1, spec.size)) {
				t.Fatalf("file %d record after BSR 2: %v", f, err)
			}
		}
	}
	// BSF lands on the BOT side of the mark: the next read is EOF.
	mtio(t, d, MTREW, 0)
	mtio(t, d, MTFSF, 3)
	if r := mtio(t, d, MTBSF, 1); r != 0 {
		t.Fatalf("BSF resid %d", r)
	}
	_, err := d.Read(buf)
	wantErr(t, err, ErrEOF)
	if fn, bn := pos(t, d); fn != 2 || bn != 1 {
		t.Fatalf("after BSF at %d/%d, want 2/1", fn, bn)
	}
	// FSF past the last mark reports the rest at the end of data.
	if r := mtio(t, d, MTFSF, 100); r != 100-7 {
		t.Fatalf("FSF to EOD resid %d", r)
	}
	st := d.Stats()
	if st.RecordsWritten != 307 || st.MarksWritten != 9 || st.RecordsRead == 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestImplicitFileMarks pins NDMP's implicit file mark rules.
func TestImplicitFileMarks(t *testing.T) {
	_, d := newLib(t, 0)
	mustOpen(t, d, OpenOptions{Mode: ReadWriteMode, NoRewind: true})
	_, _ = d.Write([]byte("a"))
	mtio(t, d, MTTUR, 0) // TUR writes no mark
	if f, b := pos(t, d); f != 0 || b != 1 {
		t.Fatalf("after TUR %d/%d", f, b)
	}
	mtio(t, d, MTBSR, 0) // any other MTIO does (count 0 or not)
	if f, b := pos(t, d); f != 1 || b != 0 {
		t.Fatalf("after implicit mark %d/%d, want 1/0", f, b)
	}
	_, _ = d.Write([]byte("b"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// No rewind: the head stays past the mark written on close.
	mustOpen(t, d, OpenOptions{Mode: ReadMode})
	if f, b := pos(t, d); f != 2 || b != 0 {
		t.Fatalf("after close with no rewind %d/%d, want 2/0", f, b)
	}
	mtio(t, d, MTREW, 0)
	if r := mtio(t, d, MTFSF, 5); r != 3 {
		t.Fatalf("tape should hold 2 marks, FSF 5 resid %d", r)
	}
	_ = d.Close()
	// Rewind on close.
	mustOpen(t, d, OpenOptions{Mode: ReadWriteMode})
	mtio(t, d, MTFSF, 2)
	_ = d.Close()
	mustOpen(t, d, OpenOptions{Mode: ReadMode})
	if f, b := pos(t, d); f != 0 || b != 0 {
		t.Fatalf("rewinding close left %d/%d", f, b)
	}
	_ = d.Close()
	// Unload on close.
	mustOpen(t, d, OpenOptions{Mode: ReadMode, Unload: true})
	if s, _ := d.State(); s.Flags&StateUnload == 0 {
		t.Fatalf("flags %#x lack UNLOAD", s.Flags)
	}
	_ = d.Close()
	if d.Loaded() {
		t.Fatal("unload on close left the tape loaded")
	}
	wantErr(t, d.Open(OpenOptions{Mode: ReadMode}), ErrNoTape)
}

func TestWriteInMiddleDiscardsRest(t *testing.T) {
	_, d := newLib(t, 0)
	mustOpen(t, d, OpenOptions{Mode: ReadWriteMode})
	for i := 0; i < 5; i++ {
		_, _ = d.Write(pattern(0, i, 100))
	}
	mtio(t, d, MTEOF, 1)
	for i := 0; i < 5; i++ {
		_, _ = d.Write(pattern(1, i, 100))
	}
	mtio(t, d, MTREW, 0)
	mtio(t, d, MTFSR, 2)
	if _, err := d.Write([]byte("replacement")); err != nil {
		t.Fatal(err)
	}
	mtio(t, d, MTREW, 0)
	if r := mtio(t, d, MTFSF, 10); r != 9 {
		t.Fatalf("after overwrite, FSF 10 resid %d (the implicit mark only)", r)
	}
	mtio(t, d, MTREW, 0)
	if r := mtio(t, d, MTFSR, 10); r != 7 {
		t.Fatalf("file 0 should hold 3 records, FSR resid %d", r)
	}
	_ = d.Close()
}

func TestEarlyWarningAndEndOfMedium(t *testing.T) {
	l, err := Create(t.TempDir(), Config{Drives: 1, Slots: 2, Capacity: 100_000, EarlyWarning: 20_000})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_ = l.AddCartridge("SMALL1", 0)
	_ = l.Move(SlotBase, DriveBase)
	d, _ := l.Drive(0)
	mustOpen(t, d, OpenOptions{Mode: ReadWriteMode})
	rec := make([]byte, 4992) // 5000 bytes on tape with the length words
	var i int
	for i = 0; ; i++ {
		n, err := d.Write(rec)
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if n != len(rec) {
			t.Fatalf("short write %d", n)
		}
		if s, _ := d.State(); s.SpaceRemain < 20_000 {
			break
		}
	}
	if i != 16 {
		t.Fatalf("early warning after %d records, want the 17th", i+1)
	}
	// The write that entered the zone succeeded; the next one reports EOM.
	n, err := d.Write(rec)
	if n != 0 || !errors.Is(err, ErrEOM) {
		t.Fatalf("write after early warning: %d %v", n, err)
	}
	// File marks still go on; later writes succeed until the hard end.
	if r := mtio(t, d, MTEOF, 1); r != 0 {
		t.Fatalf("EOF in early warning resid %d", r)
	}
	for k := 0; k < 2; k++ {
		if _, err := d.Write(rec); err != nil {
			t.Fatalf("write %d after EOM: %v", k, err)
		}
	}
	_, err = d.Write(rec)
	wantErr(t, err, ErrIO)
	if Message(err) != MsgWriteFailed {
		t.Fatalf("hard end message %q", Message(err))
	}
	s, _ := d.State()
	if s.TotalSpace != 100_000 || s.SpaceRemain != 100_000-95_004 {
		t.Fatalf("space %d/%d", s.SpaceRemain, s.TotalSpace)
	}
	// Rewinding and rewriting starts the cycle again.
	mtio(t, d, MTREW, 0)
	if _, err := d.Write(rec); err != nil {
		t.Fatal(err)
	}
	_ = d.Close()
}

func TestWriteProtectAndWORM(t *testing.T) {
	l, d := newLib(t, 0)
	mustOpen(t, d, OpenOptions{Mode: ReadWriteMode})
	_, _ = d.Write([]byte("data"))
	_ = d.Close()
	if err := l.SetWriteProtect("VOL001", true); err != nil {
		t.Fatal(err)
	}
	wantErr(t, d.Open(OpenOptions{Mode: ReadWriteMode}), ErrWriteProtect)
	mustOpen(t, d, OpenOptions{Mode: ReadMode})
	if s, _ := d.State(); s.Flags&StateWrProt == 0 {
		t.Fatalf("flags %#x lack WR_PROT", s.Flags)
	}
	_ = d.Close()
	mustOpen(t, d, OpenOptions{Mode: RawMode})
	_, err := d.Write([]byte("x"))
	wantErr(t, err, ErrWriteProtect)
	_, err = d.MTIO(MTEOF, 1)
	wantErr(t, err, ErrWriteProtect)
	_ = d.Close()
	_ = l.SetWriteProtect("VOL001", false)

	if err := l.SetWORM("VOL001", true); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, d, OpenOptions{Mode: ReadWriteMode})
	_, err = d.Write([]byte("overwrite"))
	wantErr(t, err, ErrIO)
	mtio(t, d, MTFSF, 1)
	if _, err := d.Write([]byte("append")); err != nil {
		t.Fatalf("WORM append: %v", err)
	}
	_ = d.Close()
}

func TestCompressionAcrossDeviceNames(t *testing.T) {
	l, d := newLib(t, 0)
	text := bytes.Repeat([]byte("compressible tape data "), 10000)
	for _, c := range "lmha" {
		comp, err := CompressionForSuffix(byte(c))
		if err != nil {
			t.Fatal(err)
		}
		mustOpen(t, d, OpenOptions{Mode: ReadWriteMode, Compression: comp, NoRewind: true})
		if _, err := d.Write(text); err != nil {
			t.Fatal(err)
		}
		_ = d.Close()
	}
	if _, err := CompressionForSuffix('z'); err == nil {
		t.Fatal("bad compression letter accepted")
	}
	st, _ := os.Stat(l.cartPath("VOL001"))
	if st.Size() > int64(len(text))+int64(len(text))/5 {
		t.Fatalf("cartridge %d bytes: records m, h, a were not compressed", st.Size())
	}
	// Read everything through an uncompressed device name.
	mustOpen(t, d, OpenOptions{Mode: ReadMode, Compression: simtap.None})
	mtio(t, d, MTREW, 0)
	buf := make([]byte, len(text))
	for i := 0; i < 4; i++ {
		n, err := d.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], text) {
			t.Fatalf("file %d: %d %v", i, n, err)
		}
		_, err = d.Read(buf)
		wantErr(t, err, ErrEOF)
		mtio(t, d, MTFSF, 1)
	}
	_ = d.Close()
}

func TestMaxActiveDrives(t *testing.T) {
	l, err := Create(t.TempDir(), Config{Drives: 3, Slots: 3, MaxActive: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, d := range l.Drives() {
		err := d.Open(OpenOptions{Mode: RawMode})
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			wantErr(t, err, ErrBusy)
			if Message(err) != MsgNoAvailableThread {
				t.Fatalf("message %q", Message(err))
			}
		}
	}
	_ = l.drives[0].Close()
	if err := l.drives[2].Open(OpenOptions{Mode: RawMode}); err != nil {
		t.Fatalf("after a close: %v", err)
	}
}

func TestDriveConcurrentUse(t *testing.T) {
	l, err := CreateDefault(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	errs := make(chan error, 4)
	for _, d := range l.Drives() {
		go func(d *Drive) {
			errs <- func() error {
				if err := d.Open(OpenOptions{Mode: ReadWriteMode}); err != nil {
					return err
				}
				for i := 0; i < 200; i++ {
					if _, err := d.Write(pattern(d.index, i, 4096)); err != nil {
						return err
					}
				}
				return d.Close()
			}()
		}(d)
	}
	for range l.Drives() {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range l.Drives() {
		if s := d.Stats(); s.RecordsWritten != 200 {
			t.Fatal(fmt.Sprint(s))
		}
	}
}

// TestPassFileMarksOption checks the st-like read option against the
// NDMP default.
func TestPassFileMarksOption(t *testing.T) {
	_, d := newLib(t, 0)
	mustOpen(t, d, OpenOptions{Mode: ReadWriteMode})
	_, _ = d.Write([]byte("one"))
	mtio(t, d, MTEOF, 1)
	_, _ = d.Write([]byte("two"))
	_ = d.Close()
	mustOpen(t, d, OpenOptions{Mode: ReadMode, PassFileMarks: true})
	buf := make([]byte, 10)
	var got []string
	for i := 0; i < 4; i++ {
		n, err := d.Read(buf)
		switch {
		case errors.Is(err, ErrEOF):
			got = append(got, "EOF")
		case errors.Is(err, ErrEOM):
			got = append(got, "EOM")
		case err != nil:
			t.Fatal(err)
		default:
			got = append(got, string(buf[:n]))
		}
	}
	// Close wrote no extra mark (read-only), so after "two" comes the
	// implicit mark the first close wrote, then blank tape.
	if fmt.Sprint(got) != "[one EOF two EOF]" {
		t.Fatalf("reads %v", got)
	}
	if f, _ := pos(t, d); f != 2 {
		t.Fatalf("file %d after passing two marks", f)
	}
	_ = d.Close()
}
