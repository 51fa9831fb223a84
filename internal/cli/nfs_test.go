package cli

import (
	"strings"
	"testing"
)

// Issue 11 item 10: vserver nfs modify -v4.2-seclabel enabled|disabled and
// vserver nfs show (off by default), through the admin API.
func TestVserverNFSSecLabel(t *testing.T) {
	n := startNode(t)
	n.ok("vserver", "create", "vs1")
	if r, err := column(n.ok("vserver", "nfs", "show", "vs1"), "vs1"); err != nil || !equal(r, []string{"vs1", "disabled"}) {
		t.Fatalf("default row %q (%v)", r, err)
	}
	n.ok("vserver", "nfs", "modify", "-vserver", "vs1", "-v4.2-seclabel", "enabled")
	out := n.ok("vserver", "nfs", "show", "-vserver", "vs1", "-fields", "v4.2-seclabel")
	if r := rows(out); len(r) != 1 || !equal(r[0], []string{"vs1", "enabled"}) {
		t.Fatalf("after enable:\n%s", out)
	}
	n.fail(`invalid value for field "-v4.2-seclabel"`, "vserver", "nfs", "modify", "vs1", "-v4.2-seclabel", "maybe")
	n.fail(`Vserver "nosuch" does not exist`, "vserver", "nfs", "modify", "nosuch", "-v4.2-seclabel", "enabled")
	n.fail("nothing to modify", "vserver", "nfs", "modify", "vs1")
	n.ok("vserver", "nfs", "modify", "vs1", "-v4.2-seclabel", "disabled")
	if out := n.ok("vserver", "nfs", "show", "vs1"); !strings.Contains(out, "disabled") {
		t.Fatalf("after disable:\n%s", out)
	}
}
