package filedump

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// canary is a directory outside a restore's destination whose every entry
// (type, mode, owner, size, content, mtime and ctime) must stay as it was.
type canary struct {
	dir    string
	before string
}

// newCanary makes base/outside with a file, a subdirectory and a symbolic
// link, and records its state.
func newCanary(t testing.TB, base string) *canary {
	t.Helper()
	dir := filepath.Join(base, "outside")
	must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "victim"), []byte("do not touch"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "sub", "victim2"), []byte("nor this"), 0o600))
	must(t, os.Symlink("victim", filepath.Join(dir, "link")))
	// Times in the past, so that any write, chmod or chown shows.
	old := time.Unix(1500000000, 0)
	for _, p := range []string{"victim", "sub/victim2", "sub", "."} {
		must(t, os.Chtimes(filepath.Join(dir, p), old, old))
	}
	c := &canary{dir: dir}
	c.before = canaryState(t, dir)
	return c
}

func canaryState(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s %o %d:%d %d m%d c%d", strings.TrimPrefix(p, dir), st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Nano(), st.Ctim.Nano())
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		lines = append(lines, line)
		return nil
	})
	must(t, err)
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// check fails the test when anything in the canary changed.
func (c *canary) check(t testing.TB) {
	t.Helper()
	if after := canaryState(t, c.dir); after != c.before {
		t.Fatalf("restore changed %s:\n%s\nwas\n%s", c.dir, after, c.before)
	}
}

// treeOp is one directory entry of a fuzzed tree.
type treeOp struct {
	kind   byte // 0 directory, 1 file, 2 symbolic link, 3 FIFO
	parent int  // index into the directories made so far (0: root)
	ino    uint32
	name   string
}

// treeNames are names that collide with the planted links and with each
// other more often than random bytes would.
var treeNames = []string{"p", "q", "..", ".", "a", "b"}

// symlink targets a fuzzed image may hold.
var treeTargets = []string{"../outside", "../../outside/victim", "/tmp", "p", "a/b", "."}

// parseTree turns fuzz bytes into directory entries: per entry one byte of
// kind, one of parent, one of inode and one of name (a known name or a
// length followed by raw bytes).
func parseTree(b []byte) []treeOp {
	var ops []treeOp
	ndirs := 1
	for len(b) >= 4 && len(ops) < 24 {
		op := treeOp{kind: b[0] % 4, parent: int(b[1]) % ndirs, ino: 3 + uint32(b[2])%40}
		nb := b[3]
		b = b[4:]
		if nb < 0xc0 {
			op.name = treeNames[int(nb)%len(treeNames)]
		} else {
			n := min(int(nb-0xc0)+1, len(b))
			op.name = string(b[:n])
			b = b[n:]
		}
		// The writer refuses these bytes; crafted_test.go puts them in
		// images by patching.
		op.name = strings.NewReplacer("/", "_", "\x00", "_").Replace(op.name)
		if op.name == "" {
			op.name = "_"
		}
		if op.kind == 0 {
			ndirs++
		}
		ops = append(ops, op)
	}
	return ops
}

