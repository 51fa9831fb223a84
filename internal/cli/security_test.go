package cli

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

// TestSecurityLogin covers users, passwords and authorisation through the
// API (V2) and NDMP password generation (N4).
func TestSecurityLogin(t *testing.T) {
	n := startNode(t)
	n.ok("security", "login", "create", "-user-or-group-name", "ro", "-role", "readonly", "-password", "Reader123")
	n.ok("security", "login", "create", "-vserver", "cluster1", "-username", "bk", "-application", "ssh",
		"-authentication-method", "password", "-role", "backup", "-password", "Backup123")
	n.ok("security", "login", "create", "-user-or-group-name", "nopw", "-role", "backup")
	out := n.ok("security", "login", "show")
	if r, err := column(out, "cluster1", "ro"); err != nil || !equal(r, []string{"cluster1", "ro", "http", "password", "readonly", "no"}) {
		t.Fatalf("ro row %q (%v)\n%s", r, err, out)
	}
	if !strings.HasSuffix(out, "4 entries were displayed.\n") {
		t.Fatalf("login show:\n%s", out)
	}

	// Bad input.
	n.fail("already exists", "security", "login", "create", "-user-or-group-name", "ro", "-role", "readonly", "-password", "Reader123")
	n.fail("letters and digits", "security", "login", "create", "-user-or-group-name", "weak", "-role", "readonly", "-password", "abcdefghij")
	n.fail("role", "security", "login", "create", "-user-or-group-name", "x1", "-role", "nosuchrole", "-password", "Reader123")
	n.fail("not supported", "security", "login", "create", "-user-or-group-name", "x1", "-role", "admin", "-authentication-method", "cert")
	if r := rows(n.ok("security", "login", "show")); len(r) != 4 {
		t.Fatalf("failed creates added users: %q", r)
	}

	// A read-only user may show but not change; a wrong password is refused.
	ro := func(args ...string) result { return n.runAs("ro", "Reader123", args...) }
	if r := ro("vserver", "show"); r.code != 0 {
		t.Fatalf("readonly vserver show: %s", r.errOut)
	}
	checkFail(t, ro("vserver", "create", "vs9"), "not authorized", []string{"vserver create (as ro)"})
	checkFail(t, ro("options", "tape.reservations", "scsi"), "not authorized", []string{"options (as ro)"})
	checkFail(t, ro("security", "login", "delete", "-user-or-group-name", "bk"), "not authorized", []string{"login delete (as ro)"})
	checkFail(t, n.runAs("ro", "Wrong1234", "vserver", "show"), "authentication failed", []string{"wrong password"})
	checkFail(t, n.runAs("ghost", "Ghost1234", "vserver", "show"), "authentication failed", []string{"unknown user"})
	checkFail(t, n.runAs("nopw", "", "vserver", "show"), "no password", []string{"no password"})
	if got := svmNames(t, n); len(got) != 1 {
		t.Fatalf("refused commands created SVMs: %v", got)
	}
	if out := n.ok("options", "-option-name", "tape.reservations"); !strings.Contains(out, "tape.reservations off") {
		t.Fatalf("refused options command changed the option:\n%s", out)
	}

	// NDMP passwords: stable until the login password changes (N4).
	gen := func(user string) string {
		out := n.ok("vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", user)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || lines[0] != "Vserver: cluster1" || lines[1] != "User: "+user || !strings.HasPrefix(lines[2], "Password: ") {
			t.Fatalf("generate-password output:\n%s", out)
		}
		pw := strings.TrimPrefix(lines[2], "Password: ")
		if len(pw) != 16 {
			t.Fatalf("NDMP password %q has length %d", pw, len(pw))
		}
		return pw
	}
	p1 := gen("bk")
	if p2 := gen("bk"); p2 != p1 {
		t.Fatalf("NDMP password changed without a login password change: %s %s", p1, p2)
	}
	n.fail("show failed: Cannot get password for user 'nopw'", "vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", "nopw")
	n.fail("does not exist", "vserver", "services", "ndmp", "generate-password", "-vserver", "nosuch", "-user", "bk")
	// A user gets its own NDMP password but not somebody else's.
	if r := n.runAs("bk", "Backup123", "vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", "bk"); r.code != 0 || !strings.Contains(r.out, p1) {
		t.Fatalf("own NDMP password: %d %s %s", r.code, r.out, r.errOut)
	}
	checkFail(t, n.runAs("ro", "Reader123", "vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", "admin"),
		"not authorized", []string{"generate-password for admin (as ro)"})

	// Password changes: by the admin for another user, and by a user for itself.
	n.ok("security", "login", "password", "-user-or-group-name", "bk", "-password", "Backup456")
	checkFail(t, n.runAs("bk", "Backup123", "vserver", "show"), "authentication failed", []string{"old password"})
	if r := n.runAs("bk", "Backup456", "vserver", "show"); r.code != 0 {
		t.Fatalf("new password refused: %s", r.errOut)
	}
	if p3 := gen("bk"); p3 == p1 {
		t.Fatal("NDMP password did not change with the login password")
	}
	if r := ro("security", "login", "password", "-vserver", "cluster1", "-password", "Reader456"); r.code != 0 {
		t.Fatalf("own password change: %s", r.errOut)
	}
	if r := n.runAs("ro", "Reader456", "vserver", "show"); r.code != 0 {
		t.Fatalf("changed own password refused: %s", r.errOut)
	}
	checkFail(t, n.runAs("ro", "Reader456", "security", "login", "password", "-vserver", "cluster1", "-user-or-group-name", "bk", "-password", "Hijack123"),
		"not authorized", []string{"password of another user (as ro)"})
	n.fail("no terminal", "security", "login", "password", "-user-or-group-name", "bk")

	// Delete.
	n.ok("security", "login", "delete", "-user-or-group-name", "nopw")
	n.fail("does not exist", "security", "login", "delete", "-user-or-group-name", "nopw")
	n.fail("last cluster user with role admin", "security", "login", "delete", "-user-or-group-name", "admin")
	var users []admin.User
	if err := json.Unmarshal([]byte(n.ok("security", "login", "show", "--json")), &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != 3 {
		t.Fatalf("users after delete: %+v", users)
	}
}

func TestSecurityLoginRole(t *testing.T) {
	n := startNode(t)
	n.ok("security", "login", "role", "create", "-role", "ndmponly", "-cmddirname", "vserver services ndmp", "-access", "all")
	n.ok("security", "login", "role", "create", "-role", "ndmponly", "-cmddirname", "volume", "-access", "readonly")
	out := n.ok("security", "login", "role", "show", "-role", "ndmponly")
	if r, err := column(out, "cluster1", "ndmponly", "vserver"); err != nil || !equal(r, []string{"cluster1", "ndmponly", "vserver", "services", "ndmp", "all"}) {
		t.Fatalf("role show row %q (%v):\n%s", r, err, out)
	}
	if r, err := column(out, "cluster1", "ndmponly", "volume"); err != nil || !equal(r, []string{"cluster1", "ndmponly", "volume", "readonly"}) {
		t.Fatalf("role show row %q (%v):\n%s", r, err, out)
	}
	n.fail("already has command directory", "security", "login", "role", "create", "-role", "ndmponly", "-cmddirname", "volume", "-access", "all")
	n.fail("not a valid access level", "security", "login", "role", "create", "-role", "r2", "-cmddirname", "volume", "-access", "most")
	n.fail("built-in role", "security", "login", "role", "create", "-role", "admin", "-cmddirname", "volume", "-access", "none")

	n.ok("security", "login", "create", "-user-or-group-name", "op", "-role", "ndmponly", "-password", "Operator1")
	op := func(args ...string) result { return n.runAs("op", "Operator1", args...) }
	if r := op("volume", "show"); r.code != 0 {
		t.Fatalf("custom role volume show: %s", r.errOut)
	}
	checkFail(t, op("vserver", "show"), "not authorized", []string{"vserver show (as op)"})
	checkFail(t, op("volume", "qtree", "create", "vs1", "v", "q"), "not authorized", []string{"qtree create (as op)"})

	n.fail("is assigned to user", "security", "login", "role", "delete", "-role", "ndmponly")
	n.ok("security", "login", "role", "delete", "-role", "ndmponly", "-cmddirname", "volume")
	checkFail(t, op("volume", "show"), "not authorized", []string{"volume show after entry removal (as op)"})
	n.ok("security", "login", "delete", "-user-or-group-name", "op")
	n.ok("security", "login", "role", "delete", "-role", "ndmponly")
	if out := n.ok("security", "login", "role", "show", "-role", "ndmponly"); !strings.Contains(out, "no entries") {
		t.Fatalf("role still shown:\n%s", out)
	}
	// Built-in roles are listed.
	if out := n.ok("security", "login", "role", "show", "-vserver", "cluster1", "-role", "admin"); !strings.Contains(out, "cluster1 admin") {
		t.Fatalf("built-in admin role:\n%s", out)
	}
}

func TestOptionsCommand(t *testing.T) {
	n := startNode(t)
	out := n.ok("options")
	for _, want := range []string{"backup.log.enable                     on", "ndmpd.restartable_backup.max_contexts 64", "tape.reservations                     off", "4 entries were displayed."} {
		if !strings.Contains(out, want) {
			t.Fatalf("options lacks %q:\n%s", want, out)
		}
	}
	n.ok("options", "-option-name", "tape.reservations", "-option-value", "persistent")
	n.ok("options", "backup.log.enable", "off")
	out = n.ok("options", "-option-name", "tape.reservations", "-fields", "option-value,default-value")
	if r := rows(out); len(r) != 1 || !equal(r[0], []string{"tape.reservations", "persistent", "off"}) {
		t.Fatalf("options -fields rows %q\n%s", r, out)
	}
	n.fail("invalid option value", "options", "tape.reservations", "sometimes")
	n.fail("unknown option", "options", "-option-name", "no.such.option", "-option-value", "on")
	n.fail("not a valid option name", "options", "-option-name", "no.such.option")
	n.fail("missing required parameter -option-name", "options", "-option-value", "on")
	var opts []admin.Option
	if err := json.Unmarshal([]byte(n.ok("options", "--json")), &opts); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"backup.log.enable": "off", "ndmpd.offset_map.enable": "on", "ndmpd.restartable_backup.max_contexts": "64", "tape.reservations": "persistent"}
	if len(opts) != len(want) {
		t.Fatalf("options: %+v", opts)
	}
	for _, o := range opts {
		if want[o.Name] != o.Value {
			t.Fatalf("option %s = %q, want %q", o.Name, o.Value, want[o.Name])
		}
	}
}

