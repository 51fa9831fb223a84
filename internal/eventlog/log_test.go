package eventlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOpenWritesStartLogging (M1): opening the log begins logging with
// Start_Logging; opening it disabled writes nothing.
func TestOpenWritesStartLogging(t *testing.T) {
	c := newClock(t0)
	l, dir := openTest(t, c, Options{})
	if !l.Enabled() {
		t.Fatal("logging is off by default")
	}
	lines := readLines(t, dir, FileName)
	if len(lines) != 1 || lines[0] != "log Mon Nov 23 12:00:00 UTC 2026 Start_Logging" {
		t.Fatalf("lines %q", lines)
	}
	l.Close()

	l2, dir2 := openTest(t, c, Options{Disabled: true})
	if l2.Enabled() {
		t.Fatal("Disabled log is enabled")
	}
	if err := l2.Dump("/v/", 1).Start(0, KindNDMP); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(dir2, FileName); err != nil || len(b) != 0 {
		t.Fatalf("disabled log has %q, %v", b, err)
	}
}

// TestEnableDisable (M2, backup.log.enable): turning logging off writes
// Stop_Logging, nothing is written while it is off, turning it on writes
// Start_Logging.
func TestEnableDisable(t *testing.T) {
	c := newClock(t0)
	l, dir := openTest(t, c, Options{})
	d := l.Dump("/vs1/vol1/", 3)
	r := l.Restore("/vs1/dst")
	write := func(tag string) {
		t.Helper()
		for _, err := range []error{
			d.Start(0, KindNDMP), d.Options(Option{"TAG", tag}), d.TapeOpen("nrst0a"), d.PhaseChange("I"),
			d.Snapshot("s", t0), d.BaseDump(0, t0), d.Error(tag), d.TapeClose("nrst0a"), d.End(1), d.Abort(1),
			r.Start(0, KindNDMP), r.Options(Option{"TAG", tag}), r.TapeOpen("x"), r.PhaseChange("I"),
			r.Error(tag), r.TapeClose("x"), r.End(1, 1), r.Abort(1, 1),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	write("on1")
	if err := l.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	if err := l.SetEnabled(false); err != nil { // no second Stop_Logging
		t.Fatal(err)
	}
	if l.Enabled() {
		t.Fatal("still enabled")
	}
	write("off")
	if err := l.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	if err := l.SetEnabled(true); err != nil { // no second Start_Logging
		t.Fatal(err)
	}
	write("on2")

	// Start_Logging, the first series, Stop_Logging, Start_Logging, the
	// second series; nothing from the time logging was off.
	lines := readLines(t, dir, FileName)
	var logging []int
	for i, line := range lines {
		e := mustParse(t, line)
		if strings.Contains(line, "off") {
			t.Errorf("written while disabled: %q", line)
		}
		if e.Type == TypeLog {
			logging = append(logging, i)
		}
	}
	if fmt.Sprint(logging) != "[0 19 20]" {
		t.Fatalf("logging events at lines %v, want [0 19 20]", logging)
	}
	if len(lines) != 1+18+1+1+18 {
		t.Fatalf("%d lines", len(lines))
	}
	if e := mustParse(t, lines[19]); e.Event != EventStopLogging {
		t.Errorf("line 19 is %q", lines[19])
	}
	if e := mustParse(t, lines[20]); e.Event != EventStartLogging {
		t.Errorf("line 20 is %q", lines[20])
	}
	if !strings.Contains(lines[21], "/vs1/vol1/(3) Start (level 0, NDMP)") {
		t.Errorf("line 21 is %q", lines[21])
	}
}

// TestConcurrentWriters: many goroutines write at once; every line is
// whole, parses, and none is lost or duplicated.
func TestConcurrentWriters(t *testing.T) {
	c := newClock(t0)
	l, dir := openTest(t, c, Options{})
	const writers, each = 32, 200
	long := strings.Repeat("x", 3000) // lines longer than a pipe buffer's atomic size
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if w%2 == 0 {
				d := l.Dump("/vs1/vol"+strconv.Itoa(w)+"/", uint64(w))
				for i := range each {
					if err = d.PhaseChange(strconv.Itoa(i) + " " + long); err != nil {
						break
					}
				}
			} else {
				r := l.Restore("/vs1/dst" + strconv.Itoa(w))
				for i := range each {
					if err = r.Error(strconv.Itoa(i)); err != nil {
						break
					}
				}
			}
			errs <- err
		}()
	}
	// Rotate while they write: no line may be lost or torn across files.
	for range 5 {
		time.Sleep(5 * time.Millisecond)
		if err := l.Rotate(); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	next := map[string]int{}
	var lines []string // oldest file first
	withData := 0
	for _, name := range []string{"backup.4", "backup.3", "backup.2", "backup.1", "backup.0", "backup"} {
		l := readLines(t, dir, name)
		if len(l) > 1 {
			withData++
		}
		lines = append(lines, l...)
	}
	if withData < 2 {
		t.Logf("the rotations did not overlap the writers (%d files with lines)", withData)
	}
	if len(lines) != 1+writers*each {
		t.Fatalf("%d lines, want %d", len(lines), 1+writers*each)
	}
	for _, line := range lines[1:] {
		e := mustParse(t, line)
		n, _, _ := strings.Cut(e.Info, " ")
		i, err := strconv.Atoi(n)
		if err != nil {
			t.Fatalf("line %.100q: %v", line, err)
		}
		if e.Type == TypeDump && !strings.HasSuffix(e.Info, long) {
			t.Fatalf("torn line %.100q", line)
		}
		if next[e.Identifier] != i {
			t.Fatalf("%s: line %d after %d", e.Identifier, i, next[e.Identifier]-1)
		}
		next[e.Identifier] = i + 1
	}
	if len(next) != writers {
		t.Fatalf("%d writers seen", len(next))
	}
}

// TestRotationWeeks (M2) writes every day for ten weeks with an injected
// clock: at the end exactly backup and backup.0 ... backup.5 exist, each
// rotated file holds one calendar week (Sunday to Saturday) and the files
// are in order, newest first.
func TestRotationWeeks(t *testing.T) {
	start := time.Date(2026, time.January, 7, 9, 0, 0, 0, time.UTC) // a Wednesday
	c := newClock(start)
	l, dir := openTest(t, c, Options{})
	for day := range 70 {
		c.Set(start.Add(time.Duration(day) * 24 * time.Hour))
		d := l.Dump("/vs1/vol1/", uint64(day))
		if err := d.Start(0, KindNDMP); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Hour)
		if err := d.End(int64(day) << 10); err != nil {
			t.Fatal(err)
		}
		if day == 20 {
			// A restart in mid-week does not rotate.
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			var err error
			if l, err = Open(dir, Options{Now: c.Now, Location: time.UTC}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}
	}
	names, err := Names(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"backup", "backup.0", "backup.1", "backup.2", "backup.3", "backup.4", "backup.5"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("Names = %q, want %q", names, want)
	}
	if fileExists(filepath.Join(dir, "backup.6")) {
		t.Fatal("backup.6 exists")
	}
	// The last day is day 69 = Tue Mar 17 2026; its week began Sun Mar 15.
	// backup.N holds the week N+1 weeks before.
	thisWeek := time.Date(2026, time.March, 15, 0, 0, 0, 0, time.UTC)
	for i, name := range want {
		from := thisWeek.AddDate(0, 0, -7*i)
		to := from.AddDate(0, 0, 7)
		lines := readLines(t, dir, name)
		if len(lines) == 0 {
			t.Fatalf("%s is empty", name)
		}
		days := map[int]bool{}
		for _, line := range lines {
			e := mustParse(t, line)
			if e.Time.Before(from) || !e.Time.Before(to) {
				t.Errorf("%s: line %q outside the week %v - %v", name, line, from, to)
			}
			days[e.Time.YearDay()] = true
		}
		wantDays := 7
		if i == 0 {
			wantDays = 3 // Sunday to Tuesday
		}
		if len(days) != wantDays {
			t.Errorf("%s holds %d days, want %d", name, len(days), wantDays)
		}
	}
}

// TestRotationAfterRestart (M2): the start of the current file survives a
// restart, so a log reopened after the week ended rotates at once; a
// missing or damaged state file falls back to the file's modification time.
func TestRotationAfterRestart(t *testing.T) {
	sat := time.Date(2026, time.November, 28, 23, 0, 0, 0, time.UTC)
	c := newClock(sat)
	l, dir := openTest(t, c, Options{})
	l.Dump("/v/", 1).Start(0, KindNDMP)
	l.Close()

	c.Set(sat.Add(2 * time.Hour)) // Monday 01:00
	l, err := Open(dir, Options{Now: c.Now, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	old := readLines(t, dir, "backup.0")
	cur := readLines(t, dir, FileName)
	if len(old) != 2 || len(cur) != 1 || mustParse(t, cur[0]).Event != EventStartLogging {
		t.Fatalf("backup.0 %q, backup %q", old, cur)
	}
	l.Close()

	// Damaged state: the file's modification time (last week) decides.
	if err := os.WriteFile(filepath.Join(dir, stateName), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	lastWeek := time.Date(2026, time.November, 25, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, FileName), lastWeek, lastWeek); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, Options{Now: c.Now, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := readLines(t, dir, "backup.1"); len(got) != 2 {
		t.Fatalf("backup.1 %q", got)
	}
	if got := readLines(t, dir, "backup.0"); len(got) != 1 {
		t.Fatalf("backup.0 %q", got)
	}
}

// TestRotationLocation: the week boundary is midnight Saturday to Sunday
// in the log's location, not in UTC.
func TestRotationLocation(t *testing.T) {
	loc := time.FixedZone("XST", -8*3600)
	fri := time.Date(2026, time.November, 27, 12, 0, 0, 0, loc)
	c := newClock(fri)
	l, dir := openTest(t, c, Options{Location: loc})
	// Sun 02:00 UTC is still Saturday in XST: no rotation.
	c.Set(time.Date(2026, time.November, 29, 2, 0, 0, 0, time.UTC))
	l.Restore("/d").Start(0, KindNDMP)
	if fileExists(filepath.Join(dir, "backup.0")) {
		t.Fatal("rotated before the local week ended")
	}
	lines := readLines(t, dir, FileName)
	if want := "rst Sat Nov 28 18:00:00 XST 2026 /d Start (level 0, NDMP)"; lines[len(lines)-1] != want {
		t.Fatalf("got %q, want %q", lines[len(lines)-1], want)
	}
	c.Set(time.Date(2026, time.November, 29, 0, 0, 0, 0, loc))
	if err := l.RotateIfDue(); err != nil {
		t.Fatal(err)
	}
	if !fileExists(filepath.Join(dir, "backup.0")) {
		t.Fatal("not rotated at local Sunday 00:00")
	}
	if err := l.Rotate(); err != nil {
		t.Fatal(err)
	}
	if names, _ := Names(dir); strings.Join(names, " ") != "backup backup.0 backup.1" {
		t.Fatalf("Names = %q", names)
	}
}

// TestClockBack: a state file dated in the future (a clock that was set
// wrong) does not stop rotation for good.
func TestClockBack(t *testing.T) {
	c := newClock(time.Date(2030, time.January, 2, 0, 0, 0, 0, time.UTC))
	l, dir := openTest(t, c, Options{})
	c.Set(t0) // Mon Nov 23 2026
	if err := l.Restore("/d").Start(0, KindNDMP); err != nil {
		t.Fatal(err)
	}
	if fileExists(filepath.Join(dir, "backup.0")) {
		t.Fatal("rotated when the clock went back")
	}
	c.Set(t0.AddDate(0, 0, 6)) // the next Sunday
	if err := l.Restore("/d").End(1, 1); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, dir, "backup.0"); len(got) != 2 {
		t.Fatalf("backup.0 = %q", got)
	}
}

func TestWeekEnd(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2026-11-22T00:00:00Z", "2026-11-29T00:00:00Z"}, // Sunday midnight
		{"2026-11-28T23:59:59Z", "2026-11-29T00:00:00Z"}, // Saturday
		{"2026-11-23T12:00:00Z", "2026-11-29T00:00:00Z"}, // Monday
		{"2026-12-31T10:00:00Z", "2027-01-03T00:00:00Z"}, // across a year
	} {
		in, _ := time.Parse(time.RFC3339, tc.in)
		if got := weekEnd(in, time.UTC).Format(time.RFC3339); got != tc.want {
			t.Errorf("weekEnd(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestClosed(t *testing.T) {
	c := newClock(t0)
	l, _ := openTest(t, c, Options{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	for _, err := range []error{l.Dump("/v/", 1).End(0), l.Restore("/d").End(0, 0), l.SetEnabled(false), l.Rotate(), l.RotateIfDue()} {
		if err != ErrClosed {
			t.Errorf("after Close: %v, want ErrClosed", err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("", Options{}); err == nil {
		t.Error("Open of an empty name succeeded")
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(file, "log"), Options{}); err == nil {
		t.Error("Open under a regular file succeeded")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, FileName), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Error("Open with a directory named backup succeeded")
	}
}

func BenchmarkWrite(b *testing.B) {
	l, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	d := l.Dump("/vs1/vol1/", 1)
	b.ReportAllocs()
	for b.Loop() {
		if err := d.PhaseChange("III"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteSynced(b *testing.B) {
	l, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	d := l.Dump("/vs1/vol1/", 1)
	for b.Loop() {
		if err := d.End(1 << 20); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRotationFailure: when the files cannot be rotated (here backup.5 is a
// non-empty directory, which cannot be removed) the event is
// still written to the current file and the error is reported.
func TestRotationFailure(t *testing.T) {
	c := newClock(t0)
	l, dir := openTest(t, c, Options{})
	if err := os.MkdirAll(filepath.Join(dir, "backup.5", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	c.Set(t0.AddDate(0, 0, 7))
	err := l.Restore("/d").Error("disk full")
	if err == nil {
		t.Fatal("no error from a failed rotation")
	}
	lines := readLines(t, dir, FileName)
	if len(lines) != 2 || mustParse(t, lines[1]).Info != "disk full" {
		t.Fatalf("lines %q", lines)
	}
	// Within RotateRetry later events neither retry nor report it; they
	// go into the current file.
	c.Set(t0.AddDate(0, 0, 7).Add(RotateRetry - time.Minute))
	if err := l.Restore("/d").Start(0, KindNDMP); err != nil {
		t.Fatalf("a write inside the retry pause reported %v", err)
	}
	if lines := readLines(t, dir, FileName); len(lines) != 3 {
		t.Fatalf("current file has %d lines, want 3: %q", len(lines), lines)
	}
	// Once the obstacle is gone and the pause is over, the next write rotates.
	if err := os.RemoveAll(filepath.Join(dir, "backup.5")); err != nil {
		t.Fatal(err)
	}
	c.Set(t0.AddDate(0, 0, 7).Add(RotateRetry))
	if err := l.Restore("/d").End(0, 0); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, dir, "backup.0"); len(got) != 3 {
		t.Fatalf("backup.0 = %q", got)
	}
	if got := readLines(t, dir, FileName); len(got) != 1 {
		t.Fatalf("backup = %q", got)
	}
	// An explicit Rotate does not wait for the pause.
	if err := os.MkdirAll(filepath.Join(dir, "backup.5", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.Rotate(); err == nil {
		t.Fatal("Rotate with backup.5 in the way: no error")
	}
	if err := os.RemoveAll(filepath.Join(dir, "backup.5")); err != nil {
		t.Fatal(err)
	}
	if err := l.Rotate(); err != nil {
		t.Fatalf("Rotate after the obstacle went: %v", err)
	}
}

// TestRotateAfterCloseError (M2): a rotation whose Close of the current
// file fails still rotates and reopens it, so later events are written.
func TestRotateAfterCloseError(t *testing.T) {
	l, dir := openTest(t, newClock(t0), Options{})
	l.mu.Lock()
	_ = l.f.Close() // the Close in Rotate now fails with "file already closed"
	l.mu.Unlock()
	if err := l.Rotate(); err == nil {
		t.Fatal("Rotate hid the Close error")
	}
	if !fileExists(filepath.Join(dir, "backup.0")) {
		t.Fatal("not rotated after the Close error")
	}
	if err := l.Restore("/d").Start(0, KindNDMP); err != nil {
		t.Fatalf("write after the Close error: %v", err)
	}
	if lines := readLines(t, dir, FileName); len(lines) != 1 {
		t.Fatalf("current file has %d lines, want 1: %q", len(lines), lines)
	}
}
