package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	knockUntilCaptured(t, f.addr, pcap)
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
	knockUntilCaptured(t, f.addr, pcap)
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

// knockUntilCaptured connects to addr again and again until the pcap file
// (Ethernet link type, IPv4) holds a packet from one of those connections.
func knockUntilCaptured(t *testing.T, addr, pcap string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	var ports []uint16
	for {
		if nc, err := net.Dial("tcp", addr); err == nil {
			ports = append(ports, uint16(nc.LocalAddr().(*net.TCPAddr).Port))
			nc.Close()
		}
		time.Sleep(100 * time.Millisecond)
		if raw, err := os.ReadFile(pcap); err == nil && pcapHasSourcePort(raw, ports) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("tshark captured none of the knocks")
		}
	}
}

// pcapHasSourcePort reports whether a TCP packet of the pcap file raw
// comes from one of ports.
func pcapHasSourcePort(raw []byte, ports []uint16) bool {
	const global, record, ether = 24, 16, 14
	for off := global; off+record <= len(raw); {
		n := int(binary.LittleEndian.Uint32(raw[off+8:]))
		pkt := raw[off+record : min(off+record+n, len(raw))]
		off += record + n
		if len(pkt) < ether+20 || pkt[12] != 0x08 || pkt[13] != 0x00 || pkt[ether+9] != 6 {
			continue // not IPv4 TCP
		}
		ip := pkt[ether:]
		ihl := int(ip[0]&0x0f) * 4
		if len(ip) < ihl+2 {
			continue
		}
		if slices.Contains(ports, binary.BigEndian.Uint16(ip[ihl:])) {
			return true
		}
	}
	return false
}
