package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/daemon"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// These tests drive the tape commands through a real daemon on a temporary
// data directory with its default virtual library (4 drives, 20 slots,
// 4 import/export slots, 10 cartridges) (T1, T3, T7, T8).

// tapeNode is a daemon whose NDMP listener is on a free loopback port and
// whose tape registry the test can reach, to play a session that has a
// drive open.
type tapeNode struct {
	*testNode
	d *daemon.Daemon
}

func startTapeNode(t *testing.T) *tapeNode {
	t.Helper()
	n := &tapeNode{testNode: &testNode{t: t, dir: filepath.Join(t.TempDir(), "d"), user: "admin", pass: testAdminPassword}}
	n.startTape()
	t.Cleanup(n.shutdown)
	return n
}

func (n *tapeNode) startTape() {
	n.t.Helper()
	d, err := daemon.Open(context.Background(), daemon.Options{
		DataDir: n.dir, AdminPassword: testAdminPassword, NodeName: testNodeName,
		Config: daemon.Config{NDMPListen: "127.0.0.1:0"}, Out: &bytes.Buffer{}, // a free port
	})
	if err != nil {
		n.t.Fatalf("open daemon: %v", err)
	}
	n.d = d
	n.socket = d.SocketPath()
	n.node = d.NodeName()
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	n.stopped = make(chan error, 1)
	go func() { n.stopped <- d.Serve(ctx) }()
}

func (n *tapeNode) restart() {
	n.t.Helper()
	n.shutdown()
	n.startTape()
}

func decodeJSON[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	return v
}

