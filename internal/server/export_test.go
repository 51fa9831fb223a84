package server

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// SlowHistBackup starts, on a test server, a HIST=Y dump of files empty
// files whose DMA does not read file history until release is called. It
// returns the server, release, and wait, which waits for the end of the
// backup and returns its halt reason. For the external tests (metrics
// through a real server).
func SlowHistBackup(t *testing.T, files int) (srv *Server, release func(), wait func() ndmp.DataHaltReason) {
	t.Helper()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	manyFiles(t, filepath.Join(f.dir, "vols", "vol1"), files)
	d := f.dialSlowDMA(t, nil)
	startHistBackup(t, f, d.c)
	return f.srv, d.unblock, func() ndmp.DataHaltReason {
		r := d.posts.wait(t, ndmp.NotifyDataHalted, 2*time.Minute).Body.(*ndmp.NotifyDataHaltedPost).Reason
		d.posts.wait(t, ndmp.NotifyMoverHalted, 10*time.Second)
		return r
	}
}
