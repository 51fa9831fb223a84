package filedump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// historyRecorder keeps file history: paths and header offsets.
type historyRecorder struct {
	mu      sync.Mutex
	parent  map[uint32]uint32
	name    map[uint32]string
	offsets map[uint32]int64
	dirs    int
}

func newHistory() *historyRecorder {
	return &historyRecorder{parent: map[uint32]uint32{}, name: map[uint32]string{}, offsets: map[uint32]int64{}}
}

func (h *historyRecorder) AddDir(d DirHistory) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.parent[d.Ino] = d.Parent
	h.name[d.Ino] = d.Name
	h.dirs++
	return nil
}

func (h *historyRecorder) AddNode(n NodeHistory) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.offsets[n.Inode.Ino] = n.FHInfo
	return nil
}

// find returns the inode whose path is p.
func (h *historyRecorder) find(p string) (uint32, bool) {
	for ino := range h.name {
		if h.path(ino) == p {
			return ino, true
		}
	}
	return 0, false
}

func (h *historyRecorder) path(ino uint32) string {
	var parts []string
	for ino != 2 && len(parts) < 100 {
		parts = append([]string{h.name[ino]}, parts...)
		ino = h.parent[ino]
	}
	return strings.Join(parts, "/")
}

// TestDAR (D11): restoring one file of an image of 50,000 files reads under
// 1% of the image; a directory reads in proportion to its size; a directory
// without enhanced DAR gives "No files were created".
func TestDAR(t *testing.T) {
	src := t.TempDir()
	for d := 0; d < 50; d++ {
		dir := filepath.Join(src, fmt.Sprintf("d%02d", d))
		must(t, os.Mkdir(dir, 0o755))
		for f := 0; f < 1000; f++ {
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", f)), []byte(fmt.Sprintf("file %d/%d\n", d, f)), 0o644))
		}
	}
	writeFile(t, filepath.Join(src, "small", "a.txt"), []byte("aaa"), 0o600)
	writeFile(t, filepath.Join(src, "small", "sub", "b.txt"), []byte("bbb"), 0o644)
	img := filepath.Join(t.TempDir(), "img.dump")
	f, err := os.Create(img)
	must(t, err)
	hist := newHistory()
	res, err := Backup(context.Background(), BackupRequest{Dir: src, Env: Env{"HIST": "Y"}, Output: f, History: hist})
	must(t, err)
	must(t, f.Close())
	if hist.dirs < 50000 || len(hist.offsets) < 50000 {
		t.Fatalf("file history: %d dirs, %d nodes", hist.dirs, len(hist.offsets))
	}
	fi, err := os.Stat(img)
	must(t, err)
	size := fi.Size()
	in, err := os.Open(img)
	must(t, err)
	defer in.Close()

	ino, ok := hist.find("d17/f0423")
	if !ok {
		t.Fatal("file history lacks d17/f0423")
	}
	cr := &countingReaderAt{r: in}
	dst := t.TempDir()
	rr, err := Restore(context.Background(), RestoreRequest{InputAt: cr, Dest: dst, Env: Env{"DIRECT": "Y"},
		Names: []RestoreName{{Original: "d17/f0423", Dest: "restored/one.txt", FHInfo: hist.offsets[ino]}}})
	must(t, err)
	got, err := os.ReadFile(filepath.Join(dst, "restored/one.txt"))
	if err != nil || string(got) != "file 17/423\n" || rr.Files != 1 {
		t.Fatalf("DAR file: %q %v files=%d", got, err, rr.Files)
	}
	if cr.n*100 >= size {
		t.Errorf("DAR of one file read %d of %d bytes (>= 1%%)", cr.n, size)
	}
	t.Logf("file DAR read %d of %d bytes (%.4f%%)", cr.n, size, float64(cr.n)*100/float64(size))

	// A directory without enhanced DAR.
	dino, _ := hist.find("small")
	_, err = Restore(context.Background(), RestoreRequest{InputAt: in, Dest: t.TempDir(), Env: Env{"DIRECT": "Y"},
		Names: []RestoreName{{Original: "small", FHInfo: hist.offsets[dino]}}})
	var e *Error
	if !errors.As(err, &e) || e.Msg != MsgNoFilesCreated {
		t.Fatalf("directory DAR without enhanced DAR: %v", err)
	}
	// Enhanced DAR of a small directory reads little more than the offset map.
	cr = &countingReaderAt{r: in}
	dst = t.TempDir()
	_, err = Restore(context.Background(), RestoreRequest{InputAt: cr, Dest: dst,
		Env:   Env{"DIRECT": "Y", "ENHANCED_DAR_ENABLED": "Y", "ACL_START": res.Env["ACL_START"]},
		Names: []RestoreName{{Original: "small", FHInfo: hist.offsets[dino]}}})
	must(t, err)
	if b, err := os.ReadFile(filepath.Join(dst, "small/sub/b.txt")); err != nil || string(b) != "bbb" {
		t.Fatalf("enhanced DAR: %q %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(dst, "small/a.txt")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("enhanced DAR a.txt: %v %v", st, err)
	}
	small := cr.n
	// A directory of 1,000 files reads more, in proportion.
	d5, _ := hist.find("d05")
	cr = &countingReaderAt{r: in}
	dst = t.TempDir()
	_, err = Restore(context.Background(), RestoreRequest{InputAt: cr, Dest: dst,
		Env:   Env{"DIRECT": "Y", "ENHANCED_DAR_ENABLED": "Y", "ACL_START": res.Env["ACL_START"]},
		Names: []RestoreName{{Original: "d05", FHInfo: hist.offsets[d5]}}})
	must(t, err)
	ents, _ := os.ReadDir(filepath.Join(dst, "d05"))
	if len(ents) != 1000 {
		t.Fatalf("enhanced DAR of d05 restored %d files", len(ents))
	}
	t.Logf("directory DAR read %d bytes (small dir %d), image %d", cr.n, small, size)
	if cr.n*20 > size || small*50 > size {
		t.Errorf("directory DAR read too much: %d (1,000 files) and %d (2 files) of %d", cr.n, small, size)
	}
}

// TestDARPathRules (D9, D11): RECOVER_FULL_PATHS sets the permissions of the
// directories the DAR made, RECURSIVE=N restores a directory without its
// contents, and both need the recovery path to end with the original path.
func TestDARPathRules(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a", "b", "c.txt"), []byte("c"), 0o644)
	writeFile(t, filepath.Join(src, "a", "b", "d.txt"), []byte("d"), 0o644)
	must(t, os.Chmod(filepath.Join(src, "a", "b"), 0o705))
	must(t, os.Chmod(filepath.Join(src, "a"), 0o750))
	var img bytes.Buffer
	hist := newHistory()
	res, err := Backup(context.Background(), BackupRequest{Dir: src, Env: Env{"HIST": "Y"}, Output: &img, History: hist})
	must(t, err)
	ra := bytes.NewReader(img.Bytes())
	cIno, _ := hist.find("a/b/c.txt")
	bIno, _ := hist.find("a/b")
	env := func(kv ...string) Env {
		e := Env{"DIRECT": "Y", "ENHANCED_DAR_ENABLED": "Y", "ACL_START": res.Env["ACL_START"]}
		for i := 0; i < len(kv); i += 2 {
			e[kv[i]] = kv[i+1]
		}
		return e
	}
	dst := t.TempDir()
	_, err = Restore(context.Background(), RestoreRequest{InputAt: ra, Dest: dst, Env: env("RECOVER_FULL_PATHS", "Y"),
		Names: []RestoreName{{Original: "a/b/c.txt", Dest: "x/a/b/c.txt", FHInfo: hist.offsets[cIno]}}})
	must(t, err)
	for p, want := range map[string]os.FileMode{"x/a": 0o750, "x/a/b": 0o705} {
		if st, err := os.Stat(filepath.Join(dst, p)); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %o", p, st.Mode(), err, want)
		}
	}
	// RECURSIVE=N: the directory and its permissions, not its contents.
	dst = t.TempDir()
	_, err = Restore(context.Background(), RestoreRequest{InputAt: ra, Dest: dst, Env: env("RECURSIVE", "N"),
		Names: []RestoreName{{Original: "a/b", FHInfo: hist.offsets[bIno]}}})
	must(t, err)
	if st, err := os.Stat(filepath.Join(dst, "a/b")); err != nil || st.Mode().Perm() != 0o705 {
		t.Errorf("RECURSIVE=N a/b: %v %v", st, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dst, "a/b")); len(ents) != 0 {
		t.Errorf("RECURSIVE=N restored %d entries", len(ents))
	}
	// The recovery path must end with the original path.
	var errs []string
	_, _ = Restore(context.Background(), RestoreRequest{InputAt: ra, Dest: t.TempDir(), Env: env("RECURSIVE", "N"),
		Names:  []RestoreName{{Original: "a/b", Dest: "elsewhere", FHInfo: hist.offsets[bIno]}},
		OnName: func(n NameResult) { errs = append(errs, errString(n.Err)) }})
	if !strings.Contains(strings.Join(errs, ","), "must end with the original path") {
		t.Errorf("rename with RECURSIVE=N: %v", errs)
	}
	// With RECURSIVE=N all paths must lie within the longest one.
	_, err = Restore(context.Background(), RestoreRequest{InputAt: ra, Dest: t.TempDir(), Env: env("RECURSIVE", "N"),
		Names: []RestoreName{{Original: "a/b", FHInfo: hist.offsets[bIno]}, {Original: "a/b/c.txt", Dest: "z/c.txt", FHInfo: hist.offsets[cIno]}}})
	if err == nil || !strings.Contains(err.Error(), "within the longest") {
		t.Errorf("RECURSIVE=N paths: %v", err)
	}
}