func TestStorageTapeShowCommands(t *testing.T) {
	n := startTapeNode(t)

	out := n.ok("storage", "tape", "show")
	if !strings.HasPrefix(out, fmt.Sprintf("%-*s Device ID Device Type   Description       Status\n", len(n.node), "Node")) || !strings.HasSuffix(out, "5 entries were displayed.\n") {
		t.Fatalf("storage tape show:\n%s", out)
	}
	if r, err := column(out, n.node, "0a.0"); err != nil || !equal(r, []string{n.node, "0a.0", "media", "changer", "TAPESTRY", "VTL", "normal"}) {
		t.Fatalf("changer row %q (%v)\n%s", r, err, out)
	}
	for i, id := range []string{"0a.1", "0a.2", "0a.3", "0a.4"} {
		r, err := column(n.ok("storage", "tape", "show-tape-drive"), n.node, id)
		if err != nil || r[2] != "st"+string(rune('0'+i)) || r[len(r)-1] != "normal" {
			t.Fatalf("show-tape-drive row of %s: %q (%v)", id, r, err)
		}
	}
	out = n.ok("storage", "tape", "show-media-changer")
	if r := rows(out); len(r) != 1 || r[0][2] != "mc0" {
		t.Fatalf("show-media-changer:\n%s", out)
	}

	// T1: the device listing of a drive, twelve names in the spec's order.
	out = n.ok("storage", "tape", "show", "-device-names", "-device-id", "st2")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 14 || lines[0] != "Node: "+n.node || !strings.Contains(lines[1], "Tape drive (0a.3)") {
		t.Fatalf("-device-names:\n%s", out)
	}
	for i, dn := range tape.DeviceNames("st2") {
		if !strings.HasPrefix(lines[2+i], dn.String()+" ") || !strings.Contains(lines[2+i], dn.Rewind.Meaning()+",") ||
			!strings.Contains(lines[2+i], "format is: VTL (") {
			t.Fatalf("line %d %q, want device %s", 2+i, lines[2+i], dn)
		}
	}
	if all := n.ok("storage", "tape", "show", "-device-names"); strings.Count(all, "Tape drive (") != 4 {
		t.Fatalf("-device-names of every drive:\n%s", all)
	}

	devs := decodeJSON[[]admin.TapeDevice](t, n.ok("--json", "storage", "tape", "show"))
	if len(devs) != 5 || devs[0].Alias != "st0" || devs[0].SupportStatus != "Qualified" || devs[4].DeviceType != "media changer" {
		t.Fatalf("--json: %+v", devs)
	}
	inst := n.ok("storage", "tape", "show", "st1", "-instance")
	for _, want := range []string{"Device ID: 0a.2\n", "Alias Name: st1\n", "Support Status: Qualified\n", "Serial Number: " + devs[1].Serial + "\n"} {
		if !strings.Contains(inst, want) {
			t.Fatalf("-instance lacks %q:\n%s", want, inst)
		}
	}
	if out := n.ok("storage", "tape", "show", "-fields", "alias,serial-number"); !strings.HasPrefix(out, fmt.Sprintf("%-*s device-id alias serial-number\n", len(n.node), "node")) {
		t.Fatalf("-fields:\n%s", out)
	}
	n.fail(`invalid field "bogus"`, "storage", "tape", "show", "-fields", "bogus")
	n.fail(`tape device "st9" does not exist on node "`+n.node+`"`, "storage", "tape", "show", "st9")
	n.fail(`node "node2" does not exist`, "storage", "tape", "show", "-node", "node2")

	out = n.ok("storage", "tape", "show-errors")
	if r := rows(out); len(r) != 4 || !equal(r[0], []string{n.node, "0a.1", "st0", "0", "0", "0"}) {
		t.Fatalf("show-errors:\n%s", out)
	}

	// The spec's layout: a Node line, then Tape Drive / Is Supported /
	// Support Status.
	out = n.ok("storage", "tape", "show-supported-status", "-node", n.node)
	want := "Node: " + n.node + "\nTape Drive        Is Supported Support Status\n----------------- ------------ --------------\nTapestry VTL-TAPE true         Qualified\n"
	if out != want {
		t.Fatalf("show-supported-status:\n%s\nwant:\n%s", out, want)
	}
	if out := n.ok("storage", "show", "tape", "supported"); out != "Supported Tapes\n\nTapestry VTL-TAPE\n" {
		t.Fatalf("storage show tape supported:\n%q", out)
	}
	if out := n.ok("storage", "show", "tape", "supported", "-v"); !strings.Contains(out, "Tapestry VTL-TAPE") || !strings.Contains(out, "Qualified") {
		t.Fatalf("storage show tape supported -v:\n%s", out)
	}

	// T7: one path per device through initiator 0a, all LUN 0, primary.
	out = n.ok("storage", "tape", "library", "path", "show")
	if r := rows(out); len(r) != 5 || !equal(r[0][:6], []string{n.node, "0a.0", "mc0", "0a", "0", "true"}) {
		t.Fatalf("library path show:\n%s", out)
	}
	out = n.ok("storage", "tape", "library", "path", "show-by-initiator", "-initiator", "0a")
	if r := rows(out); len(r) != 5 || r[0][1] != "0a" {
		t.Fatalf("show-by-initiator:\n%s", out)
	}
	if out := n.ok("storage", "tape", "library", "path", "show-by-initiator", "-initiator", "0z"); out != "There are no entries matching your query.\n" {
		t.Fatalf("show-by-initiator of an unused port:\n%s", out)
	}
	out = n.ok("storage", "tape", "library", "config", "show")
	if !strings.HasPrefix(out, fmt.Sprintf("%-*s LUN Group LUN Count Library Name   Library Target Port Initiator\n", len(n.node), "Node")) {
		t.Fatalf("library config show:\n%s", out)
	}
	if r := rows(out); len(r) != 1 || !equal(r[0][:5], []string{n.node, "0", "5", "TAPESTRY", "VTL_1"}) || r[0][6] != "0a" {
		t.Fatalf("library config rows %q\n%s", r, out)
	}

	out = n.ok("system", "node", "hardware", "tape", "drive", "show")
	if r := rows(out); len(r) != 4 || r[0][4] != devs[0].Serial || r[0][5] != "st0" {
		t.Fatalf("hardware tape drive show:\n%s", out)
	}
	out = n.ok("system", "node", "hardware", "tape", "library", "show")
	if r := rows(out); len(r) != 1 || r[0][1] != "0a.0" || r[0][4] != devs[4].Serial || r[0][5] != "mc0" {
		t.Fatalf("hardware tape library show:\n%s", out)
	}
}

