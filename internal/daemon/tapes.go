package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst"
)

// Real tape devices (issue 15, T4, T9): the daemon discovers the host's
// tape drives and medium changers in sysfs at start, on every rescan
// (storage tape rescan) and every TapeRescanInterval, and loads the tape
// configuration files of TapeConfigDir at start and on each rescan.
const (
	// TapeConfigDir is the directory of tape configuration files inside
	// the data directory (ONTAP keeps them in /etc/tape_config).
	TapeConfigDir = "mroot/etc/tape_config"
	// DefaultSysfsRoot and DefaultDevRoot are where the kernel's sysfs
	// tree and device nodes are.
	DefaultSysfsRoot = "/sys"
	DefaultDevRoot   = "/dev"
	// DefaultTapeRescanInterval is how often the daemon looks for added
	// and removed devices.
	DefaultTapeRescanInterval = time.Minute
)

// tapeDiscovery returns whether real-device discovery is on and the
// sysfs root, device root and rescan interval (0: no periodic rescan).
func (c Config) tapeDiscovery() (on bool, sysRoot, devRoot string, every time.Duration, err error) {
	on = c.TapeDiscovery == nil || *c.TapeDiscovery
	sysRoot, devRoot, every = DefaultSysfsRoot, DefaultDevRoot, DefaultTapeRescanInterval
	if c.TapeSysfsRoot != "" {
		sysRoot = c.TapeSysfsRoot
	}
	if c.TapeDevRoot != "" {
		devRoot = c.TapeDevRoot
	}
	if c.TapeRescanInterval != "" {
		every, err = time.ParseDuration(c.TapeRescanInterval)
		if err != nil || every < 0 {
			return false, "", "", 0, fmt.Errorf("tape-rescan-interval %q is not a duration of 0 or more (such as 30s, 5m)", c.TapeRescanInterval)
		}
	}
	return on, sysRoot, devRoot, every, nil
}

// openRealTapes loads the tape configuration files and, unless turned
// off, makes the scanner of real devices and runs the first scan. A scan
// that finds broken devices is logged, not fatal.
func (d *Daemon) openRealTapes(ctx context.Context) error {
	dir := filepath.Join(d.opts.DataDir, TapeConfigDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tape configuration directory: %w", err)
	}
	on, sysRoot, devRoot, _, err := d.opts.Config.tapeDiscovery()
	if err != nil {
		return err
	}
	if !on {
		d.log.Info("real tape device discovery is off")
		return d.loadTapeConfigs()
	}
	sys := d.opts.TapeSys
	if sys == nil {
		sys = linuxst.System()
	}
	d.scanner = linuxst.NewScanner(d.tapes, sys, sysRoot, devRoot)
	if _, err := d.RescanTapes(ctx); err != nil {
		d.log.Warn("tape device discovery", "err", err)
	}
	return nil
}

func (d *Daemon) loadTapeConfigs() error {
	dir := filepath.Join(d.opts.DataDir, TapeConfigDir)
	if err := d.tapes.LoadConfigs(dir); err != nil {
		return fmt.Errorf("tape configuration files in %s: %w", dir, err)
	}
	return nil
}

// ErrDiscoveryOff is returned by RescanTapes when real-device discovery
// is turned off.
var ErrDiscoveryOff = &storage.Error{Kind: storage.ErrDisallowed,
	Msg: "real tape device discovery is off (configuration key tape-discovery, flag --tape-discovery)"}

// RescanTapes reloads the tape configuration files and looks for tape
// devices added to or removed from the host (T4, T9). It returns what
// changed; an error about single devices comes with the others handled.
func (d *Daemon) RescanTapes(ctx context.Context) (admin.TapeRescanResult, error) {
	var res admin.TapeRescanResult
	if err := d.loadTapeConfigs(); err != nil {
		return res, err
	}
	if d.scanner == nil {
		return res, ErrDiscoveryOff
	}
	added, removed, err := d.scanner.Scan(ctx)
	res.Added, res.Removed = added, removed
	for _, p := range added {
		d.log.Info("tape device added", "path", p)
	}
	for _, p := range removed {
		d.log.Info("tape device removed", "path", p)
	}
	return res, err
}

// runTapeRescan rescans every interval until ctx ends; the channel closes
// when it has stopped.
func (d *Daemon) runTapeRescan(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	_, _, _, every, _ := d.opts.Config.tapeDiscovery()
	if d.scanner == nil || every == 0 {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := d.RescanTapes(ctx); err != nil {
					d.log.Warn("tape device rescan", "err", err)
				}
			}
		}
	}()
	return done
}
