package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/tapestry-ndmp/tapestry/internal/daemon"
	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst"
	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst/sim"
)

// tapeFlags are the command line flags of real tape devices; each one
// given overrides the configuration file's key.
type tapeFlags struct {
	discovery *bool
	sysRoot   string
	devRoot   string
	interval  string
	simulate  string
}

func (t *tapeFlags) define(fs *flag.FlagSet) {
	fs.Func("tape-discovery", "discover real tape drives and media changers: true (default) or false", func(s string) error {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		t.discovery = &v
		return nil
	})
	fs.StringVar(&t.sysRoot, "tape-sysfs-root", "", "sysfs tree tape discovery reads (default /sys)")
	fs.StringVar(&t.devRoot, "tape-dev-root", "", "directory of the device nodes tape discovery opens (default /dev)")
	fs.StringVar(&t.interval, "tape-rescan-interval", "", "how often to look for added and removed tape devices (default 1m, 0 for never)")
	fs.StringVar(&t.simulate, "tape-simulate", "", "serve a simulated tape library (two LTO-5 drives, an SMC changer) from this directory instead of the host's devices; for tests and demonstrations (docs/tape.md)")
}

// apply sets the configuration from the flags given and returns the
// system call layer of tape devices: the simulated library's with
// -tape-simulate, nil (the real one) otherwise.
func (t *tapeFlags) apply(cfg *daemon.Config) (linuxst.Sys, error) {
	if t.discovery != nil {
		cfg.TapeDiscovery = t.discovery
	}
	if t.sysRoot != "" {
		cfg.TapeSysfsRoot = t.sysRoot
	}
	if t.devRoot != "" {
		cfg.TapeDevRoot = t.devRoot
	}
	if t.interval != "" {
		cfg.TapeRescanInterval = t.interval
	}
	if t.simulate == "" {
		return nil, nil
	}
	l, err := sim.NewLibrary(t.simulate, sim.LibraryOptions{})
	if err != nil {
		return nil, fmt.Errorf("-tape-simulate: %w", err)
	}
	cfg.TapeSysfsRoot, cfg.TapeDevRoot = l.Host.SysRoot(), l.Host.DevRoot()
	return l.Host, nil
}
