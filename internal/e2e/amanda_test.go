package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/daemon"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// amandaBlock is the block size of Amanda's NDMP device (and so the mover
// record size): every file and part on tape is a whole number of blocks.
const amandaBlock = 32768

// Issue 11 (item 3 and its Amanda acceptance), N14, N16, T6: Amanda's own
// NDMP device and changer (Debian amanda-server 3.5.1, Perl modules and
// tools) against a whole Tapestry node with a library of small cartridges:
//   - amlabel labels four cartridges through chg-ndmp (SCSI over NDMP) and
//     amtape inventory, slot and label load and report them;
//   - Amanda::Device writes three files over the TAPE_WRITE path (start,
//     start_file, write_block, finish_file) and reads each back over
//     TAPE_READ (seek_file, read_block);
//   - the taper's DirectTCP path (Xfer::Dest::Taper::DirectTCP: listen with
//     MOVER_SET_WINDOW(0, 0), accept, write_from_connection per part)
//     writes two files in 1 MiB parts, the second running past the end of
//     its 4 MiB cartridge (NOTIFY_MOVER_PAUSED EOM) and going on on the next
//     cartridge the changer loads; the recovery clerk's DirectTCP path
//     (Xfer::Source::Recovery: read_to_connection) reads every part back;
//   - a third file goes over IndirectTCP, Amanda's default.
//
// Every file read back equals the file written, padded to whole blocks.
// Before the mover honoured a window of length 0 the DirectTCP write failed
// with "unexpected NOTIFY_MOVER_HALT" (the report).
func TestAmandaNDMPDevice(t *testing.T) {
	a := requireAmanda(t)
	n := startNode(t)
	dir, conf := writeConfig(t, a, n)
	labelAndLoad(t, a, dir, conf)
	env := []string{"AMANDA_CONFIG=" + conf, "NDMP_DEVICE=ndmp:" + n.addr + "@" + n.drive,
		"NDMP_USER=admin", "NDMP_PASSWORD=" + n.password}
	tapeWritePath(t, a, dir, env)
	directTCPPath(t, a, dir, env)
	indirectTCPPath(t, a, dir, env)
	inv := a.mustRun(t, dir, nil, a.amtape, conf, "inventory")
	if !regexp.MustCompile(`(?m)^slot 4: label TAP-04 barcode \S+ \(in drive 0\)`).MatchString(inv) {
		t.Fatalf("inventory after the last recovery does not show TAP-04 in the drive:\n%s", inv)
	}
}

// indirectTCPPath writes F in one part on TAP-04 with Amanda's default,
// IndirectTCP (the mover stays IDLE until write_from_connection sets the
// window and listens), and reads it back over DirectTCP.
func indirectTCPPath(t *testing.T, a *amanda, dir string, env []string) {
	t.Helper()
	src := randomFile(t, a, dir, "F", 900<<10+9, 6)
	out := a.mustRun(t, dir, append(env, "AMANDA_INDIRECT=1"), a.perl, "amanda_device.pl", "write-dtcp", "0", "TAP-04", "F")
	if !strings.HasSuffix(out, fmt.Sprintf("part F TAP-04 1 %d 0 1\nok\n", len(src))) {
		t.Fatalf("write-dtcp over IndirectTCP:\n%s", out)
	}
	a.mustRun(t, dir, env, a.perl, "amanda_device.pl", "read-dtcp", "F.dtcp", "TAP-04:1")
	sameBlocks(t, "recovery of F", src, filepath.Join(dir, "F.dtcp"), true)
}

