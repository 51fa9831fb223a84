package filedump

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/dump"
)

// craftImage writes an image with the given root entries (all pointing to
// regular files 10.. or to directory 3 when named "dir*"), then replaces
// byte markers so that names no writer would write appear in it.
func craftImage(t testing.TB, root []dump.DirEntry, sub []dump.DirEntry, repl map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	// One record per block: no padding, so the fuzzer's seed is small.
	w, err := dump.NewWriter(&buf, dump.Options{Date: time.Unix(1700000000, 0), NTREC: 1})
	must(t, err)
	files := map[uint32]bool{}
	subNamed := false // directory 3 is written only when a name reaches it
	for _, e := range append(append([]dump.DirEntry{}, root...), sub...) {
		if e.Type != dump.DTDir {
			files[e.Ino] = true
		}
		subNamed = subNamed || e.Ino == 3
	}
	used := dump.NewBitmap(64)
	for i := uint32(2); i < 64; i++ {
		used.Set(i)
	}
	must(t, w.WriteMaps(used, used))
	ents := append([]dump.DirEntry{{Ino: 2, Type: dump.DTDir, Name: "."}, {Ino: 2, Type: dump.DTDir, Name: ".."}}, root...)
	now := time.Unix(1700000000, 0)
	_, err = w.WriteDir(&dump.Inode{Ino: 2, Mode: dump.ModeDir | 0o755, Nlink: 3, Mtime: now, Atime: now, Ctime: now}, nil, ents)
	must(t, err)
	if subNamed {
		ents = append([]dump.DirEntry{{Ino: 3, Type: dump.DTDir, Name: "."}, {Ino: 2, Type: dump.DTDir, Name: ".."}}, sub...)
		_, err = w.WriteDir(&dump.Inode{Ino: 3, Mode: dump.ModeDir | 0o755, Nlink: 2, Mtime: now, Atime: now, Ctime: now}, nil, ents)
		must(t, err)
	}
	for ino := uint32(4); ino < 64; ino++ {
		if !files[ino] {
			continue
		}
		data := []byte("crafted data")
		mode := uint32(dump.ModeReg | 0o644)
		if ino == 20 {
			data = []byte("../../../../../../tmp")
			mode = dump.ModeLnk | 0o777
		}
		_, err = w.WriteFile(&dump.Inode{Ino: ino, Mode: mode, Nlink: 1, Size: int64(len(data)), Mtime: now}, nil, bytes.NewReader(data))
		must(t, err)
	}
	must(t, w.Close())
	b := buf.Bytes()
	for from, to := range repl {
		if len(from) != len(to) || !bytes.Contains(b, []byte(from)) {
			t.Fatalf("marker %q not in the image", from)
		}
		b = bytes.ReplaceAll(b, []byte(from), []byte(to))
	}
	return b
}

