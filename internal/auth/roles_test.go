package auth

import (
	"errors"
	"testing"
)

// V2: Authorize decides by the longest command directory of the role.
func TestAuthorize(t *testing.T) {
	e := newEnv(t)
	e.user("cluster1", "admin", RoleAdmin, "")
	e.user("cluster1", "bk", RoleBackup, "")
	e.user("cluster1", "ro", RoleReadonly, "")
	e.user("vs1", "va", RoleVsadmin, "")
	e.user("vs1", "vb", RoleVsadminBackup, "")
	e.user("vs1", "vr", RoleVsadminReadonly, "")
	for _, c := range []struct{ dir, access string }{
		{"volume", "readonly"},
		{"volume snapshot", "all"},
		{"volume snapshot delete", "none"},
		{"DEFAULT", "none"},
	} {
		if _, err := e.svc.CreateRole(e.ctx, "vs1", "snapper", c.dir, Access(c.access)); err != nil {
			t.Fatal(err)
		}
	}
	e.user("vs1", "cu", "snapper", "")
	cases := []struct {
		svm, user, cmd string
		write, ok      bool
	}{
		{"cluster1", "admin", "volume delete", true, true},
		{"cluster1", "admin", "security login role create", true, true},
		{"cluster1", "bk", "vserver services ndmp generate-password", true, true},
		{"cluster1", "bk", "storage tape offline", true, true},
		{"cluster1", "bk", "volume snapshot create", true, true},
		{"cluster1", "bk", "volume delete", true, false},
		{"cluster1", "bk", "volume show", false, true},
		{"cluster1", "bk", "security login create", true, false},
		{"cluster1", "ro", "volume show", false, true},
		{"cluster1", "ro", "volume delete", true, false},
		{"cluster1", "ro", "vserver services ndmp on", true, false},
		{"cluster1", "ro", "security login password", true, true},
		{"vs1", "va", "volume create", true, true},
		{"vs1", "va", "vserver services ndmp modify", true, true},
		{"vs1", "va", "storage tape show", false, false},
		{"vs1", "va", "cluster show", false, false},
		{"vs1", "va", "vserver create", true, false},
		{"vs1", "va", "vserver create-other", true, true}, // word boundary
		{"vs1", "vb", "vserver services ndmp kill", true, true},
		{"vs1", "vb", "volume show", false, true},
		{"vs1", "vb", "volume offline", true, false},
		{"vs1", "vb", "volume snapshot delete", true, true},
		{"vs1", "vb", "vserver show", false, true},
		{"vs1", "vb", "vserver modify", true, false},
		{"vs1", "vb", "security login create", true, false},
		{"vs1", "vb", "lun show", false, false},
		{"vs1", "vr", "volume show", false, true},
		{"vs1", "vr", "volume modify", true, false},
		{"vs1", "cu", "volume show", false, true},
		{"vs1", "cu", "volume modify", true, false},
		{"vs1", "cu", "volume snapshot create", true, true},
		{"vs1", "cu", "volume snapshot delete", true, false},
		{"vs1", "cu", "volume snapshot delete", false, false},
		{"vs1", "cu", "volume snapshots", false, true}, // covered by "volume" only
		{"vs1", "cu", "  Volume   SNAPSHOT  create ", true, true},
		{"vs1", "cu", "lun show", false, false},
	}
	for _, c := range cases {
		err := e.svc.Authorize(e.ctx, c.svm, c.user, c.cmd, c.write)
		if c.ok && err != nil {
			t.Errorf("%s/%s %q write=%v: %v", c.svm, c.user, c.cmd, c.write, err)
		}
		if !c.ok && !errors.Is(err, ErrDenied) {
			t.Errorf("%s/%s %q write=%v: %v, want denied", c.svm, c.user, c.cmd, c.write, err)
		}
	}
	if err := e.svc.Authorize(e.ctx, "vs1", "nobody", "volume show", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
	if err := e.svc.Authorize(e.ctx, "vs1", "va", "volume;rm", false); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad command: %v", err)
	}
	if err := e.svc.InScope("cluster1", "vs2"); err != nil {
		t.Error(err)
	}
	if err := e.svc.InScope("vs1", "vs1"); err != nil {
		t.Error(err)
	}
	if err := e.svc.InScope("vs1", "vs2"); !errors.Is(err, ErrDenied) {
		t.Errorf("vs1 user on vs2: %v", err)
	}
}

