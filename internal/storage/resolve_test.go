package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// N15: /vserver_name/volume_name[/path] resolves to the volume's host path;
// escapes and unknown names are refused with clear errors.
func TestResolve(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	v := e.volume("vs1", "vol1")
	outside := t.TempDir()
	writeFile(t, filepath.Join(v.HostPath, "q1", "dir", "f"), "x")
	if err := os.Symlink(outside, filepath.Join(v.HostPath, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("q1/dir", filepath.Join(v.HostPath, "inner")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/x", filepath.Join(v.HostPath, "dangling")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateSnapshot(e.ctx, "vs1", "vol1", "snap1"); err != nil {
		t.Fatal(err)
	}
	snapRoot := filepath.Join(v.HostPath, ".snapshot", "snap1")
	if _, err := e.svc.CreateQtree(e.ctx, QtreeSpec{Name: "q1", SVM: "vs1", Volume: "vol1", Existing: true}); err != nil {
		t.Fatal(err)
	}
	good := []struct {
		path, root, rel, snap string
	}{
		{"/vs1/vol1", v.HostPath, "", ""},
		{"/vs1/vol1/", v.HostPath, "", ""},
		{"//vs1//vol1//q1/dir/", v.HostPath, "q1/dir", ""},
		{"/vs1/vol1/q1/dir/f", v.HostPath, "q1/dir/f", ""},
		{"/vs1/vol1/not/yet/there", v.HostPath, "not/yet/there", ""},
		{"/vs1/vol1/inner/f", v.HostPath, "inner/f", ""},
		{"/vs1/vol1/.snapshot/snap1", snapRoot, "", "snap1"},
		{"/vs1/vol1/.snapshot/snap1/q1/dir", snapRoot, "q1/dir", "snap1"},
		{"/vs1/vol1/.snapshot", v.HostPath, ".snapshot", ""},
	}
	for _, c := range good {
		loc, err := e.svc.Resolve(e.ctx, c.path)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if loc.SVM.Name != "vs1" || loc.Volume.Name != "vol1" || loc.Root != c.root || loc.RelPath != c.rel ||
			loc.HostPath != filepath.Join(c.root, c.rel) {
			t.Errorf("%s: %+v", c.path, loc)
		}
		if (loc.Snapshot != nil) != (c.snap != "") || loc.Snapshot != nil && loc.Snapshot.Name != c.snap {
			t.Errorf("%s: snapshot %+v", c.path, loc.Snapshot)
		}
		inQtree := strings.HasPrefix(c.rel+"/", "q1/")
		if (loc.Qtree != nil) != inQtree || inQtree && loc.Qtree.Name != "q1" {
			t.Errorf("%s: qtree %+v", c.path, loc.Qtree)
		}
	}
	bad := []struct {
		path string
		kind error
		msg  string
	}{
		{"", ErrInvalidArgument, "/vserver_name/volume_name"},
		{"vs1/vol1", ErrInvalidArgument, "/vserver_name/volume_name"},
		{"/vs1", ErrInvalidArgument, "/vserver_name/volume_name"},
		{"/", ErrInvalidArgument, ""},
		{"/vs1/vol1/../vol2", ErrInvalidArgument, ".."},
		{"/vs1/vol1/q1/../../etc", ErrInvalidArgument, ".."},
		{"/vs1/../etc/passwd", ErrInvalidArgument, ".."},
		{"/vs1/vol1/./q1", ErrInvalidArgument, ""},
		{"/vs1/vol1/a\x00b", ErrInvalidArgument, "NUL"},
		{"/vs9/vol1", ErrNotFound, `Vserver "vs9" does not exist`},
		{"/vs1/vol9/x", ErrNotFound, `volume "vol9" in Vserver "vs1" does not exist`},
		{"/vs1/vol1/escape", ErrInvalidArgument, "out of the volume"},
		{"/vs1/vol1/escape/sub", ErrInvalidArgument, "out of the volume"},
		{"/vs1/vol1/dangling", ErrInvalidArgument, "points nowhere"},
		{"/vs1/vol1/.snapshot/nosuch", ErrNotFound, `Snapshot copy "nosuch"`},
	}
	for _, c := range bad {
		_, err := e.svc.Resolve(e.ctx, c.path)
		if !isKind(err, c.kind) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: error %v, want %v containing %q", c.path, err, c.kind, c.msg)
		}
	}
}

func TestSplitBackupPath(t *testing.T) {
	svm, vol, rel, err := SplitBackupPath("/vs1/vol1/a/b")
	if err != nil || svm != "vs1" || vol != "vol1" || rel != "a/b" {
		t.Errorf("got %q %q %q %v", svm, vol, rel, err)
	}
}

// FuzzSplitBackupPath: any input either fails with ErrInvalidArgument or
// gives clean components that rebuild an equivalent path.
func FuzzSplitBackupPath(f *testing.F) {
	for _, s := range []string{"/vs1/vol1", "/vs1/vol1/a/b/", "//a//b", "/a/../b", "/a/b/..", "x", "", "/", "/a/b/\x00", "/a/b/c/./d", "/ä/ö/ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		svm, vol, rel, err := SplitBackupPath(p)
		if err != nil {
			if !isKind(err, ErrInvalidArgument) {
				t.Fatalf("%q: error kind %v", p, err)
			}
			return
		}
		for _, c := range append([]string{svm, vol}, strings.Split(rel, "/")...) {
			if c == "." || c == ".." || strings.ContainsRune(c, 0) {
				t.Fatalf("%q: bad component %q", p, c)
			}
		}
		if svm == "" || vol == "" || strings.Contains(svm, "/") || strings.Contains(vol, "/") || strings.HasPrefix(rel, "/") || strings.HasSuffix(rel, "/") || strings.Contains(rel, "//") {
			t.Fatalf("%q: %q %q %q", p, svm, vol, rel)
		}
		s2, v2, r2, err := SplitBackupPath("/" + svm + "/" + vol + "/" + rel)
		if err != nil || s2 != svm || v2 != vol || r2 != rel {
			t.Fatalf("%q: round trip %q %q %q %v", p, s2, v2, r2, err)
		}
	})
}

