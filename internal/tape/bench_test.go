package tape

import (
	"testing"
)

func BenchmarkParseDeviceName(b *testing.B) {
	for b.Loop() {
		if _, err := ParseDeviceName("nrst12a"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandleWrite measures writing 256 KiB records through the
// Registry's handle (reservation check, statistics) to a virtual drive.
func BenchmarkHandleWrite(b *testing.B) {
	f := newBenchFixture(b)
	h, err := f.reg.OpenDrive(f.ctx, "bench", "nrst0l", ReadWriteMode)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	rec := make([]byte, 256<<10)
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, err := h.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenClose measures OpenDrive + Close (alias lookup in the
// catalog, claim, vtl open and close).
func BenchmarkOpenClose(b *testing.B) {
	f := newBenchFixture(b)
	for b.Loop() {
		h, err := f.reg.OpenDrive(f.ctx, "bench", "nrst0l", ReadMode)
		if err != nil {
			b.Fatal(err)
		}
		if err := h.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
