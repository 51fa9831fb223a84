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
	return runNdmjobEnv(t, nil, args...)
}

// runNdmjobEnv is runNdmjob with extra environment variables.
func runNdmjobEnv(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	bin := testutil.RequireTool(t, ndmjobPath)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if d := os.Getenv("NDMJOB_DEBUG"); d != "" {
		args = append([]string{"-d", d, "-L", "/tmp/ndmjob-debug.log"}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
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

// ndmjob's test-tape series against the server, and why it cannot end in
// "FINAL test-tape Passed" with the Debian build of ndmjob (amanda 3.5.1).
//
// T-BW #6, the zero-length TAPE_WRITE, never reaches the wire. ndmjob
// builds every request in NDMP "v9" form and ndma_call_no_tattle
// (ndma_comm_dispatch.c) translates it to v4 with
// ndmp_9to4_tape_write_request (ndmp4_translate.c), which copies the data
// into NDMOS_API_MALLOC(len) and gives up when that returns NULL. Amanda's
// platform header (ndmos_glib.h) defines NDMOS_API_MALLOC as g_malloc, and
// g_malloc(0) returns NULL by definition, so the translation fails, the
// request is answered locally with NDMP4_NOT_SUPPORTED_ERR (the debug log
// shows "ERR-AGENT NDMP4_TAPE_WRITE NDMP4_NOT_SUPPORTED_ERR") and
// conn->last_message still names the previous call, hence the odd text
// ndmjobZeroWrite. strace of ndmjob shows no write(2) on the control
// socket between the TAPE_OPEN reply and the failure, against this server
// and against ndmjob's own "-o daemon" tape agent alike. ndmca_test_close
// calls exit(1) on the first failure, so the series stops there.
//
// Preloading a g_malloc that returns a unique pointer for 0 bytes (as
// malloc does) mends that defect: T-BW and T-BR then pass completely,
// and T-BWR stops at step 12 for a reason in the draft, not in the server:
// after "write one 512-byte record at BOT", ndmjob sends MTIO BSR 100 and
// expects resid 99 (the record crossed). The NDMP v4 draft (section
// "Implicit file mark generation") says the tape server MUST write a file
// mark before any MTIO other than EOF and TUR when records were written
// since the last mark, and position after it; BSR then stops at that mark
// with resid 100, which is what the server answers. (With that rule
// relaxed in a scratch copy of the virtual drive, the run goes on to
// T-BWR #23, where ndmjob reports "Failed compare" for every byte >= 0x80
// of a record whose bytes on the wire are identical to those it wrote:
// its compare sign-extends a char; so even a drive without implicit marks
// cannot finish the series.) ndmjob has no option to run single phases;
// TestTapeSemantics asserts the server's answers to the T-BWR, T-WRITE,
// T-READ and T-MTIO steps with ndmjob's expectations where they agree
// with the draft.
const (
	ndmjobZeroWrite = `T-BW #6 -- Failed NDMP4_TAPE_OPEN/NDMP9_NO_ERR got NDMP9_NO_ERR (error expected)`
	ndmjobBSRMark   = `T-BWR #12 -- Failed NDMP4_TAPE_MTIO/NDMP9_NO_ERR Residual incorrect, got 100 expected 99`
)

// gmallocShim is the preload library that makes g_malloc(0) return a
// pointer, as malloc(0) does, so ndmjob can send a zero-length write.
const gmallocShim = `#include <stdlib.h>
void *g_malloc(size_t n) { void *p = malloc(n ? n : 1); if (!p) abort(); return p; }
`

// buildGmallocShim compiles gmallocShim with gcc and returns the path of
// the shared object.
func buildGmallocShim(t *testing.T) string {
	t.Helper()
	gcc := testutil.RequireTool(t, "gcc")
	dir := t.TempDir()
	src, so := filepath.Join(dir, "gmalloc0.c"), filepath.Join(dir, "gmalloc0.so")
	if err := os.WriteFile(src, []byte(gmallocShim), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-shared", "-fPIC", "-O2", "-o", so, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return so
}

// phaseResults returns ndmjob's per-phase summary lines by phase name.
func phaseResults(out string) map[string]string {
	re := regexp.MustCompile(`Test (T-[A-Z]+) (Passed|Failed|Almost|Whiffed) -- pass=\d+ warn=\d+ fail=\d+ \(total \d+\)`)
	m := map[string]string{}
	for _, g := range re.FindAllStringSubmatch(out, -1) {
		m[g[1]] = g[0]
	}
	return m
}

// failures returns ndmjob's "Failed"/"Almost" step lines.
func failures(out string) []string {
	var fs []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "#") && (strings.Contains(l, "-- Failed") || strings.Contains(l, "-- Almost")) {
			fs = append(fs, strings.Trim(strings.TrimPrefix(strings.TrimSpace(l), "Test "), `"`))
		}
	}
	return fs
}

// N1, N3: ndmjob's TAPE conformance test against the server with MD5 and
// TEXT authentication. As shipped, ndmjob passes T-OC and T-BGS and stops
// at its own zero-length write defect in T-BW #6; with g_malloc(0) mended
// it passes T-BW and T-BR too and stops at T-BWR #12, the draft's implicit
// file mark (see ndmjobZeroWrite). Every step before each stop passes
// without a warning.
func TestNdmjobTestTape(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: enableText})
	shim := buildGmallocShim(t)
	for _, method := range []string{"m", "t"} {
		if !waitUntil(10*time.Second, func() bool { return len(f.srv.Sessions()) == 0 }) {
			t.Fatalf("ndmjob's session still open: %+v", f.srv.Sessions())
		}
		out, err := runNdmjob(t, "-v", "-o", "test-tape", "-T", f.agent(method), "-f", "nrst1l")
		ph := phaseResults(out)
		for name, want := range map[string]string{
			"T-OC":  `Test T-OC Passed -- pass=8 warn=0 fail=0 (total 8)`,
			"T-BGS": `Test T-BGS Passed -- pass=4 warn=0 fail=0 (total 4)`,
		} {
			if ph[name] != want {
				t.Errorf("auth %s, stock ndmjob: %s: got %q, want %q\n%s", method, name, ph[name], want, out)
			}
		}
		if fs := failures(out); err == nil || len(fs) != 1 || fs[0] != ndmjobZeroWrite {
			t.Errorf("auth %s, stock ndmjob: exit %v, failures %q, want only %q\n%s\nserver log:\n%s", method, err, fs, ndmjobZeroWrite, out, f.logs.String())
		}

		// ndmjob exits without closing its session; let the server see
		// the end of the connection and release the drive first.
		if !waitUntil(10*time.Second, func() bool { return len(f.srv.Sessions()) == 0 }) {
			t.Fatalf("ndmjob's session still open: %+v", f.srv.Sessions())
		}
		out, err = runNdmjobEnv(t, []string{"LD_PRELOAD=" + shim}, "-v", "-o", "test-tape", "-T", f.agent(method), "-f", "nrst1l")
		ph = phaseResults(out)
		for name, want := range map[string]string{
			"T-OC":  `Test T-OC Passed -- pass=8 warn=0 fail=0 (total 8)`,
			"T-BGS": `Test T-BGS Passed -- pass=4 warn=0 fail=0 (total 4)`,
			"T-BW":  `Test T-BW Passed -- pass=13 warn=0 fail=0 (total 13)`,
			"T-BR":  `Test T-BR Passed -- pass=20 warn=0 fail=0 (total 20)`,
		} {
			if ph[name] != want {
				t.Errorf("auth %s, mended ndmjob: %s: got %q, want %q\n%s", method, name, ph[name], want, out)
			}
		}
		if !strings.Contains(out, "Test T-BWR -- Tape Write and Read Basics") {
			t.Errorf("auth %s, mended ndmjob: T-BWR did not start (exit %v)\n%s", method, err, out)
		}
		if fs := failures(out); err == nil || len(fs) != 1 || fs[0] != ndmjobBSRMark {
			t.Errorf("auth %s, mended ndmjob: exit %v, failures %q, want only %q\n%s", method, err, fs, ndmjobBSRMark, out)
		}
		t.Logf("auth %s: failures with the g_malloc(0) fix: %q", method, failures(out))
	}
}

// ndmjob's MOVER conformance test (M-IDLE, M-LISTEN for LOCAL and TCP).
func TestNdmjobTestMover(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
