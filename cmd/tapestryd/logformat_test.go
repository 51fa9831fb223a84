package main

import (
	"encoding/json"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestLogFormatJSON: with --log-format json every line the daemon logs is
// one JSON object, and it logs the NDMP address it listens on, which
// answers (issue 17 item 4).
func TestLogFormatJSON(t *testing.T) {
	bin := buildDaemon(t)
	p := startDaemon(t, bin, t.TempDir()+"/d", "--log-format", "json")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.log())
	}
	var msgs []string
	var addr string
	for _, l := range strings.Split(strings.TrimSpace(p.log()), "\n") {
		var rec struct {
			Msg     string `json:"msg"`
			Addr    string `json:"addr"`
			Version string `json:"version"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		msgs = append(msgs, rec.Msg)
		if rec.Msg == "NDMP listening" {
			addr = rec.Addr
		}
		if rec.Msg == "tapestryd started" && rec.Version != "9.9.9-test" {
			t.Errorf("started with version %q", rec.Version)
		}
	}
	if ap, err := net.ResolveTCPAddr("tcp", addr); err != nil || ap.Port == 0 || !ap.IP.IsLoopback() {
		t.Fatalf("NDMP listening addr %q (%v); messages %q", addr, err, msgs)
	}
	for _, want := range []string{"tapestryd started", "tapestryd stopped"} {
		if !strings.Contains(strings.Join(msgs, "\n"), want) {
			t.Errorf("no %q in %q", want, msgs)
		}
	}
	out, err := exec.Command(bin, "--data-dir", t.TempDir(), "--log-format", "xml").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `log format "xml" is not text or json`) {
		t.Fatalf("--log-format xml: %v %s", err, out)
	}
}

// TestManPage: tapestryd --man-page prints tapestryd(8) with every flag.
func TestManPage(t *testing.T) {
	out, err := exec.Command(buildDaemon(t), "--man-page").CombinedOutput()
	if err != nil {
		t.Fatalf("--man-page: %v %s", err, out)
	}
	for _, want := range []string{".TH TAPESTRYD 8", `\-\-data\-dir`, `\-\-log\-format`, `\-\-ndmp\-listen`, "Tapestry 9.9.9\\-test"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("man page lacks %q", want)
		}
	}
}
