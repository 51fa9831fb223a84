package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketKV   = []byte("kv")
	bucketMeta = []byte("meta")
	keySchema  = []byte("schema_version")
)

// Migration moves the key layout from version From to From+1. It runs inside
// one read-write transaction together with the version bump.
type Migration struct {
	From  int
	Apply func(Tx) error
}

// CurrentSchema is the schema version this build writes.
const CurrentSchema = 1

// migrations lists every step up to CurrentSchema, oldest first. Version 0
// is an empty store.
var migrations = []Migration{
	{From: 0, Apply: func(Tx) error { return nil }},
}

// BoltStore is the one-node Store, a bbolt file synced on every commit.
type BoltStore struct {
	db      *bolt.DB
	version int
}

// OpenBolt opens (creating if needed) the catalog file at path and brings
// its schema up to CurrentSchema. A file written by a newer build is
// refused.
func OpenBolt(path string) (*BoltStore, error) {
	return openBolt(path, migrations)
}

func openBolt(path string, steps []Migration) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	s := &BoltStore{db: db}
	err = db.Update(func(btx *bolt.Tx) error {
		if _, err := btx.CreateBucketIfNotExists(bucketKV); err != nil {
			return err
		}
		meta, err := btx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		v := 0
		if b := meta.Get(keySchema); b != nil {
			if _, err := fmt.Sscanf(string(b), "%d", &v); err != nil {
				return fmt.Errorf("bad schema version %q", b)
			}
		}
		target := 0
		for _, m := range steps {
			if m.From+1 > target {
				target = m.From + 1
			}
		}
		if v > target {
			return fmt.Errorf("catalog schema version %d is newer than this build's %d", v, target)
		}
		for _, m := range steps {
			if m.From != v {
				continue
			}
			if err := m.Apply(&boltTx{btx: btx}); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
			}
			v++
		}
		if v != target {
			return fmt.Errorf("no migration from schema version %d", v)
		}
		s.version = v
		return meta.Put(keySchema, []byte(fmt.Sprint(v)))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return s, nil
}

// View implements Store.
func (s *BoltStore) View(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(btx *bolt.Tx) error { return fn(&boltTx{btx: btx}) })
}

// Update implements Store. bbolt fsyncs the file before Commit returns.
func (s *BoltStore) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(btx *bolt.Tx) error { return fn(&boltTx{btx: btx}) })
}

// SchemaVersion implements Store.
func (s *BoltStore) SchemaVersion() int { return s.version }

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }

type boltTx struct{ btx *bolt.Tx }

func (t *boltTx) Writable() bool { return t.btx.Writable() }

func (t *boltTx) Get(key string) ([]byte, error) {
	v := t.btx.Bucket(bucketKV).Get([]byte(key))
	if v == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return bytes.Clone(v), nil
}

func (t *boltTx) Put(key string, value []byte) error {
	if !t.btx.Writable() {
		return ErrReadOnly
	}
	if key == "" {
		return errors.New("catalog: empty key")
	}
	return t.btx.Bucket(bucketKV).Put([]byte(key), bytes.Clone(value))
}

func (t *boltTx) Delete(key string) error {
	if !t.btx.Writable() {
		return ErrReadOnly
	}
	return t.btx.Bucket(bucketKV).Delete([]byte(key))
}

func (t *boltTx) List(prefix string) ([]KV, error) {
	var out []KV
	c := t.btx.Bucket(bucketKV).Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		out = append(out, KV{Key: string(k), Value: bytes.Clone(v)})
	}
	return out, nil
}