// labelAndLoad labels the four cartridges with amlabel and moves them with
// amtape; at its end TAP-01 is in the drive.
func labelAndLoad(t *testing.T, a *amanda, dir, conf string) {
	t.Helper()
	for i := 1; i <= 4; i++ {
		out := a.mustRun(t, dir, nil, a.amlabel, conf, fmt.Sprintf("TAP-%02d", i), "slot", strconv.Itoa(i))
		if !strings.Contains(out, fmt.Sprintf("Writing label 'TAP-%02d'", i)) || !strings.Contains(out, "Success!") {
			t.Fatalf("amlabel slot %d:\n%s", i, out)
		}
	}
	inv := a.mustRun(t, dir, nil, a.amtape, conf, "inventory")
	barcodes := map[string]bool{}
	for i := 1; i <= 4; i++ {
		m := regexp.MustCompile(fmt.Sprintf(`(?m)^slot %d: label TAP-%02d barcode (\S+)`, i, i)).FindStringSubmatch(inv)
		if m == nil || barcodes[m[1]] {
			t.Fatalf("inventory lacks slot %d with label TAP-%02d and a barcode of its own:\n%s", i, i, inv)
		}
		barcodes[m[1]] = true
	}
	if out := a.mustRun(t, dir, nil, a.amtape, conf, "slot", "3"); !strings.Contains(out, "changed to slot 3") {
		t.Fatalf("amtape slot 3:\n%s", out)
	}
	inv = a.mustRun(t, dir, nil, a.amtape, conf, "inventory")
	if !regexp.MustCompile(`(?m)^slot 3: label TAP-03 barcode \S+ \(in drive 0\)`).MatchString(inv) {
		t.Fatalf("inventory after amtape slot 3:\n%s", inv)
	}
	if out := a.mustRun(t, dir, nil, a.amtape, conf, "label", "TAP-01"); !strings.Contains(out, "label TAP-01 is now loaded from slot 1") {
		t.Fatalf("amtape label TAP-01:\n%s", out)
	}
	if out := a.mustRun(t, dir, nil, a.amtape, conf, "current"); !regexp.MustCompile(`slot +1: .*label TAP-01`).MatchString(out) {
		t.Fatalf("amtape current:\n%s", out)
	}
}

// tapeWritePath writes three files to TAP-01 (in the drive) with write_block
// and reads each back with read_block.
func tapeWritePath(t *testing.T, a *amanda, dir string, env []string) {
	t.Helper()
	files := map[string][]byte{
		"A": randomFile(t, a, dir, "A", 300<<10+17, 1),
		"B": randomFile(t, a, dir, "B", 1<<20, 2),
		"C": randomFile(t, a, dir, "C", 1, 3),
	}
	out := a.mustRun(t, dir, env, a.perl, "amanda_device.pl", "write-blocks", "TAP-01", "A", "B", "C")
	if !strings.Contains(out, "file 1 A\nfile 2 B\nfile 3 C\nok\n") {
		t.Fatalf("write-blocks:\n%s", out)
	}
	for i, name := range []string{"A", "B", "C"} {
		o := name + ".blocks"
		out := a.mustRun(t, dir, env, a.perl, "amanda_device.pl", "read-blocks", "TAP-01", strconv.Itoa(i+1), o)
		if !strings.Contains(out, fmt.Sprintf("read %d /%s\nok\n", i+1, name)) {
			t.Fatalf("read-blocks %d:\n%s", i+1, out)
		}
		sameBlocks(t, "TAPE_READ of "+name, files[name], filepath.Join(dir, o), false)
	}
}

// amandaPart is one part the taper wrote: "part NAME LABEL FILENO SIZE EOM EOF".
type amandaPart struct {
	name, label  string
	fileno, size int
	eom, eof     bool
}

func parseParts(t *testing.T, out string) []amandaPart {
	t.Helper()
	var ps []amandaPart
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 7 || f[0] != "part" {
			continue
		}
		p := amandaPart{name: f[1], label: f[2], eom: f[5] == "1", eof: f[6] == "1"}
		p.fileno, _ = strconv.Atoi(f[3])
		p.size, _ = strconv.Atoi(f[4])
		ps = append(ps, p)
	}
	return ps
}

// directTCPPath writes D (one part) and E (five parts, past the end of
// TAP-02 onto TAP-03) over DirectTCP and reads both back the same way.
func directTCPPath(t *testing.T, a *amanda, dir string, env []string) {
	t.Helper()
	files := map[string][]byte{
		"D": randomFile(t, a, dir, "D", 700<<10+5, 4),
		"E": randomFile(t, a, dir, "E", 5<<20-3, 5),
	}
	out := a.mustRun(t, dir, env, a.perl, "amanda_device.pl", "write-dtcp", strconv.Itoa(1<<20), "TAP-02,TAP-03", "D", "E")
	t.Logf("write-dtcp:\n%s", out)
	parts := parseParts(t, out)
	reads := map[string][]string{}
	sizes := map[string]int{}
	eom := false
	for _, p := range parts {
		eom = eom || (p.eom && p.label == "TAP-02" && p.name == "E")
		if p.size > 0 {
			reads[p.name] = append(reads[p.name], fmt.Sprintf("%s:%d", p.label, p.fileno))
		}
		sizes[p.name] += p.size
	}
	if !strings.HasSuffix(out, "ok\n") || !eom || sizes["D"] != len(files["D"]) || sizes["E"] != len(files["E"]) ||
		len(reads["D"]) != 1 || !strings.HasPrefix(reads["E"][len(reads["E"])-1], "TAP-03:") {
		t.Fatalf("write-dtcp: want D in one part, E in parts of 1 MiB reaching the end of TAP-02 (eom) and ending on TAP-03:\n%s", out)
	}
	for _, name := range []string{"D", "E"} {
		o := name + ".dtcp"
		args := append([]string{"amanda_device.pl", "read-dtcp", o}, reads[name]...)
		out := a.mustRun(t, dir, env, a.perl, args...)
		t.Logf("read-dtcp %s:\n%s", name, out)
		if !strings.HasSuffix(out, "ok\n") {
			t.Fatalf("read-dtcp %s:\n%s", name, out)
		}
		sameBlocks(t, "DirectTCP recovery of "+name, files[name], filepath.Join(dir, o), true)
	}
}

