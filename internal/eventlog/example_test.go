package eventlog_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
)

// exampleSession writes a level 1 dump, a restore and a turn of
// backup.log.enable off and on, with a clock that ticks one second per
// event (Open reads it once more). docs/eventlog.md shows its output (see TestDocExamples).
func exampleSession(dir string) error {
	now := time.Date(2026, time.November, 23, 1, 59, 59, 0, time.UTC) // Open reads the clock once
	tick := func() time.Time { now = now.Add(time.Second); return now }
	l, err := eventlog.Open(dir, eventlog.Options{Now: tick, Location: time.UTC})
	if err != nil {
		return err
	}
	defer l.Close()

	d := l.Dump("/vs1/vol1/", 42)
	d.Start(1, eventlog.KindNDMP)
	d.Options(
		eventlog.Option{Name: "FILESYSTEM", Value: "/vs1/vol1"},
		eventlog.Option{Name: "LEVEL", Value: "1"},
		eventlog.Option{Name: "HIST", Value: "y"},
		eventlog.Option{Name: "UPDATE", Value: "y"},
	)
	d.Snapshot("snapshot_for_backup.42", time.Date(2026, time.November, 23, 2, 0, 2, 0, time.UTC))
	d.BaseDump(0, time.Date(2026, time.November, 16, 2, 0, 0, 0, time.UTC))
	d.TapeOpen("nrst0a")
	for _, phase := range []string{"I", "II", "III", "IV", "V"} {
		d.PhaseChange(phase)
	}
	d.TapeClose("nrst0a")
	d.End(734_003_200)

	r := l.Restore("/vs1/vol2/restored")
	r.Start(0, eventlog.KindNDMP)
	r.Options(eventlog.Option{Name: "DIRECT", Value: "n"}, eventlog.Option{Name: "HIST", Value: "y"})
	r.TapeOpen("nrst0a")
	r.PhaseChange("III")
	r.Error("cannot create ./docs/a.txt: no space left on volume")
	r.TapeClose("nrst0a")
	r.Abort(1234, 52_428_800)

	l.SetEnabled(false)
	l.Dump("/vs1/vol1/", 43).Start(0, eventlog.KindNDMP) // not logged
	return l.SetEnabled(true)
}

// Example shows the lines of a dump and a restore.
func Example() {
	dir, err := os.MkdirTemp("", "eventlog")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	if err := exampleSession(dir); err != nil {
		fmt.Println(err)
		return
	}
	lines, err := eventlog.Tail(dir, "backup", 100)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, line := range lines {
		fmt.Println(line)
	}
	// Output:
	// log Mon Nov 23 02:00:01 UTC 2026 Start_Logging
	// dmp Mon Nov 23 02:00:02 UTC 2026 /vs1/vol1/(42) Start (level 1, NDMP)
	// dmp Mon Nov 23 02:00:03 UTC 2026 /vs1/vol1/(42) Options (FILESYSTEM=/vs1/vol1, LEVEL=1, HIST=y, UPDATE=y)
	// dmp Mon Nov 23 02:00:04 UTC 2026 /vs1/vol1/(42) Snapshot (snapshot_for_backup.42, Mon Nov 23 02:00:02 UTC 2026)
	// dmp Mon Nov 23 02:00:05 UTC 2026 /vs1/vol1/(42) Base_dump (level 0, Mon Nov 16 02:00:00 UTC 2026)
	// dmp Mon Nov 23 02:00:06 UTC 2026 /vs1/vol1/(42) Tape_open (nrst0a)
	// dmp Mon Nov 23 02:00:07 UTC 2026 /vs1/vol1/(42) Phase-change (I)
	// dmp Mon Nov 23 02:00:08 UTC 2026 /vs1/vol1/(42) Phase-change (II)
	// dmp Mon Nov 23 02:00:09 UTC 2026 /vs1/vol1/(42) Phase-change (III)
	// dmp Mon Nov 23 02:00:10 UTC 2026 /vs1/vol1/(42) Phase-change (IV)
	// dmp Mon Nov 23 02:00:11 UTC 2026 /vs1/vol1/(42) Phase-change (V)
	// dmp Mon Nov 23 02:00:12 UTC 2026 /vs1/vol1/(42) Tape_close (nrst0a)
	// dmp Mon Nov 23 02:00:13 UTC 2026 /vs1/vol1/(42) End (716800 KB)
	// rst Mon Nov 23 02:00:14 UTC 2026 /vs1/vol2/restored Start (level 0, NDMP)
	// rst Mon Nov 23 02:00:15 UTC 2026 /vs1/vol2/restored Options (DIRECT=n, HIST=y)
	// rst Mon Nov 23 02:00:16 UTC 2026 /vs1/vol2/restored Tape_open (nrst0a)
	// rst Mon Nov 23 02:00:17 UTC 2026 /vs1/vol2/restored Phase-change (III)
	// rst Mon Nov 23 02:00:18 UTC 2026 /vs1/vol2/restored Error (cannot create ./docs/a.txt: no space left on volume)
	// rst Mon Nov 23 02:00:19 UTC 2026 /vs1/vol2/restored Tape_close (nrst0a)
	// rst Mon Nov 23 02:00:20 UTC 2026 /vs1/vol2/restored Abort (1234 files, 51200 KB)
	// log Mon Nov 23 02:00:21 UTC 2026 Stop_Logging
	// log Mon Nov 23 02:00:22 UTC 2026 Start_Logging
}

// ExampleParse splits a line into its fields.
func ExampleParse() {
	e, err := eventlog.Parse("dmp Mon Nov 23 02:00:13 UTC 2026 /vs1/vol1/(42) End (716800 KB)")
	if err != nil {
		fmt.Println(err)
		return
	}
	path, id, _ := eventlog.SplitDumpIdentifier(e.Identifier)
	fmt.Printf("type=%s time=%s path=%s id=%d event=%s info=%q\n", e.Type, e.Time.Format(time.RFC3339), path, id, e.Event, e.Info)
	// Output:
	// type=dmp time=2026-11-23T02:00:13Z path=/vs1/vol1/ id=42 event=End info="716800 KB"
}

// TestDocExamples checks that the example in docs/eventlog.md is the
// output of exampleSession and that every log line in the document parses.
func TestDocExamples(t *testing.T) {
	dir := t.TempDir()
	if err := exampleSession(dir); err != nil {
		t.Fatal(err)
	}
	out, err := eventlog.Read(dir, "backup")
	if err != nil {
		t.Fatal(err)
	}
	block := "<!-- example:begin -->\n```text\n" + string(out) + "```\n<!-- example:end -->"
	const docPath = "../../docs/eventlog.md"
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- example:begin -->.*<!-- example:end -->")
	if os.Getenv("EVENTLOG_UPDATE_DOCS") == "1" {
		doc = re.ReplaceAllLiteral(doc, []byte(block))
		if err := os.WriteFile(docPath, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := re.Find(doc); string(got) != block {
		t.Fatalf("docs/eventlog.md example is out of date; got\n%s\nwant\n%s", got, block)
	}
	n := 0
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "log ") || strings.HasPrefix(line, "dmp ") || strings.HasPrefix(line, "rst ") {
			n++
			if _, err := eventlog.Parse(line); err != nil {
				t.Errorf("docs/eventlog.md: %v", err)
			}
		}
	}
	if n < 20 {
		t.Errorf("docs/eventlog.md has only %d log lines", n)
	}
}
