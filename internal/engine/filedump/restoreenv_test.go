package filedump

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// TestRestoreEnv (D8-D10): LIST, NOWRITE, EXTRACT with renames, overwrite
// rules, the space check and FORCE.
func TestRestoreEnv(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "docs", "a.txt"), []byte("new a"), 0o644)
	writeFile(t, filepath.Join(src, "docs", "sub", "b.txt"), []byte("new b"), 0o644)
	writeFile(t, filepath.Join(src, "top.txt"), []byte("top"), 0o644)
	img := filepath.Join(t.TempDir(), "img")
	backupDir(t, src, img, nil, nil)

	// LIST=Y lists names and inodes and writes nothing.
	dst := t.TempDir()
	var listed []string
	f, _ := os.Open(img)
	res, err := Restore(context.Background(), RestoreRequest{Input: f, Dest: dst, Env: Env{"LIST": "Y"},
		OnList: func(e ListEntry) { listed = append(listed, e.Path) }})
	f.Close()
	must(t, err)
	if strings.Join(listed, ",") != ",docs,docs/a.txt,docs/sub,docs/sub/b.txt,top.txt" || len(res.Listed) != 6 || res.Listed[2].Ino < 3 {
		t.Errorf("LIST: %v %+v", listed, res.Listed)
	}
	if ents, _ := os.ReadDir(dst); len(ents) != 0 {
		t.Errorf("LIST wrote %d entries", len(ents))
	}
	// NOWRITE=Y reads everything, writes nothing.
	f, _ = os.Open(img)
	res, err = Restore(context.Background(), RestoreRequest{Input: f, Dest: dst, Env: Env{"NOWRITE": "Y"}})
	f.Close()
	must(t, err)
	if ents, _ := os.ReadDir(dst); len(ents) != 0 || res.Files == 0 {
		t.Errorf("NOWRITE wrote %d entries, read %d files", len(ents), res.Files)
	}

	// EXTRACT=E with renames: docs -> restored/docs2, top.txt -> t2.txt.
	// An existing file is overwritten; an existing directory is kept with
	// what it holds (D10).
	writeFile(t, filepath.Join(dst, "restored", "docs2", "a.txt"), []byte("old a"), 0o600)
	writeFile(t, filepath.Join(dst, "restored", "docs2", "mine.txt"), []byte("mine"), 0o600)
	restoreImage(t, img, dst, Env{"EXTRACT": "E", "FORCE": "Y"},
		RestoreName{Original: "/docs", Dest: "restored/docs2", FHInfo: -1},
		RestoreName{Original: "top.txt", Dest: "t2.txt", FHInfo: -1})
	for p, want := range map[string]string{"restored/docs2/a.txt": "new a", "restored/docs2/sub/b.txt": "new b", "restored/docs2/mine.txt": "mine", "t2.txt": "top"} {
		if b, err := os.ReadFile(filepath.Join(dst, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "top.txt")); err == nil {
		t.Error("top.txt restored under its old name")
	}
	// A name that is not on the image, and one that leaves the destination.
	var errs []string
	f, _ = os.Open(img)
	_, err = Restore(context.Background(), RestoreRequest{Input: f, Dest: dst, Env: Env{"FORCE": "Y"},
		Names:  []RestoreName{{Original: "nope", FHInfo: -1}, {Original: "top.txt", Dest: "../out.txt", FHInfo: -1}},
		OnName: func(n NameResult) { errs = append(errs, n.Path+" "+errString(n.Err)) }})
	f.Close()
	must(t, err)
	if all := strings.Join(errs, "\n"); !strings.Contains(all, "not on the image") || !strings.Contains(all, "leaves the destination") {
		t.Errorf("bad names: %s", all)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dst), "out.txt")); err == nil {
		t.Error("../out.txt written")
	}

	// Without FORCE about 100 MB more than the data must be free.
	testutil.RequireRoot(t)
	small := testutil.LoopFS(t, "ext4", 32)
	big := t.TempDir()
	writeFile(t, filepath.Join(big, "big.bin"), make([]byte, 2<<20), 0o644)
	bigImg := filepath.Join(t.TempDir(), "big")
	backupDir(t, big, bigImg, nil, nil)
	var failed []string
	f, _ = os.Open(bigImg)
	_, err = Restore(context.Background(), RestoreRequest{Input: f, Dest: small,
		OnName: func(n NameResult) {
			if n.Err != nil {
				failed = append(failed, n.Err.Error())
			}
		}})
	f.Close()
	if err != nil || len(failed) != 1 || !strings.Contains(failed[0], "data + 100 MB") {
		t.Errorf("space check: %v %v", err, failed)
	}
	restoreImage(t, bigImg, small, Env{"FORCE": "Y"})
	if st, err := os.Stat(filepath.Join(small, "big.bin")); err != nil || st.Size() != 2<<20 {
		t.Errorf("FORCE=Y: %v %v", st, err)
	}
	// A read-only destination (D14).
	ro := testutil.LoopFS(t, "ext4", 16)
	if out, err := exec.Command("mount", "-o", "remount,ro", ro).CombinedOutput(); err != nil {
		t.Fatalf("remount ro: %v %s", err, out)
	}
	f, _ = os.Open(img)
	_, err = Restore(context.Background(), RestoreRequest{Input: f, Dest: ro})
	f.Close()
	var e *Error
	if !errors.As(err, &e) || e.Msg != "Destination volume is read-only" {
		t.Errorf("read-only destination: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestLinuxDumpOfLoopExt4: our restore of `dump -0` of a loop-mounted ext4
// made here equals Linux restore's.
func TestLinuxDumpOfLoopExt4(t *testing.T) {
	testutil.RequireTool(t, "dump")
	testutil.RequireTool(t, "restore")
	src := testutil.LoopFS(t, "ext4", 64)
	makeTree(t, src)
	dev := strings.TrimSpace(testutil.Run(t, "findmnt", "-n", "-o", "SOURCE", src))
	img := filepath.Join(t.TempDir(), "linux.dump")
	testutil.Run(t, "sync")
	testutil.Run(t, "dump", "-0", "-q", "-f", img, dev)
	linux := testutil.LoopFS(t, "ext4", 64)
	linuxRestore(t, linux, "-r", "-f", img)
	ours := testutil.LoopFS(t, "ext4", 256)
	restoreImage(t, img, ours, nil)
	want := snapshotTree(t, linux, "restoresymtable", "lost+found")
	if len(want) < 80 {
		t.Fatalf("Linux restore gave %d paths", len(want))
	}
	// Linux dump keeps sub-second times outside the BSD {sec, usec} fields,
	// where format/dump does not read them yet: compare whole seconds.
	got := snapshotTree(t, ours, SymtabName, "lost+found")
	for _, m := range []map[string]fileInfo{want, got} {
		for p, fi := range m {
			fi.mtime -= fi.mtime % 1e6
			m[p] = fi
		}
	}
	compareTrees(t, want, got)
}

// TestRestoreRecordSize (D6): the restore's record size against the image's.
func TestRestoreRecordSize(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("x"), 0o644)
	var img bytes.Buffer
	_, err := Backup(context.Background(), BackupRequest{Dir: src, Output: &img, RecordSize: 64 << 10})
	must(t, err)
	for _, c := range []struct {
		size  int
		local bool
		want  string
	}{
		{32 << 10, false, "Tape record size is too small. Try a larger size."},
		{128 << 10, true, "Tape record size should be 65536 and not 131072"},
		{512 << 10, false, "Tape record size must be in the range between 4KB and 256KB"},
		{128 << 10, false, ""},
		{64 << 10, true, ""},
	} {
		_, err := Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img.Bytes()), Dest: t.TempDir(),
			Env: Env{"FORCE": "Y"}, RecordSize: c.size, LocalTape: c.local})
		if c.want == "" && err != nil || c.want != "" && (err == nil || Message(err) != c.want) {
			t.Errorf("record size %d local=%v: %v, want %q", c.size, c.local, err, c.want)
		}
	}
}
