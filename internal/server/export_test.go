package server

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// SlowBackup is a HIST=Y dump on a test server whose DMA does not read
// file history until Release. For the external tests (metrics through a
// real server).
type SlowBackup struct {
	Server *Server
	// Client is the DMA's connection.
	Client *ndmp.Client
	// Release lets the DMA read again.
	Release func()
	// Wait waits for the end of the backup and returns its halt reason.
	Wait func() ndmp.DataHaltReason
	// Entries returns the FH_ADD_DIR and FH_ADD_NODE entries received.
	Entries func() (dirs, nodes int64)
	// WaitFull waits until cond holds, cond being called again and again
	// with the DMA stopped; it fails if the depth cond reports exceeds
	// FHQueueLength+2 (the queue, a post being taken out, a waiting
	// sender).
	WaitFull func(what string, cond func() (depth int, ok bool))
}

// FHFiles is the number of files of a SlowBackup.
const FHFiles = fhFiles

// StartSlowBackup starts a SlowBackup of FHFiles empty files.
func StartSlowBackup(t *testing.T) *SlowBackup {
	t.Helper()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	manyFilesIn(t, filepath.Join(f.dir, "vols", "vol1"), fhFiles, fhPerDir)
	d := f.dialSlowDMA(t, nil)
	startHistBackup(t, f, d.c)
	return &SlowBackup{
		Server:  f.srv,
		Client:  d.c,
		Release: d.unblock,
		Wait: func() ndmp.DataHaltReason {
			r := d.posts.wait(t, ndmp.NotifyDataHalted, hangGuard).Body.(*ndmp.NotifyDataHaltedPost).Reason
			d.posts.wait(t, ndmp.NotifyMoverHalted, 10*time.Second)
			return r
		},
		Entries:  func() (int64, int64) { return d.fhDirs.Load(), d.fhNodes.Load() },
		WaitFull: func(what string, cond func() (int, bool)) { t.Helper(); f.waitFHFull(t, what, cond) },
	}
}
