package filedump

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func smallTree(b *testing.B, n int) string {
	b.Helper()
	src := b.TempDir()
	data := bytes.Repeat([]byte("x"), 4096)
	for i := 0; i < n; i++ {
		d := filepath.Join(src, fmt.Sprintf("d%03d", i/500))
		if i%500 == 0 {
			must(b, os.Mkdir(d, 0o755))
		}
		must(b, os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", i)), data, 0o644))
	}
	return src
}

// BenchmarkBackup4KFiles measures a level 0 of 5,000 files of 4 KiB.
func BenchmarkBackup4KFiles(b *testing.B) {
	src := smallTree(b, 5000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Backup(context.Background(), BackupRequest{Dir: src, Output: io.Discard})
		must(b, err)
		b.SetBytes(res.Bytes)
	}
}

// BenchmarkBackupSmallFiles measures a level 0 of many 4 KiB files into
// an image file next to the tree, the case (b) of make bench. It dumps the
// directory DUMP_BENCH_TREE when that is set (for instance a tree on a
// loop-mounted ext4 made like scripts/bench.sh does), else 20,000 files
// made in a temporary directory.
func BenchmarkBackupSmallFiles(b *testing.B) {
	src := os.Getenv("DUMP_BENCH_TREE")
	if src == "" {
		src = smallTree(b, 20000)
	}
	img := filepath.Join(b.TempDir(), "img")
	must(b, os.WriteFile(img, nil, 0o644))
	// The time spent in each phase, summed over the runs: the walk (I-II),
	// the directories (III) and the files (IV-V).
	var phaseNs [PhaseACLs + 1]time.Duration
	var last time.Time
	var cur Phase
	progress := func(p Progress) {
		if p.Phase != cur {
			now := time.Now()
			phaseNs[cur] += now.Sub(last)
			cur, last = p.Phase, now
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// No run pays for the writeback of the image of the run before.
		b.StopTimer()
		must(b, os.Remove(img))
		unix.Sync()
		b.StartTimer()
		f, err := os.Create(img)
		must(b, err)
		cur, last = 0, time.Now()
		res, err := Backup(context.Background(), BackupRequest{Dir: src, Output: f, Progress: progress})
		must(b, err)
		phaseNs[cur] += time.Since(last)
		must(b, f.Close())
		b.SetBytes(res.Bytes)
	}
	b.ReportMetric(float64(phaseNs[PhaseTraverse]+phaseNs[PhaseIdentify])/float64(b.N)/1e6, "walk-ms/op")
	b.ReportMetric(float64(phaseNs[PhaseDirs])/float64(b.N)/1e6, "dirs-ms/op")
	b.ReportMetric(float64(phaseNs[PhaseFiles]+phaseNs[PhaseACLs])/float64(b.N)/1e6, "files-ms/op")
}

// BenchmarkRestore4KFiles measures a full restore of 5,000 files of 4 KiB.
func BenchmarkRestore4KFiles(b *testing.B) {
	src := smallTree(b, 5000)
	var img bytes.Buffer
	_, err := Backup(context.Background(), BackupRequest{Dir: src, Output: &img})
	must(b, err)
	b.SetBytes(int64(img.Len()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := b.TempDir()
		_, err := Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img.Bytes()), Dest: dst, Env: Env{"FORCE": "Y"}})
		must(b, err)
	}
}

// BenchmarkBackupBigFile measures a level 0 of one 256 MiB file.
func BenchmarkBackupBigFile(b *testing.B) {
	src := b.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	f, err := os.Create(filepath.Join(src, "big"))
	must(b, err)
	for i := 0; i < 16; i++ {
		_, err = f.Write(data)
		must(b, err)
	}
	must(b, f.Close())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Backup(context.Background(), BackupRequest{Dir: src, Output: io.Discard})
		must(b, err)
		b.SetBytes(res.Bytes)
	}
}