// buildTreeImage writes an image of ops. An inode's type is that of its
// first entry; later entries naming it are hard links (or, for a directory,
// second names). Inodes of entries that disagree with that type are not
// written: a name whose inode is missing from the image.
func buildTreeImage(ops []treeOp, level int, base, date time.Time) ([]byte, error) {
	var buf bytes.Buffer
	w, err := dump.NewWriter(&buf, dump.Options{Date: date, BaseDate: base, Level: level, NTREC: 1})
	if err != nil {
		return nil, err
	}
	kind := map[uint32]byte{}
	dirIno := []uint32{dump.RootIno}
	// Every directory holds "." and "..", as every dumper writes them.
	dots := func(ino, parent uint32) []dump.DirEntry {
		return []dump.DirEntry{{Ino: ino, Type: dump.DTDir, Name: "."}, {Ino: parent, Type: dump.DTDir, Name: ".."}}
	}
	ents := map[uint32][]dump.DirEntry{dump.RootIno: dots(dump.RootIno, dump.RootIno)}
	for _, op := range ops {
		if _, ok := kind[op.ino]; !ok {
			kind[op.ino] = op.kind
		}
		typ := []uint8{dump.DTDir, dump.DTReg, dump.DTLnk, dump.DTFifo}[op.kind]
		p := dirIno[op.parent%len(dirIno)]
		ents[p] = append(ents[p], dump.DirEntry{Ino: op.ino, Type: typ, Name: op.name})
		if op.kind == 0 {
			dirIno = append(dirIno, op.ino)
			if _, ok := ents[op.ino]; !ok {
				ents[op.ino] = dots(op.ino, p)
			}
		}
	}
	used := dump.NewBitmap(64)
	dumped := dump.NewBitmap(64)
	for i := uint32(2); i < 64; i++ {
		used.Set(i)
	}
	dumped.Set(dump.RootIno)
	for ino := range kind {
		dumped.Set(ino)
	}
	if err := w.WriteMaps(used, dumped); err != nil {
		return nil, err
	}
	now := date
	if _, err := w.WriteDir(&dump.Inode{Ino: dump.RootIno, Mode: dump.ModeDir | 0o755, Nlink: 2, Mtime: now, Atime: now}, nil, ents[dump.RootIno]); err != nil {
		return nil, err
	}
	var inos []uint32
	for ino := range kind {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		if kind[ino] == 0 {
			if _, err := w.WriteDir(&dump.Inode{Ino: ino, Mode: dump.ModeDir | 0o750, Nlink: 2, Mtime: now, Atime: now}, nil, ents[ino]); err != nil {
				return nil, err
			}
		}
	}
	for _, ino := range inos {
		var mode uint32
		var data []byte
		switch kind[ino] {
		case 1:
			mode, data = dump.ModeReg|0o640, []byte(fmt.Sprintf("data of %d at %d", ino, date.Unix()))
		case 2:
			mode, data = dump.ModeLnk|0o777, []byte(treeTargets[int(ino)%len(treeTargets)])
		case 3:
			mode = dump.ModeFifo | 0o600
		default:
			continue
		}
		if _, err := w.WriteFile(&dump.Inode{Ino: ino, Mode: mode, Nlink: 1, Size: int64(len(data)), Mtime: now, Atime: now}, nil, bytes.NewReader(data)); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// FuzzRestoreTree restores a level 0 and then a level 1 image of fuzzed
// trees (names "..", ".", duplicates, names of links planted in the
// destination, one inode under several names and types, directories with
// two names, links pointing out) into a destination that holds symbolic
// links to a canary directory: nothing outside the destination may change
// and nothing may be made beside it (issue 4). Inputs are a few dozen bytes,
// so the fuzzer minimizes quickly (FuzzRestore's raw images are kilobytes).
func FuzzRestoreTree(f *testing.F) {
	f.Add([]byte{0, 0, 3, 0, 1, 1, 4, 1, 2, 0, 5, 4}, []byte{1, 0, 3, 0, 0, 0, 4, 1, 1, 1, 5, 0})
	f.Add([]byte{0, 0, 3, 4, 0, 1, 4, 4, 1, 2, 5, 0}, []byte{2, 0, 3, 4, 1, 0, 5, 0, 1, 0, 5, 1})
	f.Add([]byte{1, 0, 3, 0xc1, 'x', 'y', 1, 0, 3, 0xc0, 'z'}, []byte{0, 0, 3, 0, 1, 1, 6, 0})
	f.Add([]byte{0, 0, 3, 0, 0, 1, 3, 1}, []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		base := t.TempDir()
		dest := filepath.Join(base, "dest")
		must(t, os.Mkdir(dest, 0o755))
		c := newCanary(t, base)
		must(t, os.Symlink("../outside", filepath.Join(dest, "p")))
		must(t, os.Symlink("../outside/victim", filepath.Join(dest, "q")))
		d0 := time.Unix(1700000000, 0)
		img0, err0 := buildTreeImage(parseTree(a), 0, time.Time{}, d0)
		img1, err1 := buildTreeImage(parseTree(b), 1, d0, d0.Add(time.Hour))
		if err0 != nil || err1 != nil {
			t.Skipf("the writer refuses this tree: %v %v", err0, err1)
		}
		for _, img := range [][]byte{img0, img1} {
			_, _ = Restore(t.Context(), RestoreRequest{Input: bytes.NewReader(img), Dest: dest, Env: Env{"FORCE": "Y"}})
			c.check(t)
			ents, err := os.ReadDir(base)
			must(t, err)
			if len(ents) != 2 {
				t.Fatalf("restore made %d entries beside its destination", len(ents)-2)
			}
		}
	})
}

// cancelReader cancels its context once n bytes have been read, or with
// fail set returns an error there instead.
type cancelReader struct {
	r      *bytes.Reader
	n      int64
	cancel context.CancelFunc
	fail   bool
}

// Read implements io.Reader.
func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		if c.fail {
			return 0, errors.New("device gone")
		}
		c.cancel()
	}
	if int64(len(p)) > c.n && c.n > 0 {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	must(t, err)
	return len(ents)
}