// amandaPerlDirs are where Debian and others install Amanda's Perl modules.
var amandaPerlDirs = []string{
	"/usr/lib/x86_64-linux-gnu/amanda/perl",
	"/usr/lib/aarch64-linux-gnu/amanda/perl",
	"/usr/lib/amanda/perl",
	"/usr/local/share/perl5",
}

// amanda is the installed Amanda server: its tools, its Perl modules and
// its user, as whom its tools must run.
type amanda struct {
	perl, perl5lib, amtape, amlabel string
	configDir                       string // Amanda's CONFIG_DIR
	uid, gid                        uint32
	groups                          []uint32
	home                            string
}

// requireAmanda finds Amanda's server tools and Perl modules and the
// Amanda user "backup" (Debian amanda-server).
func requireAmanda(t *testing.T) *amanda {
	t.Helper()
	testutil.RequireRoot(t)
	a := &amanda{perl: testutil.RequireTool(t, "perl"), amtape: testutil.RequireTool(t, "amtape"),
		amlabel: testutil.RequireTool(t, "amlabel")}
	for _, d := range amandaPerlDirs {
		if _, err := os.Stat(filepath.Join(d, "Amanda", "Device.pm")); err == nil {
			a.perl5lib = d
			break
		}
	}
	testutil.Require(t, a.perl5lib != "", "needs Amanda's Perl modules (Debian amanda-server)")
	cmd := exec.Command(a.perl, "-MAmanda::Device", "-MAmanda::Paths", "-e", "print $Amanda::Paths::CONFIG_DIR")
	cmd.Env = append(os.Environ(), "PERL5LIB="+a.perl5lib)
	out, err := cmd.CombinedOutput()
	testutil.Require(t, err == nil, fmt.Sprintf("Amanda's Perl modules load (they need libencode-locale-perl): %v %s", err, out))
	a.configDir = strings.TrimSpace(string(out))
	u, err := user.Lookup("backup")
	testutil.Require(t, err == nil, "needs the Amanda user backup")
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	a.uid, a.gid, a.home = uint32(uid), uint32(gid), u.HomeDir
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			a.groups = append(a.groups, uint32(n))
		}
	}
	return a
}

// node is a running tapestryd with a small virtual library for Amanda.
type node struct {
	addr     string // NDMP host:port
	changer  string // media changer of the library (mcN)
	drive    string // its tape drive, no-rewind name (nrstNl)
	password string // NDMP password of the cluster user admin
}

