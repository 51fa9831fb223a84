// Command tapestryd is the Tapestry node daemon. It keeps the node's catalog
// in a data directory (created on first start) and serves the admin API on
// the unix socket DIR/admin.sock; the tapestry command talks to it.
//
// Usage:
//
//	tapestryd --data-dir DIR [--node-name NAME] [--config FILE] [--ndmp-listen ADDR:PORT] [--log-level LEVEL] [--log-format text|json] [--version]
//
// The first start names the node (--node-name, default node1) and keeps the
// name in the data directory (DIR/node-name); a later start takes it from
// there, and one with a different --node-name is refused: a node is not
// renamed.
//
// On first start the cluster user admin gets the password in
// TAPESTRY_ADMIN_PASSWORD, or a generated one that is printed once.
// SIGTERM and SIGINT stop the daemon cleanly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/tapestry-ndmp/tapestry/internal/buildinfo"
	"github.com/tapestry-ndmp/tapestry/internal/daemon"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// version is set at build time with -ldflags "-X main.version=..." (make
// build stamps git describe); without it buildinfo.Version finds the module
// version or the VCS revision.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tapestryd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "./tapestry-data", "data directory (created on first start)")
	nodeName := fs.String("node-name", "", "name of the node on first start (default "+storage.DefaultNodeName+"); later starts keep it")
	configFile := fs.String("config", "", "configuration file (JSON, see docs/cli.md)")
	listen := fs.String("ndmp-listen", "", "address of the node-management LIF (default "+daemon.DefaultNDMPListen+")")
	level := fs.String("log-level", "", "log level: debug, info, warn, error (default info)")
	format := fs.String("log-format", "", "log format: text or json (default text)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	showMan := fs.Bool("man-page", false, "print this manual page (roff, tapestryd(8)) and exit")
	var tapes tapeFlags
	tapes.define(fs)
	var hf httpFlags
	hf.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tapestryd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	version := buildinfo.Version(version)
	if *showVersion {
		fmt.Fprintf(stdout, "tapestryd %s\n", version)
		return 0
	}
	if *showMan {
		fmt.Fprint(stdout, manPage(fs, version))
		return 0
	}
	var cfg daemon.Config
	if *configFile != "" {
		c, err := daemon.LoadConfig(*configFile)
		if err != nil {
			fmt.Fprintf(stderr, "tapestryd: %v\n", err)
			return 1
		}
		cfg = c
	}
	if *listen != "" {
		cfg.NDMPListen = *listen
	}
	if *level != "" {
		cfg.LogLevel = *level
	}
	if *format != "" {
		cfg.LogFormat = *format
	}
	tapeSys, err := tapes.apply(&cfg)
	if err != nil {
		fmt.Fprintf(stderr, "tapestryd: %v\n", err)
		return 2
	}
	hf.apply(fs, &cfg)
	log, err := daemon.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "tapestryd: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := daemon.Open(ctx, daemon.Options{
		DataDir: *dataDir, NodeName: *nodeName, Config: cfg, AdminPassword: os.Getenv("TAPESTRY_ADMIN_PASSWORD"),
		Version: version, Logger: log, Out: stdout, TapeSys: tapeSys,
	})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	log.Info("tapestryd started", "version", version, "data-dir", d.DataDir(), "node", d.NodeName(), "first-start", d.FirstStart)
	if err := d.Serve(ctx); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("tapestryd stopped")
	return 0
}

// httpFlags are the flags of the web view's HTTP listener (issue 17).
type httpFlags struct {
	listen, cert, key        string
	plaintext, metricsNoAuth bool
}

func (h *httpFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&h.listen, "http-listen", "", "address of the web view and /metrics, ADDR:PORT (default: none)")
	fs.StringVar(&h.cert, "http-cert", "", "TLS certificate (PEM) of the web view (default: the node's, DATA-DIR/tls/ndmp-cert.pem)")
	fs.StringVar(&h.key, "http-key", "", "TLS private key (PEM) of --http-cert")
	fs.BoolVar(&h.plaintext, "http-plaintext", false, "serve the web view without TLS (behind a TLS proxy only)")
	fs.BoolVar(&h.metricsNoAuth, "metrics-no-auth", false, "serve /metrics on the web view's listener without authentication")
}

// apply copies the flags that were given over the configuration file's
// values.
func (h *httpFlags) apply(fs *flag.FlagSet, cfg *daemon.Config) {
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "http-listen":
			cfg.HTTPListen = h.listen
		case "http-cert":
			cfg.HTTPCert = h.cert
		case "http-key":
			cfg.HTTPKey = h.key
		case "http-plaintext":
			cfg.HTTPPlaintext = h.plaintext
		case "metrics-no-auth":
			cfg.MetricsNoAuth = h.metricsNoAuth
		}
	})
}
