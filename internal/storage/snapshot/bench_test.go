package snapshot_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// benchFiles is the size of the benchmark volume: 100 directories of 1,000
// files of 0 to 4,095 bytes.
const (
	benchDirs    = 100
	benchPerDir  = 1000
	benchFiles   = benchDirs * benchPerDir
	benchImageMB = 2048
)

// benchVolume makes a file system of type fstype holding a volume with
// benchFiles files under vol/tree, and returns the volume. On btrfs the
// volume is a subvolume.
func benchVolume(b *testing.B, fstype string, mkfsArgs ...string) string {
	b.Helper()
	testutil.RequireRoot(b)
	mnt := testutil.LoopFS(b, fstype, benchImageMB, mkfsArgs...)
	testutil.Run(b, "mount", "-o", "remount,noatime", mnt)
	vol := filepath.Join(mnt, "vol")
	if fstype == "btrfs" {
		testutil.Run(b, "btrfs", "subvolume", "create", vol)
	} else if err := os.Mkdir(vol, 0o755); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 4096)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for d := 0; d < benchDirs; d++ {
		dir := filepath.Join(vol, "tree", fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < benchPerDir; f++ {
			n := (d*benchPerDir + f) * 37 % len(data)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", f)), data[:n], 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(vol, snapshot.Dir), 0o755); err != nil {
		b.Fatal(err)
	}
	testutil.Run(b, "sync")
	return vol
}

func benchCreate(b *testing.B, p snapshot.Provider, vol string) {
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprint("bench-", i)
		info, err := p.Create(ctx, vol, name)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if p.Name() != "btrfs" && info.Files != benchFiles+benchDirs+1 {
			b.Fatalf("snapshot holds %d files, want %d", info.Files, benchFiles+benchDirs+1)
		}
		if err := p.Delete(ctx, vol, name); err != nil {
			b.Fatal(err)
		}
		testutil.Run(b, "sync")
		b.StartTimer()
	}
	b.ReportMetric(float64(benchFiles)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
}

func BenchmarkCreateBtrfs(b *testing.B) {
	benchCreate(b, snapshot.Btrfs{}, benchVolume(b, "btrfs"))
}

func BenchmarkCreateReflinkXFS(b *testing.B) {
	benchCreate(b, snapshot.Reflink{}, benchVolume(b, "xfs", "-m", "reflink=1"))
}

func BenchmarkCreateReflinkBtrfs(b *testing.B) {
	benchCreate(b, snapshot.Reflink{}, benchVolume(b, "btrfs"))
}

func BenchmarkCreateCopyExt4(b *testing.B) {
	benchCreate(b, snapshot.Copy{}, benchVolume(b, "ext4", "-N", "300000"))
}

// BenchmarkCpReflink does what the reflink provider does with
// cp -a --reflink=always, on the same trees, for comparison.
func BenchmarkCpReflink(b *testing.B) {
	for _, fs := range []struct {
		name string
		args []string
	}{{"xfs", []string{"-m", "reflink=1"}}, {"btrfs", nil}} {
		b.Run(fs.name, func(b *testing.B) {
			cp := testutil.RequireTool(b, "cp")
			vol := benchVolume(b, fs.name, fs.args...)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dst := filepath.Join(vol, snapshot.Dir, fmt.Sprint("cp-", i))
				if out, err := exec.Command(cp, "-a", "--reflink=always", filepath.Join(vol, "tree"), dst).CombinedOutput(); err != nil {
					b.Fatalf("cp: %v\n%s", err, out)
				}
				b.StopTimer()
				if err := os.RemoveAll(dst); err != nil {
					b.Fatal(err)
				}
				testutil.Run(b, "sync")
				b.StartTimer()
			}
			b.ReportMetric(float64(benchFiles)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}