// TestRestartKeepsState stops the daemon and starts it again on the same
// data directory.
func TestRestartKeepsState(t *testing.T) {
	n := startNode(t)
	v1 := t.TempDir()
	n.ok("vserver", "create", "vs1")
	n.ok("volume", "create", "vs1", "vol1", "-path", v1, "-snapshot-provider", "copy")
	n.ok("volume", "snapshot", "create", "vs1", "vol1", "s1")
	n.ok("security", "login", "create", "-user-or-group-name", "bk", "-role", "backup", "-password", "Backup123")
	n.ok("options", "tape.reservations", "scsi")
	ndmp := n.ok("vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", "bk")
	shows := [][]string{
		{"vserver", "show", "--json"}, {"volume", "show", "--json"}, {"volume", "snapshot", "show", "--json"},
		{"security", "login", "show", "--json"}, {"options", "--json"}, {"network", "interface", "show", "--json"},
		{"cluster", "show", "--json"},
	}
	var before []string
	for _, s := range shows {
		before = append(before, n.ok(s...))
	}
	n.shutdown()
	n.start()
	for i, s := range shows {
		if got := n.ok(s...); got != before[i] {
			t.Fatalf("%v changed across restart:\n%s\n---\n%s", s, before[i], got)
		}
	}
	if got := n.ok("vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", "bk"); got != ndmp {
		t.Fatalf("NDMP password changed across restart: %s / %s", ndmp, got)
	}
}

