package cli

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/format/dump"
)

// headerOffset returns the byte offset of the TS_INODE header of inode ino
// in img.
func headerOffset(t *testing.T, img []byte, ino uint32) int {
	t.Helper()
	r := dump.NewReader(bytes.NewReader(img))
	for {
		h, err := r.Next()
		if err == io.EOF {
			t.Fatalf("no header of inode %d", ino)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Kind == dump.KindInode && h.Ino == ino {
			return int(h.Offset)
		}
	}
}

// patchHeader changes the header at off with fix and makes its checksum
// right again, so that only the changed field is wrong.
func patchHeader(img []byte, off int, fix func(h []byte)) []byte {
	out := append([]byte(nil), img...)
	h := out[off : off+dump.RecordSize]
	fix(h)
	le := binary.LittleEndian
	le.PutUint32(h[28:], 0)
	var sum uint32
	for i := 0; i < dump.RecordSize; i += 4 {
		sum += le.Uint32(h[i:])
	}
	le.PutUint32(h[28:], 84446-sum)
	return out
}

// TestLocalRestoreDamagedImage (issue 11 item 5): tapestry restore -r of an
// image with three bytes changed in the root directory's block, an inode
// header renumbered, a root directory of size 0, or of an image cut short
// or empty exits non-zero and names what was lost; a cut image says it is
// truncated, not that a second volume is needed.
func TestLocalRestoreDamagedImage(t *testing.T) {
	src := t.TempDir()
	for _, p := range []string{"a.txt", "sub/b.txt", "sub/c.txt"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte("data of "+p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	work := t.TempDir()
	imgPath := filepath.Join(work, "l0.dump")
	if _, e, code := runLocal(t, "dump", "-0", "-f", imgPath, src); code != 0 {
		t.Fatalf("dump: %s", e)
	}
	good, err := os.ReadFile(imgPath)
	if err != nil {
		t.Fatal(err)
	}
	root := headerOffset(t, good, dump.RootIno)
	block := append([]byte(nil), good...)
	copy(block[root+dump.RecordSize+4:], []byte{0xff, 0xff, 0xff}) // record length and type of "."
	// The files come after the directories: the last inode is a file.
	var last uint32
	r := dump.NewReader(bytes.NewReader(good))
	for h, err := r.Next(); err == nil; h, err = r.Next() {
		if h.Kind == dump.KindInode && !h.Inode.IsDir() {
			last = h.Ino
		}
	}
	le := binary.LittleEndian
	renumbered := patchHeader(good, headerOffset(t, good, last), func(h []byte) { le.PutUint32(h[20:], last+1000) })
	size0 := patchHeader(good, root, func(h []byte) { le.PutUint64(h[40:], 0) })
	half := len(good) / 2 / dump.RecordSize * dump.RecordSize
	for name, c := range map[string]struct {
		img  []byte
		want []string
	}{
		"directory block":  {block, []string{"directory inode 2 is damaged", "no directory names it", "the image is damaged"}},
		"renumbered inode": {renumbered, []string{"not found on the image", "no directory names it", "the image is damaged"}},
		"root of size 0":   {size0, []string{"directory inode 2 holds no entries", "no directory names it", "the image is damaged"}},
		"truncated":        {good[:half], []string{"image truncated: the image ends at record"}},
		"empty":            {nil, []string{"image truncated: the image is empty"}},
	} {
		t.Run(name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			if err := os.WriteFile(img, c.img, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Chdir(t.TempDir())
			out, e, code := runLocal(t, "restore", "-r", "-f", img)
			if code == 0 {
				t.Fatalf("exit 0:\n%s%s", out, e)
			}
			for _, w := range c.want {
				if !strings.Contains(e, w) {
					t.Errorf("no %q in:\n%s", w, e)
				}
			}
			if strings.Contains(e, "volume 2 needed") {
				t.Errorf("asks for volume 2:\n%s", e)
			}
		})
	}
}
