package server

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// Wireshark's NDMP dissector decodes a whole ndmjob backup session with
// the server (control connection on port 10000 of 127.0.0.9) without a
// malformed packet: the server's replies and posts are well-formed NDMP v4.
func TestTsharkDecodesServerSession(t *testing.T) {
	t.Parallel()
	tshark := testutil.RequireTool(t, "tshark")
	testutil.RequireTool(t, ndmjobPath)
	testutil.RequireRoot(t)
	f := newFixture(t, fixtureOpts{before: withVolumes, lifHost: "127.0.0.9", lifPort: 10000})
	populate(t, filepath.Join(f.dir, "vols", "vol1"))
	pcap := filepath.Join(t.TempDir(), "server.pcap")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	capture := exec.CommandContext(ctx, tshark, "-i", "lo", "-f", "host 127.0.0.9 and tcp port 10000", "-F", "pcap", "-w", pcap)
	stderr, err := capture.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = capture.Process.Kill(); _ = capture.Wait() }()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Capturing on") {
				ready <- true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(hangGuard):
		t.Fatal("tshark did not start capturing")
	}
	// "Capturing on" can come before packets are really captured: knock
	// until the capture file holds a knock.
	testutil.KnockUntilCaptured(t, f.addr, pcap)
	a := f.agent("m")
	out, err := runNdmjob(t, "-v", "-c", "-D", a, "-B", "dump", "-C", "/vs1/vol1", "-f", "nrst0l", "-I", filepath.Join(t.TempDir(), "idx"))
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("ndmjob -c: %v\n%s", err, out)
	}
	out, err = runNdmjob(t, "-v", "-x", "-D", a, "-B", "dump", "-C", "/vs1/vol2", "-f", "nrst0l")
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("ndmjob -x: %v\n%s", err, out)
	}
	// Packets are written in order: once a knock after the jobs is in the
	// file, so is every packet of the jobs.
	testutil.KnockUntilCaptured(t, f.addr, pcap)
	_ = capture.Process.Signal(syscall.SIGINT)
	_ = capture.Wait()
	if fi, err := os.Stat(pcap); err != nil || fi.Size() == 0 {
		t.Fatalf("capture file: %v", err)
	}
	raw, err := exec.Command(tshark, "-r", pcap, "-d", "tcp.port==10000,ndmp", "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -r: %v\n%s", err, raw)
	}
	text := string(raw)
	if strings.Contains(text, "Malformed") {
		t.Fatalf("tshark reports malformed packets:\n%s", text)
	}
	for _, name := range []string{"NOTIFY_CONNECTED", "CONNECT_OPEN", "CONFIG_GET_AUTH_ATTR", "CONNECT_CLIENT_AUTH",
		"TAPE_OPEN", "MOVER_LISTEN", "DATA_CONNECT", "DATA_START_BACKUP", "FH_ADD_DIR", "FH_ADD_NODE",
		"NOTIFY_DATA_HALTED", "NOTIFY_MOVER_HALTED", "DATA_GET_ENV", "DATA_START_RECOVER", "NOTIFY_DATA_READ",
		"MOVER_READ", "LOG_FILE", "LOG_MESSAGE"} {
		if !strings.Contains(text, name) {
			t.Errorf("tshark output lacks %s", name)
		}
	}
	t.Logf("tshark decoded %d NDMP messages", strings.Count(text, "NDMP Header"))
}
