package eventlog

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// lineRE is the spec's "type timestamp identifier event (event_info)"
// written as a regular expression: a type of the spec's table, a
// date-and-time, for dmp and rst an identifier (a dump's ends in its id in
// parentheses), an event of the spec's tables for that type, and for dmp and
// rst the event information in parentheses. Logging events have neither
// identifier nor information.
var lineRE = regexp.MustCompile(`^(?:` +
	`log ` + tsRE + ` (?:Start_Logging|Stop_Logging)` +
	`|dmp ` + tsRE + ` .*\([0-9]+\) (?:Start|End|Abort|Options|Tape_open|Tape_close|Phase-change|Error|Snapshot|Base_dump) \(.*\)` +
	`|rst ` + tsRE + ` .+ (?:Start|End|Abort|Options|Tape_open|Tape_close|Phase-change|Error) \(.*\)` +
	`)$`)

const tsRE = `(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [1-9][0-9]? [0-2][0-9]:[0-5][0-9]:[0-5][0-9] (?:[A-Za-z]{3,5}|[+-][0-9]{2}(?:[0-9]{2})?) [0-9]{4}`

var t0 = time.Date(2026, time.November, 23, 12, 0, 0, 0, time.UTC) // a Monday

// TestEveryEventFormat (M1) writes every event of the spec's tables through
// the typed API and checks the exact lines, the format expression and that
// Parse gives back the fields.
func TestEveryEventFormat(t *testing.T) {
	c := newClock(t0)
	l, dir := openTest(t, c, Options{})
	d := l.Dump("/vs1/vol1/", 7)
	r := l.Restore("/vs1/vol2/restored")
	snap := time.Date(2026, time.November, 23, 11, 59, 58, 0, time.UTC)
	base := time.Date(2026, time.November, 16, 3, 0, 0, 0, time.UTC)
	steps := []struct {
		do   func() error
		want string
		ev   Event
		info string
	}{
		{func() error { return d.Start(1, KindNDMP) }, "dmp Mon Nov 23 12:00:01 UTC 2026 /vs1/vol1/(7) Start (level 1, NDMP)", EventStart, "level 1, NDMP"},
		{func() error {
			return d.Options(Option{"FILESYSTEM", "/vs1/vol1"}, Option{"LEVEL", "1"}, Option{"HIST", "y"}, Option{"NDMP", ""})
		}, "dmp Mon Nov 23 12:00:02 UTC 2026 /vs1/vol1/(7) Options (FILESYSTEM=/vs1/vol1, LEVEL=1, HIST=y, NDMP)", EventOptions, "FILESYSTEM=/vs1/vol1, LEVEL=1, HIST=y, NDMP"},
		{func() error { return d.Snapshot("snapshot_for_backup.7", snap) }, "dmp Mon Nov 23 12:00:03 UTC 2026 /vs1/vol1/(7) Snapshot (snapshot_for_backup.7, Mon Nov 23 11:59:58 UTC 2026)", EventSnapshot, "snapshot_for_backup.7, Mon Nov 23 11:59:58 UTC 2026"},
		{func() error { return d.BaseDump(0, base) }, "dmp Mon Nov 23 12:00:04 UTC 2026 /vs1/vol1/(7) Base_dump (level 0, Mon Nov 16 03:00:00 UTC 2026)", EventBaseDump, "level 0, Mon Nov 16 03:00:00 UTC 2026"},
		{func() error { return d.TapeOpen("nrst0a") }, "dmp Mon Nov 23 12:00:05 UTC 2026 /vs1/vol1/(7) Tape_open (nrst0a)", EventTapeOpen, "nrst0a"},
		{func() error { return d.PhaseChange("I") }, "dmp Mon Nov 23 12:00:06 UTC 2026 /vs1/vol1/(7) Phase-change (I)", EventPhaseChange, "I"},
		{func() error { return d.Error("write error on nrst0a") }, "dmp Mon Nov 23 12:00:07 UTC 2026 /vs1/vol1/(7) Error (write error on nrst0a)", EventError, "write error on nrst0a"},
		{func() error { return d.TapeClose("nrst0a") }, "dmp Mon Nov 23 12:00:08 UTC 2026 /vs1/vol1/(7) Tape_close (nrst0a)", EventTapeClose, "nrst0a"},
		{func() error { return d.End(2 << 20) }, "dmp Mon Nov 23 12:00:09 UTC 2026 /vs1/vol1/(7) End (2048 KB)", EventEnd, "2048 KB"},
		{func() error { return d.Abort(1025) }, "dmp Mon Nov 23 12:00:10 UTC 2026 /vs1/vol1/(7) Abort (2 KB)", EventAbort, "2 KB"},
		{func() error { return r.Start(0, KindNDMP) }, "rst Mon Nov 23 12:00:11 UTC 2026 /vs1/vol2/restored Start (level 0, NDMP)", EventStart, "level 0, NDMP"},
		{func() error { return r.Options(Option{"DIRECT", "y"}) }, "rst Mon Nov 23 12:00:12 UTC 2026 /vs1/vol2/restored Options (DIRECT=y)", EventOptions, "DIRECT=y"},
		{func() error { return r.TapeOpen("nrst1a") }, "rst Mon Nov 23 12:00:13 UTC 2026 /vs1/vol2/restored Tape_open (nrst1a)", EventTapeOpen, "nrst1a"},
		{func() error { return r.PhaseChange("III") }, "rst Mon Nov 23 12:00:14 UTC 2026 /vs1/vol2/restored Phase-change (III)", EventPhaseChange, "III"},
		{func() error { return r.Error("no space left on volume") }, "rst Mon Nov 23 12:00:15 UTC 2026 /vs1/vol2/restored Error (no space left on volume)", EventError, "no space left on volume"},
		{func() error { return r.TapeClose("nrst1a") }, "rst Mon Nov 23 12:00:16 UTC 2026 /vs1/vol2/restored Tape_close (nrst1a)", EventTapeClose, "nrst1a"},
		{func() error { return r.End(12, 0) }, "rst Mon Nov 23 12:00:17 UTC 2026 /vs1/vol2/restored End (12 files, 0 KB)", EventEnd, "12 files, 0 KB"},
		{func() error { return r.Abort(3, 4096) }, "rst Mon Nov 23 12:00:18 UTC 2026 /vs1/vol2/restored Abort (3 files, 4 KB)", EventAbort, "3 files, 4 KB"},
		{func() error { return l.SetEnabled(false) }, "log Mon Nov 23 12:00:19 UTC 2026 Stop_Logging", EventStopLogging, ""},
		{func() error { return l.SetEnabled(true) }, "log Mon Nov 23 12:00:20 UTC 2026 Start_Logging", EventStartLogging, ""},
	}
	for _, s := range steps {
		c.Advance(time.Second)
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.want, err)
		}
	}
	lines := readLines(t, dir, FileName)
	if len(lines) != len(steps)+1 {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(steps)+1, strings.Join(lines, "\n"))
	}
	if want := "log Mon Nov 23 12:00:00 UTC 2026 Start_Logging"; lines[0] != want {
		t.Errorf("first line %q, want %q", lines[0], want)
	}
	seen := map[Type]map[Event]bool{TypeLog: {}, TypeDump: {}, TypeRestore: {}}
	for i, line := range lines {
		if !lineRE.MatchString(line) {
			t.Errorf("line %q does not match the spec's format", line)
		}
		e := mustParse(t, line)
		seen[e.Type][e.Event] = true
		if e.String() != line {
			t.Errorf("Parse(%q).String() = %q", line, e.String())
		}
		if !e.Time.Equal(t0.Add(time.Duration(i) * time.Second)) {
			t.Errorf("line %q: time %v", line, e.Time)
		}
		if i == 0 {
			continue
		}
		s := steps[i-1]
		if line != s.want {
			t.Errorf("line %d:\n got %q\nwant %q", i, line, s.want)
		}
		if e.Event != s.ev || e.Info != s.info {
			t.Errorf("Parse(%q) = event %q info %q, want %q %q", line, e.Event, e.Info, s.ev, s.info)
		}
		switch e.Type {
		case TypeDump:
			if e.Identifier != "/vs1/vol1/(7)" {
				t.Errorf("dump identifier %q", e.Identifier)
			}
		case TypeRestore:
			if e.Identifier != "/vs1/vol2/restored" {
				t.Errorf("restore identifier %q", e.Identifier)
			}
		case TypeLog:
			if e.Identifier != "" || e.Info != "" {
				t.Errorf("logging event with identifier %q info %q", e.Identifier, e.Info)
			}
		}
	}
	// Every event of the spec's three tables occurred.
	for _, typ := range []Type{TypeLog, TypeDump, TypeRestore} {
		for _, ev := range Events(typ) {
			if !seen[typ][ev] {
				t.Errorf("no %s %s line was written", typ, ev)
			}
		}
	}
}

