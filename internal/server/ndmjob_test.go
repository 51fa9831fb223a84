package server

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

const ndmjobPath = "/usr/lib/amanda/ndmjob"

// runNdmjob runs ndmjob with args (after -d/-v options) and returns its
// output and exit error.
func runNdmjob(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := testutil.RequireTool(t, ndmjobPath)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if d := os.Getenv("NDMJOB_DEBUG"); d != "" {
		args = append([]string{"-d", d, "-L", "/tmp/ndmjob-debug.log"}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// agent is ndmjob's AGENT argument for the fixture's LIF: HOST:PORT/4m or
// /4t with user and password.
func (f *fixture) agent(method string) string {
	return f.addr + "/4" + method + "," + testUser + "," + f.ndmpPW
}

// testSummary matches ndmjob's per-series result lines, such as
// `TEST "Test T-OC Passed -- pass=8 warn=0 fail=0 (total 8)"`.
var testSummary = regexp.MustCompile(`pass=(\d+) warn=(\d+) fail=(\d+) \(total (\d+)\)`)

// counts finds ndmjob's "N tests, P passed, W warnings, F failed" lines
// (summing them) and returns passed, warnings and failed.
func counts(out string) (tests, passed, warned, failed int, ok bool) {
	ms := testSummary.FindAllStringSubmatch(out, -1)
	if i := strings.Index(out, "FINAL"); i >= 0 {
		// The series total of the FINAL line already sums the phases.
		ms = testSummary.FindAllStringSubmatch(out[i:], 1)
	}
	for _, m := range ms {
		b, _ := strconv.Atoi(m[1])
		c, _ := strconv.Atoi(m[2])
		d, _ := strconv.Atoi(m[3])
		a, _ := strconv.Atoi(m[4])
		tests, passed, warned, failed, ok = tests+a, passed+b, warned+c, failed+d, true
	}
	return
}

func warnings(out string) []string {
	var w []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "WARN") || strings.Contains(l, "FAIL") {
			w = append(w, l)
		}
	}
	return w
}

// ndmjobZeroWrite is how the Debian build of ndmjob reports T-BW #6: its
// zero-length TAPE_WRITE never reaches the wire (the last message it sent
// is still the TAPE_OPEN), so the step fails against every server,
// ndmjob's own tape agent included, and the series stops there. The
// server's answers to the later phases (T-BR, T-BWR, T-WRITE, T-READ,
// T-MTIO) are tested by TestTapeSemantics with the same expectations.
const ndmjobZeroWrite = `T-BW #6 -- Failed NDMP4_TAPE_OPEN/NDMP9_NO_ERR got NDMP9_NO_ERR (error expected)`

// N1, N3: ndmjob's TAPE conformance test against the server with MD5 and
// TEXT authentication: T-OC and T-BGS pass without warnings; T-BW passes
// up to ndmjob's own zero-length write defect.
func TestNdmjobTestTape(t *testing.T) {
	f := newFixture(t, fixtureOpts{before: enableText})
	for _, method := range []string{"m", "t"} {
		out, _ := runNdmjob(t, "-v", "-o", "test-tape", "-T", f.agent(method), "-f", "nrst1l")
		for _, phase := range []string{
			`Test T-OC Passed -- pass=8 warn=0 fail=0 (total 8)`,
			`Test T-BGS Passed -- pass=4 warn=0 fail=0 (total 4)`,
		} {
			if !strings.Contains(out, phase) {
				t.Fatalf("auth %s: ndmjob output lacks %q:\n%s", method, phase, out)
			}
		}
		if !strings.Contains(out, "T-BW Passed") {
			fails := 0
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "Failed") && !strings.Contains(l, ndmjobZeroWrite) {
					fails++
					t.Errorf("auth %s: unexpected failure: %s", method, l)
				}
			}
			if !strings.Contains(out, ndmjobZeroWrite) && fails == 0 {
				t.Errorf("auth %s: T-BW did not pass:\n%s", method, out)
			}
		}
		t.Logf("auth %s: warnings/failures: %q", method, warnings(out))
	}
}

// ndmjob's MOVER conformance test (M-IDLE, M-LISTEN for LOCAL and TCP).
func TestNdmjobTestMover(t *testing.T) {
	f := newFixture(t, fixtureOpts{before: enableText})
	for _, method := range []string{"m", "t"} {
		out, err := runNdmjob(t, "-o", "test-mover", "-T", f.agent(method), "-f", "nrst2l")
		n, pass, warn, fail, ok := counts(out)
		if err != nil || !ok || fail != 0 || n == 0 {
			t.Fatalf("auth %s: ndmjob test-mover: err %v, %d tests %d passed %d warnings %d failed\n%s", method, err, n, pass, warn, fail, out)
		}
		t.Logf("auth %s: %d tests, %d passed, %d warnings, %d failed; warnings: %q", method, n, pass, warn, fail, warnings(out))
	}
}

func enableText(f *fixture) {
	if _, err := ModifySVMSettings(f.ctx, f.store, f.adminSVM, func(s *SVMSettings) error {
		s.AuthTypes = []string{AuthChallenge, AuthPlaintext}
		return nil
	}); err != nil {
		f.t.Fatal(err)
	}
}