func TestStorageTapeActions(t *testing.T) {
	n := startTapeNode(t)
	ctx := context.Background()
	reg := n.d.Tapes()

	// offline and online, by alias and by physical path name.
	n.ok("storage", "tape", "offline", "-node", n.node, "-device-id", "st1")
	if r, _ := column(n.ok("storage", "tape", "show"), n.node, "0a.2"); r[len(r)-1] != "offline" {
		t.Fatalf("st1 after offline: %q", r)
	}
	if _, err := reg.OpenDrive(ctx, "s1", "nrst1l", tape.ReadMode); err == nil {
		t.Fatal("an offline drive opened")
	}
	n.ok("storage", "tape", "online", "0a.2")
	dh, err := reg.OpenDrive(ctx, "s1", "nrst1l", tape.ReadMode)
	if err != nil {
		t.Fatalf("open after online: %v", err)
	}
	// A drive a session is using cannot be taken offline or positioned.
	n.fail(tape.MsgInUse, "storage", "tape", "offline", "st1")
	n.fail(tape.MsgInUse, "storage", "tape", "position", "st1", "-operation", "rewind")
	if err := dh.Close(); err != nil {
		t.Fatal(err)
	}
	n.ok("storage", "tape", "offline", "st1")
	n.ok("storage", "tape", "online", "st1")
	n.fail("missing required parameter -device-id", "storage", "tape", "online")
	n.fail(`tape device "0q.7" does not exist`, "storage", "tape", "online", "0q.7")

	// trace: one device, then every device of the node.
	n.ok("storage", "tape", "trace", "-device-id", "st0", "-is-trace-enabled", "true")
	if d, _ := reg.Device(ctx, "st0"); !d.Trace {
		t.Fatal("trace of st0 not enabled")
	}
	if d, _ := reg.Device(ctx, "st1"); d.Trace {
		t.Fatal("trace of st1 enabled too")
	}
	n.ok("storage", "tape", "trace", "-node", n.node, "-is-trace-enabled", "true")
	devs := decodeJSON[[]admin.TapeDevice](t, n.ok("--json", "storage", "tape", "show"))
	for _, d := range devs {
		if !d.Trace {
			t.Fatalf("%s not traced after trace -is-trace-enabled true", d.Alias)
		}
	}
	n.ok("storage", "tape", "trace", "-is-trace-enabled", "false")
	if d, _ := reg.Device(ctx, "mc0"); d.Trace {
		t.Fatal("trace of mc0 still on")
	}
	n.fail(`invalid value "yes" for -is-trace-enabled`, "storage", "tape", "trace", "-is-trace-enabled", "yes")
	n.fail("missing required parameter -is-trace-enabled", "storage", "tape", "trace", "st0")

	// position: two file marks, rewind, then five forward spaces of which
	// three cannot be done.
	n.ok("storage", "tape", "position", "-node", n.node, "-device-id", "st0", "-operation", "weof", "-count", "2")
	n.ok("storage", "tape", "position", "st0", "-operation", "rewind")
	out := n.ok("storage", "tape", "position", "st0", "-operation", "fsf", "-count", "5")
	if !strings.Contains(out, "Warning: 3 of 5 operations were not done") {
		t.Fatalf("fsf 5 over 2 marks: %q", out)
	}
	stats := n.ok("storage", "stats", "tape", "nrst0a")
	if r := rows(stats); len(r) != 1 || r[0][0] != "st0" || r[0][6] != "2" {
		t.Fatalf("stats after weof 2:\n%s", stats)
	}
	n.fail(`"jump" is not a position operation; use one of weof, fsf, bsf, fsr, bsr, rewind, offline`,
		"storage", "tape", "position", "st0", "-operation", "jump")
	n.fail("missing required parameter -operation", "storage", "tape", "position", "st0")
	n.fail("-count -1 is out of range", "storage", "tape", "position", "st0", "-operation", "fsf", "-count", "-1")
	n.fail("mc0 is a media changer, not a tape drive", "storage", "tape", "position", "mc0", "-operation", "rewind")

	// offline unloads the cartridge; the drive then has no tape to move.
	n.ok("storage", "tape", "position", "st3", "-operation", "offline")
	n.fail("command failed: 0a.4: no tape loaded\n", "storage", "tape", "position", "st3", "-operation", "rewind")

	// statistics to zero (the spec's nodeshell command).
	n.ok("storage", "stats", "tape", "zero", "st0")
	if r := rows(n.ok("storage", "stats", "tape", "st0")); r[0][6] != "0" {
		t.Fatalf("stats after zero: %q", r)
	}
	n.fail("accepts 1 arg(s)", "storage", "stats", "tape", "zero")
	n.fail(`tape device "st8" does not exist`, "storage", "stats", "tape", "zero", "st8")

	// reset is at the advanced privilege level; it drops a scsi
	// reservation.
	n.fail(`command "storage tape reset" is available only at the advanced privilege level`, "storage", "tape", "reset", "st0")
	n.ok("--privilege", "advanced", "storage", "tape", "reset", "-device-id", "st0")
	n.ok("--privilege", "advanced", "storage", "tape", "reset", "mc0")
}

