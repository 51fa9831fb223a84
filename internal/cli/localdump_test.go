package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

func runLocal(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errb})
	return out.String(), errb.String(), code
}

// TestLocalDumpRestore: tapestry dump and restore round trip a directory,
// incrementals through a dumpdates catalog, -t lists, -x extracts, and Linux
// restore reads the image (item 5; D5).
func TestLocalDumpRestore(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sub", "deeper"), 0o755))
	must(os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha"), 0o644))
	must(os.WriteFile(filepath.Join(src, "sub", "deeper", "b.txt"), []byte("beta"), 0o600))
	must(os.Symlink("a.txt", filepath.Join(src, "link")))
	work := t.TempDir()
	img0 := filepath.Join(work, "l0.dump")
	dates := filepath.Join(work, "dumpdates")

	if _, e, code := runLocal(t, "dump", "-1", "-f", img0, src); code == 0 || !strings.Contains(e, "make a level 0 backup first") {
		t.Fatalf("level 1 without dates: %d %s", code, e)
	}
	if _, e, code := runLocal(t, "dump", "-0", src); code == 0 || !strings.Contains(e, "-f IMAGE") {
		t.Fatalf("no -f: %d %s", code, e)
	}
	if _, e, code := runLocal(t, "dump", "-0", "-f", img0, "-b", "2", src); code == 0 || !strings.Contains(e, "Tape record size must be in the range between 4KB and 256KB") {
		t.Fatalf("-b 2: %d %s", code, e)
	}
	out, e, code := runLocal(t, "dump", "-0u", "-f", img0, "-D", dates, src)
	if code != 0 || !strings.Contains(out, "Date of this level 0 dump") {
		t.Fatalf("dump -0u: %d %s %s", code, out, e)
	}
	out, e, code = runLocal(t, "restore", "-t", "-f", img0)
	if code != 0 || !strings.Contains(out, "./sub/deeper/b.txt") || !strings.Contains(out, "./link") {
		t.Fatalf("restore -t: %d %s %s", code, out, e)
	}
	time.Sleep(300 * time.Millisecond)
	must(os.WriteFile(filepath.Join(src, "new.txt"), []byte("gamma"), 0o644))
	must(os.Rename(filepath.Join(src, "sub", "deeper"), filepath.Join(src, "moved")))
	time.Sleep(300 * time.Millisecond)
	img1 := filepath.Join(work, "l1.dump")
	if out, e, code = runLocal(t, "dump", "-1", "-u", "-D", dates, "-f"+img1, src); code != 0 || !strings.Contains(out, "Date of last level dump") {
		t.Fatalf("dump -1: %d %s %s", code, out, e)
	}

	dst := t.TempDir()
	t.Chdir(dst)
	for _, img := range []string{img0, img1} {
		if out, e, code := runLocal(t, "restore", "-r", "-f", img); code != 0 {
			t.Fatalf("restore -r %s: %d %s %s", img, code, out, e)
		}
	}
	for p, want := range map[string]string{"a.txt": "alpha", "new.txt": "gamma", "moved/b.txt": "beta"} {
		if b, err := os.ReadFile(filepath.Join(dst, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "sub", "deeper")); err == nil {
		t.Error("sub/deeper still exists after the incremental")
	}

	x := t.TempDir()
	t.Chdir(x)
	if out, e, code := runLocal(t, "restore", "-x", "-f", img0, "sub/deeper/b.txt"); code != 0 {
		t.Fatalf("restore -x: %d %s %s", code, out, e)
	}
	if b, err := os.ReadFile(filepath.Join(x, "sub/deeper/b.txt")); err != nil || string(b) != "beta" {
		t.Errorf("extracted: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(x, "a.txt")); err == nil {
		t.Error("restore -x extracted more than asked")
	}
	if _, _, code := runLocal(t, "restore", "-t", "-x", "-f", img0); code == 0 {
		t.Error("-t -x accepted")
	}

	// Several image files: -B cuts the image, restore reads them in turn.
	parts := filepath.Join(work, "p1") + "," + filepath.Join(work, "p2") + "," + filepath.Join(work, "p3")
	big := filepath.Join(src, "big.bin")
	must(os.WriteFile(big, bytes.Repeat([]byte("0123456789abcdef"), 8192), 0o644))
	if out, e, code := runLocal(t, "dump", "-0", "-B", "100", "-f", parts, src); code != 0 {
		t.Fatalf("multi-image dump: %d %s %s", code, out, e)
	}
	y := t.TempDir()
	t.Chdir(y)
	if out, e, code := runLocal(t, "restore", "-r", "-f", parts); code != 0 {
		t.Fatalf("multi-image restore: %d %s %s", code, out, e)
	}
	if b, err := os.ReadFile(filepath.Join(y, "big.bin")); err != nil || len(b) != 8192*16 {
		t.Errorf("big.bin after multi-image restore: %d bytes, %v", len(b), err)
	}

	// Linux restore reads the image of tapestry dump.
	testutil.RequireTool(t, "restore")
	z := t.TempDir()
	cmd := testutil.Run(t, "sh", "-c", "cd "+z+" && printf '1\\nn\\n' | restore -x -f "+img0+" a.txt && cat a.txt")
	if !strings.Contains(cmd, "alpha") {
		t.Errorf("Linux restore -x: %s", cmd)
	}
}

func FuzzParseLocalArgs(f *testing.F) {
	f.Add("-0u\x00-f\x00a,b\x00-D\x00dates\x00dir")
	f.Add("-t\x00-fimg\x00x")
	f.Add("-99")
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		for _, modes := range []string{"", "txr"} {
			la, err := parseLocalArgs(args, modes)
			if err != nil {
				continue
			}
			if la.level < 0 || la.level > 31 || len(la.images) == 0 {
				t.Fatalf("%q: %+v", args, la)
			}
		}
	})
}

// TestLocalDumpProgressOnTerminal: on a terminal the local commands draw a
// progress line; elsewhere they do not.
func TestLocalDumpProgressOnTerminal(t *testing.T) {
	src := t.TempDir()
	for i := 0; i < 50; i++ {
		if err := os.WriteFile(filepath.Join(src, "f"+strconv.Itoa(i)), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		testutil.Require(t, false, "needs a pseudo-terminal: "+err.Error())
	}
	defer ptmx.Close()
	defer tty.Close()
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(ptmx)
		got <- string(b)
	}()
	var out bytes.Buffer
	img := filepath.Join(t.TempDir(), "img")
	if code := Run(context.Background(), []string{"dump", "-0", "-f", img, src}, Env{Stdout: &out, Stderr: tty}); code != 0 {
		t.Fatalf("dump: %d", code)
	}
	tty.Close()
	if s := <-got; !strings.Contains(s, "DUMP: phase") {
		t.Errorf("no progress on the terminal: %q", s)
	}
	var errb bytes.Buffer
	if code := Run(context.Background(), []string{"dump", "-0", "-f", img, src}, Env{Stdout: &out, Stderr: &errb}); code != 0 || errb.Len() != 0 {
		t.Errorf("progress written to a non-terminal: %q", errb.String())
	}
}

// TestLocalRestoreRefusesDumpOptions: -D, -b and -B belong to dump; restore
// refuses them instead of ignoring them.
func TestLocalRestoreRefusesDumpOptions(t *testing.T) {
	for _, opt := range []string{"-D", "-b", "-B"} {
		_, stderr, code := runLocal(t, "restore", "-t", opt, "x", "-f", "image")
		if code == 0 || !strings.Contains(stderr, "unknown option "+opt) {
			t.Errorf("restore %s: exit %d, stderr %q", opt, code, stderr)
		}
	}
}
