package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// incarnationKey is the key of the record of the running daemon's
// incarnation.
func incarnationKey() string { return catalog.Key(ns, "incarnation") }

// Incarnation identifies one run of the daemon over the catalog.
type Incarnation struct {
	ID        string    `json:"id"`
	StartedAt time.Time `json:"start-time"`
	// Boot counts the starts of the daemon over this catalog.
	Boot int64 `json:"boot"`
}

// StartIncarnation begins a new incarnation of the daemon: it writes a new
// identity to the catalog and ties the locks taken from now on to it.
// Every lock of an earlier incarnation is then stale (its process is gone:
// the catalog's file lock lets one daemon at a time use it);
// ReleaseStaleLocks releases them. The daemon calls both at start, before
// it serves anything.
func (s *Service) StartIncarnation(ctx context.Context) (Incarnation, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Incarnation{}, fmt.Errorf("incarnation: %w", err)
	}
	var inc Incarnation
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		prev, err := catalog.GetJSON[Incarnation](tx, incarnationKey())
		if err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return err
		}
		inc = Incarnation{ID: hex.EncodeToString(b[:]), StartedAt: s.now(), Boot: prev.Boot + 1}
		inc.ID = fmt.Sprintf("%d-%s", inc.Boot, inc.ID)
		return catalog.PutJSON(tx, incarnationKey(), inc)
	})
	if err != nil {
		return Incarnation{}, fmt.Errorf("record the daemon incarnation: %w", err)
	}
	s.inc.Store(&inc.ID)
	return inc, nil
}

// incarnation returns the current incarnation's ID, "" if none started.
func (s *Service) incarnation() string {
	if p := s.inc.Load(); p != nil {
		return *p
	}
	return ""
}

// noteIncarnation ties owner's lock on p to the running incarnation, if
// there is one.
func (s *Service) noteIncarnation(p *Snapshot, owner string) {
	inc := s.incarnation()
	if inc == "" {
		return
	}
	if p.LockIncarnations == nil {
		p.LockIncarnations = map[string]string{}
	}
	p.LockIncarnations[owner] = inc
}

// StaleLock is a lock ReleaseStaleLocks released.
type StaleLock struct {
	SVM, Volume, Snapshot, Owner, Incarnation string
}

// Released is what ReleaseStaleLocks did.
type Released struct {
	// Unlocked are the stale locks released.
	Unlocked []StaleLock
	// Deleted are the snapshots made for a stale owner and deleted
	// ("svm/volume/snapshot").
	Deleted []string
	// Failed are the deletions that failed (the snapshot stays, unlocked).
	Failed []error
}

// KeepLock tells ReleaseStaleLocks to leave a stale lock in place (the
// seam for restartable backup contexts, which resume with their own
// snapshot and lock).
type KeepLock func(p Snapshot, owner string) bool

// ReleaseStaleLocks releases every lock that belongs to an incarnation
// other than the current one (the process that held it is gone), unless
// keep says to keep it, and deletes each snapshot that was made for a
// released owner and has no owner left. It needs StartIncarnation first.
func (s *Service) ReleaseStaleLocks(ctx context.Context, keep KeepLock) (Released, error) {
	var r Released
	cur := s.incarnation()
	if cur == "" {
		return r, fmt.Errorf("release stale snapshot locks: no incarnation started")
	}
	var orphans []Snapshot
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		r.Unlocked, orphans = nil, nil // the function may run more than once
		all, err := catalog.ListJSON[Snapshot](tx, catalog.Prefix(ns, prefixSnap))
		if err != nil {
			return err
		}
		for _, p := range all {
			freed := releaseStale(&p, cur, keep)
			if len(freed) == 0 {
				continue
			}
			r.Unlocked = append(r.Unlocked, freed...)
			if err := catalog.PutJSON(tx, snapKey(p.SVM, p.Volume, p.Name), p); err != nil {
				return err
			}
			if p.CreatedFor != "" && !p.Locked() && slices.ContainsFunc(freed, func(l StaleLock) bool { return l.Owner == p.CreatedFor }) {
				orphans = append(orphans, p)
			}
		}
		return nil
	})
	if err != nil {
		return Released{}, fmt.Errorf("release stale snapshot locks: %w", err)
	}
	for _, p := range orphans {
		if err := s.DeleteSnapshot(ctx, p.SVM, p.Volume, p.Name); err != nil {
			r.Failed = append(r.Failed, err)
			continue
		}
		r.Deleted = append(r.Deleted, p.SVM+"/"+p.Volume+"/"+p.Name)
	}
	return r, nil
}

// releaseStale removes from p the locks of incarnations other than cur
// that keep does not keep, and returns them.
func releaseStale(p *Snapshot, cur string, keep KeepLock) []StaleLock {
	var freed []StaleLock
	for _, owner := range slices.Clone(p.Owners) {
		inc, ok := p.LockIncarnations[owner]
		if !ok || inc == cur || (keep != nil && keep(*p, owner)) {
			continue
		}
		p.Owners = slices.DeleteFunc(p.Owners, func(o string) bool { return o == owner })
		delete(p.LockIncarnations, owner)
		freed = append(freed, StaleLock{SVM: p.SVM, Volume: p.Volume, Snapshot: p.Name, Owner: owner, Incarnation: inc})
	}
	if len(p.LockIncarnations) == 0 {
		p.LockIncarnations = nil
	}
	return freed
}
