// Command tapestry is Tapestry's administration command line. It talks to
// tapestryd over the admin socket and takes ONTAP's cluster shell commands:
//
//	tapestry vserver create -vserver vs1
//	tapestry volume create -vserver vs1 -volume vol1 -path /srv/data
//	tapestry volume snapshot create -vserver vs1 -volume vol1 -snapshot s1
//	tapestry volume snapshot show -fields path
//
// The socket comes from --socket or TAPESTRY_SOCKET (default
// ./tapestry-data/admin.sock), the user from --user or TAPESTRY_USER (default
// admin) and the password from --password or TAPESTRY_PASSWORD, else it is
// prompted for on the terminal. See docs/cli.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/tapestry-ndmp/tapestry/internal/buildinfo"
	"github.com/tapestry-ndmp/tapestry/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=..." (make
// build stamps git describe); without it buildinfo.Version finds the module
// version or the VCS revision.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	env := cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Version: buildinfo.Version(version)}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		env.ReadPassword = func(prompt string) (string, error) {
			fmt.Fprint(os.Stderr, prompt)
			b, err := term.ReadPassword(int(os.Stdin.Fd()))
			fmt.Fprintln(os.Stderr)
			return string(b), err
		}
	}
	code := cli.Run(ctx, os.Args[1:], env)
	stop()
	os.Exit(code)
}
