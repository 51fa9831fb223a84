// Command ndmpcopy copies a volume, qtree, directory or file between NDMP
// v4 servers, or within one, as a dump backup piped into a restore, with the
// options of ONTAP's ndmpcopy.
//
// Usage:
//
//	ndmpcopy -sa user:password -da user:password -st {md5|text} [-dt {md5|text}]
//	         [-l 0-9] [-d] [-f] [-h] [-p] [-exclude list]
//	         [user:password@]src_host[:port]:/svm/volume[/path]
//	         [user:password@]dst_host[:port]:/svm/volume[/path]
//	         [-mcs {inet|inet6}] [-mcd {inet|inet6}] [-md {inet|inet6}]
//
// IPv6 addresses go in square brackets. See docs/ndmpcopy.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tapestry-ndmp/tapestry/internal/ndmpcopy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ndmpcopy.Main(ctx, os.Args[1:], ndmpcopy.Stdio{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
	})
	stop()
	os.Exit(code)
}
