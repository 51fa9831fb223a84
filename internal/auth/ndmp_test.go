package auth

import (
	"errors"
	"strings"
	"testing"
)

// testNodeName is the node whose NDMP account the tests set up.
const testNodeName = "auth-n1"

// N4: the NDMP password is derived from the login password: stable until
// the login password changes, then the old one fails.
func TestNDMPPassword(t *testing.T) {
	e := newEnv(t)
	e.user("vs1", "user1", RoleVsadminBackup, "Login1234")
	e.user("vs1", "user2", RoleVsadminBackup, "Login1234")
	e.user("vs1", "nopw", RoleVsadmin, "")
	p1, err := e.svc.GenerateNDMPPassword(e.ctx, "vs1", "user1")
	if err != nil {
		t.Fatal(err)
	}
	if len(p1) != NDMPPasswordLength || strings.Trim(p1, ndmpAlphabet) != "" {
		t.Errorf("password %q", p1)
	}
	p1b, _ := e.svc.GenerateNDMPPassword(e.ctx, "vs1", "user1")
	p2, _ := e.svc.GenerateNDMPPassword(e.ctx, "vs1", "user2")
	if p1b != p1 || p2 == p1 {
		t.Errorf("user1 %q then %q, user2 %q", p1, p1b, p2)
	}
	if got, err := e.svc.NDMPPassword(e.ctx, "vs1", "user1"); err != nil || got != p1 {
		t.Errorf("NDMPPassword = %q %v", got, err)
	}
	if err := e.svc.CheckNDMPPassword(e.ctx, "vs1", "user1", p1); err != nil {
		t.Error(err)
	}
	if err := e.svc.CheckNDMPPassword(e.ctx, "vs1", "user1", "Login1234"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("login password accepted as NDMP password: %v", err)
	}
	e.reopen()
	if got, _ := e.svc.GenerateNDMPPassword(e.ctx, "vs1", "user1"); got != p1 {
		t.Errorf("after reopen %q, want %q", got, p1)
	}
	// Changing the login password (even to the same text) changes it.
	if err := e.svc.SetPassword(e.ctx, "vs1", "user1", "Login1234"); err != nil {
		t.Fatal(err)
	}
	p3, err := e.svc.GenerateNDMPPassword(e.ctx, "vs1", "user1")
	if err != nil || p3 == p1 {
		t.Errorf("after password change %q (old %q) %v", p3, p1, err)
	}
	if err := e.svc.CheckNDMPPassword(e.ctx, "vs1", "user1", p1); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("old NDMP password after change: %v", err)
	}
	if err := e.svc.CheckNDMPPassword(e.ctx, "vs1", "user1", p3); err != nil {
		t.Errorf("new NDMP password: %v", err)
	}
	// No password set up: ONTAP's message, exactly.
	e.unchanged("no password", ErrNoPassword, "", func() error {
		_, err := e.svc.GenerateNDMPPassword(e.ctx, "vs1", "nopw")
		if Message(err) != "show failed: Cannot get password for user 'nopw'" {
			t.Errorf("message %q", Message(err))
		}
		return err
	})
	if _, err := e.svc.NDMPPassword(e.ctx, "vs1", "nopw"); !errors.Is(err, ErrNoPassword) {
		t.Errorf("NDMPPassword without password: %v", err)
	}
	if _, err := e.svc.GenerateNDMPPassword(e.ctx, "vs2", "user1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("user of another SVM: %v", err)
	}
	// Locked users may see their password generated but cannot use it.
	if _, err := e.svc.LockUser(e.ctx, "vs1", "user2"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.NDMPPassword(e.ctx, "vs1", "user2"); !errors.Is(err, ErrLocked) {
		t.Errorf("locked NDMPPassword: %v", err)
	}
	// Derivation depends on every input.
	sec := make([]byte, 32)
	base := deriveNDMP(sec, "vs1", "u", "h")
	for _, other := range []string{deriveNDMP(sec, "vs2", "u", "h"), deriveNDMP(sec, "vs1", "v", "h"), deriveNDMP(sec, "vs1", "u", "i"),
		deriveNDMP(append([]byte{1}, sec[1:]...), "vs1", "u", "h"), deriveNDMP(sec, "vs1u", "", "h")} {
		if other == base {
			t.Errorf("derivation ignores an input: %q", other)
		}
	}
}