// V2: custom roles (security login role create/modify/delete).
func TestCustomRoles(t *testing.T) {
	e := newEnv(t)
	r, err := e.svc.CreateRole(e.ctx, "vs1", "ndmponly", "vserver services ndmp", AccessAll)
	if err != nil || len(r.Entries) != 1 || r.Cluster || r.Builtin {
		t.Fatalf("create: %+v %v", r, err)
	}
	if _, err := e.svc.CreateRole(e.ctx, "cluster1", "ops", "DEFAULT", AccessReadonly); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name, svm, role, dir string
		access               Access
		kind                 error
		msg                  string
	}{
		{"duplicate entry", "vs1", "ndmponly", "vserver  services NDMP", AccessNone, ErrExists, "already has command directory"},
		{"built-in name", "vs1", "vsadmin", "volume", AccessAll, ErrInvalidArgument, "built-in"},
		{"built-in cluster name", "cluster1", "admin", "volume", AccessAll, ErrInvalidArgument, "built-in"},
		{"bad access", "vs1", "r2", "volume", "write", ErrInvalidArgument, "access level"},
		{"bad dir", "vs1", "r2", "volume; rm", AccessAll, ErrInvalidArgument, "invalid character"},
		{"empty dir", "vs1", "r2", "  ", AccessAll, ErrInvalidArgument, "required"},
		{"bad role name", "vs1", "r 2", "volume", AccessAll, ErrInvalidArgument, ""},
		{"unknown SVM", "vs9", "r2", "volume", AccessAll, nil, "vs9"},
	}
	for _, c := range bad {
		e.unchanged(c.name, c.kind, c.msg, func() error {
			_, err := e.svc.CreateRole(e.ctx, c.svm, c.role, c.dir, c.access)
			return err
		})
	}
	if r, err = e.svc.CreateRole(e.ctx, "vs1", "ndmponly", "volume", AccessReadonly); err != nil || len(r.Entries) != 2 {
		t.Fatalf("second entry: %+v %v", r, err)
	}
	if r, err = e.svc.ModifyRole(e.ctx, "vs1", "ndmponly", "volume", AccessNone); err != nil || r.AccessFor("volume show") != AccessNone {
		t.Errorf("modify: %+v %v", r, err)
	}
	e.unchanged("modify missing entry", ErrNotFound, "no command directory", func() error {
		_, err := e.svc.ModifyRole(e.ctx, "vs1", "ndmponly", "lun", AccessAll)
		return err
	})
	e.unchanged("modify missing role", ErrNotFound, "does not exist", func() error {
		_, err := e.svc.ModifyRole(e.ctx, "vs1", "zz", "lun", AccessAll)
		return err
	})
	e.unchanged("modify built-in", ErrInvalidArgument, "built-in", func() error {
		_, err := e.svc.ModifyRole(e.ctx, "vs1", "vsadmin-backup", "volume", AccessAll)
		return err
	})
	// A custom role is usable only in its own SVM.
	e.unchanged("role of another SVM", ErrNotFound, "", func() error {
		_, err := e.svc.CreateUser(e.ctx, UserSpec{SVM: "vs2", Name: "u", Role: "ndmponly"})
		return err
	})
	e.user("vs1", "u", "ndmponly", "")
	e.unchanged("delete role in use", ErrInUse, `assigned to user "u"`, func() error { return e.svc.DeleteRole(e.ctx, "vs1", "ndmponly", "") })
	if err := e.svc.DeleteRole(e.ctx, "vs1", "ndmponly", "volume"); err != nil {
		t.Fatal(err)
	}
	e.unchanged("delete last entry in use", ErrInUse, "", func() error {
		return e.svc.DeleteRole(e.ctx, "vs1", "ndmponly", "vserver services ndmp")
	})
	e.reopen()
	got, err := e.svc.GetRole(e.ctx, "vs1", "ndmponly")
	if err != nil || len(got.Entries) != 1 || got.Entries[0] != (RoleEntry{NDMPDir, AccessAll}) {
		t.Errorf("after reopen: %+v %v", got, err)
	}
	if err := e.svc.DeleteUser(e.ctx, "vs1", "u"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteRole(e.ctx, "vs1", "ndmponly", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GetRole(e.ctx, "vs1", "ndmponly"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted role: %v", err)
	}
	roles, _ := e.svc.ListRoles(e.ctx, "cluster1")
	var names []string
	for _, r := range roles {
		names = append(names, r.Name)
	}
	if len(names) != 4 || names[0] != RoleAdmin || names[3] != "ops" {
		t.Errorf("cluster roles %v", names)
	}
	roles, _ = e.svc.ListRoles(e.ctx, "vs1")
	if len(roles) != 3 || roles[0].Name != RoleVsadmin {
		t.Errorf("vs1 roles %+v", roles)
	}
	// Built-in entries cannot be changed through a returned value.
	b, _ := e.svc.GetRole(e.ctx, "cluster1", RoleAdmin)
	b.Entries[0].Access = AccessNone
	if b2, _ := e.svc.GetRole(e.ctx, "cluster1", RoleAdmin); b2.Entries[0].Access != AccessAll {
		t.Error("built-in role was changed through GetRole's result")
	}
}

func TestNormalizeCmdDir(t *testing.T) {
	for in, want := range map[string]string{
		"DEFAULT":                   "DEFAULT",
		" vserver  services\tndmp ": "vserver services ndmp",
		"Volume Snapshot":           "volume snapshot",
		"storage tape alias-set":    "storage tape alias-set",
	} {
		if got, err := NormalizeCmdDir(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "a/b", "a\x00", "volume's"} {
		if _, err := NormalizeCmdDir(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzNormalizeCmdDir: normalizing is idempotent, and a normalized
// directory covers itself and nothing that only shares a word prefix.
func FuzzNormalizeCmdDir(f *testing.F) {
	for _, s := range []string{"DEFAULT", "vserver services ndmp", " Volume  snapshot ", "a/b", "", "x\ty", "storage tape alias-set"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeCmdDir(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("%q: %v", in, err)
			}
			return
		}
		again, err := NormalizeCmdDir(out)
		if err != nil || again != out {
			t.Fatalf("%q -> %q -> %q %v", in, out, again, err)
		}
		if out != DefaultDir && (!covers(out, out) || covers(out, out+"x") || !covers(out, out+" x")) {
			t.Fatalf("covers misbehaves for %q", out)
		}
	})
}
