package storage

import (
	"errors"
	"testing"
)

// Issue 11 item 10: vserver nfs modify -v4.2-seclabel is off by default,
// kept per SVM, refused for an unknown SVM and gone with its SVM.
func TestNFSSecLabelSetting(t *testing.T) {
	e := newEnv(t, Options{})
	s, ctx := e.svc, e.ctx
	if _, err := s.CreateSVM(ctx, SVMSpec{Name: "vs1"}); err != nil {
		t.Fatal(err)
	}
	n, err := s.GetNFS(ctx, "vs1")
	if err != nil || n.V42SecLabel || n.SVM != "vs1" {
		t.Fatalf("default: %+v %v", n, err)
	}
	on := true
	if n, err = s.ModifyNFS(ctx, "vs1", NFSChange{V42SecLabel: &on}); err != nil || !n.V42SecLabel {
		t.Fatalf("enable: %+v %v", n, err)
	}
	if n, err = s.GetNFS(ctx, "vs1"); err != nil || !n.V42SecLabel {
		t.Fatalf("after enable: %+v %v", n, err)
	}
	all, err := s.ListNFS(ctx, "")
	if err != nil || len(all) < 2 {
		t.Fatalf("list: %+v %v", all, err)
	}
	if _, err := s.ModifyNFS(ctx, "nosuch", NFSChange{V42SecLabel: &on}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown SVM: %v", err)
	}
	if err := s.DeleteSVM(ctx, "vs1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSVM(ctx, SVMSpec{Name: "vs1"}); err != nil {
		t.Fatal(err)
	}
	if n, err = s.GetNFS(ctx, "vs1"); err != nil || n.V42SecLabel {
		t.Fatalf("a new SVM of the same name: %+v %v", n, err)
	}
}
