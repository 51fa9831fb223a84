package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
	"github.com/tapestry-ndmp/tapestry/internal/metrics"
	"github.com/tapestry-ndmp/tapestry/internal/options"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// MetricsPollInterval is how often the NDMP sessions' byte counters are
// sampled between scrapes, so that short sessions count too.
const MetricsPollInterval = time.Second

// openEventLog opens the backup event log in DIR/mroot/etc/log, turned off
// when the option backup.log.enable is off (M1, M2).
func (d *Daemon) openEventLog(ctx context.Context) error {
	v, err := options.Value(ctx, d.store, options.BackupLog)
	if err != nil {
		return err
	}
	dir := filepath.Join(d.opts.DataDir, LogDir)
	l, err := eventlog.Open(dir, eventlog.Options{Disabled: v == "off", Logger: d.log})
	if err != nil {
		return fmt.Errorf("open backup event log %s: %w", dir, err)
	}
	d.events = l
	return nil
}

func (d *Daemon) closeEventLog() {
	if d.events != nil {
		if err := d.events.Close(); err != nil {
			d.log.Warn("close backup event log", "err", err)
		}
		d.events = nil
	}
}

// newMetrics builds the Prometheus collector over the node's NDMP server,
// tape devices and storage.
func (d *Daemon) newMetrics() *metrics.Collector {
	src := metrics.Sources{Tapes: d.tapes, Storage: d.storage}
	if d.ndmp != nil {
		src.Sessions, src.MaxSessions, src.Stats = d.ndmp.Sessions, d.ndmp.MaxSessions, d.ndmp.Stats
	}
	return metrics.New(src)
}

// seedLastBackups sets the metrics' last successful backup of each
// volume from the backup event log (the current file and the rotated
// ones), so that the time survives a restart of the daemon (issue 17 item
// 2). A dump counts as successful when it has an End line and no Error
// line.
func (d *Daemon) seedLastBackups() {
	if d.events == nil || d.metrics == nil {
		return
	}
	names, err := eventlog.Names(d.events.Dir())
	if err != nil {
		d.log.Warn("read backup event log", "err", err)
		return
	}
	for _, name := range names {
		b, err := eventlog.Read(d.events.Dir(), name)
		if err != nil {
			d.log.Warn("read backup event log", "file", name, "err", err)
			continue
		}
		failed := map[string]bool{}
		for _, line := range eventlog.Lines(b) {
			e, err := eventlog.Parse(line)
			if err != nil || e.Type != eventlog.TypeDump {
				continue
			}
			switch e.Event {
			case eventlog.EventStart:
				failed[e.Identifier] = false
			case eventlog.EventError:
				failed[e.Identifier] = true
			case eventlog.EventEnd:
				d.seedLastBackup(e, failed[e.Identifier])
			}
		}
	}
}

func (d *Daemon) seedLastBackup(e eventlog.Entry, failed bool) {
	path, _, err := eventlog.SplitDumpIdentifier(e.Identifier)
	if err != nil || failed {
		return
	}
	if svm, vol, _, err := storage.SplitBackupPath(strings.TrimSuffix(path, "/")); err == nil {
		d.metrics.SetLastSuccess(svm, vol, e.Time)
	}
}

// EventLogRotateCheck is how often the daemon asks the event log to rotate,
// so that the weekly rotation also happens in a week without events (M2).
const EventLogRotateCheck = time.Hour

// runBackground samples the metrics and checks the event log's rotation
// until ctx ends; the channel closes when it has stopped.
func (d *Daemon) runBackground(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		poll := time.NewTicker(MetricsPollInterval)
		defer poll.Stop()
		rotate := time.NewTicker(EventLogRotateCheck)
		defer rotate.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-poll.C:
				if d.metrics != nil {
					d.metrics.Sample()
				}
			case <-rotate.C:
				if d.events != nil {
					if err := d.events.RotateIfDue(); err != nil {
						d.log.Warn("rotate backup event log", "err", err)
					}
				}
			}
		}
	}()
	return done
}

// Metrics is the node's Prometheus collector (served at GET /metrics on the
// admin socket).
func (d *Daemon) Metrics() *metrics.Collector { return d.metrics }

// EventLog is the node's backup event log.
func (d *Daemon) EventLog() *eventlog.Log { return d.events }

// NDMPListen is the address of the node-management LIF, with the port
// chosen when the configuration asked for port 0 (on a restart with port 0
// the LIF keeps the port it had when its address is unchanged).
func (d *Daemon) NDMPListen() string { return d.opts.Config.NDMPListen }

// isAnyPort reports whether listen is ADDR:0.
func isAnyPort(listen string) bool {
	ap, err := netip.ParseAddrPort(listen)
	return err == nil && ap.Port() == 0
}

// resolvePort replaces port 0 in an ADDR:PORT listen address with a free
// port of that address, found by listening on it briefly; other addresses
// are returned unchanged. Tests and scripts start daemons in parallel this
// way without colliding on port 10000.
func resolvePort(listen string, log *slog.Logger) (string, error) {
	ap, err := netip.ParseAddrPort(listen)
	if err != nil || ap.Port() != 0 {
		return listen, nil
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", fmt.Errorf("ndmp-listen %q: find a free port: %w", listen, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("ndmp-listen %q: %w", listen, err)
	}
	chosen := net.JoinHostPort(ap.Addr().String(), strconv.Itoa(port))
	log.Info("NDMP listen port chosen", "ndmp-listen", chosen)
	return chosen, nil
}