// N4: who may open an NDMP session on which LIF.
func TestCanUseNDMP(t *testing.T) {
	e := newEnv(t)
	e.user("cluster1", "admin", RoleAdmin, "")
	e.user("cluster1", "bk", RoleBackup, "")
	e.user("cluster1", "ro", RoleReadonly, "")
	e.user("vs1", "vsadmin", RoleVsadmin, "")
	e.user("vs1", "vb", RoleVsadminBackup, "")
	e.user("vs1", "vr", RoleVsadminReadonly, "")
	if _, err := e.svc.CreateRole(e.ctx, "vs1", "ndmprole", "vserver services ndmp", AccessReadonly); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateRole(e.ctx, "vs1", "nondmp", "vserver services ndmp", AccessNone); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateRole(e.ctx, "vs1", "nondmp", "DEFAULT", AccessAll); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateRole(e.ctx, "vs1", "vsall", "vserver", AccessAll); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateRole(e.ctx, "cluster1", "tapeops", "vserver services ndmp", AccessAll); err != nil {
		t.Fatal(err)
	}
	e.user("vs1", "c1", "ndmprole", "")
	e.user("vs1", "c2", "nondmp", "")
	e.user("vs1", "c3", "vsall", "")
	e.user("cluster1", "c4", "tapeops", "")
	e.user("vs2", "vb", RoleVsadminBackup, "")
	cases := []struct {
		svm, user, lif string
		kind           error
	}{
		{"cluster1", "admin", LIFNodeMgmt, nil},
		{"cluster1", "admin", LIFClusterMgmt, nil},
		{"cluster1", "admin", LIFIntercluster, nil},
		{"cluster1", "bk", LIFNodeMgmt, nil},
		{"cluster1", "bk", LIFIntercluster, nil},
		{"cluster1", "ro", LIFNodeMgmt, ErrDenied},
		{"cluster1", "c4", LIFClusterMgmt, nil},
		{"cluster1", "admin", LIFData, ErrDenied},
		{"vs1", "vsadmin", LIFData, nil},
		{"vs1", "vb", LIFData, nil},
		{"vs2", "vb", LIFData, nil},
		{"vs1", "vr", LIFData, ErrDenied},
		{"vs1", "c1", LIFData, nil},
		{"vs1", "c2", LIFData, ErrDenied},
		{"vs1", "c3", LIFData, nil},
		{"vs1", "vb", LIFNodeMgmt, ErrInvalidArgument},
		{"vs1", "nobody", LIFData, ErrNotFound},
		{"vs1", "vb", "mgmt", ErrInvalidArgument},
	}
	for _, c := range cases {
		err := e.svc.CanUseNDMP(e.ctx, c.svm, c.user, c.lif)
		if c.kind == nil && err != nil || c.kind != nil && !errors.Is(err, c.kind) {
			t.Errorf("%s/%s on %s: %v, want %v", c.svm, c.user, c.lif, err, c.kind)
		}
	}
	if _, err := e.svc.LockUser(e.ctx, "vs1", "vb"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.CanUseNDMP(e.ctx, "vs1", "vb", LIFData); !errors.Is(err, ErrLocked) {
		t.Errorf("locked: %v", err)
	}
}

// N3: the node-scope NDMP user root must get a password before use.
func TestNodeNDMP(t *testing.T) {
	e := newEnv(t)
	acc, err := e.svc.NodeNDMPAccount(e.ctx, testNodeName)
	if err != nil || acc.User != "root" || acc.PasswordSet {
		t.Fatalf("default account %+v %v", acc, err)
	}
	if err := e.svc.CheckNodeNDMP(e.ctx, testNodeName, "root", ""); !errors.Is(err, ErrNoPassword) || !strings.Contains(err.Error(), "system services ndmp password") {
		t.Errorf("unset password: %v", err)
	}
	for _, bad := range []string{"short", strings.Repeat("x", 33), "tab\there1", "nonascii€1"} {
		e.unchanged("password "+bad, ErrInvalidArgument, "", func() error { return e.svc.SetNodeNDMPPassword(e.ctx, testNodeName, bad) })
	}
	e.unchanged("no node", ErrInvalidArgument, "", func() error { return e.svc.SetNodeNDMPPassword(e.ctx, "", "goodpass1") })
	if err := e.svc.SetNodeNDMPPassword(e.ctx, testNodeName, "tape-pass-1"); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if err := e.svc.CheckNodeNDMP(e.ctx, testNodeName, "root", "tape-pass-1"); err != nil {
		t.Error(err)
	}
	if err := e.svc.CheckNodeNDMP(e.ctx, testNodeName, "root", "tape-pass-2"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("wrong password: %v", err)
	}
	if err := e.svc.CheckNodeNDMP(e.ctx, testNodeName, "admin", "tape-pass-1"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("wrong user: %v", err)
	}
	if err := e.svc.CheckNodeNDMP(e.ctx, "node2", "root", "tape-pass-1"); !errors.Is(err, ErrNoPassword) {
		t.Errorf("other node: %v", err)
	}
	if p, err := e.svc.NodeNDMPPassword(e.ctx, testNodeName, "root"); err != nil || p != "tape-pass-1" {
		t.Errorf("NodeNDMPPassword %q %v", p, err)
	}
	e.unchanged("bad user id", ErrInvalidArgument, "", func() error { return e.svc.SetNodeNDMPUser(e.ctx, testNodeName, "a b") })
	if err := e.svc.SetNodeNDMPUser(e.ctx, testNodeName, "ndmpuser"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.CheckNodeNDMP(e.ctx, testNodeName, "ndmpuser", "tape-pass-1"); err != nil {
		t.Errorf("renamed user: %v", err)
	}
	if err := e.svc.CheckNodeNDMP(e.ctx, testNodeName, "root", "tape-pass-1"); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("old user name: %v", err)
	}
	for k, v := range e.dump() {
		if strings.HasPrefix(k, "auth/user/") && strings.Contains(v, "tape-pass-1") {
			t.Errorf("node password leaked into %s", k)
		}
	}
}
