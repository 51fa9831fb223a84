package restartable

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// Advance records that the context's backup entered pass (a phase, 1 to
// 5). Entering phase IV first takes the context's persistent lock on its
// snapshot, so that the snapshot survives the backup and the daemon.
func (m *Manager) Advance(ctx context.Context, svm, id string, pass int) error {
	c, err := m.Get(ctx, svm, id)
	if err != nil {
		return err
	}
	if pass == PassFiles && c.Pass < PassFiles {
		if _, err := m.snaps.LockSnapshotWith(ctx, svm, c.VolumeName, c.Snapshot, c.LockOwner(), storage.LockOptions{Persistent: true}); err != nil {
			return fmt.Errorf("restartable backup context %s: %w", id, err)
		}
	}
	_, err = m.update(ctx, svm, id, func(c *Context) error {
		c.Pass = pass
		return nil
	})
	if err != nil && pass == PassFiles && c.Pass < PassFiles {
		m.unlock(ctx, c)
	}
	return err
}

// Checkpoint records a checkpoint of phase IV: the image up to cp.Offset
// is on tape and synced. Only the last MaxCheckpoints are kept.
func (m *Manager) Checkpoint(ctx context.Context, svm, id string, cp Checkpoint) error {
	at := m.now().UTC()
	_, err := m.update(ctx, svm, id, func(c *Context) error {
		if c.Pass != PassFiles {
			return fmt.Errorf("%w: restartable backup context %s is in pass %d, not %d", ErrNotRestartable, id, c.Pass, PassFiles)
		}
		if n := len(c.Checkpoints); n > 0 && cp.Offset < c.Checkpoints[n-1].Offset {
			return fmt.Errorf("%w: checkpoint at %d before the last one (%d)", ErrOffset, cp.Offset, c.Checkpoints[n-1].Offset)
		}
		cp.At = at
		c.Checkpoints = append(c.Checkpoints, cp)
		if len(c.Checkpoints) > MaxCheckpoints {
			c.Checkpoints = c.Checkpoints[len(c.Checkpoints)-MaxCheckpoints:]
		}
		return nil
	})
	return err
}

// End removes the context of a backup that ended well, with its lock.
func (m *Manager) End(ctx context.Context, svm, id string) error {
	c, err := m.Get(ctx, svm, id)
	if err != nil {
		return err
	}
	if err := m.delete(ctx, svm, id); err != nil {
		return fmt.Errorf("restartable backup context %s: %w", id, err)
	}
	m.unlock(ctx, c)
	return nil
}