func TestStorageTapeAliases(t *testing.T) {
	n := startTapeNode(t)
	devs := decodeJSON[[]admin.TapeDevice](t, n.ok("--json", "storage", "tape", "show"))
	serial1 := devs[1].Serial // drive 0a.2, st1

	out := n.ok("storage", "tape", "alias", "show")
	if !strings.HasPrefix(out, "Node: "+n.node+"\nAlias Mapping") || !strings.HasSuffix(out, "5 entries were displayed.\n") {
		t.Fatalf("alias show:\n%s", out)
	}
	if r, err := column(out, "st1"); err != nil || !equal(r, []string{"st1", "SN[" + strings.ToUpper(serial1) + "]", "0a.2", "tape", "drive"}) {
		t.Fatalf("st1 row %q (%v)\n%s", r, err, out)
	}

	// T3: the spec's form; the serial number is not case-sensitive.
	n.ok("storage", "tape", "alias", "set", "-node", n.node, "-name", "st7", "-mapping", "SN["+strings.ToLower(serial1)+"]")
	out = n.ok("storage", "tape", "alias", "show")
	if _, err := column(out, "st1"); err == nil {
		t.Fatalf("st1 still listed after the drive got st7:\n%s", out)
	}
	if r, err := column(out, "st7"); err != nil || r[2] != "0a.2" {
		t.Fatalf("st7 row %q (%v)\n%s", r, err, out)
	}
	// The new name opens the drive; the old one is gone.
	if _, err := n.d.Tapes().Device(context.Background(), "st7"); err != nil {
		t.Fatalf("st7: %v", err)
	}
	n.fail(`tape device "st1" does not exist`, "storage", "tape", "online", "st1")

	// Bad input.
	n.fail(`alias st0 is already in use by tape drive 0a.1`, "storage", "tape", "alias", "set", "-name", "st0", "-mapping", "SN["+serial1+"]")
	n.fail(`invalid mapping "SN[]"`, "storage", "tape", "alias", "set", "-name", "st5", "-mapping", "SN[]")
	n.fail(`invalid mapping "0b"`, "storage", "tape", "alias", "set", "-name", "st5", "-mapping", "0b")
	n.fail(`invalid mapping "SN[`+strings.Repeat("A", 33)+`]"`, "storage", "tape", "alias", "set", "-name", "st5", "-mapping", "SN["+strings.Repeat("A", 33)+"]")
	n.fail(`invalid alias name "tape1"`, "storage", "tape", "alias", "set", "-name", "tape1", "-mapping", "0b.4")
	n.fail(`names a tape drive; alias mc3 is for a media changer`, "storage", "tape", "alias", "set", "-name", "mc3", "-mapping", "0a.2")
	n.fail("missing required parameter -mapping", "storage", "tape", "alias", "set", "-name", "st5")
	n.fail(`node "node9" does not exist`, "storage", "tape", "alias", "set", "-node", "node9", "-name", "st5", "-mapping", "0b.4")
	n.fail(`alias "st9" does not exist on node "`+n.node+`"`, "storage", "tape", "alias", "clear", "-name", "st9")
	n.fail(`invalid -clear-scope "tapes"`, "storage", "tape", "alias", "clear", "-clear-scope", "tapes")
	n.fail("specify either -name or -clear-scope, not both", "storage", "tape", "alias", "clear", "-name", "st0", "-clear-scope", "all")
	n.fail("missing required parameter -name or -clear-scope", "storage", "tape", "alias", "clear")

	// A mapping by physical path name for a device not attached (yet) is
	// kept (T9: it may be attached later).
	n.ok("storage", "tape", "alias", "set", "-name", "st12", "-mapping", "MY_SWITCH:5.3L2")
	if r, err := column(n.ok("storage", "tape", "alias", "show", "st12"), "st12"); err != nil || !equal(r, []string{"st12", "MY_SWITCH:5.3L2", "-", "tape", "drive"}) {
		t.Fatalf("st12 %q (%v)", r, err)
	}

	// Aliases survive a restart (T3).
	n.restart()
	out = n.ok("storage", "tape", "alias", "show")
	if r, err := column(out, "st7"); err != nil || r[2] != "0a.2" {
		t.Fatalf("st7 after restart %q (%v)\n%s", r, err, out)
	}
	if _, err := column(out, "st12"); err != nil {
		t.Fatalf("st12 lost by the restart:\n%s", out)
	}

	// Clearing: one name, then the tape scope leaves the media changer.
	n.ok("storage", "tape", "alias", "clear", "-node", n.node, "-name", "st12")
	n.ok("storage", "tape", "alias", "clear", "-node", n.node, "-clear-scope", "tape")
	out = n.ok("storage", "tape", "alias", "show")
	if r := rows(out); len(r) != 1 || r[0][0] != "mc0" {
		t.Fatalf("after clear -clear-scope tape:\n%s", out)
	}
	// A drive without an alias cannot be used until it gets one again.
	n.fail("tape device 0a.1 has no alias", "storage", "tape", "online", "0a.1")
	n.ok("storage", "tape", "alias", "set", "-name", "st0", "-mapping", "0a.1")
	n.ok("storage", "tape", "online", "st0")
	n.ok("storage", "tape", "alias", "clear", "-clear-scope", "all")
	if out := n.ok("storage", "tape", "alias", "show"); out != "There are no entries matching your query.\n" {
		t.Fatalf("after clear -clear-scope all:\n%s", out)
	}
}

