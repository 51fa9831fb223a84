package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// shellNode starts a daemon with SVMs vs1 and vs2 and the volumes vol1
// (vs1, online), vol2 (vs1, offline) and tmpvol (vs2, online).
func shellNode(t *testing.T) *testNode {
	t.Helper()
	n := startNode(t)
	n.ok("vserver", "create", "vs1")
	n.ok("vserver", "create", "vs2")
	for _, v := range [][2]string{{"vs1", "vol1"}, {"vs1", "vol2"}, {"vs2", "tmpvol"}} {
		dir := filepath.Join(t.TempDir(), v[1])
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		n.ok("volume", "create", "-vserver", v[0], "-volume", v[1], "-path", dir)
	}
	n.ok("volume", "offline", "-vserver", "vs1", "-volume", "vol2")
	return n
}

// volumes returns the volume names of a volume show table.
func volumes(out string) []string {
	var names []string
	for _, r := range rows(out) {
		names = append(names, r[1])
	}
	slices.Sort(names)
	return names
}

// TestAbbreviatedCommandWords checks ONTAP's unique abbreviations of
// command words and parameter names (issue 17 item 3).
func TestAbbreviatedCommandWords(t *testing.T) {
	n := shellNode(t)
	for _, c := range []struct{ short, full []string }{
		{[]string{"vol", "sh"}, []string{"volume", "show"}},
		{[]string{"vserver", "ser", "ndmp", "sh"}, []string{"vserver", "services", "ndmp", "show"}},
		{[]string{"vol", "snap", "sh"}, []string{"volume", "snapshot", "show"}},
		{[]string{"vol", "sh", "-vs", "vs1"}, []string{"volume", "show", "-vserver", "vs1"}},
		{[]string{"vol", "sh", "-fi", "path"}, []string{"volume", "show", "-fields", "path"}},
		{[]string{"sto", "tape", "show"}, []string{"storage", "tape", "show"}},
	} {
		got, want := n.ok(c.short...), n.ok(c.full...)
		if got != want {
			t.Errorf("tapestry %s:\n%s\nwant (as tapestry %s):\n%s", strings.Join(c.short, " "), got, strings.Join(c.full, " "), want)
		}
	}
	if got := volumes(n.ok("vol", "sh", "-vs", "vs1")); !slices.Equal(got, []string{"vol1", "vol2"}) {
		t.Errorf("vol sh -vs vs1: volumes %v", got)
	}
	n.ok("vol", "mod", "-vs", "vs1", "-vol", "vol1", "-comm", "abbreviated")
	if out := n.ok("volume", "show", "-vserver", "vs1", "-volume", "vol1", "-fields", "comment"); !strings.Contains(out, "abbreviated") {
		t.Errorf("vol mod -comm did not set the comment:\n%s", out)
	}
	n.fail("Ambiguous command.  Possible matches include:\n  volume show\n  volume snapshot", "vol", "s")
	n.fail(`"shw" is not a recognized command`, "volume", "shw")
	n.fail(`parameter "-pa" is ambiguous: it may be -password, -path`, "volume", "create", "-vserver", "vs1", "-volume", "v9", "-pa", "/tmp")
	if out := n.ok("volume", "show", "-vserver", "vs1", "-volume", "vol1"); strings.Contains(out, "v9") {
		t.Errorf("an ambiguous parameter created a volume:\n%s", out)
	}
}

// TestShowQueries checks queries on any field of a show command with
// ONTAP's query operators (issue 17 item 3).
func TestShowQueries(t *testing.T) {
	n := shellNode(t)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"-state", "online"}, []string{"tmpvol", "vol1"}},
		{[]string{"-sta", "offline"}, []string{"vol2"}},
		{[]string{"-state", "!online"}, []string{"vol2"}},
		{[]string{"-volume", "vol*"}, []string{"vol1", "vol2"}},
		{[]string{"-volume", "*tmp*"}, []string{"tmpvol"}},
		{[]string{"-volume", "vol1|tmpvol"}, []string{"tmpvol", "vol1"}},
		{[]string{"-volume", "!vol*", "-state", "online"}, []string{"tmpvol"}},
		{[]string{"-volume", "<vol2"}, []string{"tmpvol", "vol1"}},
		{[]string{"-volume", ">vol1"}, []string{"vol2"}},
		{[]string{"-volume", "tmpvol..vol1"}, []string{"tmpvol", "vol1"}},
		{[]string{"-vserver", "vs*", "-type", "RW"}, []string{"tmpvol", "vol1", "vol2"}},
		{[]string{"-vserver", "!vs1"}, []string{"tmpvol"}},
		{[]string{"-type-generation", "0..5"}, []string{"tmpvol", "vol1", "vol2"}},
		{[]string{"-type-generation", ">0"}, nil},
	} {
		args := append([]string{"volume", "show"}, c.args...)
		out := n.ok(args...)
		if got := volumes(out); !slices.Equal(got, c.want) {
			t.Errorf("tapestry %s: volumes %v, want %v:\n%s", strings.Join(args, " "), got, c.want, out)
		}
		if c.want == nil && out != "There are no entries matching your query.\n" {
			t.Errorf("tapestry %s: %q, want ONTAP's sentence for an empty result", strings.Join(args, " "), out)
		}
	}
	if out := n.ok("volume", "show", "-state", "offline", "-fields", "path"); len(rows(out)) != 1 || rows(out)[0][1] != "vol2" {
		t.Errorf("query with -fields:\n%s", out)
	}
	if out := n.ok("--json", "volume", "show", "-state", "offline"); strings.Contains(out, "vol1") || !strings.Contains(out, `"vol2"`) {
		t.Errorf("--json query:\n%s", out)
	}
	if out := n.ok("vserver", "show", "-vserver", "vs2"); len(rows(out)) != 1 {
		t.Errorf("vserver show -vserver vs2:\n%s", out)
	}
	n.fail(`invalid argument "-nosuch"`, "volume", "show", "-nosuch", "x")
	n.fail(`parameter "-state" needs a value`, "volume", "show", "-state")
}

