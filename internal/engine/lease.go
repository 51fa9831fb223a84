package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// Namer gives the names of the snapshots a job makes; Acquire asks again
// while the name it got is taken.
type Namer interface {
	Next() string
}

// SnapshotNamer hands out the numbers n of snapshot_for_backup.<n>: from 0,
// one more for every backup of the process (D1), so they start again at 0
// when the node restarts. Share one per node; the zero value is ready.
type SnapshotNamer struct{ n atomic.Int64 }

// Next returns the next snapshot name.
func (s *SnapshotNamer) Next() string {
	return "snapshot_for_backup." + strconv.FormatInt(s.n.Add(1)-1, 10)
}

// maxNameTries bounds how many taken names Acquire skips.
const maxNameTries = 1000

// Lease is a job's hold on a snapshot copy: the snapshot is locked for the
// lease's owner, so nobody can delete it while the job reads it. A lease
// ends once, by Release (the lock goes, and the snapshot too when the
// lease made it) or by Keep (snapshot and lock stay for a restart).
//
// The lock belongs to the running daemon until Keep: when the daemon dies
// holding it, the next start releases it and deletes a snapshot the lease
// made (storage.Service.ReleaseStaleLocks). A kept lease's lock is
// persistent; Resume takes it up again.
type Lease struct {
	svc   *storage.Service
	snap  storage.Snapshot
	owner string
	made  bool

	mu    sync.Mutex
	ended bool
}

// Acquire makes a new snapshot copy of vol, named by namer, and locks it
// for owner in the same step (D1). A name that is taken is skipped for the
// next one. The volume may be read-only (a DP volume is backed up from a
// snapshot too).
func Acquire(ctx context.Context, svc *storage.Service, vol storage.Volume, namer Namer, owner string) (*Lease, error) {
	if owner == "" {
		return nil, errors.New("snapshot lease: an owner is required")
	}
	for i := 0; ; i++ {
		name := namer.Next()
		snap, err := svc.CreateSnapshotWith(ctx, vol.SVM, vol.Name, name, storage.SnapshotOptions{ReadOnlyOK: true, Owner: owner})
		if err == nil {
			return &Lease{svc: svc, snap: snap, owner: owner, made: true}, nil
		}
		if !errors.Is(err, storage.ErrExists) || i >= maxNameTries {
			return nil, err
		}
	}
}

// Hold locks an existing snapshot copy for owner: a job that reads a
// snapshot it was given makes none, and its Release only unlocks. Every
// lease holds a lock of its own: when another lease holds the snapshot for
// the same owner (two backups of one named snapshot), this one locks it
// for owner#2 (or #3, ...), so that the first to end does not unlock the
// snapshot the other still reads. Owner returns the name used.
func Hold(ctx context.Context, svc *storage.Service, snap storage.Snapshot, owner string) (*Lease, error) {
	for i := 1; ; i++ {
		o := owner
		if i > 1 {
			o = owner + "#" + strconv.Itoa(i)
		}
		locked, err := svc.LockSnapshotWith(ctx, snap.SVM, snap.Volume, snap.Name, o, storage.LockOptions{Exclusive: true})
		if err == nil {
			return &Lease{svc: svc, snap: locked, owner: o}, nil
		}
		if !errors.Is(err, storage.ErrExists) || i >= maxNameTries {
			return nil, err
		}
	}
}

// Resume takes up a kept lease after a restart: the snapshot must still be
// locked by owner. The lease counts as made by the job when the snapshot
// was made for owner, so its Release deletes it.
func Resume(ctx context.Context, svc *storage.Service, svm, vol, name, owner string) (*Lease, error) {
	snap, err := svc.GetSnapshot(ctx, svm, vol, name)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(snap.Owners, owner) {
		return nil, fmt.Errorf("resume snapshot lease: %w", storage.ErrNotFound)
	}
	return &Lease{svc: svc, snap: snap, owner: owner, made: snap.CreatedFor == owner}, nil
}

// Snapshot returns the leased snapshot's record as the lease took it.
func (l *Lease) Snapshot() storage.Snapshot { return l.snap }

// Owner returns the owner the snapshot is locked for.
func (l *Lease) Owner() string { return l.owner }

// Made reports whether the lease made the snapshot (Release deletes it).
func (l *Lease) Made() bool { return l.made }

// end marks the lease ended and reports whether it was still running.
func (l *Lease) end() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := !l.ended
	l.ended = true
	return was
}

// Release ends the lease: it unlocks the snapshot and deletes it when the
// lease made it (even when the lock was already gone). It runs to its end
// even when ctx is cancelled: a job that was aborted must still let its
// snapshot go. Releasing an ended lease does nothing.
func (l *Lease) Release(ctx context.Context) error {
	if l == nil || !l.end() {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	s := l.snap
	_, uerr := l.svc.UnlockSnapshot(ctx, s.SVM, s.Volume, s.Name, l.owner)
	var derr error
	if l.made {
		derr = l.svc.DeleteSnapshot(ctx, s.SVM, s.Volume, s.Name)
	}
	if err := errors.Join(uerr, derr); err != nil {
		return fmt.Errorf("release snapshot lease: %w", err)
	}
	return nil
}

// Keep ends the lease and leaves the snapshot locked for the owner for a
// restart of the job (a restartable backup, D12): the lock becomes
// persistent, so the next start of the daemon keeps it. Keeping an ended
// lease does nothing.
func (l *Lease) Keep(ctx context.Context) error {
	if l == nil || !l.end() {
		return nil
	}
	s := l.snap
	if _, err := l.svc.PersistLock(context.WithoutCancel(ctx), s.SVM, s.Volume, s.Name, l.owner); err != nil {
		return fmt.Errorf("keep snapshot lease: %w", err)
	}
	return nil
}