// FuzzValidateSnapshotName: accepted names are single, safe path
// components.
func FuzzValidateSnapshotName(f *testing.F) {
	for _, s := range []string{"snap1", "snapshot_for_backup.0", ".", "..", "a/b", "", "a b", "\xff", strings.Repeat("x", 241)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateSnapshotName(name) != nil {
			return
		}
		if name == "" || len(name) > 240 || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, ".") || filepath.Base(name) != name {
			t.Fatalf("accepted %q", name)
		}
	})
}

// V1: the LUN flag is an extended attribute on a regular file.
func TestLUN(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	v := e.volume("vs1", "vol1")
	f := filepath.Join(v.HostPath, "lun0")
	writeFile(t, f, "blocks")
	if err := unix.Setxattr(f, "user.probe", []byte("1"), 0); err != nil && os.Geteuid() != 0 {
		t.Skipf("no user xattrs on %s: %v", v.HostPath, err)
	}
	if on, err := IsLUN(f); err != nil || on {
		t.Fatalf("fresh file: %v %v", on, err)
	}
	if err := e.svc.SetVolumeLUN(e.ctx, "vs1", "vol1", "lun0", true); err != nil {
		t.Fatal(err)
	}
	if on, err := IsLUN(f); err != nil || !on {
		t.Errorf("after set: %v %v", on, err)
	}
	want := LUNXattrUser
	if os.Geteuid() == 0 {
		want = LUNXattrTrusted
	}
	if _, err := unix.Getxattr(f, want, make([]byte, 8)); err != nil {
		t.Errorf("xattr %s missing: %v", want, err)
	}
	if err := SetLUN(f, false); err != nil {
		t.Fatal(err)
	}
	if on, err := IsLUN(f); err != nil || on {
		t.Errorf("after clear: %v %v", on, err)
	}
	if err := SetLUN(v.HostPath, true); !isKind(err, ErrInvalidArgument) {
		t.Errorf("directory as LUN: %v", err)
	}
	if err := os.Symlink("lun0", filepath.Join(v.HostPath, "ln")); err != nil {
		t.Fatal(err)
	}
	if err := SetLUN(filepath.Join(v.HostPath, "ln"), true); !isKind(err, ErrInvalidArgument) {
		t.Errorf("symlink as LUN: %v", err)
	}
	if _, err := IsLUN(filepath.Join(v.HostPath, "missing")); err == nil {
		t.Error("IsLUN of a missing file succeeded")
	}
	if err := e.svc.SetVolumeLUN(e.ctx, "vs1", "vol1", "", true); !isKind(err, ErrInvalidArgument) {
		t.Errorf("volume root as LUN: %v", err)
	}
	if _, err := e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{Type: ptr(TypeDP)}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetVolumeLUN(e.ctx, "vs1", "vol1", "lun0", true); !isKind(err, ErrReadOnly) {
		t.Errorf("LUN on DP volume: %v", err)
	}
}

func TestVolumeSpace(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	e.volume("vs1", "vol1")
	sp, err := e.svc.VolumeSpace(e.ctx, "vs1", "vol1")
	if err != nil || sp.Total == 0 || sp.Avail > sp.Total || sp.Free > sp.Total {
		t.Errorf("space %+v %v", sp, err)
	}
	if _, err := e.svc.VolumeSpace(e.ctx, "vs1", "nope"); !isKind(err, ErrNotFound) {
		t.Errorf("space of unknown volume: %v", err)
	}
}

func BenchmarkResolve(b *testing.B) {
	e := newEnv(b, Options{})
	e.svm("vs1")
	v := e.volume("vs1", "vol1")
	writeFile(b, filepath.Join(v.HostPath, "q1", "dir", "f"), "x")
	for b.Loop() {
		if _, err := e.svc.Resolve(e.ctx, "/vs1/vol1/q1/dir/f"); err != nil {
			b.Fatal(err)
		}
	}
}
