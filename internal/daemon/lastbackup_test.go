package daemon

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Issue 17 item 2: the time of a volume's last successful backup survives
// a restart: the daemon reads it from the backup event log when it
// starts. A dump with an Error line is no success; the latest End wins.
func TestLastBackupFromEventLog(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, LogDir), 0o755); err != nil {
		t.Fatal(err)
	}
	log := strings.Join([]string{
		"dmp Mon Dec 7 06:00:00 UTC 2026 /vs1/vol1/(1) Start (level 0, NDMP)",
		"dmp Mon Dec 7 06:00:09 UTC 2026 /vs1/vol1/(1) End (2760 KB)",
		"dmp Mon Dec 7 07:00:00 UTC 2026 /vs1/vol1/dir/(2) Start (level 1, NDMP)",
		"dmp Mon Dec 7 07:00:05 UTC 2026 /vs1/vol1/dir/(2) End (12 KB)",
		"dmp Mon Dec 7 08:00:00 UTC 2026 /vs1/vol2/(3) Start (level 0, NDMP)",
		"dmp Mon Dec 7 08:00:01 UTC 2026 /vs1/vol2/(3) Error (no space left on device)",
		"dmp Mon Dec 7 08:00:02 UTC 2026 /vs1/vol2/(3) End (0 KB)",
		"rst Mon Dec 7 09:00:00 UTC 2026 /vs1/vol3 Start (level 0, NDMP)",
		"rst Mon Dec 7 09:00:01 UTC 2026 /vs1/vol3 End (1 files, 4 KB)",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, LogDir, "backup"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	r := serve(t, dir)
	rec := httptest.NewRecorder()
	r.Metrics().Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range fams["tapestry_backup_last_success_timestamp_seconds"].GetMetric() {
		key := ""
		for _, l := range m.GetLabel() {
			key += l.GetName() + "=" + l.GetValue() + " "
		}
		got[key] = m.GetGauge().GetValue()
	}
	// 07:00:05 UTC on 7 December 2026.
	want := map[string]float64{"volume=vol1 vserver=vs1 ": 1796626805}
	if len(got) != len(want) || got["volume=vol1 vserver=vs1 "] != want["volume=vol1 vserver=vs1 "] {
		t.Fatalf("last successes %v, want %v", got, want)
	}
}
