package simtap

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const (
	benchRec   = 256 << 10
	benchCount = 1024 // 256 MiB a pass, so that dd's start-up hardly counts
)

// BenchmarkWrite256K writes 256 MiB as 256 KiB records to a cartridge and,
// in the same iteration, the same amount with `dd bs=256k` to a plain file
// in the same directory. It reports both rates and their ratio
// (simtap/dd; the goal is >= 0.9).
func BenchmarkWrite256K(b *testing.B) {
	dd := requireDD(b)
	dir := b.TempDir()
	data := rec(3, 0, benchRec)
	var tSim, tDD time.Duration
	b.SetBytes(benchRec * benchCount)
	for i := 0; i < b.N; i++ {
		p := filepath.Join(dir, "w.tap")
		start := time.Now()
		c, err := Create(p)
		if err != nil {
			b.Fatal(err)
		}
		for r := 0; r < benchCount; r++ {
			if err := c.WriteRecord(data); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
		tSim += time.Since(start)

		start = time.Now()
		out, err := exec.Command(dd, "if=/dev/zero", "of="+filepath.Join(dir, "w.dd"), "bs=256k",
			fmt.Sprintf("count=%d", benchCount), "status=none").CombinedOutput()
		if err != nil {
			b.Fatalf("dd: %v %s", err, out)
		}
		tDD += time.Since(start)
	}
	report(b, tSim, tDD)
}

// BenchmarkWriteSync256K is BenchmarkWrite256K with the cartridge synced
// before it is closed (as a virtual drive does when the tape is closed)
// against `dd bs=256k conv=fsync`: the durable write rates.
func BenchmarkWriteSync256K(b *testing.B) {
	dd := requireDD(b)
	dir := b.TempDir()
	data := rec(3, 0, benchRec)
	var tSim, tDD time.Duration
	b.SetBytes(benchRec * benchCount)
	for i := 0; i < b.N; i++ {
		p := filepath.Join(dir, "w.tap")
		start := time.Now()
		c, err := Create(p)
		if err != nil {
			b.Fatal(err)
		}
		for r := 0; r < benchCount; r++ {
			if err := c.WriteRecord(data); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Sync(); err != nil {
			b.Fatal(err)
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
		tSim += time.Since(start)

		start = time.Now()
		out, err := exec.Command(dd, "if=/dev/zero", "of="+filepath.Join(dir, "w.dd"), "bs=256k",
			fmt.Sprintf("count=%d", benchCount), "conv=fsync", "status=none").CombinedOutput()
		if err != nil {
			b.Fatalf("dd: %v %s", err, out)
		}
		tDD += time.Since(start)
	}
	report(b, tSim, tDD)
}

// BenchmarkRead256K reads 256 MiB of 256 KiB records from a cartridge and,
// in the same iteration, the same file size with `dd bs=256k` from a plain
// file in the same directory, and reports both rates and their ratio.
func BenchmarkRead256K(b *testing.B) {
	dd := requireDD(b)
	dir := b.TempDir()
	p := filepath.Join(dir, "r.tap")
	c, err := Create(p)
	if err != nil {
		b.Fatal(err)
	}
	data := rec(3, 1, benchRec)
	for r := 0; r < benchCount; r++ {
		if err := c.WriteRecord(data); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		b.Fatal(err)
	}
	plain := filepath.Join(dir, "r.dd")
	if err := os.WriteFile(plain, make([]byte, benchRec*benchCount), 0o644); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, benchRec)
	var tSim, tDD time.Duration
	b.SetBytes(benchRec * benchCount)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		c, err := Open(p, &Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := c.ReadRecord(buf)
			if errors.Is(err, ErrEndOfData) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		c.Close()
		tSim += time.Since(start)
		if n != benchCount {
			b.Fatalf("read %d records", n)
		}

		start = time.Now()
		out, err := exec.Command(dd, "if="+plain, "of=/dev/null", "bs=256k", "status=none").CombinedOutput()
		if err != nil {
			b.Fatalf("dd: %v %s", err, out)
		}
		tDD += time.Since(start)
	}
	report(b, tSim, tDD)
}

func requireDD(b *testing.B) string {
	dd, err := exec.LookPath("dd")
	if err != nil {
		b.Skip("dd not installed")
	}
	return dd
}

func report(b *testing.B, tSim, tDD time.Duration) {
	mb := float64(benchRec*benchCount*b.N) / (1 << 20)
	b.ReportMetric(mb/tSim.Seconds(), "simtap-MiB/s")
	b.ReportMetric(mb/tDD.Seconds(), "dd-MiB/s")
	b.ReportMetric(tDD.Seconds()/tSim.Seconds(), "ratio")
}

// bigCartridge makes an image of 100,000 small records in 10,000 files.
func bigCartridge(b *testing.B) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "big.tap")
	c, err := Create(p)
	if err != nil {
		b.Fatal(err)
	}
	rec := make([]byte, 100)
	for f := 0; f < 10000; f++ {
		for r := 0; r < 10; r++ {
			if err := c.WriteRecord(rec); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.WriteMark(); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkPositioning locates a file, spaces forward and back over
// records and back over files on a cartridge of 110,000 objects.
func BenchmarkPositioning(b *testing.B) {
	c, err := Open(bigCartridge(b), &Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.LocateFile(int64(i*7919) % 10000); err != nil {
			b.Fatal(err)
		}
		if _, err := c.SpaceRecords(5); err != nil {
			b.Fatal(err)
		}
		if _, err := c.SpaceRecords(-3); err != nil {
			b.Fatal(err)
		}
		if _, err := c.SpaceFiles(-2); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen opens a cartridge of 110,000 objects with its index and,
// as a sub-benchmark, without it (the index is rebuilt from the image).
func BenchmarkOpen(b *testing.B) {
	p := bigCartridge(b)
	b.Run("indexed", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			c, err := Open(p, &Options{ReadOnly: true})
			if err != nil || c.Len() != 110000 {
				b.Fatal(err)
			}
			c.Close()
		}
	})
	b.Run("rebuild", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_ = os.Remove(IndexPath(p))
			c, err := Open(p, nil)
			if err != nil || c.Len() != 110000 {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}