// startNode runs a Tapestry node until the test ends and creates a library
// of one drive and four cartridges of 4 MiB (early warning at 128 KiB
// before the end), so that a few MiB reach the end of a cartridge.
func startNode(t *testing.T) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := filepath.Join(t.TempDir(), "node")
	d, err := daemon.Open(ctx, daemon.Options{DataDir: dir, AdminPassword: "Admin1234", Out: &bytes.Buffer{},
		Config: daemon.Config{NDMPListen: "127.0.0.1:0"}})
	if err != nil {
		cancel()
		t.Fatalf("open the node: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	api := admin.NewClient(d.SocketPath(), "admin", "Admin1234")
	t.Cleanup(func() { api.Close() })
	var lib admin.VTLLibrary
	if err := api.Do(ctx, http.MethodPost, "/api/private/cli/storage/tape/vtls", nil,
		admin.VTLCreate{Name: "amanda", Drives: 1, Slots: 4, Cartridges: 4, Capacity: 4 << 20}, &lib); err != nil {
		t.Fatalf("create the library: %v", err)
	}
	pw, err := d.Auth().GenerateNDMPPassword(ctx, d.Auth().AdminSVM(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{addr: d.NDMPListen(), changer: lib.MediaChanger, drive: "nr" + lib.TapeDrives[0] + "l", password: pw}
	waitListening(t, n.addr)
	return n
}

// waitListening waits until the NDMP port takes connections (Serve starts
// the NDMP listener in the background).
func waitListening(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("NDMP port %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// amandaConf is a minimal Amanda configuration whose changer is chg-ndmp on
// the node's library; the device properties make the changer's devices use
// DirectTCP (INDIRECT NO), as the taper does with it.
const amandaConf = `org "tapestry"
dumpuser "backup"
infofile "{{DIR}}/curinfo"
logdir "{{DIR}}/log"
indexdir "{{DIR}}/index"
tapelist "{{DIR}}/tapelist"
labelstr "^TAP-[0-9][0-9]$"
tpchanger "tapestry"
define changer tapestry {
    tpchanger "chg-ndmp:{{ADDR}}@{{CHANGER}}"
    changerfile "{{DIR}}/changer-state"
    property "tape-device" "0=ndmp:{{ADDR}}@{{DRIVE}}"
    property "use-slots" "1-4"
    property "ndmp-username" "admin"
    property "ndmp-password" "{{PW}}"
    property "ndmp-auth" "md5"
    device-property "INDIRECT" "NO"
}
`

// writeConfig writes the configuration in a directory of its own, owned by
// the Amanda user, and returns the directory and the name under which
// Amanda's tools find it (relative to CONFIG_DIR).
func writeConfig(t *testing.T, a *amanda, n *node) (dir, name string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tapestry-amanda-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	conf := strings.NewReplacer("{{DIR}}", dir, "{{ADDR}}", n.addr, "{{CHANGER}}", n.changer,
		"{{DRIVE}}", n.drive, "{{PW}}", n.password).Replace(amandaConf)
	for _, sub := range []string{"curinfo", "log", "index"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script, err := os.ReadFile(filepath.Join("testdata", "amanda_device.pl"))
	if err != nil {
		t.Fatal(err)
	}
	for f, b := range map[string][]byte{"amanda.conf": []byte(conf), "tapelist": nil, "amanda_device.pl": script} {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	chownTree(t, dir, a)
	name, err = filepath.Rel(a.configDir, dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, name
}

func chownTree(t *testing.T, dir string, a *amanda) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(a.uid), int(a.gid))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runAs runs an Amanda tool as the Amanda user in dir (Amanda's tools
// refuse to run as root) and returns its combined output.
func (a *amanda) runAs(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // hang guard only
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + a.home, "PERL5LIB=" + a.perl5lib, "LANG=C"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustRun is runAs that fails the test when the tool fails.
func (a *amanda) mustRun(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := a.runAs(t, dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

// randomFile writes n bytes of pseudo-random data (seeded) to dir/name.
func randomFile(t *testing.T, a *amanda, dir, name string, n int, seed uint64) []byte {
	t.Helper()
	b := make([]byte, n)
	x := seed | 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x >> 32)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(p, int(a.uid), int(a.gid)); err != nil {
		t.Fatal(err)
	}
	return b
}

// sameBlocks checks that got is src padded to whole blocks, which is what a
// tape file written by Amanda holds; with zeroPad the padding must be zeros
// (the mover pads the last record of a DirectTCP stream with zeros, while
// Amanda's Xfer::Dest::Device writes its last block from an uninitialised
// buffer).
func sameBlocks(t *testing.T, what string, src []byte, gotPath string, zeroPad bool) {
	t.Helper()
	got, err := os.ReadFile(gotPath)
	if err != nil {
		t.Fatal(err)
	}
	want := (len(src) + amandaBlock - 1) / amandaBlock * amandaBlock
	if len(got) != want || !bytes.Equal(got[:len(src)], src) ||
		(zeroPad && !bytes.Equal(got[len(src):], make([]byte, want-len(src)))) {
		i := 0
		for i < len(got) && i < len(src) && got[i] == src[i] {
			i++
		}
		t.Fatalf("%s: read back %d bytes, want the %d written padded to %d; first difference at byte %d",
			what, len(got), len(src), want, i)
	}
}
