package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
)

// Snapshot is the catalog record of a snapshot copy of a volume.
type Snapshot struct {
	Name      string    `json:"snapshot"`
	SVM       string    `json:"vserver"`
	Volume    string    `json:"volume"`
	CreatedAt time.Time `json:"create-time"`
	// Provider is the snapshot provider that made it.
	Provider string `json:"provider"`
	// HostPath is the snapshot's root directory on the host.
	HostPath string `json:"host-path"`
	// Owners are the holders of locks on the snapshot (a restartable
	// backup context, a running backup, ...). A snapshot with owners
	// cannot be deleted.
	Owners []string `json:"owners,omitempty"`
	// LockIncarnations maps each owner whose lock belongs to a running
	// daemon (a backup in progress) to that daemon's incarnation (see
	// StartIncarnation): the lock dies with the process, and the next
	// start releases it (ReleaseStaleLocks). Owners not in it (an
	// administrator's lock, a restartable backup context) keep their lock
	// across restarts.
	LockIncarnations map[string]string `json:"lock-incarnations,omitempty"`
	// CreatedFor is the owner the snapshot was made for and locked to in
	// one step (a backup's own snapshot_for_backup.N): when that owner's
	// lock is released as stale and no other owner is left, the snapshot
	// is deleted.
	CreatedFor string `json:"created-for,omitempty"`
	Files      int64  `json:"files,omitempty"`
	Bytes      int64  `json:"bytes,omitempty"`
}

// Locked reports whether the snapshot has lock owners.
func (p Snapshot) Locked() bool { return len(p.Owners) > 0 }

func snapKey(svm, vol, name string) string { return catalog.Key(ns, prefixSnap, svm, vol, name) }

func snapNotFound(svm, vol, name string) error {
	return errf(ErrNotFound, "Snapshot copy %q of volume %q in Vserver %q does not exist", name, vol, svm)
}

func getSnapshot(tx catalog.Tx, svm, vol, name string) (Snapshot, error) {
	p, err := catalog.GetJSON[Snapshot](tx, snapKey(svm, vol, name))
	if errors.Is(err, catalog.ErrNotFound) {
		if _, err := getVolume(tx, svm, vol); err != nil {
			return p, err
		}
		return p, snapNotFound(svm, vol, name)
	}
	return p, err
}

func (s *Service) provider(name, hostPath string) (snapshot.Provider, error) {
	p, err := s.opts.Providers(name, hostPath)
	if err != nil {
		return nil, errf(ErrInvalidArgument, "snapshot provider %q: %v", name, err)
	}
	return p, nil
}

// SnapshotOptions are the choices of CreateSnapshotWith that the
// administrator's volume snapshot create does not offer.
type SnapshotOptions struct {
	// ReadOnlyOK allows a snapshot of a DP (read-only) volume, as a backup
	// engine needs one to back such a volume up.
	ReadOnlyOK bool
	// RestrictedOK allows a snapshot of a restricted volume (an SMTape
	// restore recreating the snapshots of its image).
	RestrictedOK bool
	// Owner, when set, locks the new snapshot for Owner in the same
	// transaction that records it, so nobody can delete it in between.
	Owner string
	// CreatedAt, when set, is the creation time recorded instead of now:
	// an SMTape restore recreates its image's snapshots with their times.
	CreatedAt time.Time
}

// CreateSnapshot makes a snapshot copy of an online RW volume through the
// volume's provider and records it (volume snapshot create). It refuses an
// invalid or taken name and a volume that already holds
// Options.MaxSnapshots copies.
func (s *Service) CreateSnapshot(ctx context.Context, svm, vol, name string) (Snapshot, error) {
	return s.CreateSnapshotWith(ctx, svm, vol, name, SnapshotOptions{})
}