// TestEventTables checks the event names against the spec's tables (M1).
func TestEventTables(t *testing.T) {
	join := func(evs []Event) string {
		s := make([]string, len(evs))
		for i, e := range evs {
			s[i] = string(e)
		}
		return strings.Join(s, " ")
	}
	for typ, want := range map[Type]string{
		TypeLog:     "Start_Logging Stop_Logging",
		TypeDump:    "Start End Abort Options Tape_open Tape_close Phase-change Error Snapshot Base_dump",
		TypeRestore: "Start End Abort Options Tape_open Tape_close Phase-change Error",
	} {
		if got := join(Events(typ)); got != want {
			t.Errorf("Events(%s) = %q, want %q", typ, got, want)
		}
	}
	if Events("xyz") != nil {
		t.Error("Events of an unknown type is not nil")
	}
}

// TestParseExamples parses the example lines of docs/eventlog.md and lines
// with awkward identifiers and information.
func TestParseExamples(t *testing.T) {
	for _, tc := range []struct {
		line  string
		typ   Type
		ident string
		ev    Event
		info  string
	}{
		{"log Mon Nov 23 12:00:00 UTC 2026 Start_Logging", TypeLog, "", EventStartLogging, ""},
		{"log Sun Mar 1 00:00:00 PST 2026 Stop_Logging", TypeLog, "", EventStopLogging, ""},
		{"dmp Mon Nov 23 12:00:01 UTC 2026 /vs1/vol1/(7) Start (level 0, NDMP)", TypeDump, "/vs1/vol1/(7)", EventStart, "level 0, NDMP"},
		{"dmp Mon Nov 23 12:00:01 +04 2026 /vs1/vol1/(7) End (0 KB)", TypeDump, "/vs1/vol1/(7)", EventEnd, "0 KB"},
		// Spaces and parentheses in the path; the shortest split wins.
		{"dmp Mon Nov 23 12:00:01 UTC 2026 /vs1/my vol (old)/(12) Error (cannot open x End (y))", TypeDump, "/vs1/my vol (old)/(12)", EventError, "cannot open x End (y)"},
		{"dmp Mon Nov 23 12:00:01 UTC 2026 /vs1/a Start (b)/(3) Start (level 2, NDMP)", TypeDump, "/vs1/a Start (b)/(3)", EventStart, "level 2, NDMP"},
		{"rst Mon Nov 23 12:00:01 UTC 2026 /vs1/new dest Error (disk full)", TypeRestore, "/vs1/new dest", EventError, "disk full"},
		{"rst Mon Nov 23 12:00:01 UTC 2026 /d Options ()", TypeRestore, "/d", EventOptions, ""},
		{"dmp Mon Nov 23 12:00:01 UTC 2026 (0) Phase-change (V)", TypeDump, "(0)", EventPhaseChange, "V"},
	} {
		e, err := Parse(tc.line)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.line, err)
			continue
		}
		if e.Type != tc.typ || e.Identifier != tc.ident || e.Event != tc.ev || e.Info != tc.info {
			t.Errorf("Parse(%q) = %+v", tc.line, e)
		}
		if e.String() != tc.line {
			t.Errorf("String() = %q, want %q", e.String(), tc.line)
		}
	}
}

