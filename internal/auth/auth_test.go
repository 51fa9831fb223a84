package auth

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

type env struct {
	t     testing.TB
	ctx   context.Context
	path  string
	store catalog.Store
	svc   *Service
	opts  Options
}

// newEnv opens a bbolt catalog in a temporary directory. Data SVMs vs1
// and vs2 exist as far as CheckSVM is concerned.
func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), "catalog.db")}
	e.opts = Options{CheckSVM: func(_ context.Context, svm string) error {
		if svm == "vs1" || svm == "vs2" {
			return nil
		}
		return fmt.Errorf("Vserver %q does not exist", svm)
	}}
	e.open()
	return e
}

func (e *env) open() {
	e.t.Helper()
	e.store = testutil.OpenCatalog(e.t, e.path)
	e.svc = New(e.store, e.opts)
}

func (e *env) reopen() {
	e.t.Helper()
	if err := e.store.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

// dump returns every key and value of the catalog.
func (e *env) dump() map[string]string {
	e.t.Helper()
	return testutil.DumpCatalog(e.t, e.store)
}

// unchanged runs fn, which must fail with an error wrapping kind (and
// containing msg when msg is set), and checks that the catalog did not
// change.
func (e *env) unchanged(name string, kind error, msg string, fn func() error) {
	e.t.Helper()
	testutil.RefusedUnchanged(e.t, e.store, name, kind, msg, fn)
}

func (e *env) user(svm, name, role, password string) User {
	e.t.Helper()
	u, err := e.svc.CreateUser(e.ctx, UserSpec{SVM: svm, Name: name, Role: role, Password: password})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// V2: the first start makes user admin; later starts change nothing.
func TestBootstrap(t *testing.T) {
	e := newEnv(t)
	e.unchanged("weak password", ErrInvalidArgument, "at least 8", func() error {
		_, err := e.svc.Bootstrap(e.ctx, "short1")
		return err
	})
	created, err := e.svc.Bootstrap(e.ctx, "Secret123")
	if err != nil || !created {
		t.Fatalf("first bootstrap: %v %v", created, err)
	}
	e.unchanged("second bootstrap", nil, "", func() error {
		created, err := e.svc.Bootstrap(e.ctx, "Other4567")
		if err != nil {
			return err
		}
		if created {
			t.Error("second bootstrap created a user")
		}
		return errors.New("")
	})
	e.reopen()
	u, err := e.svc.CheckPassword(e.ctx, "cluster1", "admin", "Secret123")
	if err != nil || u.Role != RoleAdmin || u.SVM != "cluster1" || !u.HasPassword {
		t.Errorf("admin after reopen: %+v %v", u, err)
	}
	if _, err := e.svc.CheckPassword(e.ctx, "cluster1", "admin", "Other4567"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("second bootstrap's password works: %v", err)
	}
	if err := e.svc.Authorize(e.ctx, "cluster1", "admin", "cluster setup", true); err != nil {
		t.Errorf("admin not authorized: %v", err)
	}
}

// V2: users and their roles; every refusal changes nothing.
func TestUsers(t *testing.T) {
	e := newEnv(t)
	e.user("cluster1", "admin", RoleAdmin, "Secret123")
	e.user("cluster1", "bk", RoleBackup, "Backup123")
	e.user("vs1", "vsadmin", RoleVsadmin, "")
	bad := []struct {
		name string
		spec UserSpec
		kind error
		msg  string
	}{
		{"duplicate", UserSpec{SVM: "cluster1", Name: "bk", Role: RoleBackup}, ErrExists, `user "bk" already exists in Vserver "cluster1"`},
		{"SVM role in admin SVM", UserSpec{SVM: "cluster1", Name: "x", Role: RoleVsadmin}, ErrInvalidArgument, "data Vservers"},
		{"cluster role in data SVM", UserSpec{SVM: "vs1", Name: "x", Role: RoleAdmin}, ErrInvalidArgument, "admin Vserver"},
		{"unknown role", UserSpec{SVM: "vs1", Name: "x", Role: "superuser"}, ErrNotFound, `role "superuser" does not exist in Vserver "vs1"`},
		{"unknown SVM", UserSpec{SVM: "vs9", Name: "x", Role: RoleVsadmin}, nil, `Vserver "vs9" does not exist`},
		{"no SVM", UserSpec{Name: "x", Role: RoleVsadmin}, ErrInvalidArgument, "Vserver"},
		{"bad name", UserSpec{SVM: "vs1", Name: "a b", Role: RoleVsadmin}, ErrInvalidArgument, "invalid character"},
		{"empty name", UserSpec{SVM: "vs1", Name: "", Role: RoleVsadmin}, ErrInvalidArgument, ""},
		{"weak password", UserSpec{SVM: "vs1", Name: "x", Role: RoleVsadmin, Password: "onlyletters"}, ErrInvalidArgument, "letters and digits"},
	}
	for _, c := range bad {
		e.unchanged(c.name, c.kind, c.msg, func() error {
			_, err := e.svc.CreateUser(e.ctx, c.spec)
			return err
		})
	}
	// Same name in another SVM is another user.
	e.user("vs2", "vsadmin", RoleVsadminBackup, "Vs2pass99")
	u, err := e.svc.GetUser(e.ctx, "vs1", "vsadmin")
	if err != nil || u.HasPassword || u.Role != RoleVsadmin {
		t.Errorf("vs1 vsadmin: %+v %v", u, err)
	}
	if _, err := e.svc.CheckPassword(e.ctx, "vs1", "vsadmin", "Vs2pass99"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("user without password logged in: %v", err)
	}
	if _, err := e.svc.CheckPassword(e.ctx, "vs2", "vsadmin", "Vs2pass99"); err != nil {
		t.Errorf("vs2 vsadmin: %v", err)
	}
	if _, err := e.svc.CheckPassword(e.ctx, "vs2", "nobody", "Vs2pass99"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := e.svc.CheckPassword(e.ctx, "vs2", "vsadmin", "vs2pass99"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("wrong case password: %v", err)
	}
	// Role changes.
	e.unchanged("role of wrong scope", ErrInvalidArgument, "", func() error {
		_, err := e.svc.SetUserRole(e.ctx, "vs1", "vsadmin", RoleBackup)
		return err
	})
	if u, err := e.svc.SetUserRole(e.ctx, "vs1", "vsadmin", RoleVsadminReadonly); err != nil || u.Role != RoleVsadminReadonly {
		t.Errorf("set role: %+v %v", u, err)
	}
	// Lock.
	if _, err := e.svc.LockUser(e.ctx, "cluster1", "bk"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CheckPassword(e.ctx, "cluster1", "bk", "Backup123"); !errors.Is(err, ErrLocked) {
		t.Errorf("locked user logged in: %v", err)
	}
	if _, err := e.svc.CheckPassword(e.ctx, "cluster1", "bk", "Wrong1234"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("locked user with wrong password: %v", err)
	}
	if err := e.svc.Authorize(e.ctx, "cluster1", "bk", "volume show", false); !errors.Is(err, ErrLocked) {
		t.Errorf("locked user authorized: %v", err)
	}
	e.unchanged("lock admin", ErrInvalidArgument, "", func() error {
		_, err := e.svc.LockUser(e.ctx, "cluster1", "admin")
		return err
	})
	e.reopen()
	if u, _ := e.svc.GetUser(e.ctx, "cluster1", "bk"); !u.Locked {
		t.Error("lock lost on reopen")
	}
	if _, err := e.svc.UnlockUser(e.ctx, "cluster1", "bk"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CheckPassword(e.ctx, "cluster1", "bk", "Backup123"); err != nil {
		t.Errorf("unlocked user: %v", err)
	}
	// Passwords.
	e.unchanged("weak new password", ErrInvalidArgument, "", func() error { return e.svc.SetPassword(e.ctx, "cluster1", "bk", "abc") })
	e.unchanged("password of unknown user", ErrNotFound, "", func() error { return e.svc.SetPassword(e.ctx, "cluster1", "zz", "Valid1234") })
	if err := e.svc.SetPassword(e.ctx, "cluster1", "bk", "NewPass77"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CheckPassword(e.ctx, "cluster1", "bk", "Backup123"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("old password still works: %v", err)
	}
	if _, err := e.svc.CheckPassword(e.ctx, "cluster1", "bk", "NewPass77"); err != nil {
		t.Errorf("new password: %v", err)
	}
	// Delete.
	e.unchanged("last admin", ErrInUse, "last cluster user", func() error { return e.svc.DeleteUser(e.ctx, "cluster1", "admin") })
	e.unchanged("unknown", ErrNotFound, `user "zz" does not exist in Vserver "vs1"`, func() error { return e.svc.DeleteUser(e.ctx, "vs1", "zz") })
	if err := e.svc.DeleteUser(e.ctx, "cluster1", "bk"); err != nil {
		t.Fatal(err)
	}
	all, _ := e.svc.ListUsers(e.ctx, "")
	vs2, _ := e.svc.ListUsers(e.ctx, "vs2")
	if len(all) != 3 || len(vs2) != 1 {
		t.Errorf("users: %d all, %d in vs2", len(all), len(vs2))
	}
	for k, v := range e.dump() {
		if strings.Contains(v, "NewPass77") || strings.Contains(v, "Secret123") {
			t.Errorf("cleartext password in catalog key %s", k)
		}
	}
}

func TestPasswordRules(t *testing.T) {
	cases := map[string]bool{
		"abcdefg1":               true,
		"Secret123":              true,
		"abcdefgh":               false,
		"12345678":               false,
		"abc1":                   false,
		"":                       false,
		"abcdefg1\n":             false,
		"pässwörd1":              true,
		strings.Repeat("a1", 64): true,
		strings.Repeat("a1", 65): false,
	}
	for p, ok := range cases {
		if err := CheckPasswordRules(p); (err == nil) != ok {
			t.Errorf("%q: %v", p, err)
		}
	}
}

func TestPurgeSVM(t *testing.T) {
	e := newEnv(t)
	e.user("cluster1", "admin", RoleAdmin, "")
	e.user("vs1", "a", RoleVsadmin, "")
	if _, err := e.svc.CreateRole(e.ctx, "vs1", "r", "volume", AccessAll); err != nil {
		t.Fatal(err)
	}
	e.user("vs1", "b", "r", "")
	e.user("vs2", "a", RoleVsadmin, "")
	e.unchanged("admin SVM", ErrInvalidArgument, "", func() error { return e.svc.PurgeSVM(e.ctx, "cluster1") })
	if err := e.svc.PurgeSVM(e.ctx, "vs1"); err != nil {
		t.Fatal(err)
	}
	all, _ := e.svc.ListUsers(e.ctx, "")
	if len(all) != 2 || all[0].SVM != "cluster1" || all[1].SVM != "vs2" {
		t.Errorf("users after purge %+v", all)
	}
	if _, err := e.svc.GetRole(e.ctx, "vs1", "r"); !errors.Is(err, ErrNotFound) {
		t.Errorf("role after purge: %v", err)
	}
}
