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
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"golang.org/x/sys/unix"
)

// writeRandom writes n random bytes to p in 8 MiB steps.
func writeRandom(t *testing.T, p string, n int64) {
	t.Helper()
	f, err := os.Create(p)
	must(t, err)
	defer f.Close()
	buf := make([]byte, 8<<20)
	for done := int64(0); done < n; done += int64(len(buf)) {
		buf = random(t, int(min(int64(len(buf)), n-done)))
		_, err := f.Write(buf)
		must(t, err)
	}
	must(t, f.Sync())
}

// usedBytes is what the file system at p uses.
func usedBytes(t *testing.T, p string) int64 {
	t.Helper()
	testutil.Run(t, "sync")
	var st unix.Statfs_t
	must(t, unix.Statfs(p, &st))
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// TestDedupPreserved (issue 13 acceptance, S5): eight reflinked copies of
// a 512 MiB random file and three snapshots taken between changes: the
// baseline image is at most 1.1x the unique data, and after the restore
// the copies share their extents and the volume uses at most 1.2x the
// space of the source.
func TestDedupPreserved(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and restores 512 MiB")
	}
	const size = 512 << 20
	e := &fsEnv{src: testutil.LoopFS(t, "btrfs", 2048), dst: testutil.LoopFS(t, "btrfs", 2048), prov: btrfsProvider()}
	writeRandom(t, filepath.Join(e.src, "orig"), size)
	for i := 1; i < 8; i++ {
		reflink(t, filepath.Join(e.src, "orig"), filepath.Join(e.src, fmt.Sprintf("copy%d", i)))
	}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	e.snap(t, "s1", t0)
	f, err := os.OpenFile(filepath.Join(e.src, "copy3"), os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt(random(t, 1<<20), 100<<20) // 1 MiB of new data
	must(t, err)
	must(t, f.Close())
	e.snap(t, "s2", t0.Add(time.Hour))
	f, err = os.OpenFile(filepath.Join(e.src, "copy5"), os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.Write(random(t, 1<<20))
	must(t, err)
	must(t, f.Close())
	e.snap(t, "s3", t0.Add(2*time.Hour))

	img := filepath.Join(t.TempDir(), "image")
	out, err := os.Create(img)
	must(t, err)
	_, err = WriteImage(context.Background(), out, &smtape.Header{Time: t0.Add(2 * time.Hour)}, nil, e.snaps)
	must(t, err)
	must(t, out.Close())
	st, _ := os.Stat(img)
	unique := int64(size + 2<<20)
	if st.Size() > unique*11/10 {
		t.Errorf("image of %d MiB for %d MiB of unique data", st.Size()>>20, unique>>20)
	}
	in, err := os.Open(img)
	must(t, err)
	defer in.Close()
	_, _, _, err = RestoreImage(context.Background(), io.Reader(in), e.dst, RestoreOptions{MakeSnapshot: e.makeSnapshot(t)})
	must(t, err)
	for i := 1; i < 8; i++ {
		if i != 3 && i != 5 {
			assertShared(t, filepath.Join(e.dst, "orig"), filepath.Join(e.dst, fmt.Sprintf("copy%d", i)))
		}
	}
	if src, dst := usedBytes(t, e.src), usedBytes(t, e.dst); dst > src*12/10 {
		t.Errorf("restored volume uses %d MiB, the source %d MiB", dst>>20, src>>20)
	}
	for _, r := range []struct {
		name     string
		off, len int64
	}{{"orig", 0, 1 << 20}, {"copy3", 100 << 20, 1 << 20}, {"copy5", size, 1 << 20}, {"copy7", size - 4096, 4096}} {
		if a, b := readRange(t, filepath.Join(e.dst, r.name), r.off, r.len), readRange(t, filepath.Join(e.snaps[2].Dir, r.name), r.off, r.len); string(a) != string(b) {
			t.Errorf("%s at %d: restored data differs", r.name, r.off)
		}
	}
}

func readRange(t *testing.T, p string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(p)
	must(t, err)
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, off)
	must(t, err)
	return b
}