// CreateSnapshotWith is CreateSnapshot with the engines' options.
func (s *Service) CreateSnapshotWith(ctx context.Context, svm, vol, name string, o SnapshotOptions) (Snapshot, error) {
	if err := ValidateSnapshotName(name); err != nil {
		return Snapshot{}, fmt.Errorf("create Snapshot copy: %w", err)
	}
	unlock := s.lockVolume(svm, vol)
	defer unlock()
	var v Volume
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		var err error
		if v, err = getVolume(tx, svm, vol); err != nil {
			return err
		}
		if v.State != StateOnline && !(v.State == StateRestricted && o.RestrictedOK) {
			return errf(ErrInvalidState, "volume %q in Vserver %q is %s", vol, svm, v.State)
		}
		if v.ReadOnly() && !o.ReadOnlyOK {
			return errf(ErrReadOnly, "volume %q in Vserver %q is read-only (type DP)", vol, svm)
		}
		return s.checkSnapshotFree(tx, svm, vol, name)
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("create Snapshot copy: %w", err)
	}
	prov, err := s.provider(v.SnapshotProvider, v.HostPath)
	if err != nil {
		return Snapshot{}, fmt.Errorf("create Snapshot copy: %w", err)
	}
	info, err := prov.Create(ctx, v.HostPath, name)
	if err != nil {
		return Snapshot{}, fmt.Errorf("create Snapshot copy %q of volume %q in Vserver %q: %w", name, vol, svm, err)
	}
	p := Snapshot{
		Name: name, SVM: svm, Volume: vol, CreatedAt: s.now(), Provider: info.Provider,
		HostPath: info.Path, Files: info.Files, Bytes: info.Bytes,
	}
	if !o.CreatedAt.IsZero() {
		p.CreatedAt = o.CreatedAt
	}
	if p.Provider == "" {
		p.Provider = prov.Name()
	}
	if o.Owner != "" {
		p.Owners, p.CreatedFor = []string{o.Owner}, o.Owner
		s.noteIncarnation(&p, o.Owner)
	}
	err = s.store.Update(context.WithoutCancel(ctx), func(tx catalog.Tx) error {
		if _, err := getVolume(tx, svm, vol); err != nil {
			return err
		}
		if err := s.checkSnapshotFree(tx, svm, vol, name); err != nil {
			return err
		}
		return catalog.PutJSON(tx, snapKey(svm, vol, name), p)
	})
	if err != nil {
		// The copy exists on the host but could not be recorded: take it
		// away again so that host and catalog agree.
		if derr := prov.Delete(context.WithoutCancel(ctx), v.HostPath, name); derr != nil {
			err = fmt.Errorf("%w (and removing the unrecorded copy failed: %v)", err, derr)
		}
		return Snapshot{}, fmt.Errorf("create Snapshot copy: %w", err)
	}
	return p, nil
}

func (s *Service) checkSnapshotFree(tx catalog.Tx, svm, vol, name string) error {
	kvs, err := tx.List(catalog.Prefix(ns, prefixSnap, svm, vol))
	if err != nil {
		return err
	}
	k := snapKey(svm, vol, name)
	for _, kv := range kvs {
		if kv.Key == k {
			return errf(ErrExists, "Snapshot copy %q of volume %q in Vserver %q already exists", name, vol, svm)
		}
	}
	if len(kvs) >= s.opts.MaxSnapshots {
		return errf(ErrLimit, "volume %q in Vserver %q already has the maximum of %d Snapshot copies", vol, svm, s.opts.MaxSnapshots)
	}
	return nil
}

// GetSnapshot returns one snapshot copy's record.
func (s *Service) GetSnapshot(ctx context.Context, svm, vol, name string) (Snapshot, error) {
	return catalog.Read(ctx, s.store, func(tx catalog.Tx) (Snapshot, error) {
		return getSnapshot(tx, svm, vol, name)
	})
}

// ListSnapshots lists a volume's snapshot copies, oldest first (equal
// times by name).
func (s *Service) ListSnapshots(ctx context.Context, svm, vol string) ([]Snapshot, error) {
	var out []Snapshot
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		if _, err := getVolume(tx, svm, vol); err != nil {
			return err
		}
		var err error
		out, err = catalog.ListJSON[Snapshot](tx, catalog.Prefix(ns, prefixSnap, svm, vol))
		return err
	})
	slices.SortStableFunc(out, func(a, b Snapshot) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, err
}

