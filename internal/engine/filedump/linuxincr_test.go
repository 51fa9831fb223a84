package filedump

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// dumpDate returns the dump date of a Linux dump image as dump -T reads it
// (ctime(3) format, local time).
func dumpDate(t *testing.T, img string) string {
	t.Helper()
	f, err := os.Open(img)
	must(t, err)
	defer f.Close()
	h, err := dump.NewReader(f).Next()
	must(t, err)
	if h.Kind != dump.KindVolume {
		t.Fatalf("%s does not start with a volume header", img)
	}
	return h.Dump.Date.Local().Format("Mon Jan _2 15:04:05 2006")
}

func inodeOf(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	must(t, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestLinuxIncrementalInodeReused (D5, D8, issue 12 item 4): ext4 gives the
// inode of a removed directory to a new file; Linux dump's level 1 then
// holds that inode as a file. Our restore of the chain used to take it for
// the old directory (which the image did not carry) and kept the directory
// with its old entries under the file's name, so the file was never
// written; now it equals Linux restore's.
func TestLinuxIncrementalInodeReused(t *testing.T) {
	testutil.RequireTool(t, "dump")
	testutil.RequireTool(t, "restore")
	src := testutil.LoopFS(t, "ext4", 64)
	dev := strings.TrimSpace(testutil.Run(t, "findmnt", "-n", "-o", "SOURCE", src))
	writeFile(t, filepath.Join(src, "a", "d", "inside"), []byte("in the directory"), 0o644)
	writeFile(t, filepath.Join(src, "keep"), []byte("kept"), 0o644)
	dirIno := inodeOf(t, filepath.Join(src, "a", "d"))
	dir := t.TempDir()
	l0, l1 := filepath.Join(dir, "l0"), filepath.Join(dir, "l1")
	testutil.Run(t, "sync")
	testutil.Run(t, "dump", "-0", "-q", "-f", l0, dev)
	must(t, os.RemoveAll(filepath.Join(src, "a", "d")))
	writeFile(t, filepath.Join(src, "a", "f"), []byte("a file now"), 0o644)
	if got := inodeOf(t, filepath.Join(src, "a", "f")); got != dirIno {
		t.Fatalf("ext4 gave the new file inode %d, not the removed directory's %d: the test needs the reuse", got, dirIno)
	}
	testutil.Run(t, "sync")
	testutil.Run(t, "dump", "-1", "-q", "-T", dumpDate(t, l0), "-f", l1, dev)
	linux := testutil.LoopFS(t, "ext4", 64)
	ours := testutil.LoopFS(t, "ext4", 64)
	for _, img := range []string{l0, l1} {
		linuxRestore(t, linux, "-r", "-f", img)
		restoreImage(t, img, ours, nil)
	}
	want := snapshotTree(t, linux, "restoresymtable", "lost+found")
	if b, err := os.ReadFile(filepath.Join(linux, "a", "f")); err != nil || string(b) != "a file now" {
		t.Fatalf("Linux restore: a/f %q %v", b, err)
	}
	got := snapshotTree(t, ours, SymtabName, "lost+found")
	// Linux dump keeps sub-second times outside the BSD {sec, usec}
	// fields: compare whole seconds.
	for _, m := range []map[string]fileInfo{want, got} {
		for p, fi := range m {
			fi.mtime -= fi.mtime % 1e6
			m[p] = fi
		}
	}
	compareTrees(t, want, got)
}
