package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tapestry-ndmp/tapestry/internal/daemon"
	"github.com/tapestry-ndmp/tapestry/internal/dma"
)

// scrape gets /metrics from the node's HTTP listener (as admin unless
// anonymous) and parses it with the Prometheus text parser into
// "name,label=value,..." keys.
func scrape(t *testing.T, n *node, anonymous bool) (map[string]float64, int) {
	t.Helper()
	if anonymous {
		return scrapeAs(t, n, "", "")
	}
	return scrapeAs(t, n, "admin", adminPassword)
}

// scrapeAs scrapes as user (none when empty).
func scrapeAs(t *testing.T, n *node, user, password string) (map[string]float64, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := n.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return map[string]float64{"body: " + string(b): 0}, resp.StatusCode
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[strings.Replace(key, name, name+"_count", 1)] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out, resp.StatusCode
}

func (n *node) backupJob(device string) dma.Job {
	return dma.Job{Addr: n.d.NDMPListen(), User: "admin", Password: n.ndmpPassword(), Device: device,
		FileSystem: "/vs1/vol1", TapeFile: -1}
}

// Issue 17 item 2 (acceptance): after a backup of known size, a scrape of
// /metrics on the HTTP listener, parsed with the Prometheus text parser,
// shows exactly that many bytes, counted where they moved; the backup is
// counted by outcome with its duration and its volume's last success.
// Then a second, tiny backup session, scraped at once after it ends (far
// sooner than the daemon's one-second sampling: the old sampled counters
// missed such a session), adds exactly its bytes too.
func TestMetricsExactBytesAfterBackup(t *testing.T) {
	n := startNode(t, daemon.Config{})
	n.ok("vserver", "create", "-vserver", "vs1")
	n.volume("vol1", 5, 300_000)
	m, code := scrape(t, n, false)
	if code != http.StatusOK || m["tapestry_ndmp_data_bytes_total"] != 0 {
		t.Fatalf("before any backup: HTTP %d, data bytes %v", code, m["tapestry_ndmp_data_bytes_total"])
	}
	ctx := context.Background()
	before := time.Now()
	r, err := dma.Backup(ctx, n.backupJob("nrst0l"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Bytes < 1_500_000 {
		t.Fatalf("backup of 1.5 MB carried %d bytes", r.Bytes)
	}
	m, _ = scrape(t, n, false)
	want := float64(r.Bytes)
	for k, v := range map[string]float64{
		"tapestry_ndmp_data_bytes_total":                                                  want,
		"tapestry_ndmp_mover_bytes_total":                                                 want,
		"tapestry_ndmp_operation_bytes_total,operation=backup":                            want,
		"tapestry_ndmp_operations_total,operation=backup,outcome=success":                 1,
		"tapestry_ndmp_operations_total,operation=backup,outcome=failed":                  0,
		"tapestry_ndmp_operation_duration_seconds_count,operation=backup,outcome=success": 1,
		"tapestry_tape_device_online,device=st0,type=tape drive":                          1,
	} {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	last := m["tapestry_backup_last_success_timestamp_seconds,volume=vol1,vserver=vs1"]
	if last < float64(before.Unix()) || last > float64(time.Now().Unix()+1) {
		t.Errorf("last success of vs1/vol1 = %v, want between %d and now", last, before.Unix())
	}
	if m["tapestry_volume_snapshots,volume=vol1,vserver=vs1"] != 0 {
		t.Errorf("snapshot of the backup left behind: %v", m["tapestry_volume_snapshots,volume=vol1,vserver=vs1"])
	}

	// A tiny backup: one small file.
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "tiny", "-path", t.TempDir(), "-snapshot-provider", "copy")
	job := n.backupJob("nrst1l")
	job.FileSystem = "/vs1/tiny"
	start := time.Now()
	r2, err := dma.Backup(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	m, _ = scrape(t, n, false)
	t.Logf("tiny backup session: %d bytes in %v, scraped %v after its end", r2.Bytes, took, time.Since(start)-took)
	if got := m["tapestry_ndmp_data_bytes_total"]; got != want+float64(r2.Bytes) {
		t.Errorf("data bytes after the tiny backup = %v, want %v + %d", got, want, r2.Bytes)
	}
	if got := m["tapestry_ndmp_operations_total,operation=backup,outcome=success"]; got != 2 {
		t.Errorf("successful backups = %v, want 2", got)
	}
}

// Issue 17 item 2: /metrics on the HTTP listener needs a user whose role
// may read statistics, unless the daemon was told metrics-no-auth.
func TestMetricsAuthentication(t *testing.T) {
	n := startNode(t, daemon.Config{})
	if _, code := scrape(t, n, true); code != http.StatusUnauthorized {
		t.Fatalf("anonymous scrape: HTTP %d, want 401", code)
	}
	if _, code := scrapeAs(t, n, "admin", "wrong-password1"); code != http.StatusUnauthorized {
		t.Fatalf("scrape with a wrong password: HTTP %d, want 401", code)
	}
	n.ok("security", "login", "role", "create", "-role", "volonly", "-cmddirname", "volume", "-access", "all")
	n.ok("security", "login", "create", "-user-or-group-name", "nostats", "-role", "volonly", "-password", "Nostats123")
	if _, code := scrapeAs(t, n, "nostats", "Nostats123"); code != http.StatusForbidden {
		t.Fatalf("scrape by a role without statistics: HTTP %d, want 403", code)
	}
	n.ok("security", "login", "create", "-user-or-group-name", "viewer", "-role", "readonly", "-password", "Viewer123")
	if _, code := scrapeAs(t, n, "viewer", "Viewer123"); code != http.StatusOK {
		t.Fatalf("scrape by a readonly user: HTTP %d, want 200", code)
	}
	open := startNode(t, daemon.Config{MetricsNoAuth: true})
	m, code := scrape(t, open, true)
	if code != http.StatusOK || m["tapestry_ndmp_data_bytes_total"] != 0 {
		t.Fatalf("anonymous scrape with metrics-no-auth: HTTP %d %v", code, fmt.Sprint(len(m)))
	}
}