// TestNodeRunShortForms checks that "node run" and "run" are ONTAP's short
// forms of "system node run" (issue 17 item 3).
func TestNodeRunShortForms(t *testing.T) {
	n := startNode(t)
	want := n.ok("system", "node", "run", "-node", n.node, "-command", "rdfile /etc/log/backup")
	if !strings.Contains(want, "Start_Logging") {
		t.Fatalf("system node run rdfile: %q", want)
	}
	for _, args := range [][]string{
		{"node", "run", "-node", n.node, "rdfile", "/etc/log/backup"},
		{"node", "run", "-node", n.node, "-command", "rdfile /etc/log/backup"},
		{"run", "-node", n.node, "rdfile", "/etc/log/backup"},
		{"sys", "node", "ru", "-no", n.node, "rdfile", "/etc/log/backup"},
	} {
		if got := n.ok(args...); got != want {
			t.Errorf("tapestry %s: %q, want %q", strings.Join(args, " "), got, want)
		}
	}
}

// TestErrorsNameParametersAsTyped checks that errors repeat a parameter as
// it was typed and that a number that does not parse gets a sentence
// (issue 17 item 3).
func TestErrorsNameParametersAsTyped(t *testing.T) {
	n := startNode(t)
	n.fail(`invalid argument "-bogus"`, "vserver", "create", "-vserver", "vs1", "-bogus", "x")
	n.fail(`invalid argument "--bogus"`, "vserver", "create", "-vserver", "vs1", "--bogus", "x")
	n.fail(`parameter "-vserver" needs a value`, "vserver", "create", "-vserver")
	for _, c := range []struct {
		want string
		args []string
	}{
		{`"two" is not a valid value for -drives: give a whole number`, []string{"storage", "tape", "vtl", "create", "-name", "L", "-drives", "two", "-slots", "2", "-ie-slots", "0", "-cartridges", "1"}},
		{`"x" is not a valid value for --tail: give a whole number`, []string{"rdfile", "--tail", "x", "/etc/log/backup"}},
		{`"-5" is not a valid value for -restore-default-uid: give a whole number, 0 or more`, []string{"vserver", "services", "ndmp", "modify", "-vserver", "cluster1", "-restore-default-uid", "-5"}},
		{`"maybe" is not a valid value for -instance: give true or false`, []string{"volume", "show", "-instance=maybe"}},
	} {
		r := n.run(c.args...)
		checkFail(t, r, c.want, c.args)
		for _, goText := range []string{"strconv", "invalid syntax", "parsing"} {
			if strings.Contains(r.errOut, goText) {
				t.Errorf("tapestry %s: Go error text %q in %q", strings.Join(c.args, " "), goText, r.errOut)
			}
		}
	}
}

// TestQueryMatches checks the query operators on single values.
func TestQueryMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, value string
		want           bool
	}{
		{"vol1", "vol1", true}, {"vol1", "VOL1", true}, {"vol1", "vol10", false},
		{"vol*", "vol10", true}, {"*tmp*", "a_tmp_b", true}, {"*tmp", "tmpx", false},
		{"!vol1", "vol1", false}, {"!vol1", "vol2", true}, {"!vol*", "tmp", true},
		{"a | b* | *c*", "bx", true}, {"a|b*|*c*", "xcx", true}, {"a|b*|*c*", "d", false},
		{"5..10", "10", true}, {"5..10", "11", false}, {"5..10", "5", true}, {"5..10", "9", true},
		{"<20", "3", true}, {"<20", "100", false}, {">5", "10", true}, {">5", "5", false},
		{"<=5", "5", true}, {">=5", "4", false}, {">1GB", "2GB", true}, {">1GB", "512MB", false},
		{`"a*b"`, "a*b", true}, {`"a*b"`, "axb", false}, {"-", "", true}, {"!-", "", false},
	} {
		if got := matches(c.pattern, c.value); got != c.want {
			t.Errorf("matches(%q, %q) = %v, want %v", c.pattern, c.value, got, c.want)
		}
	}
}
