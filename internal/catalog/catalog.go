// Package catalog keeps everything of a Tapestry cluster that must survive a
// restart: users and roles, NDMP settings, SVMs, volumes, snapshots and their
// locks, dump dates, restartable-backup contexts, tape aliases and the
// library inventory.
//
// All state is reached through the Store interface, a transactional key-value
// store with ordered keys. Callers never see the engine behind it. The
// shape follows what both bbolt (one node) and etcd (several nodes, through
// its software transactional memory, clientv3/concurrency.STM) offer: a
// function run inside a read-only or read-write transaction that sees a
// consistent view and commits atomically, so an etcd implementation can
// follow without touching any caller.
//
// Keys are slash-separated paths built with Key, for example
// "storage/volume/vs1/vol1"; docs/catalog.md lists every key. Values are
// bytes; GetJSON, PutJSON and ListJSON store Go values as JSON.
//
// An Update function may run more than once and must only touch its
// transaction (see Store); Rerun makes a store that runs each twice, for
// tests. Migrate brings any Store to the key layout of this build.
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is returned (possibly wrapped) by Tx.Get and GetJSON when a key
// does not exist.
var ErrNotFound = errors.New("catalog: not found")

// ErrReadOnly is returned when a write is attempted in a View transaction.
var ErrReadOnly = errors.New("catalog: write in a read-only transaction")

// Store is the persistent state of a cluster.
//
// # Contract
//
// A store may run an Update function more than once: a store over a
// replicated engine (etcd's STM) runs it again when another writer changed
// what it read, and only the last run's writes are committed. So a function
// given to Update must only read and write its Tx: no file system changes,
// no messages, no counters or slices outside it that a second run would
// count or fill twice. Whatever it returns to its caller it assigns afresh
// on every run. Work outside the catalog is done before or after Update,
// with the caller undoing it when the transaction fails (see
// storage.Service.CreateQtree). Rerun wraps a Store so that tests run every
// Update function twice.
//
// Values stay small (a few KiB): a store over etcd holds each value in one
// Raft entry. Keys are built with Key and Prefix; docs/catalog.md lists
// them.
//
// The key layout has a schema version, kept in the store itself under
// SchemaKey; Migrate brings any Store to the layout of this build.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction. The changes are durable
	// (synced to stable storage) when Update returns nil; if fn returns an
	// error nothing it wrote is kept. fn may run more than once (see the
	// contract above) and must only touch its Tx.
	Update(ctx context.Context, fn func(Tx) error) error
	// Close releases the store.
	Close() error
}

// Tx is one transaction. A Tx must not be used after its function returns.
type Tx interface {
	// Get returns the value of key or an error wrapping ErrNotFound.
	Get(key string) ([]byte, error)
	// Put sets key to value.
	Put(key string, value []byte) error
	// Delete removes key; removing a missing key is not an error.
	Delete(key string) error
	// List returns the entries whose key starts with prefix, in key order.
	List(prefix string) ([]KV, error)
	// Writable reports whether the transaction may write.
	Writable() bool
}

// KV is one entry of a List result.
type KV struct {
	Key   string
	Value []byte
}

// Key joins parts into a key with "/" between them. A "/" or "%" inside a
// part is escaped so that parts never run into each other.
func Key(parts ...string) string {
	esc := make([]string, len(parts))
	for i, p := range parts {
		p = strings.ReplaceAll(p, "%", "%25")
		esc[i] = strings.ReplaceAll(p, "/", "%2F")
	}
	return strings.Join(esc, "/")
}

// Prefix is Key(parts...) followed by "/", for List of everything below it.
func Prefix(parts ...string) string { return Key(parts...) + "/" }

// GetJSON reads key and decodes its JSON value into a T.
func GetJSON[T any](tx Tx, key string) (T, error) {
	var v T
	b, err := tx.Get(key)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("catalog: decode %q: %w", key, err)
	}
	return v, nil
}

// PutJSON stores v as JSON under key.
func PutJSON(tx Tx, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("catalog: encode %q: %w", key, err)
	}
	return tx.Put(key, b)
}

// ListJSON decodes every value below prefix, in key order.
func ListJSON[T any](tx Tx, prefix string) ([]T, error) {
	kvs, err := tx.List(prefix)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(kvs))
	for _, kv := range kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("catalog: decode %q: %w", kv.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Exists reports whether key exists.
func Exists(tx Tx, key string) (bool, error) {
	_, err := tx.Get(key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Read runs fn in a read-only transaction of st and returns what fn
// returned, so that a getter needs no variable outside the closure.
func Read[T any](ctx context.Context, st Store, fn func(Tx) (T, error)) (T, error) {
	var v T
	err := st.View(ctx, func(tx Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	return v, err
}
