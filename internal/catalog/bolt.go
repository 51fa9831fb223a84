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

// BoltStore is the one-node Store, a bbolt file synced on every commit. It
// runs every Update function once.
type BoltStore struct {
	db *bolt.DB
}

// OpenBolt opens (creating if needed) the catalog file at path and brings
// its schema up to CurrentSchema with Migrate. A file written by a newer
// build is refused.
func OpenBolt(path string) (*BoltStore, error) {
	s, err := openBolt(path)
	if err != nil {
		return nil, err
	}
	if _, err := Migrate(context.Background(), s, Migrations()); err != nil {
		s.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return s, nil
}

// openBolt opens the file without migrating it. The schema version of files
// written before it moved into the key space (bucket "meta") is moved to
// SchemaKey.
func openBolt(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	err = db.Update(func(btx *bolt.Tx) error {
		kv, err := btx.CreateBucketIfNotExists(bucketKV)
		if err != nil {
			return err
		}
		meta := btx.Bucket(bucketMeta)
		if meta == nil || meta.Get(keySchema) == nil {
			return nil
		}
		if kv.Get([]byte(SchemaKey())) == nil {
			if err := kv.Put([]byte(SchemaKey()), bytes.Clone(meta.Get(keySchema))); err != nil {
				return err
			}
		}
		return btx.DeleteBucket(bucketMeta)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
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
