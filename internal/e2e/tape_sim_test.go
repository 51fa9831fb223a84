package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/daemon"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst/sim"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// These tests run a whole node whose real-device discovery reads the
// simulated SCSI tape host of package linuxst/sim (issue 15): the NDMP
// server drives the simulated LTO drive through linuxst.Drive (st node)
// and the simulated SMC library through linuxst.SG (sg node), the same
// code that drives real hardware, with ndmjob as the DMA.

const ndmjobPath = "/usr/lib/amanda/ndmjob"

// The aliases the simulated devices get on a fresh node (the default
// virtual library has mc0 and st0-st3).
const (
	simChanger = "mc1"
	simDrive0  = "nrst4l" // HP LTO-5, two paths, qualified by its file
)

// simNode is a running node over a simulated library.
type simNode struct {
	lib   *sim.Library
	d     *daemon.Daemon
	agent string // ndmjob's AGENT: host:port/4m,admin,password
	vols  string // directory of the volumes vs1/vol1 and vs1/vol2
}

// startSimNode starts a node over a standard simulated library of o with
// the HP LTO-5 tape configuration file installed, an SVM vs1 with volumes
// vol1 and vol2, and returns it with an NDMP password for ndmjob.
func startSimNode(t *testing.T, o sim.LibraryOptions) *simNode {
	t.Helper()
	lib, err := sim.NewLibrary(filepath.Join(t.TempDir(), "host"), o)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "node")
	installTCF(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	d, err := daemon.Open(ctx, daemon.Options{DataDir: dir, AdminPassword: "Admin1234", Out: &bytes.Buffer{}, TapeSys: lib.Host,
		Logger: slog.New(slog.NewTextHandler(&logWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Config: daemon.Config{NDMPListen: "127.0.0.1:0", TapeSysfsRoot: lib.Host.SysRoot(), TapeDevRoot: lib.Host.DevRoot(), TapeRescanInterval: "0"}})
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
	n := &simNode{lib: lib, d: d, vols: filepath.Join(t.TempDir(), "vols")}
	if _, err := d.Storage().CreateSVM(ctx, storage.SVMSpec{Name: "vs1"}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"vol1", "vol2"} {
		if err := os.MkdirAll(filepath.Join(n.vols, v), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Storage().CreateVolume(ctx, storage.VolumeSpec{Name: v, SVM: "vs1", HostPath: filepath.Join(n.vols, v)}); err != nil {
			t.Fatal(err)
		}
	}
	pw, err := d.Auth().GenerateNDMPPassword(ctx, d.Auth().AdminSVM(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	n.agent = d.NDMPListen() + "/4m,admin," + pw
	waitListening(t, d.NDMPListen())
	return n
}

func installTCF(t *testing.T, dataDir string) {
	t.Helper()
	tcf, err := os.ReadFile("../tape/testdata/hp-lto5.tcf")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(dataDir, daemon.TapeConfigDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "HP_LTO5.TCF"), tcf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// logWriter writes the node's log to the test's log.
type logWriter struct{ t *testing.T }

func (w *logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// ndmjob runs ndmjob and returns its output and exit error.
func ndmjob(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	bin := testutil.RequireTool(t, ndmjobPath)
	ctx, cancel := context.WithTimeout(context.Background(), testutil.HangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

var phaseLine = regexp.MustCompile(`Test (T-[A-Z]+) (Passed|Failed|Almost|Whiffed) -- pass=\d+ warn=\d+ fail=\d+ \(total \d+\)`)

// Issue 15 acceptance, N1: ndmjob's conformance series through the node on
// the simulated HP LTO-5 drive. test-tape passes T-OC and T-BGS and stops,
// as on the virtual drive, at ndmjob's own zero-length write defect
// (internal/server TestNdmjobTestTape explains it); test-mover and
// test-data end FINAL Passed.
func TestSimNdmjobConformance(t *testing.T) {
	n := startSimNode(t, sim.LibraryOptions{})
	if err := n.lib.Drives[0].Load(n.lib.Cartridges[0]); err != nil {
		t.Fatal(err)
	}
	// The changer's slot is now empty in its inventory.
	out, _ := ndmjob(t, nil, "-v", "-o", "test-tape", "-T", n.agent, "-f", simDrive0)
	phases := map[string]string{}
	for _, m := range phaseLine.FindAllStringSubmatch(out, -1) {
		phases[m[1]] = m[0]
	}
	for name, want := range map[string]string{
		"T-OC":  `Test T-OC Passed -- pass=8 warn=0 fail=0 (total 8)`,
		"T-BGS": `Test T-BGS Passed -- pass=4 warn=0 fail=0 (total 4)`,
	} {
		if phases[name] != want {
			t.Errorf("test-tape %s: got %q, want %q\n%s", name, phases[name], want, out)
		}
	}
	if !strings.Contains(out, "T-BW #6 -- Failed NDMP4_TAPE_OPEN/NDMP9_NO_ERR got NDMP9_NO_ERR (error expected)") {
		t.Errorf("test-tape did not stop at ndmjob's zero-length write:\n%s", out)
	}
	for _, series := range [][]string{{"-o", "test-mover", "-T", n.agent, "-f", simDrive0}, {"-o", "test-data", "-D", n.agent}} {
		out, err := ndmjob(t, nil, series...)
		if err != nil || !regexp.MustCompile(`FINAL test-(mover|data) Passed -- pass=\d+ warn=0 fail=0`).MatchString(out) {
			t.Errorf("ndmjob %s: %v\n%s", series[1], err, out)
		}
	}
}

// Issue 15 acceptance (item 4): ndmjob's robot operations through
// SCSI_EXECUTE_CDB on the simulated library's sg node: element status
// with volume tags, load, unload, labels and their listing.
func TestSimNdmjobRobot(t *testing.T) {
	n := startSimNode(t, sim.LibraryOptions{Slots: 4})
	out, err := ndmjob(t, nil, "-o", "init-elem-status", "-R", n.agent, "-r", simChanger)
	for _, want := range []string{"slots 4@1024  drive 2@1  arm 1@752  i/e 2@768", "@1024 SLOT Full  PVolTag(SIM000L5,#0)", "@1   TAPE Empty"} {
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("init-elem-status: %v, no %q\n%s", err, want, out)
		}
	}
	robot := []string{"-R", n.agent, "-r", simChanger, "-T", n.agent, "-f", simDrive0}
	out, err = ndmjob(t, nil, append([]string{"-v", "-o", "load=1025"}, robot...)...)
	if c := n.lib.Drives[0].Cartridge(); err != nil || c == nil || c.Barcode != "SIM001L5" {
		t.Fatalf("load=1025: drive holds %v, %v\n%s", c, err, out)
	}
	out, err = ndmjob(t, nil, append([]string{"-v", "-o", "unload"}, robot...)...)
	if c := n.lib.Drives[0].Cartridge(); err != nil || c != nil || n.lib.Changer.Slot(1) == nil {
		t.Fatalf("unload: drive holds %v, slot 1 %v, %v\n%s", c, n.lib.Changer.Slot(1), err, out)
	}
	out, err = ndmjob(t, nil, append([]string{"-v", "-o", "init-labels", "-m", "SIMLBL02@1026"}, robot...)...)
	if err != nil || !strings.Contains(out, "Writing tape label 'SIMLBL02'") {
		t.Fatalf("init-labels: %v\n%s", err, out)
	}
	out, err = ndmjob(t, nil, append([]string{"-v", "-l", "-m", "@1026"}, robot...)...)
	if err != nil || !strings.Contains(out, `ME "SIMLBL02@1026"`) {
		t.Fatalf("-l: %v\n%s", err, out)
	}
}

// populateVolume fills dir with files of many sizes (random content),
// directories, a symbolic link and a hard link.
func populateVolume(t *testing.T, dir string, total int) {
	t.Helper()
	r := rand.New(rand.NewPCG(15, 7))
	for i, size := 0, 0; size < total; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%5), fmt.Sprintf("e%d", i%3))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, r.IntN(200<<10))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		size += len(b)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d.bin", i)), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("d0/e0/f0.bin", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "d1/e1/f1.bin"), filepath.Join(dir, "hard")); err != nil {
		t.Fatal(err)
	}
}

// manifest describes every entry under root but .snapshot: type, mode,
// owner, size, modification time (seconds, as dump keeps it), content,
// link target.
func manifest(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == ".snapshot" || rel == "restore_symboltable" {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("%s mode=%o uid=%d gid=%d", rel, st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" size=%d mtime=%d nlink=%d sha=%x", st.Size, st.Mtim.Sec, st.Nlink, sha256.Sum256(b))
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		}
		out = append(out, desc)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTrees(t *testing.T, src, dst string) {
	t.Helper()
	want, got := manifest(t, src), manifest(t, dst)
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Fatalf("restored tree differs:\nsource:\n%s\nrestored:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

// Issue 15 acceptance (D1 on a real-drive path): ndmjob backs up a volume
// with -c -B dump to the simulated HP drive, loading the cartridge with
// the simulated library, and -x restores it exactly into another volume.
func TestSimNdmjobBackupRestore(t *testing.T) {
	n := startSimNode(t, sim.LibraryOptions{Slots: 4})
	src, dst := filepath.Join(n.vols, "vol1"), filepath.Join(n.vols, "vol2")
	populateVolume(t, src, 3<<20)
	robot := []string{"-T", n.agent, "-f", simDrive0, "-R", n.agent, "-r", simChanger, "-m", "@1024"}
	out, err := ndmjob(t, nil, append([]string{"-v", "-c", "-D", n.agent, "-B", "dump", "-C", "/vs1/vol1"}, robot...)...)
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("ndmjob -c: %v\n%s", err, out)
	}
	recs := n.lib.Cartridges[0].Records()
	if len(recs) < 300 {
		t.Fatalf("the cartridge holds %d records", len(recs))
	}
	// storage stats tape (T8) counts the real drive's I/O.
	st, err := n.d.Tapes().Stats(context.Background(), "st4")
	if err != nil || st.RecordsWritten != int64(len(recs)-2) || st.BytesWritten < 3<<20 || st.WriteErrors != 0 || st.FilemarksWritten < 1 {
		t.Fatalf("statistics of st4: %+v %v (cartridge: %d records and 2 marks)", st, err, len(recs)-2)
	}
	out, err = ndmjob(t, nil, append([]string{"-v", "-x", "-D", n.agent, "-B", "dump", "-C", "/vs1/vol2"}, robot...)...)
	if err != nil || !strings.Contains(out, "Operation ended OKAY") || !strings.Contains(out, "0 ERROR") {
		t.Fatalf("ndmjob -x: %v\n%s", err, out)
	}
	sameTrees(t, src, dst)
}

// Issue 15 acceptance (item 3, T10 end of media): a backup larger than a
// cartridge reaches the early warning of the simulated drive (st's
// ENOSPC), the mover pauses with MOVER_PAUSE_EOM, ndmjob unloads, loads
// the next cartridge from the library and sends MOVER_CONTINUE, and the
// backup ends on the second cartridge; the restore reads both and is
// exact.
func TestSimNdmjobBackupAcrossCartridges(t *testing.T) {
	n := startSimNode(t, sim.LibraryOptions{Slots: 4, Capacity: 2 << 20, EarlyWarning: 256 << 10})
	src, dst := filepath.Join(n.vols, "vol1"), filepath.Join(n.vols, "vol2")
	populateVolume(t, src, 3<<20)
	robot := []string{"-T", n.agent, "-f", simDrive0, "-R", n.agent, "-r", simChanger, "-m", "@1024", "-m", "@1025", "-m", "@1026"}
	out, err := ndmjob(t, nil, append([]string{"-v", "-c", "-D", n.agent, "-B", "dump", "-C", "/vs1/vol1"}, robot...)...)
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("ndmjob -c: %v\n%s", err, out)
	}
	c0, c1 := n.lib.Cartridges[0].Records(), n.lib.Cartridges[1].Records()
	if len(c0) == 0 || len(c1) == 0 {
		t.Fatalf("cartridges hold %d and %d records; the backup should span both\n%s", len(c0), len(c1), out)
	}
	if c2 := n.lib.Cartridges[2].Records(); len(c2) != 0 {
		t.Fatalf("the third cartridge holds %d records", len(c2))
	}
	// The restore names the two cartridges the backup used, as a DMA
	// that kept its media list does.
	robot = robot[:len(robot)-2]
	out, err = ndmjob(t, nil, append([]string{"-v", "-x", "-D", n.agent, "-B", "dump", "-C", "/vs1/vol2"}, robot...)...)
	if err != nil || !strings.Contains(out, "Operation ended OKAY") || !strings.Contains(out, "1 OK, 0 ERROR") {
		t.Fatalf("ndmjob -x: %v\n%s", err, out)
	}
	sameTrees(t, src, dst)
}

// Issue 15 acceptance (T6, T10): with tape.reservations scsi, a drive
// another host has reserved refuses ndmjob's backup with the spec's
// message and nothing is written; once the other host lets go, the
// backup runs, the node reserving the drive while it writes and
// releasing it at close.
func TestSimReservationConflict(t *testing.T) {
	n := startSimNode(t, sim.LibraryOptions{Slots: 4})
	ctx := context.Background()
	if err := n.d.Tapes().SetReservations(ctx, tape.ReservationsSCSI); err != nil {
		t.Fatal(err)
	}
	populateVolume(t, filepath.Join(n.vols, "vol1"), 256<<10)
	cart := sim.NewCartridge("OTHER1L5", 64<<20, 4<<20)
	if err := n.lib.Drives[0].Load(cart); err != nil {
		t.Fatal(err)
	}
	n.lib.Drives[0].ReserveFor("other-host")
	backup := []string{"-v", "-c", "-D", n.agent, "-B", "dump", "-C", "/vs1/vol1", "-T", n.agent, "-f", simDrive0}
	out, err := ndmjob(t, nil, backup...)
	// ndmjob exits 0 here; its log says what happened.
	if strings.Contains(out, "Operation ended OKAY") || !strings.Contains(out, `TLMe "Tape reservation preempted"`) ||
		!strings.Contains(out, "failed open tape drive") {
		t.Fatalf("backup to a drive reserved by another host: %v\n%s", err, out)
	}
	if recs := cart.Records(); len(recs) != 0 {
		t.Fatalf("%d records written to a drive another host reserved", len(recs))
	}
	n.lib.Drives[0].ReserveFor("")
	out, err = ndmjob(t, nil, backup...)
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("backup once the other host released the drive: %v\n%s", err, out)
	}
	if holder, _, _ := n.lib.Drives[0].Reservation(); holder != "" || len(cart.Records()) == 0 {
		t.Fatalf("after the backup: reserved by %q, %d records", holder, len(cart.Records()))
	}
}

// Issue 15 acceptance (T7): the primary path of the simulated HP drive
// fails in the middle of ndmjob's backup (the 101st record reaches the
// tape, its reply is lost); the drive goes on over its second path, the
// backup ends OKAY and the restore is exact.
func TestSimPathFailureDuringBackup(t *testing.T) {
	n := startSimNode(t, sim.LibraryOptions{Slots: 4})
	src, dst := filepath.Join(n.vols, "vol1"), filepath.Join(n.vols, "vol2")
	populateVolume(t, src, 3<<20)
	n.lib.Paths[0][0].FailAfterWrites(100, true)
	robot := []string{"-T", n.agent, "-f", simDrive0, "-R", n.agent, "-r", simChanger, "-m", "@1024"}
	out, err := ndmjob(t, nil, append([]string{"-v", "-c", "-D", n.agent, "-B", "dump", "-C", "/vs1/vol1"}, robot...)...)
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("ndmjob -c: %v\n%s", err, out)
	}
	devs, err := n.d.Tapes().Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.Serial == sim.HPDrive.Serial && d.Stats.WriteErrors != 0 {
			t.Errorf("the failover counted %d write errors", d.Stats.WriteErrors)
		}
	}
	// The restore runs over the second path (the first is still down).
	out, err = ndmjob(t, nil, append([]string{"-v", "-x", "-D", n.agent, "-B", "dump", "-C", "/vs1/vol2"}, robot...)...)
	if err != nil || !strings.Contains(out, "Operation ended OKAY") || !strings.Contains(out, "1 OK, 0 ERROR") {
		t.Fatalf("ndmjob -x: %v\n%s", err, out)
	}
	sameTrees(t, src, dst)
}