func TestStorageTapeVTL(t *testing.T) {
	n := startTapeNode(t)
	out := n.ok("storage", "tape", "vtl", "show")
	if r := rows(out); len(r) != 1 || !equal(r[0][:2], []string{n.node, "mc0"}) || !equal(r[0][3:], []string{"4", "20", "4", "10"}) {
		t.Fatalf("vtl show:\n%s", out)
	}
	if inst := n.ok("storage", "tape", "vtl", "show", "-instance"); !strings.Contains(inst, "Capacity of New Cartridges: 2.5TB\n") ||
		!strings.Contains(inst, "Directory: "+filepath.Join(n.dir, daemon.VTLDir)+"\n") {
		t.Fatalf("vtl show -instance:\n%s", inst)
	}
	out = n.ok("storage", "tape", "vtl", "cartridge", "show")
	if r, err := column(out, "TAP001L8"); err != nil || !equal(r, []string{"TAP001L8", "drive", "0", "2.5TB", "false", "false"}) {
		t.Fatalf("TAP001L8 %q (%v)\n%s", r, err, out)
	}
	if r, err := column(out, "TAP010L8"); err != nil || !equal(r[:3], []string{"TAP010L8", "slot", "10"}) {
		t.Fatalf("TAP010L8 %q (%v)\n%s", r, err, out)
	}

	n.ok("storage", "tape", "vtl", "cartridge", "add", "-barcode", "NEW001", "-capacity", "800GB")
	if r, _ := column(n.ok("storage", "tape", "vtl", "cartridge", "show", "NEW001"), "NEW001"); !equal(r, []string{"NEW001", "slot", "1", "800GB", "false", "false"}) {
		t.Fatalf("NEW001 after add: %q", r)
	}
	n.fail(`cartridge "NEW001" already exists`, "storage", "tape", "vtl", "cartridge", "add", "NEW001")
	n.fail(`invalid barcode "bad/1"`, "storage", "tape", "vtl", "cartridge", "add", "bad/1")
	n.fail(`invalid size "-3GB"`, "storage", "tape", "vtl", "cartridge", "add", "NEW002", "-capacity", "-3GB")

	// Export only from an import/export slot; move it there first.
	n.fail(`cartridge "NEW001" is not in an import/export slot`, "storage", "tape", "vtl", "cartridge", "export", "NEW001")
	n.fail(`invalid destination "ie-slot 9"`, "storage", "tape", "vtl", "cartridge", "move", "NEW001", "-to", "ie-slot 9")
	n.fail(`slot 5 is not empty`, "storage", "tape", "vtl", "cartridge", "move", "NEW001", "-to", "slot 5")
	n.ok("storage", "tape", "vtl", "cartridge", "move", "NEW001", "-to", "ie-slot 2")
	n.ok("storage", "tape", "vtl", "cartridge", "export", "-barcode", "NEW001")
	if r, _ := column(n.ok("storage", "tape", "vtl", "cartridge", "show", "NEW001", "-fields", "location,element-address"), "NEW001"); !equal(r, []string{"NEW001", "outside", "-"}) {
		t.Fatalf("NEW001 after export: %q", r)
	}
	n.fail(`cartridge "NEW001" is already outside`, "storage", "tape", "vtl", "cartridge", "export", "NEW001")
	n.fail(`cartridge "NEW001" is outside the virtual library; import it first`, "storage", "tape", "vtl", "cartridge", "move", "NEW001", "-to", "slot 1")
	n.ok("storage", "tape", "vtl", "cartridge", "import", "NEW001")
	if r, _ := column(n.ok("storage", "tape", "vtl", "cartridge", "show", "NEW001"), "NEW001"); !equal(r[:3], []string{"NEW001", "ie-slot", "1"}) {
		t.Fatalf("NEW001 after import: %q", r)
	}
	n.fail(`cartridge "NEW001" is already in the virtual library`, "storage", "tape", "vtl", "cartridge", "import", "NEW001")

	// Labels, removal, and what a loaded cartridge refuses.
	n.ok("storage", "tape", "vtl", "cartridge", "label", "NEW001", "-new-barcode", "NEW002")
	n.fail(`cartridge "NEW001" does not exist`, "storage", "tape", "vtl", "cartridge", "remove", "NEW001")
	n.fail(`cartridge "TAP005L8" already exists`, "storage", "tape", "vtl", "cartridge", "label", "NEW002", "-new-barcode", "TAP005L8")
	n.fail(`cartridge "TAP001L8" is loaded in a tape drive`, "storage", "tape", "vtl", "cartridge", "remove", "TAP001L8")
	n.fail(`cartridge "TAP002L8" is loaded in a tape drive`, "storage", "tape", "vtl", "cartridge", "label", "TAP002L8", "-new-barcode", "X1")
	n.fail("missing required parameter -new-barcode", "storage", "tape", "vtl", "cartridge", "label", "NEW002")
	n.ok("storage", "tape", "vtl", "cartridge", "remove", "NEW002")

	// A cartridge moved from a drive to a slot and another into the drive.
	n.ok("storage", "tape", "vtl", "cartridge", "move", "TAP001L8", "-to", "slot 1")
	n.ok("storage", "tape", "vtl", "cartridge", "move", "TAP010L8", "-to", "drive 0")
	cs := decodeJSON[[]admin.VTLCartridge](t, n.ok("--json", "storage", "tape", "vtl", "cartridge", "show"))
	got := map[string]string{}
	for _, c := range cs {
		got[c.Barcode] = c.Location
	}
	if len(cs) != 10 || got["TAP001L8"] != "slot 1" || got["TAP010L8"] != "drive 0" {
		t.Fatalf("cartridges after moves: %v", got)
	}

	// The library keeps its state over a restart.
	n.restart()
	out = n.ok("storage", "tape", "vtl", "cartridge", "show", "TAP010L8")
	if r, _ := column(out, "TAP010L8"); !equal(r[:3], []string{"TAP010L8", "drive", "0"}) {
		t.Fatalf("after restart:\n%s", out)
	}
}

