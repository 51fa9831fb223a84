package eventlog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// TestOperationLogLines: with Options.Logger, the Start, End and Abort of
// backups and restores also go to the daemon's log, even with the event log
// turned off (issue 17 item 4); other events do not.
func TestOperationLogLines(t *testing.T) {
	var buf bytes.Buffer
	l, err := Open(t.TempDir(), Options{Disabled: true, Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := l.Dump("/vs1/vol1/", 42)
	for _, err := range []error{d.Start(0, KindNDMP), d.PhaseChange("I"), d.End(3 << 20)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	r := l.Restore("/vs1/vol2")
	for _, err := range []error{r.Start(0, KindNDMP), r.TapeOpen("nrst0l"), r.Abort(2, 4096)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec struct{ Msg, Level, ID, Info string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got = append(got, rec.Level+" "+rec.Msg+" "+rec.ID+" "+rec.Info)
	}
	want := []string{
		"INFO backup started /vs1/vol1/(42) level 0, NDMP",
		"INFO backup ended /vs1/vol1/(42) 3072 KB",
		"INFO restore started /vs1/vol2 level 0, NDMP",
		"WARN restore aborted /vs1/vol2 2 files, 4 KB",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
