package engine

import (
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
)

// The event log implements the event interfaces engines report through.
var (
	_ BackupEvents  = (*eventlog.DumpLog)(nil)
	_ RestoreEvents = (*eventlog.RestoreLog)(nil)
)

// TestPhaseString (D3, M1): backup phases are named I to V in the event
// log; other stages by their number.
func TestPhaseString(t *testing.T) {
	for p, want := range map[Phase]string{1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "6", 0: "0", -1: "-1"} {
		if got := p.String(); got != want {
			t.Errorf("Phase(%d) = %q, want %q", int(p), got, want)
		}
	}
}