func TestBadInvocations(t *testing.T) {
	n := startNode(t)
	n.fail(`"volumes" is not a recognized command`, "volumes", "show")
	n.fail("is incomplete", "volume", "snapshot")
	n.fail(`invalid argument "-bogus"`, "volume", "show", "-bogus", "x")
	n.fail(`invalid argument "-bogus"`, "vserver", "create", "-bogus", "x")
	n.fail(`invalid argument "--bogus"`, "vserver", "create", "--bogus", "x")
	n.fail("invalid field \"nosuch\"", "volume", "show", "-fields", "nosuch")
	n.ok("vserver", "create", "vs1")
	n.fail("cannot be used together", "vserver", "show", "-fields", "comment", "-instance")
	n.fail("accepts at most 1 arg", "vserver", "create", "vs2", "extra")
	n.fail("not a privilege level", "-privilege", "god", "cluster", "show")
	r := result{}
	{
		var out, errOut strings.Builder
		code := Run(t.Context(), []string{"cluster", "show"}, Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
			if k == "TAPESTRY_SOCKET" {
				return n.dir + "/nosuch.sock"
			}
			if k == "TAPESTRY_PASSWORD" {
				return "x"
			}
			return ""
		}})
		r = result{code, out.String(), errOut.String()}
	}
	checkFail(t, r, "cannot reach tapestryd", []string{"cluster show (no daemon)"})
}

