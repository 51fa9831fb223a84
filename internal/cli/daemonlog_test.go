package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// logLine is one line of the daemon's JSON log.
type logLine struct {
	Msg   string `json:"msg"`
	Level string `json:"level"`
	ID    string `json:"id"`
	Info  string `json:"info"`
	Addr  string `json:"addr"`
}

// logLines parses the daemon's JSON log; a line that is not JSON fails the
// test.
func (n *testNode) logLines() []logLine {
	n.t.Helper()
	var res []logLine
	for _, l := range strings.Split(strings.TrimSpace(n.logs.String()), "\n") {
		var ll logLine
		if err := json.Unmarshal([]byte(l), &ll); err != nil {
			n.t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		res = append(res, ll)
	}
	return res
}

// TestDaemonLogsBackupsAndRestores checks that the daemon's log has a line
// when each backup and restore starts and ends, and the NDMP address it
// listens on (issue 17 item 4).
func TestDaemonLogsBackupsAndRestores(t *testing.T) {
	n := startNode(t)
	src, dst := filepath.Join(t.TempDir(), "vol1"), filepath.Join(t.TempDir(), "vol2")
	for _, d := range []string{src, dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "f.txt"), []byte(strings.Repeat("x", 10000)), 0o644); err != nil {
		t.Fatal(err)
	}
	n.ok("vserver", "create", "-vserver", "vs1")
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "vol1", "-path", src, "-snapshot-provider", "copy")
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "vol2", "-path", dst, "-snapshot-provider", "copy")
	out := n.ok("vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", "admin")
	_, pw, _ := strings.Cut(out, "Password: ")
	common := []string{"-ndmp-server", n.ndmpAddr(), "-user", "admin", "-password", strings.TrimSpace(pw), "-device", "nrst0l"}
	n.ok(append([]string{"ndmp", "backup", "-path", "/vs1/vol1", "-level", "0", "-tape-file", "0"}, common...)...)
	n.ok(append([]string{"ndmp", "restore", "-tape-file", "0", "-path", "/vs1/vol2"}, common...)...)

	var got []string
	listening := false
	for _, l := range n.logLines() {
		switch {
		case strings.HasPrefix(l.Msg, "backup ") && strings.HasPrefix(l.ID, "/vs1/vol1/"),
			strings.HasPrefix(l.Msg, "restore ") && l.ID == "/vs1/vol2":
			got = append(got, l.Msg)
		case l.Msg == "NDMP listening" && l.Addr == n.ndmpListen:
			listening = true
		}
	}
	want := []string{"backup started", "backup ended", "restore started", "restore ended"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("backup and restore log lines %q, want %q\nlog:\n%s", got, want, n.logs.String())
	}
	if !listening {
		t.Errorf("no \"NDMP listening\" line with addr %s in the log:\n%s", n.ndmpListen, n.logs.String())
	}
}
