package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/daemon"
)

// FuzzNDMPCommandArgs runs the NDMP, rdfile and nodeshell commands with
// arbitrary session ids, filters, paths, nodeshell commands and boolean
// values against a real daemon: each run ends with status 0, or 1 and an
// "Error: " line, never a panic or a hang.
func FuzzNDMPCommandArgs(f *testing.F) {
	f.Add("1", "all", "/etc/log/backup", "rdfile /etc/log/backup", "true")
	f.Add("-5", "session-id=x", "../catalog.db", "rdfile", "TRUE")
	f.Add("99999999999999999999", "", "/etc/log/backup.6", "sysconfig -a", "yes")
	f.Add("", "session-id=3", "", "", "")
	d, err := daemon.Open(context.Background(), daemon.Options{
		DataDir: filepath.Join(f.TempDir(), "d"), AdminPassword: testAdminPassword, NodeName: testNodeName,
		Config: daemon.Config{NDMPListen: "127.0.0.1:0"}, Out: &bytes.Buffer{},
	})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	f.Cleanup(func() { cancel(); <-done })
	socket := d.SocketPath()
	run := func(t *testing.T, args ...string) {
		var out, errOut bytes.Buffer
		env := Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
			return map[string]string{"TAPESTRY_SOCKET": socket, "TAPESTRY_USER": "admin", "TAPESTRY_PASSWORD": testAdminPassword}[k]
		}}
		code := Run(context.Background(), append([]string{"--privilege", "advanced"}, args...), env)
		if code != 0 && (code != 1 || !strings.HasPrefix(errOut.String(), "Error: ")) {
			t.Fatalf("tapestry %q: exit %d, stderr %q", args, code, errOut.String())
		}
	}
	f.Fuzz(func(t *testing.T, id, filter, path, command, boolean string) {
		run(t, "vserver", "services", "ndmp", "probe", "-session-id", id)
		run(t, "system", "services", "ndmp", "kill", "-session-id", id)
		run(t, "vserver", "services", "ndmp", "log", "stop", "-session-filter", filter)
		run(t, "rdfile", "--", path)
		run(t, "system", "node", "run", "-node", d.NodeName(), "-command", command)
		run(t, "vserver", "services", "ndmp", "modify", "-vserver", "cluster1", "-debug-enable", boolean)
	})
}