// TestPasswordPrompts: without -password the command line prompts on the
// terminal, twice for a new password.
func TestPasswordPrompts(t *testing.T) {
	n := startNode(t)
	answers := []string{}
	var prompts []string
	runTTY := func(user, pass string, args ...string) result {
		var out, errOut strings.Builder
		env := Env{Stdout: &out, Stderr: &errOut,
			Getenv: func(k string) string {
				switch k {
				case "TAPESTRY_SOCKET":
					return n.socket
				case "TAPESTRY_USER":
					return user
				case "TAPESTRY_PASSWORD":
					return pass
				}
				return ""
			},
			ReadPassword: func(prompt string) (string, error) {
				prompts = append(prompts, prompt)
				if len(answers) == 0 {
					return "", io.EOF
				}
				a := answers[0]
				answers = answers[1:]
				return a, nil
			},
		}
		code := Run(t.Context(), args, env)
		return result{code, out.String(), errOut.String()}
	}
	answers = []string{"Typed1234", "Typed1234"}
	if r := runTTY("admin", testAdminPassword, "security", "login", "create", "-user-or-group-name", "u1", "-role", "admin"); r.code != 0 {
		t.Fatalf("create with prompt: %s", r.errOut)
	}
	if len(prompts) != 2 || prompts[0] != "Enter a new password: " || prompts[1] != "Enter it again: " {
		t.Fatalf("prompts %q", prompts)
	}
	// The login password itself is prompted for when none is given.
	prompts, answers = nil, []string{"Typed1234"}
	if r := runTTY("u1", "", "cluster", "show"); r.code != 0 || len(prompts) != 1 || prompts[0] != "Password for u1: " {
		t.Fatalf("login prompt: %d %q %s", r.code, prompts, r.errOut)
	}
	prompts, answers = nil, []string{"Other1234", "Other9999"}
	checkFail(t, runTTY("admin", testAdminPassword, "security", "login", "password", "-user-or-group-name", "u1"), "do not match", []string{"mismatch"})
	if r := n.runAs("u1", "Typed1234", "cluster", "show"); r.code != 0 {
		t.Fatalf("mismatched prompt changed the password: %s", r.errOut)
	}
	prompts, answers = nil, nil
	checkFail(t, runTTY("admin", "", "cluster", "show"), "read password", []string{"EOF at prompt"})

	// lock, unlock and modify.
	n.ok("security", "login", "lock", "-user-or-group-name", "u1")
	checkFail(t, n.runAs("u1", "Typed1234", "cluster", "show"), "locked", []string{"locked user"})
	n.ok("security", "login", "unlock", "-user-or-group-name", "u1")
	n.ok("security", "login", "modify", "-user-or-group-name", "u1", "-role", "readonly")
	checkFail(t, n.runAs("u1", "Typed1234", "vserver", "create", "vs1"), "not authorized", []string{"after modify"})
	if out := n.ok("security", "login", "show", "-user-or-group-name", "u1", "-fields", "role,is-account-locked"); !strings.Contains(out, "cluster1 u1                 readonly no") {
		t.Fatalf("after modify:\n%s", out)
	}
}

