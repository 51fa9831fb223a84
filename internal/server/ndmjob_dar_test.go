package server

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bigFile writes n bytes that do not compress into path.
func bigFile(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	x := uint32(88172645)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// D11, N16: ndmjob as DMA makes a dump backup with file history written
// to an index file (-I), then restores two single files by direct access
// (-x -E DIRECT=Y, the index given with -J): ndmjob takes their fh_info
// from the index and the server reads only their records. The restored
// files equal the source, nothing else is restored, and the drive read a
// small part of the image.
func TestNdmjobDirectAccessRestore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	src, dst := filepath.Join(f.dir, "vols", "vol1"), filepath.Join(f.dir, "vols", "vol2")
	populate(t, src)
	// Large files before and after the wanted ones in dump order, so a
	// sequential restore would read several MiB.
	bigFile(t, filepath.Join(src, "a_big/before.bin"), 3<<20)
	bigFile(t, filepath.Join(src, "z_big/after.bin"), 3<<20)
	a := f.agent("m")
	index := filepath.Join(t.TempDir(), "index")
	out, err := runNdmjob(t, "-v", "-c", "-D", a, "-B", "dump", "-C", "/vs1/vol1", "-f", "nrst0l", "-I", index)
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("ndmjob -c: %v\n%s", err, out)
	}
	idx, err := os.ReadFile(index)
	if err != nil || !strings.Contains(string(idx), "DHn ") {
		t.Fatalf("index file without node entries (fh_info): %v\n%.2000s", err, idx)
	}
	d0, err := f.lib.Drive(0)
	if err != nil {
		t.Fatal(err)
	}
	image := d0.Stats().BytesWritten
	if image < 6<<20 {
		t.Fatalf("image of %d bytes, want more than 6 MiB", image)
	}
	d0.ResetStats()
	wanted := []string{"d1/e1/f13.txt", "d2/e1/f10.txt"}
	args := []string{"-v", "-x", "-D", a, "-B", "dump", "-C", "/vs1/vol2", "-f", "nrst0l", "-J", index, "-E", "DIRECT=Y"}
	out, err = runNdmjob(t, append(args, wanted...)...)
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("ndmjob -x DIRECT=Y: %v\n%s\nserver:\n%s", err, out, f.logs.String())
	}
	for _, p := range wanted {
		want, _ := os.ReadFile(filepath.Join(src, p))
		got, err := os.ReadFile(filepath.Join(dst, p))
		if err != nil || !bytes.Equal(got, want) || len(want) == 0 {
			t.Fatalf("%s after the DAR restore: %v (%d bytes, want %d)", p, err, len(got), len(want))
		}
	}
	for _, p := range []string{"a_big", "z_big", "d0", "d3", "d1/e0"} {
		if _, err := os.Stat(filepath.Join(dst, p)); err == nil {
			t.Fatalf("the DAR restore brought back %s", p)
		}
	}
	read := d0.Stats().BytesRead
	if read == 0 || read*8 > image {
		t.Fatalf("the drive read %d bytes of a %d-byte image for two small files", read, image)
	}
	t.Logf("image %d bytes, DAR read %d bytes (%.1f%%)", image, read, 100*float64(read)/float64(image))
}