// TestRestoreCancelLeaksNothing cancels a restore (and fails its input) at
// every record of an image: the restore returns an error, and no goroutine
// and no file descriptor is left behind (issue 4, D8).
func TestRestoreCancelLeaksNothing(t *testing.T) {
	var buf bytes.Buffer
	w, err := dump.NewWriter(&buf, dump.Options{Date: time.Unix(1700000000, 0), NTREC: 1})
	must(t, err)
	used := dump.NewBitmap(16)
	for i := uint32(2); i < 16; i++ {
		used.Set(i)
	}
	must(t, w.WriteMaps(used, used))
	now := time.Unix(1700000000, 0)
	_, err = w.WriteDir(&dump.Inode{Ino: 2, Mode: dump.ModeDir | 0o755, Mtime: now}, nil, []dump.DirEntry{
		{Ino: 3, Type: dump.DTDir, Name: "d"}, {Ino: 4, Type: dump.DTReg, Name: "big"}, {Ino: 6, Type: dump.DTLnk, Name: "l"}, {Ino: 4, Type: dump.DTReg, Name: "hard"}})
	must(t, err)
	_, err = w.WriteDir(&dump.Inode{Ino: 3, Mode: dump.ModeDir | 0o700, Mtime: now}, []dump.Xattr{{Name: "user.k", Value: []byte("v")}},
		[]dump.DirEntry{{Ino: 5, Type: dump.DTReg, Name: "small"}})
	must(t, err)
	big := bytes.Repeat([]byte("0123456789abcdef"), 40<<10/16)
	_, err = w.WriteFile(&dump.Inode{Ino: 4, Mode: dump.ModeReg | 0o644, Size: int64(len(big)), Mtime: now}, nil, bytes.NewReader(big))
	must(t, err)
	_, err = w.WriteFile(&dump.Inode{Ino: 5, Mode: dump.ModeReg | 0o600, Size: 5, Mtime: now}, []dump.Xattr{{Name: "user.x", Value: []byte("y")}}, strings.NewReader("small"))
	must(t, err)
	_, err = w.WriteFile(&dump.Inode{Ino: 6, Mode: dump.ModeLnk | 0o777, Size: 3, Mtime: now}, nil, strings.NewReader("big"))
	must(t, err)
	must(t, w.Close())
	img := buf.Bytes()

	// Warm up what the first restore allocates once (the runtime's poller).
	_, err = Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img), Dest: t.TempDir()})
	must(t, err)
	fds, gs := openFDs(t), runtime.NumGoroutine()
	stopped := 0
	for _, fail := range []bool{false, true} {
		for n := int64(0); n <= int64(len(img)); n += dump.RecordSize / 2 {
			ctx, cancel := context.WithCancel(context.Background())
			_, err := Restore(ctx, RestoreRequest{Input: &cancelReader{r: bytes.NewReader(img), n: n, cancel: cancel, fail: fail}, Dest: t.TempDir()})
			cancel()
			if err != nil {
				stopped++
			}
			if !fail && err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, dump.ErrTruncated) {
				t.Errorf("cancelled after %d bytes: %v", n, err)
			}
			if got := openFDs(t); got != fds {
				t.Fatalf("stopped after %d bytes (fail %v): %d descriptors open, %d before: %v", n, fail, got, fds, err)
			}
		}
	}
	if stopped < len(img)/dump.RecordSize {
		t.Errorf("only %d restores stopped early", stopped)
	}
	// Goroutines end asynchronously: wait for them (a hang guard only).
	for deadline := time.Now().Add(testutil.HangGuard); runtime.NumGoroutine() > gs && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > gs {
		t.Fatalf("%d goroutines after the cancelled restores, %d before", g, gs)
	}
}