// TestParseTimeZones checks the time Parse gives for the zone forms.
func TestParseTimeZones(t *testing.T) {
	for _, tc := range []struct {
		ts   string
		want time.Time
	}{
		{"Mon Nov 23 12:00:00 UTC 2026", time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)},
		{"Mon Nov 23 12:00:00 +04 2026", time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)},
		{"Mon Nov 23 12:00:00 -0330 2026", time.Date(2026, 11, 23, 15, 30, 0, 0, time.UTC)},
	} {
		e := mustParse(t, "log "+tc.ts+" Start_Logging")
		if !e.Time.Equal(tc.want) {
			t.Errorf("%s: time %v, want %v", tc.ts, e.Time, tc.want)
		}
	}
}

// TestParseErrors feeds Parse malformed lines: each gets an error.
func TestParseErrors(t *testing.T) {
	for _, line := range []string{
		"",
		"log",
		"log Mon Nov 23 12:00:00 UTC 2026",
		"xyz Mon Nov 23 12:00:00 UTC 2026 Start_Logging",
		"LOG Mon Nov 23 12:00:00 UTC 2026 Start_Logging",
		"log Mon Nov 23 12:00:00 UTC 2026 Start",
		"log Mon Nov 23 12:00:00 UTC 2026 Start_Logging (x)",
		"log Mon Nov 23 12:00:00 UTC 2026 /x Start_Logging",
		"log Mon Nov 32 12:00:00 UTC 2026 Start_Logging",
		"log Mon Nov 23 25:00:00 UTC 2026 Start_Logging",
		"log Mon Nov 23 12:00:00 +2400 2026 Start_Logging",
		"log Mon November 23 12:00:00 UTC 2026 Start_Logging",
		"log 2026-11-23T12:00:00Z x y z w Start_Logging",
		"log Tue Nov 23 12:00:00 UTC 2026 Start_Logging", // a Monday
		"log Mon Nov 23 2:00:00 UTC 2026 Start_Logging",
		"log Mon Nov 03 12:00:00 UTC 2026 Start_Logging",
		"log Mon Nov 23 12:00:00 UTC 26 Start_Logging",
		"log Mon Nov 23 12:00:00 U1C 2026 Start_Logging",
		"dmp Mon Nov 23 12:00:00 UTC 2026 /vs1/vol1/ Start (level 0, NDMP)", // no (id)
		"dmp Mon Nov 23 12:00:00 UTC 2026 /vs1/vol1/(x) Start (level 0, NDMP)",
		"dmp Mon Nov 23 12:00:00 UTC 2026 /vs1/vol1/(99999999999999999999) Start (x)",
		"dmp Mon Nov 23 12:00:00 UTC 2026 /vs1/vol1/(7) Start level 0",
		"dmp Mon Nov 23 12:00:00 UTC 2026 /vs1/vol1/(7) Started (level 0)",
		"dmp Mon Nov 23 12:00:00 UTC 2026 /vs1/vol1/(7) Start (level 0",
		"dmp Mon Nov 23 12:00:00 UTC 2026 Start (level 0)",
		"dmp Mon Nov 23 12:00:00 UTC 2026 /vs1/vol1/(7) Start_Logging",
		"rst Mon Nov 23 12:00:00 UTC 2026 /d Snapshot (s, Mon Nov 23 12:00:00 UTC 2026)", // dump only
		"rst Mon Nov 23 12:00:00 UTC 2026 /d Base_dump (level 0, x)",
		"rst Mon Nov 23 12:00:00 UTC 2026 Start (level 0, NDMP)",
		"rst Mon Nov 23 12:00:00 UTC 2026 /d Start (a\nb)",
		"rst Mon Nov 23 12:00:00 UTC 2026 /d Start (a\x00b)",
		"rst Mon Nov 23 12:00:00 UTC 2026 /d Start (\xff)",
	} {
		if e, err := Parse(line); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", line, e)
		}
	}
}

