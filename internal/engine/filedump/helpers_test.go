package filedump

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// tempCatalog opens a bbolt catalog in a temporary directory, wrapped in
// catalog.Rerun: every Update function runs twice, as in a store that
// retries (issue 12, item 5).
func tempCatalog(t testing.TB) catalog.Store {
	t.Helper()
	st, err := catalog.OpenBolt(filepath.Join(t.TempDir(), "cat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return catalog.Rerun(st)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, p string, data []byte, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, data, mode))
	must(t, os.Chmod(p, mode))
}

// longPathDirs returns a relative directory path longer than n bytes.
func longPathDirs(n int) string {
	var parts []string
	l := 0
	for i := 0; l <= n; i++ {
		s := fmt.Sprintf("%02d%s", i, strings.Repeat("d", 198))
		parts = append(parts, s)
		l += len(s) + 1
	}
	return filepath.Join(parts...)
}

// makeTree builds a tree with every file type and the awkward cases of the
// acceptance tests (D4): uid/gid > 65535, xattrs, a 254-byte name, a
// non-UTF-8 name, a path over 3,000 bytes, hard links, a sparse file.
func makeTree(t testing.TB, root string) {
	t.Helper()
	writeFile(t, filepath.Join(root, "hello.txt"), []byte("hello world\n"), 0o644)
	rnd := make([]byte, 150_000)
	for i := range rnd {
		rnd[i] = byte(i*7 + i/251)
	}
	writeFile(t, filepath.Join(root, "dir1", "random.bin"), rnd, 0o640)
	writeFile(t, filepath.Join(root, "dir1", "dir2", "dir3", "deep.txt"), []byte("deep"), 0o600)
	must(t, os.Symlink("hello.txt", filepath.Join(root, "short-link")))
	must(t, os.Symlink(strings.Repeat("x/", 300)+"target", filepath.Join(root, "long-link")))
	must(t, os.Link(filepath.Join(root, "hello.txt"), filepath.Join(root, "dir1", "hardlink")))
	must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o620))
	must(t, unix.Mknod(filepath.Join(root, "null-dev"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(filepath.Join(root, "blk-dev"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 200))))
	// A socket node (made with mknod, as no process needs to listen on it).
	must(t, unix.Mknod(filepath.Join(root, "sock"), unix.S_IFSOCK|0o755, 0))
	owned := filepath.Join(root, "owned")
	writeFile(t, owned, []byte("big ids"), 0o604)
	must(t, os.Lchown(owned, 70000, 70001))
	must(t, unix.Lsetxattr(owned, "user.comment", []byte("a comment"), 0))
	must(t, unix.Lsetxattr(owned, "user.big", bytes.Repeat([]byte("v"), 300), 0))
	writeFile(t, filepath.Join(root, strings.Repeat("n", 254)), []byte("long name"), 0o644)
	writeFile(t, filepath.Join(root, "latin1-\xe9\xe8"), []byte("not utf-8"), 0o644)
	deep := filepath.Join(root, longPathDirs(3000))
	writeFile(t, filepath.Join(deep, "leaf.txt"), []byte("far down"), 0o644)
	sp := filepath.Join(root, "sparse.bin")
	f, err := os.Create(sp)
	must(t, err)
	_, err = f.WriteAt([]byte("start"), 0)
	must(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte("M"), 5000), 2<<20)
	must(t, err)
	must(t, f.Truncate(4<<20))
	must(t, f.Close())
	must(t, os.Mkdir(filepath.Join(root, "emptydir"), 0o711))
	for i := 0; i < 60; i++ {
		writeFile(t, filepath.Join(root, "manydir", fmt.Sprintf("file%03d", i)), []byte(fmt.Sprint(i)), 0o644)
	}
	// Fixed, distinct times (restored trees must keep mtimes).
	tm := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(tm.UnixNano()), unix.NsecToTimespec(tm.UnixNano())}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
		tm = tm.Add(time.Second + time.Microsecond)
		return nil
	})
}

// fileInfo is what compareTrees compares of one path.
type fileInfo struct {
	mode   uint32
	uid    uint32
	gid    uint32
	size   int64
	mtime  int64 // microseconds
	sum    string
	link   string
	rdev   uint64
	xattrs string
	group  string // first path of the hard-link group
	blocks int64
}

// snapshotTree records every path below root except names in skip.
func snapshotTree(t testing.TB, root string, skip ...string) map[string]fileInfo {
	t.Helper()
	out := map[string]fileInfo{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		for _, s := range skip {
			if rel == s {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fi := fileInfo{mode: st.Mode, uid: st.Uid, gid: st.Gid, mtime: st.Mtim.Nano() / 1000, rdev: st.Rdev}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fi.size = st.Size
			fi.sum = fmt.Sprintf("%x", sha256.Sum256(b))
			fi.blocks = st.Blocks
			if g, ok := inodes[st.Ino]; ok {
				fi.group = g
			} else {
				inodes[st.Ino] = rel
				fi.group = rel
			}
		case unix.S_IFLNK:
			fi.link, _ = os.Readlink(p)
		case unix.S_IFDIR:
			fi.mtime = 0 // directory mtimes are compared separately where it matters
		}
		xs, err := listXattrs(p)
		if err != nil {
			return err
		}
		var parts []string
		for _, x := range xs {
			if strings.HasPrefix(x.Name, "user.") {
				parts = append(parts, x.Name+"="+string(x.Value))
			}
		}
		sort.Strings(parts)
		fi.xattrs = strings.Join(parts, ";")
		out[rel] = fi
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareTrees fails the test for every difference between two snapshots.
func compareTrees(t testing.TB, want, got map[string]fileInfo) {
	t.Helper()
	n := 0
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("missing %q", shorten(p))
			n++
		} else if g != w {
			if w.blocks != g.blocks && (w.blocks == 0) == (g.blocks == 0) && w.blocks < 64 == (g.blocks < 64) {
				g.blocks = w.blocks // holes kept roughly: both small or both large
			}
			if g != w {
				t.Errorf("%q differs:\n want %+v\n  got %+v", shorten(p), w, g)
				n++
			}
		}
		if n > 10 {
			t.Fatal("too many differences")
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected %q", shorten(p))
			n++
			if n > 10 {
				t.Fatal("too many differences")
			}
		}
	}
}

func shorten(p string) string {
	if len(p) > 120 {
		return p[:50] + "..." + p[len(p)-50:]
	}
	return p
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

var errTest = errors.New("test error")