// TestNlistAcrossPlantedLinks: destination paths of the nlist that go
// through symbolic links planted in the destination (to a directory and to a
// file outside), that climb out with "..", and DAR file history offsets that
// point into the middle of a record, past the end or before the start. Each
// restore (stream, DAR, DAR with RECOVER_FULL_PATHS) either writes inside
// the destination or reports the name; nothing outside changes (issue 4,
// D8, D9).
func TestNlistAcrossPlantedLinks(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a", "b", "c.txt"), []byte("c data"), 0o644)
	writeFile(t, filepath.Join(src, "top.txt"), []byte("top data"), 0o644)
	var img bytes.Buffer
	hist := newHistory()
	res, err := Backup(context.Background(), BackupRequest{Dir: src, Env: Env{"HIST": "Y"}, Output: &img, History: hist})
	must(t, err)
	cIno, _ := hist.find("a/b/c.txt")
	bIno, _ := hist.find("a/b")
	tIno, _ := hist.find("top.txt")
	cOff, bOff, tOff := hist.offsets[cIno], hist.offsets[bIno], hist.offsets[tIno]
	size := int64(img.Len())

	base := t.TempDir()
	dest := filepath.Join(base, "dest")
	must(t, os.Mkdir(dest, 0o755))
	c := newCanary(t, base)
	plant := func() {
		for _, n := range []string{"p", "q", "r"} {
			_ = os.RemoveAll(filepath.Join(dest, n))
		}
		must(t, os.Symlink("../outside", filepath.Join(dest, "p")))
		must(t, os.Symlink("../outside/victim", filepath.Join(dest, "q")))
		must(t, os.Symlink("/", filepath.Join(dest, "r")))
	}
	names := []RestoreName{
		{Original: "top.txt", Dest: "p/victim", FHInfo: tOff},
		{Original: "top.txt", Dest: "q", FHInfo: tOff},
		{Original: "top.txt", Dest: "p/sub/victim2", FHInfo: tOff},
		{Original: "a/b", Dest: "p/sub", FHInfo: bOff},
		{Original: "a/b/c.txt", Dest: "r/tmp/escaped.txt", FHInfo: cOff},
		{Original: "a/b/c.txt", Dest: "x/../../outside/victim", FHInfo: cOff},
		{Original: "../outside/victim", Dest: "y", FHInfo: cOff},
		{Original: "a/b/c.txt", Dest: "/p/abs.txt", FHInfo: cOff},
	}
	bogus := []RestoreName{
		{Original: "a/b/c.txt", Dest: "m1", FHInfo: cOff + 100},
		{Original: "a/b/c.txt", Dest: "m2", FHInfo: cOff + dump.RecordSize},
		{Original: "a/b/c.txt", Dest: "m3", FHInfo: size},
		{Original: "a/b/c.txt", Dest: "m4", FHInfo: size + 1<<40},
		{Original: "a/b/c.txt", Dest: "m5", FHInfo: -5},
		{Original: "top.txt", Dest: "m6", FHInfo: cOff},
		{Original: "a/b", Dest: "m7", FHInfo: tOff},
	}
	dar := func(kv ...string) Env {
		e := Env{"DIRECT": "Y", "ENHANCED_DAR_ENABLED": "Y", "ACL_START": res.Env["ACL_START"], "FORCE": "Y"}
		for i := 0; i < len(kv); i += 2 {
			e[kv[i]] = kv[i+1]
		}
		return e
	}
	for _, tc := range []struct {
		name  string
		env   Env
		names []RestoreName
	}{
		{"stream", Env{"FORCE": "Y"}, names},
		{"stream EXTRACT=E", Env{"FORCE": "Y", "EXTRACT": "E"}, names},
		{"DAR", dar(), names},
		{"DAR full paths", dar("RECOVER_FULL_PATHS", "Y"), names},
		{"DAR bogus offsets", dar(), bogus},
		{"DAR bogus offsets, full paths", dar("RECOVER_FULL_PATHS", "Y"), bogus},
	} {
		plant()
		req := RestoreRequest{Dest: dest, Env: tc.env, Names: tc.names}
		if tc.env["DIRECT"] == "Y" {
			req.InputAt = bytes.NewReader(img.Bytes())
		} else {
			req.Input = bytes.NewReader(img.Bytes())
		}
		var reported []string
		req.OnName = func(n NameResult) {
			if n.Err != nil {
				reported = append(reported, n.Path+": "+n.Err.Error())
			}
		}
		_, err := Restore(context.Background(), req)
		t.Logf("%s: %v; %d names reported", tc.name, err, len(reported))
		c.check(t)
		if _, err := os.Lstat("/tmp/escaped.txt"); err == nil {
			t.Fatalf("%s: wrote /tmp/escaped.txt", tc.name)
		}
		if ents, _ := os.ReadDir(base); len(ents) != 2 {
			t.Fatalf("%s: %d entries beside the destination", tc.name, len(ents)-2)
		}
		if strings.Contains(tc.name, "bogus") {
			// Each wrong position fails its name only (with full
			// paths m6 and m7 fail too: not their original names).
			if err != nil && Message(err) != MsgNoFilesCreated || len(reported) < 5 {
				t.Errorf("%s: %v, %d names reported", tc.name, err, len(reported))
			}
			for _, m := range []string{"m1", "m2", "m3", "m4", "m5"} {
				if _, err := os.Lstat(filepath.Join(dest, m)); err == nil {
					t.Errorf("%s: %s restored from a wrong offset", tc.name, m)
				}
			}
			// The inode at the position given is what is restored.
			for m, want := range map[string]string{"m6": "c data", "m7": "top data"} {
				if b, err := os.ReadFile(filepath.Join(dest, m)); err == nil && string(b) != want {
					t.Errorf("%s: %s: %q", tc.name, m, b)
				}
			}
			continue
		}
		if strings.Contains(tc.name, "full paths") {
			// Names go to their full image paths; q is left alone.
			continue
		}
		// Planted links were replaced, not followed.
		if b, err := os.ReadFile(filepath.Join(dest, "q")); err != nil || string(b) != "top data" {
			t.Errorf("%s: q: %q %v", tc.name, b, err)
		}
		if fi, err := os.Lstat(filepath.Join(dest, "p")); err != nil || fi.Mode()&os.ModeSymlink != 0 && fi.IsDir() {
			t.Errorf("%s: p: %v %v", tc.name, fi, err)
		}
	}
}

