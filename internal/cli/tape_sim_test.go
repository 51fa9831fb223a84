package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/daemon"
	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst"
	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst/sim"
)

// simNode is a daemon whose real-device discovery reads a simulated host
// (package linuxst/sim) instead of /sys and /dev.
type simNode struct {
	*testNode
	lib *sim.Library
}

// startSimNode starts a daemon over the standard simulated library with
// the spec's HP LTO-5 tape configuration file installed, so that drive 0
// is dynamically qualified and drive 1 (IBM) is not.
func startSimNode(t *testing.T, discovery bool) *simNode {
	t.Helper()
	lib, err := sim.NewLibrary(filepath.Join(t.TempDir(), "host"), sim.LibraryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := &simNode{testNode: &testNode{t: t, dir: filepath.Join(t.TempDir(), "d"), user: "admin", pass: testAdminPassword}, lib: lib}
	tcf, err := os.ReadFile("../tape/testdata/hp-lto5.tcf")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(n.dir, daemon.TapeConfigDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "HP_LTO5.TCF"), tcf, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Open(context.Background(), daemon.Options{
		DataDir: n.dir, AdminPassword: testAdminPassword, NodeName: testNodeName, Out: &bytes.Buffer{}, TapeSys: lib.Host,
		Config: daemon.Config{NDMPListen: "127.0.0.1:0", TapeSysfsRoot: lib.Host.SysRoot(), TapeDevRoot: lib.Host.DevRoot(), TapeRescanInterval: "0",
			TapeDiscovery: &discovery},
	})
	if err != nil {
		t.Fatalf("open daemon: %v", err)
	}
	n.socket, n.node = d.SocketPath(), d.NodeName()
	ctx, cancel := context.WithCancel(context.Background())
	n.stop, n.stopped = cancel, make(chan error, 1)
	go func() { n.stopped <- d.Serve(ctx) }()
	t.Cleanup(n.shutdown)
	return n
}

// wantRow fails unless the table out has a row starting with key.
func wantRow(t *testing.T, cmd, out string, key ...string) {
	t.Helper()
	if _, err := column(out, key...); err != nil {
		t.Fatalf("%s: no row %q:\n%s", cmd, key, out)
	}
}

// T9, T3, T7, T4, issue 15 item 1: a daemon started over a simulated
// sysfs tree with two drives (drive 0 over two paths) and a changer lists
// them in every storage tape and system node hardware tape command beside
// the virtual library's, with aliases bound by serial number; the HP tape
// configuration file qualifies the HP drive and not the IBM one; a device
// removed from the tree disappears at storage tape rescan and one added
// appears.
func TestSimulatedDevicesListed(t *testing.T) {
	n := startSimNode(t, true)
	out := n.ok("storage", "tape", "show")
	wantRow(t, "show", out, n.node, "2a.0", "media", "changer", "STK", "L700", "normal")
	wantRow(t, "show", out, n.node, "2a.1", "tape", "drive", "Hewlett-Packard", "LTO-5", "normal")
	wantRow(t, "show", out, n.node, "2a.2", "tape", "drive", "IBM", "ULT3580-TD5", "normal")
	wantRow(t, "show", out, n.node, "0a.0", "media", "changer", "TAPESTRY", "VTL")
	if !strings.HasSuffix(out, "8 entries were displayed.\n") {
		t.Fatalf("storage tape show: want 8 devices:\n%s", out)
	}
	out = n.ok("storage", "tape", "show-tape-drive")
	wantRow(t, "show-tape-drive", out, n.node, "2a.1", "st4", "Hewlett-Packard", "LTO-5", "HU1951SIM0", "normal")
	wantRow(t, "show-tape-drive", out, n.node, "2a.2", "st5", "IBM", "ULT3580-TD5", "1013SIM001", "normal")
	out = n.ok("storage", "tape", "show-media-changer")
	wantRow(t, "show-media-changer", out, n.node, "2a.0", "mc1", "STK", "L700", "XYZZYSIMA0", "normal")
	out = n.ok("storage", "tape", "library", "path", "show")
	wantRow(t, "path show", out, n.node, "2a.1", "st4", "2a", "0", "true")
	wantRow(t, "path show", out, n.node, "3a.1", "st4", "3a", "0", "false")
	out = n.ok("storage", "tape", "library", "path", "show-by-initiator")
	wantRow(t, "show-by-initiator", out, n.node, "3a", "3a.1", "st4", "tape", "drive", "0")
	out = n.ok("storage", "tape", "alias", "show")
	wantRow(t, "alias show", out, "st4", "SN[HU1951SIM0]", "2a.1", "tape", "drive")
	wantRow(t, "alias show", out, "st5", "SN[1013SIM001]", "2a.2", "tape", "drive")
	wantRow(t, "alias show", out, "mc1", "SN[XYZZYSIMA0]", "2a.0", "media", "changer")
	out = n.ok("system", "node", "hardware", "tape", "drive", "show")
	wantRow(t, "hardware tape drive show", out, n.node, "2a.1", "Hewlett-Packard", "LTO-5", "HU1951SIM0", "st4", "2a.1,3a.1")
	out = n.ok("storage", "tape", "show-supported-status")
	wantRow(t, "show-supported-status", out, `"IBM`, `ULT3580-TD5"`, "false", "Nonqualified", "tape", "drive")
	wantRow(t, "show-supported-status", out, "Hewlett-Packard", "LTO-5", "true", "Dynamically", "Qualified")

	if err := n.lib.Host.Detach(n.lib.Paths[1][0]); err != nil {
		t.Fatal(err)
	}
	out = n.ok("storage", "tape", "rescan")
	if out != "Paths added: -\nPaths removed: 2a.2\n" {
		t.Fatalf("rescan after removing drive 1:\n%s", out)
	}
	if out = n.ok("storage", "tape", "show"); strings.Contains(out, "2a.2") || !strings.HasSuffix(out, "7 entries were displayed.\n") {
		t.Fatalf("drive 1 still listed:\n%s", out)
	}
	if _, err := n.lib.Host.AttachDrive(n.lib.Drives[1], linuxst.HCTL{Host: 4, Target: 5, LUN: 0}); err != nil {
		t.Fatal(err)
	}
	if out = n.ok("storage", "tape", "rescan"); out != "Paths added: 4a.5\nPaths removed: -\n" {
		t.Fatalf("rescan after attaching drive 1 at 4:0:5:0:\n%s", out)
	}
	// The alias is bound to the serial number: the drive keeps st5.
	wantRow(t, "show-tape-drive", n.ok("storage", "tape", "show-tape-drive"), n.node, "4a.5", "st5", "IBM")
}

// T9, issue 15 item 1: with discovery turned off (tape-discovery false)
// the simulated devices are not listed and storage tape rescan says why.
func TestDiscoveryOff(t *testing.T) {
	n := startSimNode(t, false)
	if out := n.ok("storage", "tape", "show"); strings.Contains(out, "2a.") || !strings.HasSuffix(out, "5 entries were displayed.\n") {
		t.Fatalf("storage tape show with discovery off:\n%s", out)
	}
	n.fail("real tape device discovery is off", "storage", "tape", "rescan")
}

// T7, issue 15 item 6: load balancing is off by default and switched
// with storage tape load-balance modify, kept in the catalog (that opens
// then take the paths in turn is checked in package tape).
func TestLoadBalanceCommand(t *testing.T) {
	n := startSimNode(t, true)
	out := n.ok("storage", "tape", "load-balance", "show")
	wantRow(t, "load-balance show", out, n.node, "false")
	n.ok("storage", "tape", "load-balance", "modify", "-node", n.node, "-is-load-balance-enabled", "true")
	wantRow(t, "load-balance show", n.ok("storage", "tape", "load-balance", "show"), n.node, "true")
	n.fail("invalid value", "storage", "tape", "load-balance", "modify", "-node", n.node, "-is-load-balance-enabled", "yes")
	n.fail("missing required parameter -is-load-balance-enabled", "storage", "tape", "load-balance", "modify", "-node", n.node)
}
