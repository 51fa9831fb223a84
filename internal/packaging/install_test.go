package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// repo is the repository's top directory, seen from this package.
const repo = "../.."

const testVersion = "9.9.9-pkgtest"

// install runs make install into a fresh DESTDIR and returns it.
func install(t *testing.T) string {
	t.Helper()
	testutil.RequireTool(t, "go")
	mk := testutil.RequireTool(t, "make")
	dest := filepath.Join(t.TempDir(), "dest")
	cmd := exec.Command(mk, "install", "DESTDIR="+dest, "BIN="+filepath.Join(t.TempDir(), "bin"), "VERSION="+testVersion)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	return dest
}

// TestMakeInstall installs into a DESTDIR and checks each installed piece
// with the tool that uses it (issue 17 item 4).
func TestMakeInstall(t *testing.T) {
	dest := install(t)
	usr := filepath.Join(dest, "usr", "local")
	for _, f := range []string{
		"bin/tapestry", "bin/ndmpcopy", "sbin/tapestryd", "lib/systemd/system/tapestryd.service",
		"share/man/man1/tapestry.1", "share/man/man1/tapestry-volume-show.1", "share/man/man1/ndmpcopy.1",
		"share/man/man8/tapestryd.8", "share/bash-completion/completions/tapestry",
		"share/zsh/site-functions/_tapestry", "share/fish/vendor_completions.d/tapestry.fish",
	} {
		if fi, err := os.Stat(filepath.Join(usr, f)); err != nil || fi.Size() == 0 {
			t.Errorf("installed %s: %v", f, err)
		}
	}
	for _, c := range [][]string{{"bin/tapestry", "tapestry " + testVersion}, {"sbin/tapestryd", "tapestryd " + testVersion}} {
		out, err := exec.Command(filepath.Join(usr, c[0]), "--version").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != c[1] {
			t.Errorf("%s --version: %q %v, want %q", c[0], out, err, c[1])
		}
	}
	t.Run("systemd-analyze verify", func(t *testing.T) { verifyUnit(t, dest) })
	t.Run("bash completion", func(t *testing.T) { bashCompletion(t, usr) })
	t.Run("man", func(t *testing.T) { renderMan(t, usr) })
}

// verifyUnit runs systemd-analyze verify on the installed unit, with the
// DESTDIR as the root directory (holding a copy of the host's own units,
// which the unit's default dependencies name) and the installed manual
// pages on MANPATH (verify checks Documentation=man:tapestryd(8)).
func verifyUnit(t *testing.T, dest string) {
	sa := testutil.RequireTool(t, "systemd-analyze")
	testutil.RequireTool(t, "man")
	hostUnits := "/usr/lib/systemd/system"
	testutil.Require(t, exists(filepath.Join(hostUnits, "sysinit.target")), "needs systemd's units in "+hostUnits)
	units := filepath.Join(dest, "usr", "lib", "systemd")
	if err := os.MkdirAll(units, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", hostUnits, units).CombinedOutput(); err != nil {
		t.Fatalf("copy host units: %v\n%s", err, out)
	}
	unit := "/usr/local/lib/systemd/system/tapestryd.service"
	cmd := exec.Command(sa, "verify", "--root="+dest, unit)
	cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(dest, "usr", "local", "share", "man"))
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dest, unit))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/local/sbin/tapestryd --data-dir /var/lib/tapestry", "ProtectSystem=", "CapabilityBoundingSet=CAP_", "NoNewPrivileges=yes"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
}

// bashCompletion loads the installed completion in bash, with the
// bash-completion framework it uses as every distribution's bash does, and
// completes "tapestry vol s" with it, which runs the installed tapestry.
func bashCompletion(t *testing.T, usr string) {
	bash := testutil.RequireTool(t, "bash")
	const framework = "/usr/share/bash-completion/bash_completion"
	testutil.Require(t, exists(framework), "needs bash-completion ("+framework+")")
	script := `set -e
source ` + framework + `
source "$1"
complete -p tapestry
compopt() { :; } # works only inside a completion the shell itself runs
COMP_WORDS=(tapestry vol s); COMP_CWORD=2; COMP_LINE="tapestry vol s"; COMP_POINT=${#COMP_LINE}
__start_tapestry tapestry s vol
printf 'reply:%s\n' "${COMPREPLY[@]}"
`
	cmd := exec.Command(bash, "-c", script, "bash", filepath.Join(usr, "share/bash-completion/completions/tapestry"))
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(usr, "bin")+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	for _, want := range []string{"complete -o default -F __start_tapestry tapestry", "reply:show", "reply:snapshot"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("bash completion output lacks %q:\n%s", want, out)
		}
	}
}

// renderMan renders installed pages with man -l.
func renderMan(t *testing.T, usr string) {
	man := testutil.RequireTool(t, "man")
	for _, c := range []struct{ page, want string }{
		{"share/man/man1/tapestry-volume-show.1", "tapestry volume show [-vserver SVM] [-volume NAME]"},
		{"share/man/man1/tapestry.1", "tapestry-volume(1)"},
		{"share/man/man8/tapestryd.8", "--log-format"},
		{"share/man/man1/ndmpcopy.1", "ndmpcopy - copy a volume"},
	} {
		cmd := exec.Command(man, "-l", filepath.Join(usr, c.page))
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=200", "LANG=C")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), c.want) {
			t.Errorf("man -l %s: %v, output lacks %q:\n%s", c.page, err, c.want, out)
		}
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
