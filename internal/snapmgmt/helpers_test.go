package snapmgmt

import (
	"context"
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

	"github.com/tapestry-ndmp/tapestry/internal/fsattr"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
	"golang.org/x/sys/unix"
)

// env is a storage service with one SVM and the Manager over it.
type env struct {
	t   *testing.T
	ctx context.Context
	st  *storage.Service
	m   *Manager
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // hang guard
	t.Cleanup(cancel)
	st := storage.New(testutil.OpenCatalog(t, filepath.Join(t.TempDir(), "c.db")), storage.Options{})
	if _, err := st.Init(ctx, storage.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSVM(ctx, storage.SVMSpec{Name: "vs1"}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, st: st, m: New(st, 0)}
}

// volume registers dir as volume name with the given provider and type.
func (e *env) volume(name, dir, provider string, typ storage.VolumeType) {
	e.t.Helper()
	_, err := e.st.CreateVolume(e.ctx, storage.VolumeSpec{Name: name, SVM: "vs1", HostPath: dir, SnapshotProvider: provider, Type: typ})
	if err != nil {
		e.t.Fatal(err)
	}
}

// wantCode fails unless err carries the NDMP error code.
func wantCode(t *testing.T, what string, err error, code ndmp.Error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("%s: got %v (code %v), want %v", what, err, Code(err), code)
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// manifest describes every entry under root (but .snapshot) with what a
// recovery must bring back: type, mode, owner, size, modification time
// (and access time of files), content, link target, extended attributes
// and which paths share an inode.
func manifest(t *testing.T, root string) map[string]string {
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
func fileHash(t *testing.T, p string) string {
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

func xattrDesc(t *testing.T, p string, symlink bool) string {
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

// compare fails with every difference between two manifests.
func compare(t *testing.T, got, want map[string]string) {
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