func TestStorageTapeHelp(t *testing.T) {
	n := startTapeNode(t)
	n.fail(`"storage tape" is incomplete; add one of: `, "storage", "tape")
	n.fail(`"storage tape vtl cartridge" is incomplete`, "storage", "tape", "vtl", "cartridge")
	var names []string
	for _, c := range (&app{}).newRoot().Commands() {
		names = append(names, c.Name())
	}
	for _, want := range []string{"storage", "system"} {
		count := 0
		for _, n := range names {
			if n == want {
				count++
			}
		}
		if count != 1 {
			t.Fatalf("top-level commands %v: want exactly one %s", names, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"800GB": 800e9, "2.5tb": 2.5e12, "512MB": 512e6, "4096": 4096, "1KB": 1000} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "-1GB", "0", "1XB", "1e30", "NaN", "Inf"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"800GB", "2.5TB", "1", "0x10", "1e18", "9e17PB", " 3 MB", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && (n < 1 || n > 1e18) {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
		if err == nil && sizeText(n) == "" {
			t.Fatalf("sizeText(%d) empty", n)
		}
	})
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{2_500_000_000_000: "2.5TB", 800e9: "800GB", 999: "999B", 1000: "1KB"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}

// T9: storage tape vtl create adds a library whose changer and drives
// appear on the node at once under new aliases; a restart reopens it with
// the same aliases; delete is refused while one of its drives is open and
// otherwise removes its devices, directory and catalog entry.
func TestStorageTapeVTLCreateDelete(t *testing.T) {
	n := startTapeNode(t)
	ctx := context.Background()
	out := n.ok("storage", "tape", "vtl", "create", "-name", "lib2", "-drives", "2", "-slots", "6", "-ie-slots", "1",
		"-cartridges", "3", "-capacity", "2GB")
	if out != "Virtual tape library lib2 created: media changer mc1, tape drives st4, st5.\n" {
		t.Fatalf("create: %q", out)
	}
	libDir := filepath.Join(n.dir, daemon.VTLsDir, "lib2")
	if _, err := os.Stat(libDir); err != nil {
		t.Fatalf("library directory: %v", err)
	}
	wantRows := func(label string, want map[string]string) {
		t.Helper()
		out := n.ok("storage", "tape", "show", "-fields", "alias")
		got := map[string]string{}
		for _, r := range rows(out) {
			if len(r) == 3 {
				got[r[1]] = r[2]
			}
		}
		for id, alias := range want {
			if alias == "" {
				if _, ok := got[id]; ok {
					t.Fatalf("%s: %s still attached:\n%s", label, id, out)
				}
			} else if got[id] != alias {
				t.Fatalf("%s: %s has alias %q, want %q:\n%s", label, id, got[id], alias, out)
			}
		}
	}
	wantRows("after create", map[string]string{"0a.0": "mc0", "0a.1": "st0", "1a.0": "mc1", "1a.1": "st4", "1a.2": "st5"})
	if out := n.ok("storage", "tape", "show"); !strings.HasSuffix(out, "8 entries were displayed.\n") {
		t.Fatalf("storage tape show:\n%s", out)
	}
	libs := decodeJSON[[]admin.VTLLibrary](t, n.ok("--json", "storage", "tape", "vtl", "show-libraries"))
	if len(libs) != 1 || libs[0].Name != "lib2" || libs[0].Adapter != "1a" || libs[0].Drives != 2 || libs[0].Slots != 6 ||
		libs[0].IESlots != 1 || libs[0].Cartridges != 3 || libs[0].Capacity != 2e9 || libs[0].MediaChanger != "mc1" ||
		!equal(libs[0].TapeDrives, []string{"st4", "st5"}) || libs[0].Directory != libDir {
		t.Fatalf("show-libraries: %+v", libs)
	}
	out = n.ok("storage", "tape", "vtl", "show-libraries")
	if r := rows(out); len(r) != 1 || !equal(r[0], []string{n.node, "lib2", "mc1", "st4,st5", "6", "1", "3"}) {
		t.Fatalf("show-libraries table:\n%s", out)
	}

	n.fail(`virtual tape library "lib2" already exists`, "storage", "tape", "vtl", "create", "-name", "lib2", "-drives", "1", "-slots", "1", "-ie-slots", "0", "-cartridges", "0")
	n.fail("missing required parameter -drives", "storage", "tape", "vtl", "create", "-name", "lib3", "-slots", "1", "-ie-slots", "0", "-cartridges", "0")
	n.fail("missing required parameter -name", "storage", "tape", "vtl", "create", "-drives", "1", "-slots", "1", "-ie-slots", "0", "-cartridges", "0")
	n.fail(`invalid library name "3lib"`, "storage", "tape", "vtl", "create", "-name", "3lib", "-drives", "1", "-slots", "1", "-ie-slots", "0", "-cartridges", "0")
	n.fail(`invalid library name "../x"`, "storage", "tape", "vtl", "delete", "-name", "../x")
	n.fail("-cartridges 7 is out of range (0 to the 6 storage slots)", "storage", "tape", "vtl", "create", "-name", "lib3", "-drives", "1", "-slots", "6", "-ie-slots", "0", "-cartridges", "7")
	n.fail("-drives 65 is out of range (1 to 64)", "storage", "tape", "vtl", "create", "-name", "lib3", "-drives", "65", "-slots", "6", "-ie-slots", "0", "-cartridges", "0")
	n.fail("invalid size", "storage", "tape", "vtl", "create", "-name", "lib3", "-drives", "1", "-slots", "6", "-ie-slots", "0", "-cartridges", "0", "-capacity", "lots")
	n.fail(`virtual tape library "nosuch" does not exist`, "storage", "tape", "vtl", "delete", "-name", "nosuch")
	// 60 more drives would pass the node's limit of 64 (T5): nothing is
	// left attached or on disk.
	n.fail(`cannot create virtual tape library "big": the node has 6 tape drives; 60 more would pass the limit of 64`, "storage", "tape", "vtl", "create", "-name", "big", "-drives", "60", "-slots", "1", "-ie-slots", "0", "-cartridges", "0")
	if _, err := os.Stat(filepath.Join(n.dir, daemon.VTLsDir, "big")); !os.IsNotExist(err) {
		t.Fatalf("a refused library left its directory: %v", err)
	}
	if out := n.ok("storage", "tape", "show"); !strings.HasSuffix(out, "8 entries were displayed.\n") {
		t.Fatalf("after a refused create:\n%s", out)
	}

	// The new drives are usable and a drive in use blocks delete.
	dh, err := n.d.Tapes().OpenDrive(ctx, "s1", "nrst5l", tape.ReadWriteMode)
	if err != nil {
		t.Fatalf("open a drive of the new library: %v", err)
	}
	if _, err := dh.Write([]byte("record")); err != nil {
		t.Fatalf("write to the new library's drive: %v", err)
	}
	n.fail(`cannot delete virtual tape library "lib2": tape drive st5 (1a.2) is open by session s1`, "storage", "tape", "vtl", "delete", "lib2")
	wantRows("after a refused delete", map[string]string{"1a.0": "mc1", "1a.1": "st4", "1a.2": "st5"})
	if err := dh.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart reopens the library on the same paths and aliases.
	n.restart()
	wantRows("after restart", map[string]string{"0a.0": "mc0", "1a.0": "mc1", "1a.1": "st4", "1a.2": "st5"})
	again := decodeJSON[[]admin.VTLLibrary](t, n.ok("--json", "storage", "tape", "vtl", "show-libraries"))
	if len(again) != 1 || again[0].Serial != libs[0].Serial || again[0].Cartridges != 3 {
		t.Fatalf("after restart: %+v, before %+v", again, libs)
	}

	// A second library takes the next adapter; deleting the first leaves
	// the second alone, also across a restart.
	n.ok("storage", "tape", "vtl", "create", "lib3", "-drives", "1", "-slots", "2", "-ie-slots", "0", "-cartridges", "0")
	wantRows("second library", map[string]string{"2a.0": "mc2", "2a.1": "st6"})
	n.ok("storage", "tape", "vtl", "delete", "-name", "lib2")
	wantRows("after delete", map[string]string{"0a.0": "mc0", "1a.0": "", "1a.1": "", "1a.2": "", "2a.0": "mc2", "2a.1": "st6"})
	if _, err := os.Stat(libDir); !os.IsNotExist(err) {
		t.Fatalf("deleted library's directory: %v", err)
	}
	if _, err := n.d.Tapes().OpenDrive(ctx, "s1", "nrst5l", tape.ReadMode); err == nil {
		t.Fatal("a drive of the deleted library still opens")
	}
	n.restart()
	wantRows("restart after delete", map[string]string{"1a.0": "", "1a.1": "", "2a.0": "mc2", "2a.1": "st6"})
	if out := n.ok("storage", "tape", "vtl", "show-libraries"); len(rows(out)) != 1 || !strings.Contains(out, "lib3") {
		t.Fatalf("show-libraries after delete and restart:\n%s", out)
	}
	n.ok("storage", "tape", "vtl", "delete", "lib3")
	if out := n.ok("storage", "tape", "show"); !strings.HasSuffix(out, "5 entries were displayed.\n") {
		t.Fatalf("after deleting both:\n%s", out)
	}
}
