package testutil

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/fsattr"
	"golang.org/x/sys/unix"
)

// TreeManifest describes every entry under root (but .snapshot) with what a
// recovery must bring back: type, mode, owner, size, modification time
// (and access time of files), content, link target, extended attributes
// and which paths share an inode.
func TreeManifest(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == ".snapshot" {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d mtime=%d", st.Mode, st.Uid, st.Gid, st.Mtim.Nano())
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			desc += fmt.Sprintf(" size=%d atime=%d sha=%s", st.Size, st.Atim.Nano(), fileHash(t, p))
			if st.Nlink > 1 {
				inodes[st.Ino] = append(inodes[st.Ino], rel)
			}
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			desc += fmt.Sprintf(" rdev=%d", st.Rdev)
		}
		out[rel] = desc + xattrDesc(t, p, st.Mode&unix.S_IFMT == unix.S_IFLNK)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, paths := range inodes {
		sort.Strings(paths)
		out["links:"+paths[0]] = strings.Join(paths, ",")
	}
	return out
}

// fileHash reads a file without changing its access time.
func fileHash(t testing.TB, p string) string {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOATIME, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:8])
}

func xattrDesc(t testing.TB, p string, symlink bool) string {
	if symlink {
		return ""
	}
	names, err := fsattr.ListXattrs(p)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		v, _ := fsattr.GetXattr(p, n)
		fmt.Fprintf(&b, " %s=%x", n, v)
	}
	return b.String()
}

// CompareManifests fails with every difference between two manifests.
func CompareManifests(t testing.TB, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s missing (want %s)", k, w)
		} else if g != w {
			t.Errorf("%s:\n got %s\nwant %s", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s should not be there (%s)", k, g)
		}
	}
}
