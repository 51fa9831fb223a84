package restartable

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// Errors of the manager; the messages that wrap them are the ones the
// administrator and the DMA see.
var (
	// ErrNotFound: no such context.
	ErrNotFound = errors.New("not found")
	// ErrBusy: the context's backup is running.
	ErrBusy = errors.New("busy")
	// ErrNotRestartable: the context cannot be restarted.
	ErrNotRestartable = errors.New("not restartable")
	// ErrTooMany: the node holds the most contexts it may.
	ErrTooMany = errors.New("too many contexts")
	// ErrMismatch: a restart asks for another volume or other options.
	ErrMismatch = errors.New("different backup")
	// ErrOffset: a restart offset the context cannot honour.
	ErrOffset = errors.New("bad restart offset")
	// ErrSnapshotGone: the context's snapshot no longer exists.
	ErrSnapshotGone = errors.New("snapshot gone")
)

// MsgSnapshotGone is the specification's message for a restart whose
// snapshot is gone ("Unable to lock a snapshot needed by dump").
const MsgSnapshotGone = "Unable to lock a snapshot needed by dump"

// DefaultMax is the most contexts a node keeps when the option
// ndmpd.restartable_backup.max_contexts is not set.
const DefaultMax = 64

// Snapshots is what the manager needs of the storage service: the
// persistent lock of a context's snapshot. *storage.Service has it.
type Snapshots interface {
	LockSnapshotWith(ctx context.Context, svm, vol, name, owner string, o storage.LockOptions) (storage.Snapshot, error)
	UnlockSnapshot(ctx context.Context, svm, vol, name, owner string) (storage.Snapshot, error)
	DeleteSnapshot(ctx context.Context, svm, vol, name string) error
}

// Manager keeps the contexts of a node in its catalog. It is safe for
// concurrent use.
type Manager struct {
	store catalog.Store
	snaps Snapshots
	// Max returns the most contexts (busy or not) the node keeps.
	max func(context.Context) int
	now func() time.Time
}

// Config configures a Manager.
type Config struct {
	// Store is the catalog the contexts are kept in.
	Store catalog.Store
	// Snapshots locks and releases the contexts' snapshots.
	Snapshots Snapshots
	// Max returns the most contexts the node keeps; nil means DefaultMax.
	Max func(context.Context) int
	// Now returns the time; nil means time.Now.
	Now func() time.Time
}

// New returns a Manager.
func New(cfg Config) *Manager {
	m := &Manager{store: cfg.Store, snaps: cfg.Snapshots, max: cfg.Max, now: cfg.Now}
	if m.max == nil {
		m.max = func(context.Context) int { return DefaultMax }
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m
}

func notFound(svm, id string) error {
	return fmt.Errorf("%w: restartable backup context %q of Vserver %q does not exist", ErrNotFound, id, svm)
}

// get reads a context in tx.
func get(tx catalog.Tx, svm, id string) (Context, error) {
	c, err := catalog.GetJSON[Context](tx, contextKey(svm, id))
	if errors.Is(err, catalog.ErrNotFound) {
		return Context{}, notFound(svm, id)
	}
	return c, err
}

// Get returns one context.
func (m *Manager) Get(ctx context.Context, svm, id string) (Context, error) {
	return catalog.Read(ctx, m.store, func(tx catalog.Tx) (Context, error) { return get(tx, svm, id) })
}

// List returns the contexts of svm (of every SVM when svm is empty), by
// SVM and identifier.
func (m *Manager) List(ctx context.Context, svm string) ([]Context, error) {
	p := contextsPrefix()
	if svm != "" {
		p = catalog.Prefix("restart", "context", svm)
	}
	out, err := catalog.Read(ctx, m.store, func(tx catalog.Tx) ([]Context, error) {
		return catalog.ListJSON[Context](tx, p)
	})
	if err != nil {
		return nil, fmt.Errorf("list restartable backup contexts: %w", err)
	}
	return out, nil
}

// Begin registers the context of a backup that starts: busy, in pass 1,
// with a new identifier. It refuses a new context when the node holds Max
// already, naming the oldest ones that are not busy (which the
// administrator may delete); it never drops one by itself.
func (m *Manager) Begin(ctx context.Context, c Context) (Context, error) {
	id, err := NewID()
	if err != nil {
		return Context{}, err
	}
	c.ID, c.Busy, c.Restartable = id, true, false
	c.Pass, c.State, c.Status = 1, StateActive, StatusRunning
	c.Updated = m.now().UTC()
	c.Env = maps.Clone(c.Env)
	c.Checkpoints = nil
	if c.Engine == "" {
		c.Engine = "dump"
	}
	limit := m.max(ctx)
	err = m.store.Update(ctx, func(tx catalog.Tx) error {
		all, err := catalog.ListJSON[Context](tx, contextsPrefix())
		if err != nil {
			return err
		}
		if len(all) >= limit {
			return tooMany(limit, all)
		}
		return catalog.PutJSON(tx, contextKey(c.SVM, c.ID), c)
	})
	if err != nil {
		return Context{}, fmt.Errorf("restartable backup context: %w", err)
	}
	return c, nil
}

// tooMany is the refusal of a context over the limit.
func tooMany(limit int, all []Context) error {
	idle := slices.DeleteFunc(slices.Clone(all), func(c Context) bool { return c.Busy })
	slices.SortFunc(idle, func(a, b Context) int { return a.Updated.Compare(b.Updated) })
	var names []string
	for i := 0; i < len(idle) && i < 3; i++ {
		names = append(names, idle[i].SVM+" "+idle[i].ID)
	}
	msg := ""
	if len(names) > 0 {
		msg = "; the oldest that are not busy: " + strings.Join(names, ", ") +
			" (vserver services ndmp restartable-backup delete)"
	}
	return fmt.Errorf("%w: the node holds the most restartable backup contexts (%d)%s", ErrTooMany, limit, msg)
}

// update changes one context in a transaction; fn must only change c.
func (m *Manager) update(ctx context.Context, svm, id string, fn func(c *Context) error) (Context, error) {
	var out Context
	now := m.now().UTC()
	err := m.store.Update(ctx, func(tx catalog.Tx) error {
		c, err := get(tx, svm, id)
		if err != nil {
			return err
		}
		c.Env = maps.Clone(c.Env)
		c.Checkpoints = slices.Clone(c.Checkpoints)
		if err := fn(&c); err != nil {
			return err
		}
		c.Updated = now
		out = c
		return catalog.PutJSON(tx, contextKey(svm, id), c)
	})
	return out, err
}

// delete removes a context.
func (m *Manager) delete(ctx context.Context, svm, id string) error {
	return m.store.Update(ctx, func(tx catalog.Tx) error { return tx.Delete(contextKey(svm, id)) })
}