// outsideState lists everything below dir (to prove nothing changed).
func outsideState(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	for p, fi := range snapshotTree(t, dir) {
		lines = append(lines, fmt.Sprintf("%s %s %s %o", p, fi.sum, fi.link, fi.mode))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestCraftedImagesStayInside: names with "..", "/" or absolute paths,
// links pointing out, a destination with planted symbolic and hard links,
// directory loops, bad checksums and truncation give clear errors and touch
// nothing outside the destination.
func TestCraftedImagesStayInside(t *testing.T) {
	base := t.TempDir()
	dest := filepath.Join(base, "dest")
	outside := filepath.Join(base, "outside")
	must(t, os.MkdirAll(dest, 0o755))
	writeFile(t, filepath.Join(outside, "victim.txt"), []byte("do not touch"), 0o644)
	must(t, os.Symlink(outside, filepath.Join(dest, "dirlink")))
	must(t, os.Link(filepath.Join(outside, "victim.txt"), filepath.Join(dest, "hardlink")))
	before := outsideState(t, outside)

	img := craftImage(t,
		[]dump.DirEntry{
			{Ino: 4, Type: dump.DTReg, Name: "\x01\x01"},                   // ".."
			{Ino: 5, Type: dump.DTReg, Name: "\x01\x02\x02escape"},         // "../escape"
			{Ino: 6, Type: dump.DTReg, Name: "\x01victim"},                 // "/victim"
			{Ino: 7, Type: dump.DTReg, Name: "hardlink"},                   // overwrites the planted hard link
			{Ino: 3, Type: dump.DTDir, Name: "dirlink"},                    // a directory where a symlink is planted
			{Ino: 3, Type: dump.DTDir, Name: "zdir-again"},                 // the same directory twice
			{Ino: 20, Type: dump.DTLnk, Name: "uplink"},                    // a link pointing out
			{Ino: 8, Type: dump.DTReg, Name: "\x01\x04\x04\x04\x04victim"}, // "./../victim"
		},
		[]dump.DirEntry{
			{Ino: 9, Type: dump.DTReg, Name: "victim.txt"},
			{Ino: 2, Type: dump.DTDir, Name: "loop"}, // back to the root
		},
		map[string]string{
			"\x01\x02\x02escape":         "../escape",
			"\x01victim":                 "/victim",
			"\x01\x04\x04\x04\x04victim": "./../victim",
		})
	img = bytes.ReplaceAll(img, []byte("\x01\x01"), []byte(".."))
	var errs []string
	_, err := Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img), Dest: dest, Env: Env{"FORCE": "Y"},
		OnName: func(n NameResult) {
			if n.Err != nil {
				errs = append(errs, n.Path+": "+n.Err.Error())
			}
		}})
	// The file named ".." is on the image and no name reaches it: the
	// restore reports it and fails (issue 11).
	if !errors.Is(err, dump.ErrFormat) {
		t.Fatalf("Restore: %v\n%s", err, strings.Join(errs, "\n"))
	}
	if after := outsideState(t, outside); after != before {
		t.Fatalf("outside changed:\n%s\nwas\n%s", after, before)
	}
	if _, err := os.Lstat(filepath.Join(base, "escape")); err == nil {
		t.Fatal("../escape was created outside")
	}
	all := strings.Join(errs, "\n")
	for _, want := range []string{"../escape", "/victim", "more than one name", "(inode 4): dump: malformed image: inode 4 is on the image but no directory names it"} {
		if !strings.Contains(all, want) {
			t.Errorf("no error about %q in:\n%s", want, all)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dest, "dirlink")); err != nil || !fi.IsDir() {
		t.Errorf("dirlink is not a real directory now: %v %v", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "dirlink", "victim.txt")); err != nil || string(b) != "crafted data" {
		t.Errorf("dirlink/victim.txt: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "hardlink")); err != nil || string(b) != "crafted data" {
		t.Errorf("hardlink: %q %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dest, "uplink")); err != nil || !strings.HasPrefix(l, "../") {
		t.Errorf("uplink: %q %v", l, err)
	}

	// Damaged images: clear errors, nothing outside changes.
	good := craftImage(t, []dump.DirEntry{{Ino: 4, Type: dump.DTReg, Name: "f"}}, nil, nil)
	bad := append([]byte(nil), good...)
	bad[5*dump.RecordSize+200] ^= 0xff // inside the root directory header
	absurdSize := patchInode(t, good, 4, func(h []byte) { binary.LittleEndian.PutUint64(h[40:], 1<<60) })
	absurdCount := patchInode(t, good, 4, func(h []byte) { binary.LittleEndian.PutUint32(h[160:], 1<<30) })
	absurdMap := patchInode(t, good, 2, func(h []byte) { binary.LittleEndian.PutUint64(h[40:], 1<<40) })
	for name, c := range map[string]struct {
		img  []byte
		want error
	}{
		"absurd size":      {absurdSize, nil},
		"absurd count":     {absurdCount, nil},
		"absurd directory": {absurdMap, nil},
		"checksum":         {bad, dump.ErrChecksum},
		"truncated":        {good[:len(good)/2], dump.ErrTruncated},
		"empty":            {nil, nil},
		"garbage":          {bytes.Repeat([]byte("garbage!"), 512), nil},
	} {
		d := t.TempDir()
		_, err := Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(c.img), Dest: d, Env: Env{"FORCE": "Y"}})
		t.Logf("%s: %v", name, err)
		if err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if after := outsideState(t, outside); after != before {
		t.Fatal("outside changed")
	}
}

// FuzzRestore: any image restores or fails cleanly, never outside its
// destination. An iteration takes about a millisecond; the stalls seen
// under -fuzz were the engine minimizing each new input (kilobytes of
// records) for up to -fuzzminimizetime (60 s by default) without counting
// executions. The seed has one record per block (no padding); run with
// -fuzzminimizetime=2s to keep hundreds of executions a second.
// FuzzRestoreTree fuzzes the names and links of small trees instead.
func FuzzRestore(f *testing.F) {
	f.Add(craftImage(f, []dump.DirEntry{{Ino: 4, Type: dump.DTReg, Name: "f"}, {Ino: 3, Type: dump.DTDir, Name: "d"}},
		[]dump.DirEntry{{Ino: 5, Type: dump.DTReg, Name: "g"}, {Ino: 20, Type: dump.DTLnk, Name: "l"}}, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, img []byte) {
		base := t.TempDir()
		dest := filepath.Join(base, "dest")
		must(t, os.Mkdir(dest, 0o755))
		_, _ = Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img), Dest: dest, Env: Env{"FORCE": "Y"}})
		ents, err := os.ReadDir(base)
		must(t, err)
		if len(ents) != 1 {
			t.Fatalf("restore created %d entries beside its destination", len(ents)-1)
		}
	})
}