// TestSVMUsers: SVM administrators log in as SVM/user and manage only their
// own SVM (N4: NDMP passwords from the SVM context).
func TestSVMUsers(t *testing.T) {
	n := startNode(t)
	v1, v2 := t.TempDir(), t.TempDir()
	n.ok("vserver", "create", "vs1")
	n.ok("vserver", "create", "vs2")
	n.ok("volume", "create", "vs1", "vol1", "-path", v1, "-snapshot-provider", "copy")
	n.ok("volume", "create", "vs2", "vol2", "-path", v2, "-snapshot-provider", "copy")
	n.ok("security", "login", "create", "-vserver", "vs1", "-user-or-group-name", "vsa", "-role", "vsadmin", "-password", "VsAdmin123")
	n.ok("security", "login", "create", "-vserver", "vs1", "-user-or-group-name", "vbk", "-role", "vsadmin-backup", "-password", "VsBackup123")
	n.ok("security", "login", "create", "-vserver", "vs2", "-user-or-group-name", "vsa", "-role", "vsadmin", "-password", "Other12345")
	n.fail("can only be used in", "security", "login", "create", "-vserver", "vs1", "-user-or-group-name", "x", "-role", "admin", "-password", "VsAdmin123")

	vsa := func(args ...string) result { return n.runAs("vs1/vsa", "VsAdmin123", args...) }
	out := vsa("volume", "show")
	if out.code != 0 || len(rows(out.out)) != 1 || !strings.Contains(out.out, "vol1") {
		t.Fatalf("vsadmin volume show: %d %s %s", out.code, out.out, out.errOut)
	}
	if out := vsa("vserver", "show"); out.code != 0 || len(rows(out.out)) != 1 {
		t.Fatalf("vsadmin vserver show: %s %s", out.out, out.errOut)
	}
	if r := vsa("volume", "snapshot", "create", "vs1", "vol1", "s1"); r.code != 0 {
		t.Fatalf("vsadmin snapshot create: %s", r.errOut)
	}
	checkFail(t, vsa("volume", "snapshot", "create", "vs2", "vol2", "s1"), "cannot act on Vserver", []string{"other SVM's volume"})
	checkFail(t, vsa("volume", "show", "-vserver", "vs2"), "cannot act on Vserver", []string{"other SVM's list"})
	checkFail(t, vsa("vserver", "create", "vs3"), "not authorized", []string{"vserver create"})
	checkFail(t, vsa("vserver", "modify", "vs2", "-comment", "x"), "cannot act on Vserver", []string{"modify other SVM"})
	checkFail(t, vsa("security", "login", "delete", "-vserver", "vs2", "-user-or-group-name", "vsa"), "cannot act on Vserver", []string{"delete other SVM's user"})
	checkFail(t, vsa("cluster", "show"), "not authorized", []string{"cluster show"})
	checkFail(t, vsa("options"), "cannot act on Vserver", []string{"options"})
	checkFail(t, n.runAs("vs1/vsa", "Other12345", "volume", "show"), "authentication failed", []string{"vs2 password on vs1"})
	if r := vsa("security", "login", "show"); r.code != 0 || len(rows(r.out)) != 2 {
		t.Fatalf("vsadmin login show: %s %s", r.out, r.errOut)
	}

	// NDMP passwords from the SVM context: vsadmin for its SVM's users,
	// vsadmin-backup for itself; with -vserver defaulting to the login SVM.
	r := vsa("vserver", "services", "ndmp", "generate-password", "-vserver", "vs1", "-user", "vbk")
	if r.code != 0 || !strings.Contains(r.out, "Vserver: vs1\nUser: vbk\nPassword: ") {
		t.Fatalf("vsadmin generate-password: %s %s", r.out, r.errOut)
	}
	checkFail(t, vsa("vserver", "services", "ndmp", "generate-password", "-vserver", "vs2", "-user", "vsa"), "cannot act on Vserver", []string{"other SVM's NDMP password"})
	if r2 := n.runAs("vs1/vbk", "VsBackup123", "vserver", "services", "ndmp", "generate-password", "-vserver", "vs1", "-user", "vbk"); r2.code != 0 || r2.out != r.out {
		t.Fatalf("vsadmin-backup own NDMP password: %q %s, want %q", r2.out, r2.errOut, r.out)
	}
	// An SVM user changes its own password with -vserver taken from the login.
	if r := vsa("security", "login", "password", "-password", "VsAdmin456"); r.code != 0 {
		t.Fatalf("own password: %s", r.errOut)
	}
	if r := n.runAs("vs1/vsa", "VsAdmin456", "volume", "show"); r.code != 0 {
		t.Fatalf("new password: %s", r.errOut)
	}
	if r := n.runAs("vs2/vsa", "Other12345", "volume", "show"); r.code != 0 || !strings.Contains(r.out, "vol2") {
		t.Fatalf("vs2 user unaffected: %s", r.errOut)
	}
	// Deleting the SVM removes its users.
	n.ok("volume", "offline", "vs2", "vol2")
	n.ok("volume", "delete", "vs2", "vol2")
	n.ok("vserver", "delete", "vs2")
	checkFail(t, n.runAs("vs2/vsa", "Other12345", "volume", "show"), "authentication failed", []string{"user of a deleted SVM"})
	if out := n.ok("security", "login", "show", "-vserver", "vs2"); !strings.Contains(out, "no entries") {
		t.Fatalf("users of the deleted SVM:\n%s", out)
	}
}