// TestHostileText writes control characters, newlines and invalid UTF-8 in
// identifiers and information: every event stays on one line that parses.
func TestHostileText(t *testing.T) {
	c := newClock(t0)
	l, dir := openTest(t, c, Options{})
	d := l.Dump("/vs1/evil\n/", 1)
	if err := d.Error("line one\nline two\r\x00\xff end"); err != nil {
		t.Fatal(err)
	}
	if err := l.Restore("").Start(0, "NDMP\n"); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, dir, FileName)
	if len(lines) != 3 {
		t.Fatalf("got %d lines: %q", len(lines), lines)
	}
	e := mustParse(t, lines[1])
	if e.Identifier != `/vs1/evil\x0a/(1)` || e.Info != `line one\x0aline two\x0d\x00\xff end` {
		t.Errorf("got identifier %q info %q", e.Identifier, e.Info)
	}
	e = mustParse(t, lines[2])
	if e.Identifier != "-" || e.Info != `level 0, NDMP\x0a` {
		t.Errorf("got identifier %q info %q", e.Identifier, e.Info)
	}
}

func TestDumpIdentifier(t *testing.T) {
	id := DumpIdentifier("/vs1/vol (1)/", 42)
	if id != "/vs1/vol (1)/(42)" {
		t.Fatalf("DumpIdentifier = %q", id)
	}
	p, n, err := SplitDumpIdentifier(id)
	if err != nil || p != "/vs1/vol (1)/" || n != 42 {
		t.Fatalf("SplitDumpIdentifier(%q) = %q, %d, %v", id, p, n, err)
	}
	for _, bad := range []string{"", "/x", "/x(", "/x()", "/x(1", "/x(-1)", "/x(1a)", "/x(18446744073709551616)"} {
		if _, _, err := SplitDumpIdentifier(bad); err == nil {
			t.Errorf("SplitDumpIdentifier(%q) succeeded", bad)
		}
	}
}