// TestTamperedSymtab: a restore_symboltable whose paths climb out with "..",
// are absolute or go through a symbolic link planted to a canary makes the
// next incremental restore remove or move nothing outside the destination;
// a garbled one is a clear error (issue 4, D8).
func TestTamperedSymtab(t *testing.T) {
	base := t.TempDir()
	dest := filepath.Join(base, "dest")
	must(t, os.Mkdir(dest, 0o755))
	c := newCanary(t, base)
	d0 := time.Unix(1700000000, 0)
	img0, err := buildTreeImage([]treeOp{{kind: 0, ino: 3, name: "d"}, {kind: 1, ino: 4, name: "f"}}, 0, time.Time{}, d0)
	must(t, err)
	_, err = Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img0), Dest: dest, Env: Env{"FORCE": "Y"}})
	must(t, err)
	must(t, os.Symlink("../outside", filepath.Join(dest, "p")))
	must(t, saveSymtab(dest, &symtab{Level: 0, Date: d0,
		Paths: map[string]uint32{"": 2, "d": 3, "f": 4, "../outside/victim": 5, "p/victim": 6, "p": 7, "/outside": 8,
			"d/../../outside/sub": 9, "p/sub": 10, "p/sub/victim2": 11, "../outside": 12},
		Dirs: map[uint32]bool{2: true, 3: true, 7: true, 8: true, 9: true, 10: true, 12: true}}))
	// Level 1: f and the tampered names are gone, g is new; inodes 5-12
	// are in use again (as files) so that staging would move them.
	img1, err := buildTreeImage([]treeOp{{kind: 0, ino: 3, name: "d"}, {kind: 1, ino: 13, name: "g"}, {kind: 1, ino: 5, name: "h5"},
		{kind: 0, ino: 7, name: "h7"}, {kind: 0, ino: 9, name: "h9"}, {kind: 0, ino: 12, name: "h12"}}, 1, d0, d0.Add(time.Hour))
	must(t, err)
	var reported []string
	_, err = Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img1), Dest: dest, Env: Env{"FORCE": "Y"},
		OnName: func(n NameResult) {
			if n.Err != nil {
				reported = append(reported, n.Path+": "+n.Err.Error())
			}
		}})
	t.Logf("level 1: %v\n%s", err, strings.Join(reported, "\n"))
	c.check(t)
	if ents, _ := os.ReadDir(base); len(ents) != 2 {
		t.Fatalf("%d entries beside the destination", len(ents)-2)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "g")); err != nil || !strings.HasPrefix(string(b), "data of 13") {
		t.Errorf("g: %q %v", b, err)
	}

	// Garbage in place of the table.
	must(t, os.WriteFile(filepath.Join(dest, SymtabName), []byte("not a table"), 0o600))
	_, err = Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img1), Dest: dest, Env: Env{"FORCE": "Y"}})
	if err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("garbled %s: %v", SymtabName, err)
	}
	// A link in place of the table is not followed.
	must(t, os.Remove(filepath.Join(dest, SymtabName)))
	must(t, os.Symlink("../outside/victim", filepath.Join(dest, SymtabName)))
	_, err = Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img0), Dest: dest, Env: Env{"FORCE": "Y"}})
	t.Logf("link as table: %v", err)
	c.check(t)
}

