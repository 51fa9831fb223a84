package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// V1: qtrees are top-level directories; create makes the directory, delete
// refuses a non-empty one unless forced.
func TestQtree(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	v := e.volume("vs1", "vol1")
	q, err := e.svc.CreateQtree(e.ctx, QtreeSpec{Name: "q1", SVM: "vs1", Volume: "vol1"})
	if err != nil {
		t.Fatal(err)
	}
	if q.ID != 1 || q.SecurityStyle != StyleUNIX {
		t.Errorf("qtree %+v", q)
	}
	if st, err := os.Stat(filepath.Join(v.HostPath, "q1")); err != nil || !st.IsDir() || st.Mode().Perm() != 0o755 {
		t.Errorf("qtree directory: %v %v", st, err)
	}
	writeFile(t, filepath.Join(v.HostPath, "plain"), "x")
	if err := os.Mkdir(filepath.Join(v.HostPath, "olddir"), 0o700); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		spec QtreeSpec
		kind error
		msg  string
	}{
		{"duplicate", QtreeSpec{Name: "q1", SVM: "vs1", Volume: "vol1"}, ErrExists, `qtree "q1" in volume "vol1" of Vserver "vs1" already exists`},
		{"file in the way", QtreeSpec{Name: "plain", SVM: "vs1", Volume: "vol1"}, ErrExists, "already exists"},
		{"dir in the way", QtreeSpec{Name: "olddir", SVM: "vs1", Volume: "vol1"}, ErrExists, "already exists"},
		{"existing is a file", QtreeSpec{Name: "plain", SVM: "vs1", Volume: "vol1", Existing: true}, ErrInvalidArgument, "not a directory"},
		{"existing missing", QtreeSpec{Name: "gone", SVM: "vs1", Volume: "vol1", Existing: true}, ErrNotFound, ""},
		{"slash", QtreeSpec{Name: "a/b", SVM: "vs1", Volume: "vol1"}, ErrInvalidArgument, ""},
		{"dotdot", QtreeSpec{Name: "..", SVM: "vs1", Volume: "vol1"}, ErrInvalidArgument, ""},
		{"snapshot dir", QtreeSpec{Name: ".snapshot", SVM: "vs1", Volume: "vol1"}, ErrInvalidArgument, ""},
		{"empty", QtreeSpec{Name: "", SVM: "vs1", Volume: "vol1"}, ErrInvalidArgument, ""},
		{"too long", QtreeSpec{Name: string(make([]byte, 65)), SVM: "vs1", Volume: "vol1"}, ErrInvalidArgument, ""},
		{"bad style", QtreeSpec{Name: "q2", SVM: "vs1", Volume: "vol1", SecurityStyle: "x"}, ErrInvalidArgument, ""},
		{"unknown volume", QtreeSpec{Name: "q2", SVM: "vs1", Volume: "vol9"}, ErrNotFound, `volume "vol9" in Vserver "vs1" does not exist`},
		{"unknown SVM", QtreeSpec{Name: "q2", SVM: "vs9", Volume: "vol1"}, ErrNotFound, `Vserver "vs9" does not exist`},
	}
	for _, c := range bad {
		e.unchanged(c.name, c.kind, c.msg, func() error {
			_, err := e.svc.CreateQtree(e.ctx, c.spec)
			return err
		})
	}
	if _, err := os.Stat(filepath.Join(v.HostPath, "q2")); !os.IsNotExist(err) {
		t.Errorf("a refused create left a directory: %v", err)
	}
	q, err = e.svc.CreateQtree(e.ctx, QtreeSpec{Name: "olddir", SVM: "vs1", Volume: "vol1", Existing: true, SecurityStyle: StyleMixed})
	if err != nil || q.ID != 2 || q.SecurityStyle != StyleMixed {
		t.Fatalf("register existing: %+v, %v", q, err)
	}
	if q, err = e.svc.ModifyQtree(e.ctx, "vs1", "vol1", "olddir", StyleNTFS); err != nil || q.SecurityStyle != StyleNTFS {
		t.Errorf("modify: %+v %v", q, err)
	}
	e.unchanged("modify bad style", ErrInvalidArgument, "", func() error {
		_, err := e.svc.ModifyQtree(e.ctx, "vs1", "vol1", "olddir", "x")
		return err
	})

	// Delete.
	writeFile(t, filepath.Join(v.HostPath, "q1", "sub", "f"), "data")
	e.unchanged("delete non-empty", ErrInUse, "not empty", func() error { return e.svc.DeleteQtree(e.ctx, "vs1", "vol1", "q1", false) })
	if _, err := os.Stat(filepath.Join(v.HostPath, "q1", "sub", "f")); err != nil {
		t.Errorf("refused delete removed data: %v", err)
	}
	e.unchanged("delete unknown", ErrNotFound, `qtree "zz"`, func() error { return e.svc.DeleteQtree(e.ctx, "vs1", "vol1", "zz", true) })
	if err := e.svc.DeleteQtree(e.ctx, "vs1", "vol1", "q1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(v.HostPath, "q1")); !os.IsNotExist(err) {
		t.Errorf("forced delete left the directory: %v", err)
	}
	if err := e.svc.DeleteQtree(e.ctx, "vs1", "vol1", "olddir", false); err != nil {
		t.Fatalf("delete empty: %v", err)
	}
	// The freed id is used again.
	q, err = e.svc.CreateQtree(e.ctx, QtreeSpec{Name: "q3", SVM: "vs1", Volume: "vol1"})
	if err != nil || q.ID != 1 {
		t.Errorf("id reuse: %+v %v", q, err)
	}

	// Read-only and offline volumes refuse qtree changes.
	if _, err := e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{Type: ptr(TypeDP)}); err != nil {
		t.Fatal(err)
	}
	e.unchanged("create on DP", ErrReadOnly, "read-only", func() error {
		_, err := e.svc.CreateQtree(e.ctx, QtreeSpec{Name: "q4", SVM: "vs1", Volume: "vol1"})
		return err
	})
	e.unchanged("delete on DP", ErrReadOnly, "", func() error { return e.svc.DeleteQtree(e.ctx, "vs1", "vol1", "q3", false) })
	if _, err := e.svc.ModifyVolume(e.ctx, "vs1", "vol1", VolumeChange{Type: ptr(TypeRW)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetVolumeState(e.ctx, "vs1", "vol1", StateOffline); err != nil {
		t.Fatal(err)
	}
	e.unchanged("create on offline", ErrInvalidState, "offline", func() error {
		_, err := e.svc.CreateQtree(e.ctx, QtreeSpec{Name: "q4", SVM: "vs1", Volume: "vol1"})
		return err
	})
	e.reopen()
	qs, err := e.svc.ListQtrees(e.ctx, "vs1", "vol1")
	if err != nil || len(qs) != 1 || qs[0].Name != "q3" {
		t.Errorf("after reopen: %+v %v", qs, err)
	}
}

// failingUpdate is a catalog whose Update calls fail (a commit that does
// not make it) without writing anything.
type failingUpdate struct{ catalog.Store }

var errCommit = errors.New("commit failed")

func (f failingUpdate) Update(context.Context, func(catalog.Tx) error) error { return errCommit }

// Qtree create and delete make and remove the directory outside the
// catalog transaction (issue 12, item 5): under a store that runs every
// Update twice (the fixture's) they work; a registration that fails
// removes the directory create made; a delete whose registration fails
// leaves the qtree registered, and deleting again finishes.
func TestQtreeDirOutsideTransaction(t *testing.T) {
	e := newEnv(t, Options{})
	e.svm("vs1")
	v := e.volume("vs1", "vol1")
	dir := filepath.Join(v.HostPath, "q1")
	if _, err := e.svc.CreateQtree(e.ctx, QtreeSpec{Name: "q1", SVM: "vs1", Volume: "vol1"}); err != nil {
		t.Fatalf("create under a rerunning store: %v", err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("qtree directory: %v", err)
	}
	if err := e.svc.DeleteQtree(e.ctx, "vs1", "vol1", "q1", false); err != nil {
		t.Fatalf("delete under a rerunning store: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("deleted qtree's directory: %v", err)
	}

	failing := New(failingUpdate{e.store}, e.opts)
	if _, err := failing.CreateQtree(e.ctx, QtreeSpec{Name: "q2", SVM: "vs1", Volume: "vol1"}); !errors.Is(err, errCommit) {
		t.Fatalf("create with a failing commit: %v", err)
	}
	if _, err := os.Stat(filepath.Join(v.HostPath, "q2")); !os.IsNotExist(err) {
		t.Fatalf("a failed create left its directory: %v", err)
	}

	if _, err := e.svc.CreateQtree(e.ctx, QtreeSpec{Name: "q3", SVM: "vs1", Volume: "vol1"}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(v.HostPath, "q3", "f"), "data")
	if err := failing.DeleteQtree(e.ctx, "vs1", "vol1", "q3", true); !errors.Is(err, errCommit) {
		t.Fatalf("delete with a failing commit: %v", err)
	}
	if _, err := e.svc.GetQtree(e.ctx, "vs1", "vol1", "q3"); err != nil {
		t.Fatalf("the qtree whose delete failed is no longer registered: %v", err)
	}
	if err := e.svc.DeleteQtree(e.ctx, "vs1", "vol1", "q3", false); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	if _, err := e.svc.GetQtree(e.ctx, "vs1", "vol1", "q3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the second delete: %v", err)
	}
}
