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