// TestIncrementalReplacesLinks: names that were symbolic links pointing out
// in the level 0 image are a directory and a file in the level 1 image, and
// a directory is renamed to the name of a link planted after the level 0
// restore: the links are replaced, never followed (issue 4, D8).
func TestIncrementalReplacesLinks(t *testing.T) {
	base := t.TempDir()
	dest := filepath.Join(base, "dest")
	must(t, os.Mkdir(dest, 0o755))
	c := newCanary(t, base)
	d0 := time.Unix(1700000000, 0)
	// treeTargets[ino%6]: inode 6 -> "../outside", 7 -> "../../outside/victim".
	img0, err := buildTreeImage([]treeOp{{kind: 2, ino: 6, name: "s"}, {kind: 2, ino: 7, name: "t"},
		{kind: 0, ino: 3, name: "a"}, {kind: 1, parent: 1, ino: 4, name: "victim"}}, 0, time.Time{}, d0)
	must(t, err)
	_, err = Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img0), Dest: dest, Env: Env{"FORCE": "Y"}})
	must(t, err)
	if l, err := os.Readlink(filepath.Join(dest, "s")); err != nil || l != "../outside" {
		t.Fatalf("level 0 s: %q %v", l, err)
	}
	must(t, os.Symlink("../outside/sub", filepath.Join(dest, "p")))
	// Level 1: s is a directory holding "victim", t a file, a is now p.
	img1, err := buildTreeImage([]treeOp{{kind: 0, ino: 8, name: "s"}, {kind: 1, parent: 1, ino: 9, name: "victim"},
		{kind: 1, ino: 10, name: "t"}, {kind: 0, ino: 3, name: "p"}, {kind: 1, parent: 2, ino: 4, name: "victim2"}}, 1, d0, d0.Add(time.Hour))
	must(t, err)
	var reported []string
	_, err = Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img1), Dest: dest, Env: Env{"FORCE": "Y"},
		OnName: func(n NameResult) {
			if n.Err != nil {
				reported = append(reported, n.Path+": "+n.Err.Error())
			}
		}})
	t.Logf("level 1: %v\n%s", err, strings.Join(reported, "\n"))
	must(t, err)
	c.check(t)
	for p, want := range map[string]string{"s/victim": "data of 9", "t": "data of 10", "p/victim2": "data of 4"} {
		fi, err := os.Lstat(filepath.Join(dest, filepath.Dir(p)))
		if err != nil || !fi.IsDir() && filepath.Dir(p) != "." {
			t.Errorf("%s: parent is not a directory: %v %v", p, fi, err)
			continue
		}
		if fi, err := os.Lstat(filepath.Join(dest, p)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %v %v", p, fi, err)
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dest, p)); err != nil || !strings.HasPrefix(string(b), want) {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
}

// cancelReaderAt cancels its context on its n-th read.
type cancelReaderAt struct {
	r      *bytes.Reader
	n      int
	cancel context.CancelFunc
}

// ReadAt implements io.ReaderAt.
func (c *cancelReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if c.n--; c.n < 0 {
		c.cancel()
	}
	return c.r.ReadAt(p, off)
}

// TestDARCancelLeaksNothing cancels direct access recoveries of a file and
// of a directory at each read of the image: no descriptor or goroutine is
// left behind (issue 4, D9).
func TestDARCancelLeaksNothing(t *testing.T) {
	src := t.TempDir()
	for i := 0; i < 6; i++ {
		writeFile(t, filepath.Join(src, "d", fmt.Sprintf("f%d", i)), bytes.Repeat([]byte{byte(i)}, 30000), 0o644)
	}
	var img bytes.Buffer
	hist := newHistory()
	res, err := Backup(context.Background(), BackupRequest{Dir: src, Env: Env{"HIST": "Y", "ENHANCED_DAR_ENABLED": "Y"}, Output: &img, History: hist})
	must(t, err)
	dIno, _ := hist.find("d")
	fIno, _ := hist.find("d/f3")
	env := Env{"DIRECT": "Y", "ENHANCED_DAR_ENABLED": "Y", "ACL_START": res.Env["ACL_START"], "FORCE": "Y"}
	names := []RestoreName{{Original: "d/f3", Dest: "one", FHInfo: hist.offsets[fIno]}, {Original: "d", Dest: "all", FHInfo: hist.offsets[dIno]}}
	_, err = Restore(context.Background(), RestoreRequest{InputAt: bytes.NewReader(img.Bytes()), Dest: t.TempDir(), Env: env, Names: names})
	must(t, err)
	fds, gs := openFDs(t), runtime.NumGoroutine()
	cancelled := 0
	for n := 0; n < 200; n++ {
		ctx, cancel := context.WithCancel(context.Background())
		_, err := Restore(ctx, RestoreRequest{InputAt: &cancelReaderAt{r: bytes.NewReader(img.Bytes()), n: n, cancel: cancel}, Dest: t.TempDir(), Env: env, Names: names})
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled at read %d: %v", n, err)
		}
		cancelled++
		if got := openFDs(t); got != fds {
			t.Fatalf("cancelled at read %d: %d descriptors open, %d before", n, got, fds)
		}
	}
	if cancelled == 0 {
		t.Fatal("no DAR was cancelled")
	}
	for deadline := time.Now().Add(testutil.HangGuard); runtime.NumGoroutine() > gs && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > gs {
		t.Fatalf("%d goroutines after the cancelled recoveries, %d before", g, gs)
	}
	t.Logf("%d recoveries cancelled", cancelled)
}

