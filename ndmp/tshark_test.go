package ndmp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// TestTsharkDecodesSession captures a loopback session between Client and a
// toy server on a non-standard port and checks that Wireshark's NDMP
// dissector decodes every message without a "Malformed" mark (N1).
//
// Wireshark's NDMP dissector (4.0) accepts only TCP port 10000, whatever
// "-d tcp.port==N,ndmp" says, so the test captures in pcap format and
// rewrites the server port of the capture to 10000 before decoding it.
func TestTsharkDecodesSession(t *testing.T) {
	tshark := testutil.RequireTool(t, "tshark")
	testutil.RequireRoot(t)

	srv := &toyServer{t: t, user: "backup", pw: "pw", greeting: NotifyConnectionStatusPost{Reason: Connected, ProtocolVersion: 4}}
	addr := srv.start()
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)

	pcap := filepath.Join(t.TempDir(), "ndmp.pcap")
	if p := os.Getenv("NDMP_TSHARK_PCAP"); p != "" {
		pcap = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Knocks (connections that tell when the capture has reached the file)
	// go to a listener of their own, so they add no NDMP message.
	knock, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer knock.Close()
	_, knockPort, _ := net.SplitHostPort(knock.Addr().String())
	capture := exec.CommandContext(ctx, tshark, "-i", "lo", "-f", "tcp port "+portStr+" or tcp port "+knockPort, "-F", "pcap", "-w", pcap)
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
		sent := false
		for sc.Scan() {
			if !sent && strings.Contains(sc.Text(), "Capturing on") {
				ready <- true
				sent = true
			}
		}
		if !sent {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("tshark exited before capturing")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tshark did not start capturing")
	}
	// "Capturing on" can come before packets are really captured.
	testutil.KnockUntilCaptured(t, knock.Addr().String(), pcap)

	c, err := Dial(ctx, "127.0.0.1:"+strconv.Itoa(port), nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { return c.Connect(ctx) },
		func() error { return c.AuthMD5(ctx, "backup", "pw") },
		func() error { _, err := c.GetHostInfo(ctx); return err },
		func() error { return c.TapeOpen(ctx, "nrst0a", TapeRDWRMode) },
		func() error { _, err := c.TapeMTIO(ctx, MTIOREW, 1); return err },
		func() error { _, err := c.TapeWrite(ctx, make([]byte, 10000)); return err },
		func() error { return c.DataStartBackup(ctx, "dump", []Pval{{"FILESYSTEM", "/vs1/vol1"}}) },
		func() error { return c.Close(ctx) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	testutil.KnockUntilCaptured(t, knock.Addr().String(), pcap) // the jobs' packets are in the file
	_ = capture.Process.Signal(syscall.SIGINT)
	_ = capture.Wait()

	raw, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	n, err := rewritePcapPorts(raw, uint16(port), DefaultPort)
	if err != nil || n == 0 {
		t.Fatalf("rewrite capture: %d packets, %v", n, err)
	}
	pcap10000 := pcap + ".10000"
	if err := os.WriteFile(pcap10000, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tshark, "-r", pcap10000, "-d", "tcp.port==10000,ndmp", "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -r: %v\n%s", err, out)
	}
	text := string(out)
	if strings.Contains(text, "Malformed") {
		t.Fatalf("tshark reports malformed packets:\n%s", text)
	}
	for _, name := range []string{"CONNECT_OPEN", "NOTIFY_CONNECTED", "CONFIG_GET_AUTH_ATTR", "CONNECT_CLIENT_AUTH",
		"CONFIG_GET_HOST_INFO", "TAPE_OPEN", "TAPE_MTIO", "TAPE_WRITE", "DATA_START_BACKUP", "LOG_MESSAGE", "FH_ADD_FILE", "CONNECT_CLOSE"} {
		if !strings.Contains(text, name) {
			t.Errorf("tshark output lacks %s", name)
		}
	}
	// Greeting, 8 calls with replies, CONNECT_CLOSE and two posts.
	if n := strings.Count(text, "NDMP Header"); n != 20 {
		t.Errorf("tshark decoded %d NDMP messages, want 20", n)
	}
	if t.Failed() {
		t.Logf("tshark output:\n%s", text)
	}
}

// rewritePcapPorts replaces the TCP port from by to in every IPv4 packet of
// a libpcap capture with Ethernet framing (as Linux captures lo), in place.
// It returns the number of packets changed.
func rewritePcapPorts(b []byte, from, to uint16) (int, error) {
	if len(b) < 24 {
		return 0, errors.New("pcap: short file")
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	default:
		bo = binary.BigEndian
	}
	if lt := bo.Uint32(b[20:]); lt != 1 {
		return 0, fmt.Errorf("pcap: link type %d, want Ethernet", lt)
	}
	changed := 0
	for off := 24; off+16 <= len(b); {
		incl := int(bo.Uint32(b[off+8:]))
		pkt := b[off+16:]
		if incl > len(pkt) {
			return changed, errors.New("pcap: truncated packet")
		}
		pkt = pkt[:incl]
		off += 16 + incl
		if len(pkt) < 14+20 || binary.BigEndian.Uint16(pkt[12:]) != 0x0800 {
			continue
		}
		ip := pkt[14:]
		ihl := int(ip[0]&0x0f) * 4
		if ip[9] != 6 || len(ip) < ihl+4 {
			continue
		}
		tcp := ip[ihl:]
		for _, p := range []int{0, 2} {
			if binary.BigEndian.Uint16(tcp[p:]) == from {
				binary.BigEndian.PutUint16(tcp[p:], to)
				changed++
			}
		}
	}
	return changed, nil
}
