package volimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// BenchmarkBaselineSmallFiles measures an image of a fresh btrfs snapshot
// of 20,000 files of 4 KiB in 100 directories (caches dropped before each
// run: a cold snapshot, as an NDMP backup reads). make bench runs the
// 200,000-file comparison with btrfs send and the dump engine.
func BenchmarkBaselineSmallFiles(b *testing.B) {
	src := testutil.LoopFS(b, "btrfs", 1024)
	data := make([]byte, 4096)
	for d := range 100 {
		dir := filepath.Join(src, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 200 {
			data[0], data[1] = byte(d), byte(f)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.SetBytes(20000 * 4096)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		info, err := snapshot.Btrfs{}.Create(context.Background(), src, fmt.Sprintf("s%d", i))
		if err != nil {
			b.Fatal(err)
		}
		testutil.Run(b, "sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches")
		b.StartTimer()
		src := Source{Snapshot: smtape.Snapshot{Name: "s", Created: time.Now()}, Dir: info.Path}
		if _, err := WriteImage(context.Background(), io.Discard, &smtape.Header{Time: time.Now()}, nil, []Source{src}); err != nil {
			b.Fatal(err)
		}
	}
}
