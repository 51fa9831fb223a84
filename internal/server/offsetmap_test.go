package server

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/options"
)

// D11, issue 12 item 7: with the node option ndmpd.offset_map.enable off,
// an NDMP restore (ndmjob as DMA) refuses an enhanced DAR of a directory
// with "No files were created" and restores nothing, while a DAR of a file
// with ENHANCED_DAR_ENABLED=Y restores it.
func TestNdmjobOffsetMapOff(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	if _, err := options.Set(f.ctx, f.store, options.OffsetMap, "off"); err != nil {
		t.Fatal(err)
	}
	src, dst := filepath.Join(f.dir, "vols", "vol1"), filepath.Join(f.dir, "vols", "vol2")
	populate(t, src)
	a := f.agent("m")
	index := filepath.Join(t.TempDir(), "index")
	out, err := runNdmjob(t, "-v", "-c", "-D", a, "-B", "dump", "-C", "/vs1/vol1", "-f", "nrst0l", "-I", index)
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("ndmjob -c: %v\n%s", err, out)
	}
	args := []string{"-v", "-x", "-D", a, "-B", "dump", "-C", "/vs1/vol2", "-f", "nrst0l", "-J", index,
		"-E", "DIRECT=Y", "-E", "ENHANCED_DAR_ENABLED=Y"}
	out, _ = runNdmjob(t, append(args, "d1")...)
	if !strings.Contains(out, "No files were created") {
		t.Fatalf("enhanced DAR of a directory with the offset map off: no %q\n%s\nserver:\n%s", "No files were created", out, f.logs.String())
	}
	if _, err := os.Stat(filepath.Join(dst, "d1", "e1")); err == nil {
		t.Fatal("a refused directory DAR restored d1/e1")
	}
	const file = "d2/e1/f10.txt"
	out, err = runNdmjob(t, append(args, file)...)
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("DAR of a file with the offset map off: %v\n%s\nserver:\n%s", err, out, f.logs.String())
	}
	want, _ := os.ReadFile(filepath.Join(src, file))
	got, err := os.ReadFile(filepath.Join(dst, file))
	if err != nil || len(want) == 0 || !bytes.Equal(got, want) {
		t.Fatalf("%s after the DAR: %v (%d bytes, want %d)", file, err, len(got), len(want))
	}
}