// DeleteSnapshot deletes a snapshot copy through its provider and removes
// its record. A locked snapshot is refused with ErrLocked. When the copy
// is already gone from the host only the record is removed.
func (s *Service) DeleteSnapshot(ctx context.Context, svm, vol, name string) error {
	unlock := s.lockVolume(svm, vol)
	defer unlock()
	var v Volume
	var p Snapshot
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		var err error
		if p, err = getSnapshot(tx, svm, vol, name); err != nil {
			return err
		}
		if p.Locked() {
			return lockedErr(p)
		}
		if v, err = getVolume(tx, svm, vol); err != nil {
			return err
		}
		if v.State == StateOffline {
			return errf(ErrInvalidState, "volume %q in Vserver %q is offline", vol, svm)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete Snapshot copy: %w", err)
	}
	if _, err := os.Lstat(p.HostPath); err == nil {
		prov, err := s.provider(p.Provider, v.HostPath)
		if err != nil {
			return fmt.Errorf("delete Snapshot copy: %w", err)
		}
		if err := prov.Delete(ctx, v.HostPath, name); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, snapshot.ErrNotFound) {
			return fmt.Errorf("delete Snapshot copy %q of volume %q in Vserver %q: %w", name, vol, svm, err)
		}
	}
	err = s.store.Update(context.WithoutCancel(ctx), func(tx catalog.Tx) error {
		return tx.Delete(snapKey(svm, vol, name))
	})
	if err != nil {
		return fmt.Errorf("delete Snapshot copy: %w", err)
	}
	return nil
}

func lockedErr(p Snapshot) error {
	return errf(ErrLocked, "Snapshot copy %q of volume %q in Vserver %q is locked by %q and cannot be deleted", p.Name, p.Volume, p.SVM, p.Owners)
}

// LockOptions are the choices of LockSnapshotWith.
type LockOptions struct {
	// Persistent makes a lock that outlives the daemon that took it: an
	// administrator's lock, or (when they exist) a restartable backup
	// context's. Other locks carry the daemon's incarnation and are
	// released by the next start (ReleaseStaleLocks).
	Persistent bool
	// Exclusive refuses, with ErrExists, a lock the owner already holds
	// (LockSnapshot changes nothing then): a job that must hold a lock of
	// its own can tell that another job took the same owner name.
	Exclusive bool
}

// LockSnapshot adds owner to the snapshot's lock owners, for the running
// daemon (see LockOptions); locking again with the same owner changes
// nothing.
func (s *Service) LockSnapshot(ctx context.Context, svm, vol, name, owner string) (Snapshot, error) {
	return s.LockSnapshotWith(ctx, svm, vol, name, owner, LockOptions{})
}

// LockSnapshotWith is LockSnapshot with options.
func (s *Service) LockSnapshotWith(ctx context.Context, svm, vol, name, owner string, o LockOptions) (Snapshot, error) {
	if owner == "" {
		return Snapshot{}, errf(ErrInvalidArgument, "a lock owner is required")
	}
	return s.updateSnapshot(ctx, svm, vol, name, func(p *Snapshot) error {
		if slices.Contains(p.Owners, owner) {
			if o.Exclusive {
				return errf(ErrExists, "Snapshot copy %q of volume %q in Vserver %q is already locked by %q", name, vol, svm, owner)
			}
			return nil
		}
		p.Owners = append(p.Owners, owner)
		if !o.Persistent {
			s.noteIncarnation(p, owner)
		}
		return nil
	})
}

// UnlockSnapshot removes owner from the snapshot's lock owners; an owner
// that holds no lock is an ErrNotFound error.
func (s *Service) UnlockSnapshot(ctx context.Context, svm, vol, name, owner string) (Snapshot, error) {
	return s.updateSnapshot(ctx, svm, vol, name, func(p *Snapshot) error {
		i := slices.Index(p.Owners, owner)
		if i < 0 {
			return errf(ErrNotFound, "Snapshot copy %q of volume %q in Vserver %q is not locked by %q", name, vol, svm, owner)
		}
		p.Owners = slices.Delete(p.Owners, i, i+1)
		delete(p.LockIncarnations, owner)
		if len(p.LockIncarnations) == 0 {
			p.LockIncarnations = nil
		}
		return nil
	})
}

