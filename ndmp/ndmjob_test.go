package ndmp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

const ndmjobPath = "/usr/lib/amanda/ndmjob"

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startNdmjobDaemon runs NDMJOB as an NDMP server (with its simulated tape)
// and returns its address. It stops when the test ends.
func startNdmjobDaemon(t *testing.T) string {
	t.Helper()
	ndmjob := testutil.RequireTool(t, ndmjobPath)
	port := freePort(t)
	cmd := exec.Command(ndmjob, "-o", "test-daemon", "-p", strconv.Itoa(port))
	cmd.Dir = t.TempDir()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // test-daemon exits when stdin closes
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("ndmjob output:\n%s", out.String())
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(hangGuard)
	for {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			nc.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("ndmjob daemon not listening on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClientAgainstNdmjob drives NDMJOB's NDMP server (Amanda's ndmjob in
// daemon mode) with Client: a real, independent NDMP v4 implementation
// checks our encodings, record marking and MD5 digest (N1, N3).
func TestClientAgainstNdmjob(t *testing.T) {
	addr := startNdmjobDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, &ClientConfig{Conn: Config{FragmentSize: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	si, err := c.GetServerInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if si.VendorName == "" || !containsAuth(si.AuthType, AuthMD5) {
		t.Fatalf("server info %+v", si)
	}
	if err := c.AuthMD5(ctx, "ndmp", "ndmp"); err != nil {
		t.Fatalf("MD5 auth with ndmjob: %v", err)
	}
	hi, err := c.GetHostInfo(ctx)
	if err != nil || hi.OSType == "" {
		t.Fatalf("host info %+v %v", hi, err)
	}
	types, err := c.GetConnectionType(ctx)
	if err != nil || len(types) == 0 {
		t.Fatalf("connection types %v %v", types, err)
	}

	// Tape: write three records and a filemark on NDMJOB's simulated tape,
	// rewind, read them back.
	tape := filepath.Join(t.TempDir(), "tape0")
	if err := os.WriteFile(tape, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.TapeOpen(ctx, tape, TapeRDWRMode); err != nil {
		t.Fatalf("TapeOpen: %v", err)
	}
	var recs [][]byte
	for i := range 3 {
		rec := bytes.Repeat([]byte{byte('a' + i)}, 10240+1000*i) // crosses many 1000-byte fragments
		recs = append(recs, rec)
		if n, err := c.TapeWrite(ctx, rec); err != nil || int(n) != len(rec) {
			t.Fatalf("TapeWrite %d: %d %v", i, n, err)
		}
	}
	if _, err := c.TapeMTIO(ctx, MTIOEOF, 1); err != nil {
		t.Fatalf("MTIO EOF: %v", err)
	}
	st, err := c.TapeGetState(ctx)
	if err != nil || st.FileNum != 1 {
		t.Fatalf("state after filemark: %+v %v", st, err)
	}
	if _, err := c.TapeMTIO(ctx, MTIOREW, 1); err != nil {
		t.Fatalf("MTIO REW: %v", err)
	}
	for i, want := range recs {
		got, err := c.TapeRead(ctx, 65536)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("TapeRead %d: %d bytes, %v", i, len(got), err)
		}
	}
	if _, err := c.TapeRead(ctx, 65536); !errors.Is(err, ErrEOF) {
		t.Fatalf("read at filemark: %v, want NDMP_EOF_ERR", err)
	}
	if err := c.TapeOpen(ctx, tape, TapeReadMode); !errors.Is(err, ErrDeviceOpened) {
		t.Fatalf("second TapeOpen: %v, want NDMP_DEVICE_OPENED_ERR", err)
	}
	if err := c.TapeClose(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.TapeClose(ctx); !errors.Is(err, ErrDevNotOpen) {
		t.Fatalf("TapeClose without open: %v", err)
	}

	ms, err := c.MoverGetState(ctx)
	if err != nil || ms.State != MoverStateIdle {
		t.Fatalf("mover state %+v %v", ms, err)
	}
	if err := c.MoverStop(ctx); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("MoverStop in IDLE: %v", err)
	}
	ds, err := c.DataGetState(ctx)
	if err != nil || ds.State != DataStateIdle {
		t.Fatalf("data state %+v %v", ds, err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func containsAuth(list []AuthType, a AuthType) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// TestClientAgainstNdmjobBadPassword checks that ndmjob rejects a wrong
// MD5 digest, so the positive test above means something.
func TestClientAgainstNdmjobBadPassword(t *testing.T) {
	addr := startNdmjobDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	err = c.AuthMD5(ctx, "ndmp", "not-the-password")
	if !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestNdmjobQueriesToyServer runs ndmjob as the DMA ("ndmjob -q", MD5
// login) against a toy server built on Conn, so an independent NDMP v4
// implementation decodes our replies: host, server, connection type,
// backup type, file system and tape information (N1, N3, N9).
func TestNdmjobQueriesToyServer(t *testing.T) {
	ndmjob := testutil.RequireTool(t, ndmjobPath)
	srv := &toyServer{t: t, user: "backup", pw: "pw", greeting: NotifyConnectionStatusPost{Reason: Connected, ProtocolVersion: 4}}
	addr := srv.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	agent := addr + "/4m,backup,pw"
	out, err := exec.CommandContext(ctx, ndmjob, "-q", "-D", agent, "-T", agent).CombinedOutput()
	if err != nil {
		t.Fatalf("ndmjob -q: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		`hostname   toy`,
		`hostid     42`,
		`auths      (2)  NDMP4_AUTH_TEXT NDMP4_AUTH_MD5`,
		`addr_types (3)  NDMP4_ADDR_LOCAL NDMP4_ADDR_TCP ?0x20510004?`,
		`Backup type info of dump format`,
		`attrs      0x220`,
		`set        HIST=n`,
		`File system /vs1/vol1`,
		`space      1073741824 total, 1048576 used, 1072693248 avail`,
		`inodes     1000 total, 10 used`,
		`Tape Agent 127.0.0.1 NDMPv4`,
		`tape VTL LTO-8`,
		`device     nrst0a`,
		`set        EXECUTE_CDB=t`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("ndmjob output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("ndmjob output:\n%s", text)
	}
}
