package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// V1: volume create refuses every bad request and changes nothing.
func TestVolumeCreateRefusals(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	e.svm("vs2")
	v1 := e.volume("vs1", "vol1")
	base := t.TempDir()
	file := filepath.Join(base, "file")
	writeFile(t, file, "x")
	inside := filepath.Join(v1.HostPath, "sub")
	if err := os.Mkdir(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(v1.HostPath, link); err != nil {
		t.Fatal(err)
	}
	free := filepath.Join(base, "free")
	if err := os.Mkdir(free, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		spec VolumeSpec
		kind error
		msg  string
	}{
		{"duplicate name", VolumeSpec{Name: "vol1", SVM: "vs1", HostPath: free}, ErrExists, `volume "vol1" in Vserver "vs1" already exists`},
		{"unknown SVM", VolumeSpec{Name: "vol9", SVM: "x", HostPath: free}, ErrNotFound, `Vserver "x" does not exist`},
		{"admin SVM", VolumeSpec{Name: "vol9", SVM: "cluster1", HostPath: free}, ErrInvalidArgument, "admin Vserver"},
		{"missing dir", VolumeSpec{Name: "vol9", SVM: "vs1", HostPath: filepath.Join(base, "nope")}, ErrNotFound, "does not exist"},
		{"not a dir", VolumeSpec{Name: "vol9", SVM: "vs1", HostPath: file}, ErrInvalidArgument, "not a directory"},
		{"relative", VolumeSpec{Name: "vol9", SVM: "vs1", HostPath: "data/x"}, ErrInvalidArgument, "absolute"},
		{"empty path", VolumeSpec{Name: "vol9", SVM: "vs1"}, ErrInvalidArgument, "absolute"},
		{"same path", VolumeSpec{Name: "vol9", SVM: "vs1", HostPath: v1.HostPath}, ErrExists, "overlaps"},
		{"same path other SVM", VolumeSpec{Name: "vol9", SVM: "vs2", HostPath: v1.HostPath + "/"}, ErrExists, "overlaps"},
		{"inside", VolumeSpec{Name: "vol9", SVM: "vs2", HostPath: inside}, ErrExists, "overlaps"},
		{"contains", VolumeSpec{Name: "vol9", SVM: "vs2", HostPath: filepath.Dir(v1.HostPath)}, ErrExists, "overlaps"},
		{"symlink to volume", VolumeSpec{Name: "vol9", SVM: "vs2", HostPath: link}, ErrExists, "overlaps"},
		{"bad name", VolumeSpec{Name: "vol-9", SVM: "vs1", HostPath: free}, ErrInvalidArgument, "invalid character"},
		{"digit first", VolumeSpec{Name: "9vol", SVM: "vs1", HostPath: free}, ErrInvalidArgument, ""},
		{"bad type", VolumeSpec{Name: "vol9", SVM: "vs1", HostPath: free, Type: "LS"}, ErrInvalidArgument, "volume type"},
		{"bad state", VolumeSpec{Name: "vol9", SVM: "vs1", HostPath: free, State: "mixed"}, ErrInvalidArgument, "state"},
		{"bad style", VolumeSpec{Name: "vol9", SVM: "vs1", HostPath: free, SecurityStyle: "acl"}, ErrInvalidArgument, "security style"},
		{"bad junction", VolumeSpec{Name: "vol9", SVM: "vs1", HostPath: free, JunctionPath: "vol9"}, ErrInvalidArgument, "junction"},
		{"unknown provider", VolumeSpec{Name: "vol9", SVM: "vs1", HostPath: free, SnapshotProvider: "zfs"}, ErrInvalidArgument, "zfs"},
		{"unknown node", VolumeSpec{Name: "vol9", SVM: "vs1", HostPath: free, Node: "node7"}, ErrNotFound, "node7"},
	}
	for _, c := range cases {
		e.unchanged(c.name, c.kind, c.msg, func() error {
			_, err := e.svc.CreateVolume(e.ctx, c.spec)
			return err
		})
	}
	// A sibling whose name shares a prefix does not overlap.
	sib := v1.HostPath + "x"
	if err := os.Mkdir(sib, 0o755); err != nil {
		t.Fatal(err)
	}
	v, err := e.svc.CreateVolume(e.ctx, VolumeSpec{Name: "vol1", SVM: "vs2", HostPath: sib, Type: "dp", JunctionPath: "/vol1"})
	if err != nil {
		t.Fatalf("sibling path in another SVM: %v", err)
	}
	if !v.ReadOnly() || v.Type != TypeDP || v.State != StateOnline || v.SecurityStyle != StyleUNIX || v.SnapshotProvider != "testcopy" || v.Node != DefaultNodeName {
		t.Errorf("volume = %+v", v)
	}
	free2 := filepath.Join(base, "free2")
	os.Mkdir(free2, 0o755)
	e.unchanged("junction taken", ErrExists, "junction path", func() error {
		_, err := e.svc.CreateVolume(e.ctx, VolumeSpec{Name: "vol2", SVM: "vs2", HostPath: free2, JunctionPath: "/vol1"})
		return err
	})
	vols, _ := e.svc.ListVolumes(e.ctx, "")
	vs2, _ := e.svc.ListVolumes(e.ctx, "vs2")
	if len(vols) != 2 || len(vs2) != 1 {
		t.Errorf("ListVolumes: %d, %d", len(vols), len(vs2))
	}
	if _, err := e.svc.ListVolumes(e.ctx, "nope"); !isKind(err, ErrNotFound) {
		t.Errorf("ListVolumes of unknown SVM: %v", err)
	}
}

// V1: the online, restricted and offline states, ONTAP's refusals, and
// delete only when offline, never touching host data.
func TestVolumeStates(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	v := e.volume("vs1", "vol1")
	writeFile(t, filepath.Join(v.HostPath, "data.txt"), "keep me")
	steps := []struct {
		to   VolumeState
		kind error
	}{
		{StateOnline, ErrInvalidState},
		{StateRestricted, nil},
		{StateRestricted, ErrInvalidState},
		{StateOffline, nil},
		{StateOffline, ErrInvalidState},
		{StateRestricted, nil},
		{StateOnline, nil},
		{StateOffline, nil},
		{StateOnline, nil},
		{"broken", ErrInvalidArgument},
	}
	for i, s := range steps {
		if s.kind != nil {
			e.unchanged(string(s.to), s.kind, "", func() error {
				_, err := e.svc.SetVolumeState(e.ctx, "vs1", "vol1", s.to)
				return err
			})
			continue
		}
		got, err := e.svc.SetVolumeState(e.ctx, "vs1", "vol1", s.to)
		if err != nil || got.State != s.to {
			t.Fatalf("step %d to %s: %+v, %v", i, s.to, got, err)
		}
	}
	e.unchanged("delete online", ErrInvalidState, `volume "vol1" in Vserver "vs1" must be offline to be deleted`, func() error {
		return e.svc.DeleteVolume(e.ctx, "vs1", "vol1")
	})
	e.unchanged("state of unknown", ErrNotFound, `volume "vol9" in Vserver "vs1" does not exist`, func() error {
		_, err := e.svc.SetVolumeState(e.ctx, "vs1", "vol9", StateOffline)
		return err
	})
	// The root volume stays online.
	if _, err := e.svc.ModifySVM(e.ctx, "vs1", SVMChange{RootVolume: ptr("vol1")}); err != nil {
		t.Fatal(err)
	}
	e.unchanged("offline root", ErrInvalidState, "root volume", func() error {
		_, err := e.svc.SetVolumeState(e.ctx, "vs1", "vol1", StateOffline)
		return err
	})
	e.unchanged("root to DP", ErrInvalidArgument, "root volume", func() error {
		_, err := e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{Type: ptr(TypeDP)})
		return err
	})
	if _, err := e.svc.ModifySVM(e.ctx, "vs1", SVMChange{RootVolume: ptr("")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateQtree(e.ctx, QtreeSpec{Name: "q1", SVM: "vs1", Volume: "vol1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetVolumeState(e.ctx, "vs1", "vol1", StateOffline); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteVolume(e.ctx, "vs1", "vol1"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(v.HostPath, "data.txt")); err != nil || string(b) != "keep me" {
		t.Errorf("host data after delete: %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(v.HostPath, "q1")); err != nil || !st.IsDir() {
		t.Errorf("qtree directory after volume delete: %v", err)
	}
	for k := range e.dump() {
		if strings.HasPrefix(k, "storage/qtree/") {
			t.Errorf("qtree record %s left after volume delete", k)
		}
	}
	e.unchanged("delete again", ErrNotFound, "", func() error { return e.svc.DeleteVolume(e.ctx, "vs1", "vol1") })
	// The same directory can be registered again.
	if _, err := e.svc.CreateVolume(e.ctx, VolumeSpec{Name: "vol1", SVM: "vs1", HostPath: v.HostPath, State: StateRestricted}); err != nil {
		t.Fatalf("re-register: %v", err)
	}
}

// D15: changing the type between RW and DP is recorded.
func TestVolumeTypeChange(t *testing.T) {
	now := fixedClock()
	e := newEnv(t, Options{Now: now.now})
	e.svm("vs1")
	v := e.volume("vs1", "vol1")
	if v.ReadOnly() || v.TypeGeneration != 0 || !v.TypeChangedAt.IsZero() {
		t.Fatalf("new volume %+v", v)
	}
	now.advance()
	v, err := e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{Type: ptr(TypeDP), Comment: ptr("mirror")})
	if err != nil {
		t.Fatal(err)
	}
	if !v.ReadOnly() || v.TypeGeneration != 1 || !v.TypeChangedAt.Equal(now.t) || v.Comment != "mirror" {
		t.Errorf("after RW->DP: %+v", v)
	}
	v, _ = e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{Type: ptr(TypeDP)})
	if v.TypeGeneration != 1 {
		t.Errorf("same type bumped the generation: %+v", v)
	}
	v, _ = e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{Type: ptr(VolumeType("rw"))})
	if v.ReadOnly() || v.TypeGeneration != 2 {
		t.Errorf("after DP->RW: %+v", v)
	}
	e.unchanged("bad type", ErrInvalidArgument, "", func() error {
		_, err := e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{Type: ptr(VolumeType("LS"))})
		return err
	})
	e.unchanged("bad style", ErrInvalidArgument, "", func() error {
		_, err := e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{SecurityStyle: ptr(SecurityStyle("nfs4"))})
		return err
	})
	e.unchanged("bad provider", ErrInvalidArgument, "", func() error {
		_, err := e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{SnapshotProvider: ptr("zfs")})
		return err
	})
	v, err = e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{SecurityStyle: ptr(StyleNTFS), JunctionPath: ptr("/v1")})
	if err != nil || v.SecurityStyle != StyleNTFS || v.JunctionPath != "/v1" {
		t.Errorf("modify style/junction: %+v, %v", v, err)
	}
	e.unchanged("move to unknown node", ErrNotFound, `node "node2"`, func() error {
		_, err := e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{Node: ptr("node2")})
		return err
	})
	if _, err := e.svc.AddNode(e.ctx, "node2"); err != nil {
		t.Fatal(err)
	}
	if v, err = e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{Node: ptr("node2")}); err != nil || v.Node != "node2" {
		t.Errorf("move: %+v %v", v, err)
	}
	e.reopen()
	v, err = e.svc.GetVolume(e.ctx, "vs1", "vol1")
	if err != nil || v.Node != "node2" || v.TypeGeneration != 2 || v.SecurityStyle != StyleNTFS || v.JunctionPath != "/v1" || v.Comment != "mirror" {
		t.Errorf("after reopen: %+v, %v", v, err)
	}
}
