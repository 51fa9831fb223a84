package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tapestry-ndmp/tapestry/internal/server"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
)

// VTLDir is the default virtual library's directory inside the data
// directory; it is created on first start with 4 drives, 20 slots and 10
// cartridges.
const VTLDir = "vtl"

// openNDMP opens (creating on first start) the default virtual library,
// registers it with the node's tape registry and builds the NDMP server.
func (d *Daemon) openNDMP(ctx context.Context) error {
	dir := filepath.Join(d.opts.DataDir, VTLDir)
	lib, err := vtl.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		lib, err = vtl.CreateDefault(dir)
	}
	if err != nil {
		return fmt.Errorf("open virtual tape library %s: %w", dir, err)
	}
	d.vtl = lib
	reg, err := tape.NewRegistry(d.store, d.node, tape.Options{Logger: d.log})
	if err != nil {
		return fmt.Errorf("tape registry: %w", err)
	}
	if err := tape.AddVTL(ctx, reg, DefaultVTLAdapter, lib); err != nil {
		return fmt.Errorf("attach virtual tape library: %w", err)
	}
	d.tapes = reg
	d.vtls = &vtlSet{d: d, libs: map[string]*extraVTL{}}
	if err := d.vtls.open(ctx); err != nil {
		return err
	}
	if err := d.openRealTapes(ctx); err != nil {
		return err
	}
	d.openSMTape()
	d.ndmp, err = server.New(server.Options{
		Storage: d.storage, Auth: d.auth, Catalog: d.store, Tapes: reg,
		Node: d.node, DataDir: d.opts.DataDir, Version: d.opts.Version, Logger: d.log,
		EventLog: d.events,
		// Set before any session runs (Open makes the collector before
		// Serve starts the server).
		OnOperation: func(op server.Operation) {
			if d.metrics != nil {
				d.metrics.ObserveOperation(op)
			}
		},
	})
	return err
}

// serveNDMP runs the NDMP server until ctx ends; a server that cannot
// listen is logged, not fatal, so the admin API stays available.
func (d *Daemon) serveNDMP(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if d.ndmp == nil {
			return
		}
		d.log.Info("NDMP server starting")
		if err := d.ndmp.Serve(ctx); err != nil {
			d.log.Error("NDMP server stopped", "err", err)
		}
	}()
	return done
}

func (d *Daemon) closeVTL() {
	if d.vtls != nil {
		d.vtls.close()
	}
	if d.vtl != nil {
		if err := d.vtl.Close(); err != nil {
			d.log.Warn("close virtual tape library", "err", err)
		}
		d.vtl = nil
	}
}

// NDMP is the node's NDMP server (sessions, kill, settings through
// server.LoadSVMSettings and friends with Store).
func (d *Daemon) NDMP() *server.Server { return d.ndmp }

// Tapes is the node's tape device registry.
func (d *Daemon) Tapes() *tape.Registry { return d.tapes }
