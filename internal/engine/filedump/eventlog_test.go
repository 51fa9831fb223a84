package filedump

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
)

var (
	_ DumpEvents    = (*eventlog.DumpLog)(nil)
	_ RestoreEvents = (*eventlog.RestoreLog)(nil)
)

// TestEventLog (M1): a backup and a restore write their dmp and rst lines to
// the real backup event log.
func TestEventLog(t *testing.T) {
	f := newStorage(t)
	logDir := t.TempDir()
	lg, err := eventlog.Open(logDir, eventlog.Options{})
	must(t, err)
	defer lg.Close()
	var img bytes.Buffer
	_, err = Backup(context.Background(), BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Output: &img, Log: lg.Dump("/vs1/vol1", 7)})
	must(t, err)
	dest := t.TempDir()
	_, err = Restore(context.Background(), RestoreRequest{Input: &img, Dest: dest, Env: Env{"FORCE": "Y"}, Log: lg.Restore(dest)})
	must(t, err)
	lines, err := lg.Tail(100)
	must(t, err)
	var got []string
	for _, l := range lines {
		e, err := eventlog.Parse(l)
		must(t, err)
		if e.Type != eventlog.TypeLog {
			got = append(got, string(e.Type)+" "+string(e.Event)+" "+e.Info)
		}
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"dmp Start level 0, NDMP", "dmp Snapshot snapshot_for_backup.0", "dmp Phase-change IV", "dmp End", "rst Start level 0, NDMP", "rst Phase-change I", "rst Phase-change III", "rst Phase-change IV", "rst End"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in\n%s", want, all)
		}
	}
}