// TestDeepPathBeyondPathMax: a tree deeper than PATH_MAX (25 names of 200
// bytes) is restored, and a symbolic link planted to a canary deep inside it
// (past the first 2,048 bytes that one openat2 resolves) is replaced, not
// followed, when the image is restored again (issue 4, D8).
func TestDeepPathBeyondPathMax(t *testing.T) {
	var ops []treeOp
	var parts []string
	for i := 0; i < 25; i++ {
		n := strings.Repeat(string(rune('a'+i)), 200)
		ops = append(ops, treeOp{kind: 0, parent: i, ino: uint32(3 + i), name: n})
		parts = append(parts, n)
	}
	ops = append(ops, treeOp{kind: 1, parent: 25, ino: 40, name: "victim"})
	img, err := buildTreeImage(ops, 0, time.Time{}, time.Unix(1700000000, 0))
	must(t, err)
	base := t.TempDir()
	dest := filepath.Join(base, "dest")
	must(t, os.Mkdir(dest, 0o755))
	c := newCanary(t, base)
	deep := strings.Join(parts, "/") + "/victim"
	restore := func() {
		t.Helper()
		var reported []string
		_, err := Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img), Dest: dest, Env: Env{"FORCE": "Y"},
			OnName: func(n NameResult) {
				if n.Err != nil {
					reported = append(reported, n.Err.Error())
				}
			}})
		must(t, err)
		if len(reported) > 0 {
			t.Fatalf("%d names failed, first: %.300s", len(reported), reported[0])
		}
		c.check(t)
		// Read it back a piece at a time (the path is over PATH_MAX).
		fd, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		must(t, err)
		defer unix.Close(fd)
		for _, p := range parts {
			nfd, err := unix.Openat(fd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
			must(t, err)
			unix.Close(fd)
			fd = nfd
		}
		b := make([]byte, 64)
		vfd, err := unix.Openat(fd, "victim", unix.O_RDONLY|unix.O_NOFOLLOW, 0)
		must(t, err)
		n, _ := unix.Read(vfd, b)
		unix.Close(vfd)
		if !strings.HasPrefix(string(b[:n]), "data of 40") {
			t.Fatalf("%d-byte path: %q", len(deep), b[:n])
		}
	}
	restore()
	// Plant a link in place of the 15th directory (3,000 bytes down).
	mid := strings.Join(parts[:14], "/")
	fd, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	pfd, err := unix.Openat(fd, mid, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	unix.Close(fd)
	must(t, err)
	must(t, unix.Renameat(pfd, parts[14], pfd, "moved"))
	must(t, unix.Symlinkat(filepath.Join(base, "outside"), pfd, parts[14]))
	unix.Close(pfd)
	restore()
}

// TestChmodNoFollow: setting the mode of a special file that was swapped for
// a symbolic link to a canary changes neither the link's target nor
// anything else outside; a FIFO gets its mode (issue 4, D8).
func TestChmodNoFollow(t *testing.T) {
	base := t.TempDir()
	dest := filepath.Join(base, "dest")
	must(t, os.Mkdir(dest, 0o755))
	c := newCanary(t, base)
	must(t, unix.Mkfifo(filepath.Join(dest, "fifo"), 0o600))
	must(t, os.Symlink("../outside/victim", filepath.Join(dest, "swapped")))
	pfd, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	defer unix.Close(pfd)
	must(t, chmodNoFollow(pfd, "swapped", 0o777))
	must(t, chmodNoFollow(pfd, "fifo", 0o640))
	c.check(t)
	if fi, err := os.Lstat(filepath.Join(dest, "fifo")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("fifo: %v %v", fi, err)
	}
	if err := chmodNoFollow(pfd, "missing", 0o640); err == nil {
		t.Error("no error for a missing name")
	}
}

// TestStagingNameInImage: an image that holds a directory named like the
// staging directory an incremental restore uses for renames keeps it and
// its files (issue 4, D8).
func TestStagingNameInImage(t *testing.T) {
	dest := t.TempDir()
	d0 := time.Unix(1700000000, 0)
	tree := func(dir string) []treeOp {
		return []treeOp{{kind: 0, ino: 3, name: ".tapestry-restore-staging"}, {kind: 1, parent: 1, ino: 4, name: "keep"},
			{kind: 0, ino: 5, name: dir}, {kind: 1, parent: 2, ino: 6, name: "x"}}
	}
	img0, err := buildTreeImage(tree("a"), 0, time.Time{}, d0)
	must(t, err)
	img1, err := buildTreeImage(tree("b"), 1, d0, d0.Add(time.Hour))
	must(t, err)
	for _, img := range [][]byte{img0, img1} {
		var reported []string
		_, err := Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img), Dest: dest, Env: Env{"FORCE": "Y"},
			OnName: func(n NameResult) {
				if n.Err != nil {
					reported = append(reported, n.Path+": "+n.Err.Error())
				}
			}})
		must(t, err)
		if len(reported) > 0 {
			t.Errorf("reported: %s", strings.Join(reported, "\n"))
		}
	}
	for _, p := range []string{".tapestry-restore-staging/keep", "b/x"} {
		if b, err := os.ReadFile(filepath.Join(dest, p)); err != nil || !strings.HasPrefix(string(b), "data of") {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dest, "a")); err == nil {
		t.Error("a is still there")
	}
}

