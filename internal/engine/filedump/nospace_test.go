package filedump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// TestRestoreOutOfSpace (issue 11 item 7, D9, D14): a FORCE=Y restore into a
// real file system too small for the image left a big file cut short and
// small files empty, looking restored. Every file the restore could not
// write completely is now removed and reported by name (ENOSPC, "the partly
// written file was removed"); every file left equals the source; the state
// saved for the next incremental does not list the lost files.
func TestRestoreOutOfSpace(t *testing.T) {
	src := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	for i := 0; i < 3; i++ {
		writeFile(t, filepath.Join(src, fmt.Sprintf("big%d", i)), big, 0o644)
	}
	for i := 0; i < 50; i++ {
		writeFile(t, filepath.Join(src, "small", fmt.Sprintf("s%02d", i)), bytes.Repeat([]byte{byte(i)}, 20000), 0o640)
	}
	img := filepath.Join(t.TempDir(), "img")
	backupDir(t, src, img, nil, nil)
	dst := testutil.LoopFS(t, "ext4", 32)
	state := t.TempDir()
	f, err := os.Open(img)
	must(t, err)
	defer f.Close()
	failed := map[string]error{}
	res, err := Restore(context.Background(), RestoreRequest{Input: f, Dest: dst, StateDir: state, Env: Env{"FORCE": "Y"},
		OnName: func(r NameResult) {
			if r.Err != nil {
				failed[r.Path] = r.Err
			}
		}})
	must(t, err)
	if len(failed) == 0 || res.Errors != len(failed) {
		t.Fatalf("%d names reported failed, %d counted: the file system should be too small", len(failed), res.Errors)
	}
	want := snapshotTree(t, src)
	got := snapshotTree(t, dst, SymtabName, "lost+found")
	restored := 0
	for p, w := range want {
		g, ok := got[p]
		if ferr := failed[p]; ferr != nil {
			if ok {
				t.Errorf("%s failed (%v) and is still there (%d bytes)", p, ferr, g.size)
			}
			if !errors.Is(ferr, unix.ENOSPC) {
				t.Errorf("%s: %v, want ENOSPC", p, ferr)
			}
			continue
		}
		if !ok {
			t.Errorf("%s is missing and was not reported", p)
			continue
		}
		if w.mode&unix.S_IFMT == unix.S_IFREG {
			restored++
		}
		if g != w && w.mode&unix.S_IFMT != unix.S_IFDIR {
			t.Errorf("%s differs:\n want %+v\n  got %+v", p, w, g)
		}
	}
	partial := 0
	for p, err := range failed {
		if strings.Contains(err.Error(), "the partly written file was removed") {
			partial++
		}
		t.Logf("%s: %v", p, err)
	}
	if partial == 0 || restored == 0 {
		t.Errorf("%d files restored, %d partly written and removed: the test did not fill the file system midway", restored, partial)
	}
	st, err := loadSymtab(state)
	must(t, err)
	for p := range failed {
		if _, ok := st.Paths[p]; ok {
			t.Errorf("the state lists %s, which was not restored", p)
		}
	}
}
