package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

func walkTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range []string{".snapshot/s1/a", ".snapshot/.s1.idmap", "a/b/c", "a/.snapshot/kept", "skip/x", "z"} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func walkList(t *testing.T, ctx context.Context, root string, fn snapshot.WalkFunc) ([]string, error) {
	t.Helper()
	var got []string
	err := snapshot.Walk(ctx, root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		got = append(got, rel)
		if fn != nil {
			return fn(path, d, err)
		}
		return nil
	})
	return got, err
}

func TestWalkSkipsSnapshotDir(t *testing.T) {
	root := walkTree(t)
	got, err := walkList(t, context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := ". a a/.snapshot a/.snapshot/kept a/b a/b/c skip skip/x z"
	if strings.Join(got, " ") != want {
		t.Errorf("Walk visited %q, want %q", strings.Join(got, " "), want)
	}
	// Walking a subdirectory: its own .snapshot is the one skipped.
	got, err = walkList(t, context.Background(), filepath.Join(root, "a"), nil)
	if err != nil || strings.Join(got, " ") != ". b b/c" {
		t.Errorf("Walk of a = %q, %v", got, err)
	}
}

func TestWalkSkipDirSkipAllAndErrors(t *testing.T) {
	root := walkTree(t)
	got, err := walkList(t, context.Background(), root, func(path string, d fs.DirEntry, err error) error {
		if d.Name() == "skip" {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil || strings.Contains(strings.Join(got, " "), "skip/x") {
		t.Errorf("SkipDir: %q, %v", got, err)
	}
	got, err = walkList(t, context.Background(), root, func(path string, d fs.DirEntry, err error) error {
		if d.Name() == "b" {
			return fs.SkipAll
		}
		return nil
	})
	if err != nil || strings.Join(got, " ") != ". a a/.snapshot a/.snapshot/kept a/b" {
		t.Errorf("SkipAll: %q, %v", got, err)
	}
	boom := errors.New("boom")
	_, err = walkList(t, context.Background(), root, func(string, fs.DirEntry, error) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("callback error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := walkList(t, ctx, root, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled walk: %v", err)
	}
	err = snapshot.Walk(context.Background(), filepath.Join(root, "missing"), func(_ string, _ fs.DirEntry, err error) error { return err })
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("walk of a missing root: %v", err)
	}
}

func TestSpace(t *testing.T) {
	mnt := testutil.LoopFS(t, "ext4", 64)
	s, err := snapshot.Space(mnt)
	if err != nil {
		t.Fatal(err)
	}
	// stat(1) is an independent reader of the same statfs numbers.
	out := strings.Fields(testutil.Run(t, "stat", "-f", "-c", "%S %b %f %a %c %d", mnt))
	var bs, blocks, bfree, bavail, files, ffree uint64
	if _, err := fmt.Sscan(strings.Join(out, " "), &bs, &blocks, &bfree, &bavail, &files, &ffree); err != nil {
		t.Fatalf("parse stat output %q: %v", out, err)
	}
	want := snapshot.SpaceInfo{TotalBytes: blocks * bs, FreeBytes: bfree * bs, AvailableBytes: bavail * bs, TotalInodes: files, FreeInodes: ffree}
	if s != want {
		t.Errorf("Space = %+v, stat says %+v", s, want)
	}
	if s.TotalBytes > 64<<20 || s.TotalBytes < 40<<20 || s.AvailableBytes > s.FreeBytes || s.FreeInodes > s.TotalInodes {
		t.Errorf("implausible Space of a 64 MiB ext4: %+v", s)
	}
	before := s.FreeBytes
	if err := os.WriteFile(filepath.Join(mnt, "f"), make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "sync")
	s, err = snapshot.Space(mnt)
	if err != nil {
		t.Fatal(err)
	}
	if before-s.FreeBytes < 8<<20 {
		t.Errorf("writing 8 MiB took %d free bytes", before-s.FreeBytes)
	}
	if _, err := snapshot.Space(filepath.Join(mnt, "missing")); err == nil {
		t.Error("Space of a missing path succeeded")
	}
}

func TestByName(t *testing.T) {
	for _, n := range []string{"auto", "btrfs", "reflink", "copy"} {
		p, err := snapshot.ByName(n)
		if err != nil || p.Name() != n {
			t.Errorf("ByName(%q) = %v, %v", n, p, err)
		}
	}
	if _, err := snapshot.ByName("zfs"); err == nil || !strings.Contains(err.Error(), "zfs") {
		t.Errorf("ByName(zfs): %v", err)
	}
	if _, err := snapshot.Auto(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Auto on a missing volume succeeded")
	}
}

func TestDeleteAndIdentityErrors(t *testing.T) {
	vol := t.TempDir()
	ctx := context.Background()
	for _, p := range []snapshot.Provider{snapshot.Copy{}, snapshot.Reflink{}, snapshot.Btrfs{}} {
		if err := p.Delete(ctx, vol, "nope"); !errors.Is(err, snapshot.ErrNotFound) {
			t.Errorf("%s Delete of a missing snapshot: %v", p.Name(), err)
		}
		if _, err := p.Identity(vol, "nope"); !errors.Is(err, snapshot.ErrNotFound) {
			t.Errorf("%s Identity of a missing snapshot: %v", p.Name(), err)
		}
		if err := p.Delete(ctx, vol, "../escape"); err == nil {
			t.Errorf("%s Delete accepted a name with a slash", p.Name())
		}
	}
	// A snapshot whose identity map was damaged says so.
	if err := os.WriteFile(filepath.Join(vol, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (snapshot.Copy{}).Create(ctx, vol, "s"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, snapshot.Dir, ".s.idmap"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (snapshot.Copy{}).Identity(vol, "s"); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("Identity with a damaged map: %v", err)
	}
}
