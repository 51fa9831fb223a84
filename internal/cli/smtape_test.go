package cli

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/smtapesvc"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// TestSystemSMTape (S10, issue 13 item 3): tape seeding through the real
// CLI and daemon: system smtape backup of a snapshot to the virtual
// library's drive, status show, showheader, restore into a restricted DP
// volume, status clear, break; the restored volume equals the snapshot.
func TestSystemSMTape(t *testing.T) {
	src, dst := testutil.LoopFS(t, "btrfs", 300), testutil.LoopFS(t, "btrfs", 300)
	for _, f := range []string{"a", "d/b"} {
		b := make([]byte, 300000)
		_, _ = rand.Read(b)
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, f), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	n := startNode(t)
	n.ok("vserver", "create", "vs1")
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "vol1", "-path", src)
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "dp1", "-path", dst, "-type", "DP")
	n.ok("volume", "restrict", "-vserver", "vs1", "-volume", "dp1")
	n.ok("volume", "snapshot", "create", "-vserver", "vs1", "-volume", "vol1", "-snapshot", "seed")

	out := n.ok("system", "smtape", "backup", "-vserver", "vs1", "-volume", "vol1", "-backup-snapshot", "seed", "-tape", "nrst0l", "-tape-block-size", "64")
	if out != "Session 1 created successfully\n" {
		t.Fatalf("backup: %q", out)
	}
	waitSession(t, n, 1)
	out = n.ok("system", "smtape", "status", "show")
	if r, err := column(out, "1"); err != nil || r[1] != "backup" || r[2] != "COMPLETED" || r[4] != "/vs1/vol1" || r[5] != "nrst0l" {
		t.Fatalf("status show: %q %v\n%s", r, err, out)
	}
	out = n.ok("system", "smtape", "showheader", "-tape", "nrst0l")
	for _, want := range []string{"Tape Number: 1", "Source Volume: vol1", "Snapshot 1: seed", "Tape Block Size: 64KB", "Backup Mode: baseline"} {
		if !strings.Contains(out, want) {
			t.Fatalf("showheader lacks %q:\n%s", want, out)
		}
	}
	n.fail("Volume not restricted", "system", "smtape", "restore", "-vserver", "vs1", "-volume", "vol1", "-tape", "nrst0l")
	n.ok("system", "smtape", "restore", "-vserver", "vs1", "-volume", "dp1", "-tape", "nrst0l", "-tape-block-size", "64")
	if s := waitSession(t, n, 2); s.Status != smtapesvc.Completed {
		t.Fatalf("restore session: %+v", s)
	}
	snap := filepath.Join(src, ".snapshot", "seed")
	testutil.CompareManifests(t, testutil.TreeManifest(t, dst), testutil.TreeManifest(t, snap))
	if out := n.ok("system", "smtape", "status", "clear"); out != "2 sessions cleared.\n" {
		t.Fatalf("status clear: %q", out)
	}
	n.ok("vserver", "smtape", "break", "-vserver", "vs1", "-volume", "dp1")
	if out := n.ok("volume", "show", "-vserver", "vs1", "-volume", "dp1", "-fields", "type"); !strings.Contains(out, "RW") {
		t.Fatalf("after break:\n%s", out)
	}
	n.fail("missing required parameter -backup-snapshot", "system", "smtape", "backup", "-vserver", "vs1", "-volume", "vol1", "-tape", "nrst0l")
}

// waitSession waits for an SMTape session of the node to end.
func waitSession(t *testing.T, n *testNode, id int) smtapesvc.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.HangGuard)
	defer cancel()
	s, err := n.d.SMTape().Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