func TestFormatAmount(t *testing.T) {
	for in, want := range map[int64]string{-5: "0 KB", 0: "0 KB", 1: "1 KB", 1024: "1 KB", 1025: "2 KB", 10 << 30: "10485760 KB"} {
		if got := FormatAmount(in); got != want {
			t.Errorf("FormatAmount(%d) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// renders back to the same line and matches the format expression.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"log Mon Nov 23 12:00:00 UTC 2026 Start_Logging",
		"log Mon Nov 23 12:00:00 UTC 2026 Stop_Logging",
		"dmp Mon Nov 23 12:00:01 UTC 2026 /vs1/vol1/(7) Start (level 0, NDMP)",
		"dmp Mon Nov 23 12:00:03 UTC 2026 /vs1/vol1/(7) Snapshot (snapshot_for_backup.7, Mon Nov 23 11:59:58 UTC 2026)",
		"dmp Mon Nov 23 12:00:01 -0330 2026 /vs1/my vol (old)/(12) Error (cannot open x End (y))",
		"rst Mon Nov 23 12:00:17 UTC 2026 /vs1/vol2/restored End (12 files, 0 KB)",
		"rst Mon Nov 23 12:00:01 UTC 2026 /d Options ()",
		"dmp Mon Nov 23 12:00:00 UTC 2026 /vs1/vol1/ Start (level 0, NDMP)",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, err := Parse(line)
		if err != nil {
			return
		}
		if e.String() != line {
			t.Fatalf("Parse(%q).String() = %q", line, e.String())
		}
		if !lineRE.MatchString(line) {
			t.Fatalf("Parse accepted %q, which does not match the format", line)
		}
		e2, err := Parse(e.String())
		if err != nil || !e2.Time.Equal(e.Time) || e2.Type != e.Type || e2.Timestamp != e.Timestamp ||
			e2.Identifier != e.Identifier || e2.Event != e.Event || e2.Info != e.Info {
			t.Fatalf("reparse of %q: %+v, %v", line, e2, err)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	line := "dmp Mon Nov 23 12:00:03 UTC 2026 /vs1/vol1/(7) Snapshot (snapshot_for_backup.7, Mon Nov 23 11:59:58 UTC 2026)"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}
