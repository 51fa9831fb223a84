package filedump

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/options"
)

// offsetMapFixture is a small tree, its file history and a catalog whose
// option ndmpd.offset_map.enable the test sets.
type offsetMapFixture struct {
	src   string
	store catalog.Store
}

func newOffsetMapFixture(t *testing.T) *offsetMapFixture {
	t.Helper()
	f := &offsetMapFixture{src: t.TempDir()}
	writeFile(t, filepath.Join(f.src, "small", "a.txt"), []byte("aaa"), 0o600)
	writeFile(t, filepath.Join(f.src, "small", "sub", "b.txt"), []byte("bbb"), 0o644)
	writeFile(t, filepath.Join(f.src, "other.txt"), []byte("other"), 0o644)
	st, err := catalog.OpenBolt(filepath.Join(t.TempDir(), "c.db"))
	must(t, err)
	t.Cleanup(func() { st.Close() })
	f.store = st
	return f
}

func (f *offsetMapFixture) set(t *testing.T, v string) {
	t.Helper()
	if _, err := options.Set(context.Background(), f.store, options.OffsetMap, v); err != nil {
		t.Fatal(err)
	}
}

// backup dumps the tree with file history into a file and returns it, its
// history and ACL_START.
func (f *offsetMapFixture) backup(t *testing.T) (*os.File, *historyRecorder, string) {
	t.Helper()
	img, err := os.Create(filepath.Join(t.TempDir(), "img.dump"))
	must(t, err)
	t.Cleanup(func() { img.Close() })
	hist := newHistory()
	res, err := Backup(context.Background(), BackupRequest{Dir: f.src, Catalog: f.store, Env: Env{"HIST": "Y"}, Output: img, History: hist})
	must(t, err)
	return img, hist, res.Env["ACL_START"]
}

// hasOffsetMap reads the whole image and reports whether it holds an
// offset map record.
func hasOffsetMap(t *testing.T, img *os.File) bool {
	t.Helper()
	_, err := img.Seek(0, io.SeekStart)
	must(t, err)
	r := dump.NewReader(img)
	found := false
	for {
		h, err := r.Next()
		if err == io.EOF {
			return found
		}
		must(t, err)
		if h.Kind == dump.KindExtension && h.Ext == dump.ExtOffsetMap {
			found = true
		}
	}
}

// TestOffsetMapOptionBackup (D11, issue 12 item 7): the node option
// ndmpd.offset_map.enable reaches the engine. Off: a backup writes no
// offset map.
func TestOffsetMapOptionBackup(t *testing.T) {
	f := newOffsetMapFixture(t)
	img, _, _ := f.backup(t)
	if !hasOffsetMap(t, img) {
		t.Fatal("option on (default): the image has no offset map")
	}
	f.set(t, "off")
	img, _, _ = f.backup(t)
	if hasOffsetMap(t, img) {
		t.Fatal("option off: the image has an offset map")
	}
}

// TestOffsetMapOptionRestore (D11, issue 12 item 7): with
// ndmpd.offset_map.enable off, enhanced DAR of a directory is refused with
// "No files were created" even from an image that has the offset map, and a
// DAR of a file with ENHANCED_DAR_ENABLED=Y still restores it.
func TestOffsetMapOptionRestore(t *testing.T) {
	f := newOffsetMapFixture(t)
	img, hist, aclStart := f.backup(t)
	dino, ok := hist.find("small")
	fino, ok2 := hist.find("small/sub/b.txt")
	if !ok || !ok2 {
		t.Fatal("file history lacks small or small/sub/b.txt")
	}
	env := Env{"DIRECT": "Y", "ENHANCED_DAR_ENABLED": "Y", "ACL_START": aclStart}
	restore := func(name string, fh int64) (string, error) {
		dst := t.TempDir()
		_, err := Restore(context.Background(), RestoreRequest{InputAt: img, Dest: dst, Env: env, Catalog: f.store,
			Names: []RestoreName{{Original: name, FHInfo: fh}}})
		return dst, err
	}
	// On: enhanced DAR of the directory works.
	dst, err := restore("small", hist.offsets[dino])
	must(t, err)
	if b, err := os.ReadFile(filepath.Join(dst, "small/sub/b.txt")); err != nil || string(b) != "bbb" {
		t.Fatalf("option on: enhanced DAR of a directory: %q %v", b, err)
	}

	f.set(t, "off")
	dst, err = restore("small", hist.offsets[dino])
	var e *Error
	if !errors.As(err, &e) || e.Msg != MsgNoFilesCreated {
		t.Fatalf("option off: enhanced DAR of a directory: %v, want %q", err, MsgNoFilesCreated)
	}
	if _, err := os.Stat(filepath.Join(dst, "small/sub/b.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("option off: a refused directory DAR restored a file: %v", err)
	}
	dst, err = restore("small/sub/b.txt", hist.offsets[fino])
	must(t, err)
	b, err := os.ReadFile(filepath.Join(dst, "small/sub/b.txt"))
	if err != nil || string(b) != "bbb" {
		t.Fatalf("option off: DAR of a file: %q %v", b, err)
	}
	st, err := os.Stat(filepath.Join(dst, "small/sub/b.txt"))
	if err != nil || st.Mode().Perm() != 0o644 || st.Size() != 3 {
		t.Fatalf("option off: DAR of a file: attributes %v %v", st, err)
	}
}
