package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain runs main itself when the test binary is started as ndmpcopy.
func TestMain(m *testing.M) {
	if os.Getenv("NDMPCOPY_RUN_MAIN") == "1" {
		os.Args = append([]string{"ndmpcopy"}, os.Args[1:]...)
		main()
		return
	}
	os.Exit(m.Run())
}

// run starts this test binary as ndmpcopy and returns its exit status and
// output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "NDMPCOPY_RUN_MAIN=1")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatal(err)
	return 0, "", ""
}

// C2: the process exit statuses of the binary.
func TestExitStatusC2(t *testing.T) {
	code, out, _ := run(t, "-h")
	if code != 0 || !strings.Contains(out, "usage: ndmpcopy") || !strings.Contains(out, "-mcs {inet|inet6}") {
		t.Errorf("-h: exit %d, %q", code, out)
	}
	code, _, errOut := run(t, "-sa", "a:b", "-da", "a:b", "-st", "md5", "2001:db8::1:/vs1/vol1", "h:/vs2/vol2")
	if code != 2 || !strings.Contains(errOut, "square brackets") {
		t.Errorf("unbracketed IPv6: exit %d, %q", code, errOut)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, _, errOut = run(t, "-sa", "a:b", "-da", "a:b", "-st", "md5", addr+":/vs1/vol1", addr+":/vs2/vol2")
	if code != 3 || !strings.Contains(errOut, "ndmpcopy: cannot reach the source "+addr) {
		t.Errorf("unreachable: exit %d, %q", code, errOut)
	}
}
