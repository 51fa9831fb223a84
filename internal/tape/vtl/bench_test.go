package vtl

import (
	"testing"
)

// BenchmarkDriveWrite256K writes 256 KiB records through a drive (NDMP
// path: checks, fault lookup, simtap write) with compression off.
func BenchmarkDriveWrite256K(b *testing.B) {
	benchDrive(b, 0)
}

// BenchmarkDriveWrite256KCompressed is the same with compression "m"
// (zstd fastest) on data that compresses about 4:1.
func BenchmarkDriveWrite256KCompressed(b *testing.B) {
	benchDrive(b, 1)
}

func benchDrive(b *testing.B, comp uint8) {
	l, err := Create(b.TempDir(), Config{Drives: 1, Slots: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	_ = l.AddCartridge("BENCH1", 0)
	_ = l.Move(SlotBase, DriveBase)
	d := l.drives[0]
	o, _ := CompressionForSuffix("lm"[comp])
	if err := d.Open(OpenOptions{Mode: ReadWriteMode, Compression: o}); err != nil {
		b.Fatal(err)
	}
	rec := make([]byte, 256<<10)
	for i := range rec {
		if i%4 == 0 {
			rec[i] = byte(i * 7919 >> 3)
		}
	}
	b.SetBytes(int64(len(rec)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%1024 == 1023 {
			b.StopTimer()
			_, _ = d.MTIO(MTREW, 0)
			b.StartTimer()
		}
		if _, err := d.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = d.Close()
}