// TestGlobalFlagsBeforeCommand: the login flags before the command words do
// not collide with command parameters of the same name (-user, -password).
func TestGlobalFlagsBeforeCommand(t *testing.T) {
	n := startNode(t)
	run := func(args ...string) result {
		var out, errOut strings.Builder
		code := Run(t.Context(), args, Env{Stdout: &out, Stderr: &errOut})
		return result{code, out.String(), errOut.String()}
	}
	base := []string{"-socket", n.socket, "-user", "admin", "-password", testAdminPassword}
	if r := run(append(base, "security", "login", "create", "-user-or-group-name", "bk", "-role", "backup", "-password", "Backup123")...); r.code != 0 {
		t.Fatalf("create: %s", r.errOut)
	}
	r := run("--socket="+n.socket, "--user", "bk", "--password", "Backup123", "--json",
		"vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", "bk")
	if r.code != 0 || !strings.Contains(r.out, `"user": "bk"`) {
		t.Fatalf("generate-password as bk: %d %s %s", r.code, r.out, r.errOut)
	}
	// After the command words a global flag still works where the command
	// has no parameter of that name.
	if r := run(append([]string{"vserver", "show", "--json"}, base...)...); r.code != 0 || !strings.HasPrefix(r.out, "[") {
		t.Fatalf("trailing globals: %d %s %s", r.code, r.out, r.errOut)
	}
	if r := run("-socket"); r.code != 1 || !strings.Contains(r.errOut, "flag needs an argument: --socket") {
		t.Fatalf("missing value: %d %q", r.code, r.errOut)
	}
}