// TestNULInName: a directory entry whose name holds a NUL byte is cut at
// the NUL as Linux restore does ("ok\x00/../x" would name "ok"), so it
// stays a plain name inside the destination (issue 4, D8).
func TestNULInName(t *testing.T) {
	img := craftImage(t, []dump.DirEntry{{Ino: 4, Type: dump.DTReg, Name: "ok\x01\x02\x03\x03\x02x"}}, nil,
		map[string]string{"ok\x01\x02\x03\x03\x02x": "ok\x00/../x"})
	base := t.TempDir()
	dest := filepath.Join(base, "dest")
	must(t, os.Mkdir(dest, 0o755))
	c := newCanary(t, base)
	_, err := Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img), Dest: dest, Env: Env{"FORCE": "Y"}})
	must(t, err)
	c.check(t)
	if b, err := os.ReadFile(filepath.Join(dest, "ok")); err != nil || string(b) != "crafted data" {
		t.Errorf("ok: %q %v", b, err)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 2 {
		t.Errorf("%d entries beside the destination", len(ents)-2)
	}
}

// TestInodeOutOfRange: directory entries naming inodes beyond the maps,
// inode 1 and the root under another name are reported or skipped; the
// files of the image are restored (issue 4, D8), and the restore fails, as
// the image promises names it does not hold (issue 11).
func TestInodeOutOfRange(t *testing.T) {
	img := craftImage(t, []dump.DirEntry{{Ino: 1000, Type: dump.DTReg, Name: "big"}, {Ino: 0xffffffff, Type: dump.DTReg, Name: "max"},
		{Ino: 1, Type: dump.DTReg, Name: "one"}, {Ino: 2, Type: dump.DTDir, Name: "root-again"}, {Ino: 4, Type: dump.DTReg, Name: "f"}}, nil, nil)
	base := t.TempDir()
	dest := filepath.Join(base, "dest")
	must(t, os.Mkdir(dest, 0o755))
	c := newCanary(t, base)
	var reported []string
	_, err := Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img), Dest: dest, Env: Env{"FORCE": "Y"},
		OnName: func(n NameResult) {
			if n.Err != nil {
				reported = append(reported, n.Path+": "+n.Err.Error())
			}
		}})
	if !errors.Is(err, dump.ErrFormat) {
		t.Errorf("restore of an image with names it does not hold: %v", err)
	}
	c.check(t)
	t.Logf("reported:\n%s", strings.Join(reported, "\n"))
	all := strings.Join(reported, "\n")
	for _, n := range []string{"big", "max", "one"} {
		if !strings.Contains(all, n+": ") {
			t.Errorf("%s not reported", n)
		}
		if _, err := os.Lstat(filepath.Join(dest, n)); err == nil {
			t.Errorf("%s restored", n)
		}
	}
	if _, err := os.Lstat(filepath.Join(dest, "root-again")); err == nil {
		t.Error("root-again restored")
	}
	if b, err := os.ReadFile(filepath.Join(dest, "f")); err != nil || string(b) != "crafted data" {
		t.Errorf("f: %q %v", b, err)
	}
}

// TestCancelBeforeDirectories: a restore cancelled when it reaches its
// directory stage makes no directory and returns the context's error.
func TestCancelBeforeDirectories(t *testing.T) {
	var ops []treeOp
	for i := 0; i < 20; i++ {
		ops = append(ops, treeOp{kind: 0, ino: uint32(3 + i), name: fmt.Sprintf("d%02d", i)})
	}
	img, err := buildTreeImage(ops, 0, time.Time{}, time.Unix(1700000000, 0))
	must(t, err)
	dest := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = Restore(ctx, RestoreRequest{Input: bytes.NewReader(img), Dest: dest, Env: Env{"FORCE": "Y"},
		Progress: func(p Progress) {
			if p.Phase == PhaseDirs {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Restore: %v", err)
	}
	if ents, _ := os.ReadDir(dest); len(ents) != 0 {
		t.Errorf("%d entries made after the cancel", len(ents))
	}
}
