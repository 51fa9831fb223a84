package daemon

import (
	"context"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// recoverSnapshots starts the daemon's incarnation and cleans up after an
// earlier one that ended without cleaning up (SIGKILL, a crash, power
// loss): the snapshot locks its backups held are released and the
// snapshots those backups made for themselves deleted; snapshot copies
// found on a volume's host without a catalog record (a crash between
// making and recording one) are removed. Failures to delete are logged,
// not fatal: the snapshot stays, unlocked, for the administrator.
func (d *Daemon) recoverSnapshots(ctx context.Context) error {
	inc, err := d.storage.StartIncarnation(ctx)
	if err != nil {
		return err
	}
	d.log.Info("daemon incarnation", "id", inc.ID, "boot", inc.Boot)
	// keepLock is the seam for restartable backup contexts: a context that
	// survives a restart would keep its own snapshot and lock. None exist
	// yet (their locks would be taken Persistent and never be stale).
	var keepLock storage.KeepLock
	r, err := d.storage.ReleaseStaleLocks(ctx, keepLock)
	if err != nil {
		return err
	}
	for _, l := range r.Unlocked {
		d.log.Warn("released a snapshot lock of an earlier run", "vserver", l.SVM, "volume", l.Volume,
			"snapshot", l.Snapshot, "owner", l.Owner, "incarnation", l.Incarnation)
	}
	for _, name := range r.Deleted {
		d.log.Warn("deleted the snapshot of a backup of an earlier run", "snapshot", name)
	}
	for _, err := range r.Failed {
		d.log.Error("could not delete the snapshot of a backup of an earlier run", "err", err)
	}
	d.reconcileVolumes(ctx)
	return nil
}

// reconcileVolumes removes the unrecorded snapshot copies of every online
// volume (storage.ReconcileSnapshots), logging what it does.
func (d *Daemon) reconcileVolumes(ctx context.Context) {
	vols, err := d.storage.ListVolumes(ctx, "")
	if err != nil {
		d.log.Error("list volumes to reconcile their snapshots", "err", err)
		return
	}
	for _, v := range vols {
		if v.State != storage.StateOnline {
			continue
		}
		r, err := d.storage.ReconcileSnapshots(ctx, v.SVM, v.Name)
		if err != nil {
			d.log.Error("reconcile snapshots", "vserver", v.SVM, "volume", v.Name, "err", err)
			continue
		}
		for _, name := range r.Removed {
			d.log.Warn("removed an unrecorded snapshot copy", "vserver", v.SVM, "volume", v.Name, "snapshot", name)
		}
	}
}