// PersistLock makes owner's lock on the snapshot persistent: it no longer
// belongs to the running daemon, so the next start keeps it
// (ReleaseStaleLocks) and the snapshot stays for a restartable backup
// (D12). An owner that holds no lock is an ErrNotFound error.
func (s *Service) PersistLock(ctx context.Context, svm, vol, name, owner string) (Snapshot, error) {
	return s.updateSnapshot(ctx, svm, vol, name, func(p *Snapshot) error {
		if !slices.Contains(p.Owners, owner) {
			return errf(ErrNotFound, "Snapshot copy %q of volume %q in Vserver %q is not locked by %q", name, vol, svm, owner)
		}
		delete(p.LockIncarnations, owner)
		if len(p.LockIncarnations) == 0 {
			p.LockIncarnations = nil
		}
		return nil
	})
}

func (s *Service) updateSnapshot(ctx context.Context, svm, vol, name string, fn func(*Snapshot) error) (Snapshot, error) {
	var p Snapshot
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		var err error
		if p, err = getSnapshot(tx, svm, vol, name); err != nil {
			return err
		}
		if err := fn(&p); err != nil {
			return err
		}
		return catalog.PutJSON(tx, snapKey(svm, vol, name), p)
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("Snapshot copy %q: %w", name, err)
	}
	return p, nil
}

// SnapshotIdentity returns, through the volume's provider, the map from
// inode numbers in a snapshot copy to those of the same files in the live
// volume (the dump engine keeps dump inode numbers stable with it).
func (s *Service) SnapshotIdentity(ctx context.Context, svm, vol, name string) (snapshot.IdentityMap, error) {
	var v Volume
	var p Snapshot
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		var err error
		if p, err = getSnapshot(tx, svm, vol, name); err != nil {
			return err
		}
		v, err = getVolume(tx, svm, vol)
		return err
	})
	if err != nil {
		return nil, err
	}
	prov, err := s.provider(p.Provider, v.HostPath)
	if err != nil {
		return nil, err
	}
	m, err := prov.Identity(v.HostPath, name)
	if err != nil {
		return nil, fmt.Errorf("identity map of Snapshot copy %q of volume %q: %w", name, vol, err)
	}
	return m, nil
}

// Reconciled is what ReconcileSnapshots found.
type Reconciled struct {
	// Removed are copies found on the host without a catalog record (left
	// by a crash between making and recording them); they were deleted.
	Removed []string
	// Missing are records whose copy is no longer on the host; they are
	// kept (they may hold locks) for the administrator to delete.
	Missing []string
}

// ReconcileSnapshots brings a volume's host snapshot directory and the
// catalog together; the daemon runs it for its volumes when it starts, so
// that a name such as snapshot_for_backup.0 left behind by a crash does not
// block the next backup. The volume must not be offline.
func (s *Service) ReconcileSnapshots(ctx context.Context, svm, vol string) (Reconciled, error) {
	var r Reconciled
	unlock := s.lockVolume(svm, vol)
	defer unlock()
	var v Volume
	var recs []Snapshot
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		var err error
		if v, err = getVolume(tx, svm, vol); err != nil {
			return err
		}
		recs, err = catalog.ListJSON[Snapshot](tx, catalog.Prefix(ns, prefixSnap, svm, vol))
		return err
	})
	if err != nil {
		return r, fmt.Errorf("reconcile Snapshot copies: %w", err)
	}
	if v.State == StateOffline {
		return r, errf(ErrInvalidState, "volume %q in Vserver %q is offline", vol, svm)
	}
	onDisk, err := snapshot.List(v.HostPath)
	if err != nil {
		return r, fmt.Errorf("reconcile Snapshot copies of volume %q: %w", vol, err)
	}
	known := make(map[string]bool, len(recs))
	for _, p := range recs {
		known[p.Name] = true
		if _, err := os.Lstat(p.HostPath); errors.Is(err, os.ErrNotExist) {
			r.Missing = append(r.Missing, p.Name)
		}
	}
	var prov snapshot.Provider // found on the first unrecorded copy
	for _, name := range onDisk {
		if known[name] {
			continue
		}
		if prov == nil {
			if prov, err = s.provider(v.SnapshotProvider, v.HostPath); err != nil {
				return r, err
			}
		}
		if err := prov.Delete(ctx, v.HostPath, name); err != nil {
			return r, fmt.Errorf("remove unrecorded Snapshot copy %q of volume %q: %w", name, vol, err)
		}
		r.Removed = append(r.Removed, name)
	}
	return r, nil
}