// patchInode changes the TS_INODE header of inode ino with fix and makes its
// checksum right again, so that only the changed field is wrong.
func patchInode(t testing.TB, img []byte, ino uint32, fix func(h []byte)) []byte {
	t.Helper()
	out := append([]byte(nil), img...)
	for off := 0; off+dump.RecordSize <= len(out); off += dump.RecordSize {
		h := out[off : off+dump.RecordSize]
		le := binary.LittleEndian
		if le.Uint32(h[24:]) != dump.NFSMagic || le.Uint32(h[0:]) != dump.TypeInode || le.Uint32(h[20:]) != ino {
			continue
		}
		fix(h)
		le.PutUint32(h[28:], 0)
		var sum uint32
		for i := 0; i < dump.RecordSize; i += 4 {
			sum += le.Uint32(h[i:])
		}
		le.PutUint32(h[28:], 84446-sum)
		return out
	}
	t.Fatalf("no header of inode %d", ino)
	return nil
}

// damagedImages returns the crafted images of issue 11 item 5: three bytes
// changed in the root directory's block, an inode header renumbered, a root
// directory of size 0, and the image cut short or empty. Each maps to the
// error text the restore must report (for a name or the whole restore).
func damagedImages(t testing.TB) map[string]struct {
	img  []byte
	want []string
} {
	good := craftImage(t, []dump.DirEntry{{Ino: 4, Type: dump.DTReg, Name: "f"}, {Ino: 3, Type: dump.DTDir, Name: "d"}},
		[]dump.DirEntry{{Ino: 5, Type: dump.DTReg, Name: "g"}}, nil)
	// Records (NTREC 1): 0 TS_TAPE, 1-2 TS_CLRI, 3-4 TS_BITS, 5 the root's
	// TS_INODE, 6 its entries.
	block := append([]byte(nil), good...)
	copy(block[6*dump.RecordSize+4:], []byte{0xff, 0xff, 0xff}) // record length and type of "."
	le := binary.LittleEndian
	return map[string]struct {
		img  []byte
		want []string
	}{
		"directory block": {block, []string{"/: dump: malformed image: directory inode 2 is damaged",
			"(inode 3): dump: malformed image: directory inode 3 is on the image but no directory names it",
			"(inode 4): dump: malformed image: inode 4 is on the image but no directory names it",
			"(inode 5): dump: malformed image: inode 5 is on the image but no directory names it",
			"the image is damaged: 4 names or inodes"}},
		"renumbered inode": {patchInode(t, good, 4, func(h []byte) { le.PutUint32(h[20:], 7) }), []string{
			"f: dump: malformed image: (inode 4) not found on the image",
			"(inode 7): dump: malformed image: inode 7 is on the image but no directory names it",
			"the image is damaged: 2 names or inodes"}},
		"root of size 0": {patchInode(t, good, 2, func(h []byte) { le.PutUint64(h[40:], 0) }), []string{
			`/: dump: malformed image: directory inode 2 holds no entries, not even "." and ".."`,
			"(inode 4): dump: malformed image: inode 4 is on the image but no directory names it",
			"the image is damaged: 4 names or inodes"}},
		"truncated in a record": {good[:len(good)/2+100], []string{"dump: image truncated: the image ends inside record"}},
		"truncated":             {good[:len(good)/2], []string{"dump: image truncated: the image ends at record"}},
		"empty":                 {nil, []string{"dump: image truncated: the image is empty"}},
	}
}

// TestDamagedImagesFail (issue 11 item 5): a damaged image no longer
// restores nothing, or part of itself, and reports success: every name a
// directory promises and the image does not hold, and every inode on it no
// name reaches, is an error naming it, and the restore fails; a truncated
// or empty image says so.
func TestDamagedImagesFail(t *testing.T) {
	for name, c := range damagedImages(t) {
		t.Run(name, func(t *testing.T) {
			var errs []string
			_, err := Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(c.img), Dest: t.TempDir(), Env: Env{"FORCE": "Y"},
				OnName: func(n NameResult) {
					if n.Err != nil {
						errs = append(errs, n.Path+": "+n.Err.Error())
					}
				}})
			if err == nil {
				t.Fatalf("restore succeeded; names reported: %v", errs)
			}
			if !errors.Is(err, dump.ErrFormat) && !errors.Is(err, dump.ErrTruncated) {
				t.Errorf("error %v is neither ErrFormat nor ErrTruncated", err)
			}
			all := strings.Join(append(errs, err.Error()), "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("no %q in:\n%s", w, all)
				}
			}
		})
	}
}
