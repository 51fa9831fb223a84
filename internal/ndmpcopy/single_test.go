package ndmpcopy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// C1 end to end (issue 17 item 5): ndmpcopy of a single file, and into a
// destination directory that does not exist yet, which the restore
// creates, as ONTAP does. A file lands in the destination directory with
// its contents and attributes; nothing else of its directory comes along.
func TestE2ESingleFileAndNewDirectoryC1(t *testing.T) {
	testutil.RequireRoot(t)
	src := newNode(t, "127.0.0.1")
	dst := newNode(t, "127.0.0.2")
	srcDir := src.volume("vs1", "vol1", "btrfs")
	dstDir := dst.volume("vs2", "vol2", "ext4")
	populate(t, srcDir)
	for _, c := range []struct{ from, to, file string }{
		{"/vs1/vol1/a.txt", "/vs2/vol2/one", "a.txt"},                       // owner, xattr
		{"/vs1/vol1/d1/d2/d3/deep.bin", "/vs2/vol2/new/deeper", "deep.bin"}, // missing parents
		{"/vs1/vol1/sparse", "/vs2/vol2", "sparse"},                         // into the volume root
	} {
		code, out, errOut := runMain(t, copyArgs(src, dst, c.from, c.to)...)
		if code != ExitOK {
			t.Fatalf("ndmpcopy %s %s: exit %d\nstdout %s\nstderr %s", c.from, c.to, code, out, errOut)
		}
		dir := filepath.Join(dstDir, filepath.FromSlash(c.to[len("/vs2/vol2"):]))
		want := snapshotTree(t, filepath.Join(srcDir, filepath.FromSlash(c.from[len("/vs1/vol1"):])))
		got := snapshotTree(t, filepath.Join(dir, c.file))
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("%s: copied %v, want %v", c.from, got, want)
		}
		for p, e := range want {
			if got[p] != e {
				t.Errorf("%s: %q is %+v, want %+v", c.from, p, got[p], e)
			}
		}
	}
	for _, dir := range []string{"one", "new/deeper"} {
		ents, err := os.ReadDir(filepath.Join(dstDir, dir))
		var names []string
		for _, e := range ents {
			// These nodes keep no data directory, so the restore's
			// state file stays in the destination.
			if e.Name() != "restore_symboltable" {
				names = append(names, e.Name())
			}
		}
		if err != nil || len(names) != 1 {
			t.Errorf("%s holds %v (%v), want only the copied file", dir, names, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dstDir, "b.txt")); err == nil {
		t.Error("a file next to the copied one reached the destination")
	}
}

// C1: a destination path that would leave the volume through a symbolic
// link is refused, even though the restore now creates missing directories.
func TestE2ENewDirectoryThroughLinkRefusedC1(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "127.0.0.1")
	srcDir := n.volume("vs1", "vol1", "btrfs")
	dstDir := n.volume("vs1", "vol2", "ext4")
	populate(t, srcDir)
	outside := t.TempDir()
	must(t, os.Symlink(outside, filepath.Join(dstDir, "escape")))
	code, _, _ := runMain(t, copyArgs(n, n, "/vs1/vol1/a.txt", "/vs1/vol2/escape/sub")...)
	if code == ExitOK {
		t.Fatal("copy through a symbolic link out of the volume succeeded")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("the copy wrote outside the volume: %v", ents)
	}
}