// Robot operations of ndmjob through SCSI_EXECUTE_CDB on the virtual
// library's changer (mc0), with tape operations on nrst0l: element status,
// unload, load, label writing and listing.
func TestNdmjobRobot(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	a := f.agent("m")
	out, err := runNdmjob(t, "-o", "init-elem-status", "-R", a, "-r", "mc0")
	if err != nil || !strings.Contains(out, "slots 20@1000  drive 4@500  arm 1@0  i/e 4@10") ||
		!strings.Contains(out, "@501 TAPE Full  PVolTag(TAP002L8,#0)") {
		t.Fatalf("init-elem-status: %v\n%s", err, out)
	}
	d0, _ := f.lib.Drive(0)
	out, err = runNdmjob(t, "-v", "-o", "unload", "-R", a, "-r", "mc0", "-T", a, "-f", "nrst0l")
	if err != nil || d0.Barcode() != "" || !strings.Contains(out, "Operation complete") {
		t.Fatalf("unload: drive holds %q, %v\n%s", d0.Barcode(), err, out)
	}
	out, err = runNdmjob(t, "-v", "-o", "load=1004", "-R", a, "-r", "mc0", "-T", a, "-f", "nrst0l")
	if err != nil || d0.Barcode() != "TAP005L8" {
		t.Fatalf("load=1004: drive holds %q, %v\n%s", d0.Barcode(), err, out)
	}
	_, _ = runNdmjob(t, "-o", "unload", "-R", a, "-r", "mc0", "-T", a, "-f", "nrst0l")
	out, err = runNdmjob(t, "-v", "-o", "init-labels", "-R", a, "-r", "mc0", "-T", a, "-f", "nrst0l", "-m", "TESTLBL1@1004")
	if err != nil || !strings.Contains(out, "Writing tape label 'TESTLBL1'") {
		t.Fatalf("init-labels: %v\n%s", err, out)
	}
	out, err = runNdmjob(t, "-v", "-l", "-R", a, "-r", "mc0", "-T", a, "-f", "nrst0l", "-m", "@1004")
	if err != nil || !strings.Contains(out, `ME "TESTLBL1@1004"`) {
		t.Fatalf("-l: %v\n%s", err, out)
	}
}

// ndmjob's DATA conformance test (D-IDLE, D-LISTEN for LOCAL and TCP).
func TestNdmjobTestData(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	out, err := runNdmjob(t, "-o", "test-data", "-D", f.agent("m"))
	n, pass, warn, fail, ok := counts(out)
	if err != nil || !ok || fail != 0 || n == 0 {
		t.Fatalf("ndmjob test-data: err %v, %d tests %d passed %d warnings %d failed\n%s", err, n, pass, warn, fail, out)
	}
	t.Logf("%d tests, %d passed, %d warnings, %d failed", n, pass, warn, fail)
}

// D1, N14, N16: ndmjob as DMA makes a dump backup of /vs1/vol1 to the
// virtual drive nrst0l with file history (-I), lists it (-t, DATA
// START_RECOVER_FILEHIST) and extracts it into /vs1/vol2 (-x), whole and
// one subtree; the restored trees equal the source.
func TestNdmjobBackupListRestore(t *testing.T) {
	f := newFixture(t, fixtureOpts{before: withVolumes})
	src, dst := filepath.Join(f.dir, "vols", "vol1"), filepath.Join(f.dir, "vols", "vol2")
	populate(t, src)
	a := f.agent("m")
	index := filepath.Join(t.TempDir(), "index")
	out, err := runNdmjob(t, "-v", "-c", "-D", a, "-B", "dump", "-C", "/vs1/vol1", "-f", "nrst0l", "-I", index)
	if err != nil || !strings.Contains(out, "Operation ended OKAY") || strings.Contains(out, "WARNING") {
		t.Fatalf("ndmjob -c: %v\n%s", err, out)
	}
	idx, err := os.ReadFile(index)
	if err != nil || !strings.Contains(string(idx), "DE DUMP_DATE=") || !strings.Contains(string(idx), "DHr ") {
		t.Fatalf("index file: %v\n%s", err, idx)
	}
	out, err = runNdmjob(t, "-v", "-t", "-D", a, "-B", "dump", "-f", "nrst0l")
	if err != nil || !strings.Contains(out, "Operation ended OKAY") || !strings.Contains(out, "DHf /d1/e1/f13.txt") {
		t.Fatalf("ndmjob -t: %v\n%s", err, out)
	}
	out, err = runNdmjob(t, "-v", "-x", "-D", a, "-B", "dump", "-C", "/vs1/vol2", "-f", "nrst0l")
	if err != nil || !strings.Contains(out, "Operation ended OKAY") || !strings.Contains(out, "0 ERROR") {
		t.Fatalf("ndmjob -x: %v\n%s", err, out)
	}
	if want, got := tree(t, src), tree(t, dst); strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Fatalf("restored tree differs:\nwant %q\ngot  %q", want, got)
	}
	if err := os.RemoveAll(dst + "/d1"); err != nil {
		t.Fatal(err)
	}
	out, err = runNdmjob(t, "-v", "-x", "-D", a, "-B", "dump", "-C", "/vs1/vol2", "-f", "nrst0l", "d1/e1")
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("ndmjob -x d1/e1: %v\n%s", err, out)
	}
	for _, p := range []string{"d1/e1/f1.txt", "d1/e1/f13.txt"} {
		b, err := os.ReadFile(filepath.Join(dst, p))
		want, _ := os.ReadFile(filepath.Join(src, p))
		if err != nil || string(b) != string(want) {
			t.Fatalf("%s after subtree restore: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "d1/e0")); err == nil {
		t.Fatal("subtree restore brought back d1/e0")
	}
}