// Stop records that the context's backup stopped before its end. A backup
// stopped in phase IV leaves its context restartable, its snapshot locked;
// one stopped earlier loses its context (restartable is false) and the
// caller releases the snapshot as after any backup.
func (m *Manager) Stop(ctx context.Context, svm, id string) (restartable bool, err error) {
	c, err := m.update(ctx, svm, id, func(c *Context) error {
		if c.Pass == PassFiles {
			c.Busy, c.Restartable = false, true
			c.State, c.Status = StateRestartable, StatusAborted
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if c.Restartable {
		return true, nil
	}
	return false, m.End(ctx, svm, id)
}

// Recover is run when the daemon starts, before any backup: the contexts
// its predecessor left busy (it was killed, or the host lost power) become
// what Stop would have made of them. It returns the contexts kept
// restartable.
func (m *Manager) Recover(ctx context.Context) ([]Context, error) {
	all, err := m.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var kept []Context
	var errs []error
	for _, c := range all {
		if !c.Busy {
			continue
		}
		ok, err := m.Stop(ctx, c.SVM, c.ID)
		errs = append(errs, err)
		if ok {
			c, err = m.Get(ctx, c.SVM, c.ID)
			errs = append(errs, err)
			kept = append(kept, c)
		}
	}
	return kept, errors.Join(errs...)
}

// unlock releases the context's persistent lock; a lock it does not hold
// (before phase IV) is not an error.
func (m *Manager) unlock(ctx context.Context, c Context) {
	if c.Pass < PassFiles {
		return
	}
	_, _ = m.snaps.UnlockSnapshot(context.WithoutCancel(ctx), c.SVM, c.VolumeName, c.Snapshot, c.LockOwner())
}

// Delete removes a context that is not busy and releases its snapshot:
// the context's lock, and the snapshot itself when the backup created it
// and nothing else holds it (vserver services ndmp restartable-backup
// delete).
func (m *Manager) Delete(ctx context.Context, svm, id string) error {
	c, err := m.Get(ctx, svm, id)
	if err != nil {
		return err
	}
	if c.Busy {
		return fmt.Errorf("%w: restartable backup context %q of Vserver %q is in use by a running backup", ErrBusy, id, svm)
	}
	if err := m.delete(ctx, svm, id); err != nil {
		return fmt.Errorf("restartable backup context %s: %w", id, err)
	}
	m.unlock(ctx, c)
	if c.SnapshotAutoCreated {
		err := m.snaps.DeleteSnapshot(ctx, svm, c.VolumeName, c.Snapshot)
		if err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrLocked) {
			return fmt.Errorf("restartable backup context %s deleted; its snapshot %s: %w", id, c.Snapshot, err)
		}
	}
	return nil
}

// Restart is what a DMA asks of a context when it restarts a backup.
type Restart struct {
	// Volume is the volume path of the new backup (/<svm>/<volume>).
	Volume string
	// Env is the new backup's environment, without the restart's own
	// variables.
	Env map[string]string
	// Offset is the byte offset up to which the DMA's tape holds the
	// image: the server sends the image from there.
	Offset int64
}

// Claim takes a restartable context for a restart: it checks the request
// against the context and the snapshot, marks the context busy and returns
// it with the checkpoint the engine regenerates from. A refused restart
// leaves the context as it was.
func (m *Manager) Claim(ctx context.Context, svm, id string, r Restart, snapshotExists func(Context) (bool, error)) (Context, Checkpoint, error) {
	c, err := m.Get(ctx, svm, id)
	if err != nil {
		return Context{}, Checkpoint{}, err
	}
	if err := claimable(c, r); err != nil {
		return Context{}, Checkpoint{}, err
	}
	ok, err := snapshotExists(c)
	if err != nil {
		return Context{}, Checkpoint{}, fmt.Errorf("restartable backup context %s: %w", id, err)
	}
	if !ok {
		return Context{}, Checkpoint{}, fmt.Errorf("%w: %s (snapshot %s of volume %s)", ErrSnapshotGone, MsgSnapshotGone, c.Snapshot, c.Volume)
	}
	var cp Checkpoint
	c, err = m.update(ctx, svm, id, func(c *Context) error {
		if err := claimable(*c, r); err != nil {
			return err
		}
		cp, _ = c.From(r.Offset)
		c.Busy, c.State, c.Status = true, StateActive, StatusRunning
		return nil
	})
	return c, cp, err
}

// claimable checks a restart request against a context.
func claimable(c Context, r Restart) error {
	switch {
	case c.Busy:
		return fmt.Errorf("%w: restartable backup context %q is in use by a running backup", ErrBusy, c.ID)
	case !c.Restartable:
		return fmt.Errorf("%w: restartable backup context %q is not restartable", ErrNotRestartable, c.ID)
	case r.Volume != c.Volume:
		return fmt.Errorf("%w: restartable backup context %q is a backup of %s, not %s", ErrMismatch, c.ID, c.Volume, r.Volume)
	case !maps.Equal(r.Env, c.Env):
		return fmt.Errorf("%w: restartable backup context %q was started with other options (%s)", ErrMismatch, c.ID, envDiff(c.Env, r.Env))
	}
	if _, ok := c.From(r.Offset); !ok || r.Offset > c.Synced() {
		return fmt.Errorf("%w: offset %d is outside the checkpointed data of restartable backup context %q (%s)", ErrOffset, r.Offset, c.ID, span(c))
	}
	return nil
}

// span describes the offsets a context can restart from.
func span(c Context) string {
	if len(c.Checkpoints) == 0 {
		return "no checkpoint"
	}
	return fmt.Sprintf("from %d to %d", c.Checkpoints[0].Offset, c.Synced())
}

// envDiff names the first variable that differs between was and now.
func envDiff(was, now map[string]string) string {
	for k, v := range was {
		if w, ok := now[k]; !ok || w != v {
			return fmt.Sprintf("%s was %q, now %q", k, v, w)
		}
	}
	for k, v := range now {
		if _, ok := was[k]; !ok {
			return fmt.Sprintf("%s was not set, now %q", k, v)
		}
	}
	return "none differ"
}
