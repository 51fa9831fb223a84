package catalog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// EtcdOptions tell OpenEtcd how to reach an etcd cluster.
type EtcdOptions struct {
	// Endpoints are the members' client URLs (http://host:port, or
	// https:// with TLS).
	Endpoints []string
	// Prefix is put before every key, so several clusters can share one
	// etcd ("tapestry/" when empty).
	Prefix string
	// TLS, when set, is the client's TLS configuration (CA, client
	// certificate).
	TLS *tls.Config
	// Username and Password authenticate with etcd's own users.
	Username, Password string
	// DialTimeout bounds the first connection (5 s when 0).
	DialTimeout time.Duration
}

// EtcdStore is a Store kept in an etcd cluster, for a cluster of nodes.
//
// Transactions are optimistic and serializable: a View or Update reads the
// store as it was at one revision; an Update commits its writes only if no
// other Update committed since that revision (all Updates bump one
// revision key, compared in the commit), and otherwise runs its function
// again on a fresh view. An etcd member started with its defaults allows
// 128 operations and 1.5 MiB per transaction; give it --max-txn-ops 10000
// for the largest catalog transactions (docs/cluster.md).
type EtcdStore struct {
	c      *clientv3.Client
	prefix string
}

// etcdRetries bounds the reruns of one Update under contention.
const etcdRetries = 100

// OpenEtcd connects to etcd and brings the catalog under the prefix to
// this build's schema (Migrate).
func OpenEtcd(ctx context.Context, o EtcdOptions) (*EtcdStore, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("catalog: etcd: no endpoints")
	}
	if o.Prefix == "" {
		o.Prefix = "tapestry/"
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 5 * time.Second
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: o.Endpoints, TLS: o.TLS, Username: o.Username,
		Password: o.Password, DialTimeout: o.DialTimeout, Context: ctx})
	if err != nil {
		return nil, fmt.Errorf("catalog: etcd %s: %w", strings.Join(o.Endpoints, ","), err)
	}
	s := &EtcdStore{c: c, prefix: o.Prefix}
	if _, err := Migrate(ctx, s, Migrations()); err != nil {
		c.Close()
		return nil, fmt.Errorf("catalog: etcd %s: %w", strings.Join(o.Endpoints, ","), err)
	}
	return s, nil
}

// revisionKey is bumped by every committed Update; it lies outside the
// prefix, so no List sees it.
func (s *EtcdStore) revisionKey() string { return strings.TrimSuffix(s.prefix, "/") + "\x00revision" }

// View implements Store.
func (s *EtcdStore) View(ctx context.Context, fn func(Tx) error) error {
	for range etcdRetries {
		rev, _, err := s.begin(ctx)
		if err != nil {
			return err
		}
		err = fn(&etcdTx{ctx: ctx, s: s, rev: rev})
		if !errors.Is(err, rpctypes.ErrCompacted) {
			return err
		}
	}
	return errors.New("catalog: etcd: view kept meeting compacted revisions")
}

// Update implements Store.
func (s *EtcdStore) Update(ctx context.Context, fn func(Tx) error) error {
	for attempt := 0; attempt < etcdRetries; attempt++ {
		rev, mod, err := s.begin(ctx)
		if err != nil {
			return err
		}
		tx := &etcdTx{ctx: ctx, s: s, rev: rev, writes: map[string]*[]byte{}}
		if err := fn(tx); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				continue
			}
			return err
		}
		ok, err := s.commit(ctx, tx, mod)
		if err != nil || ok {
			return err
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
	return errors.New("catalog: etcd: update gave up after other writers kept committing first")
}

// begin returns the current revision and the mod revision of the revision
// key (0 when it does not exist yet).
func (s *EtcdStore) begin(ctx context.Context) (rev, mod int64, err error) {
	r, err := s.c.Get(ctx, s.revisionKey())
	if err != nil {
		return 0, 0, fmt.Errorf("catalog: etcd: %w", err)
	}
	if len(r.Kvs) > 0 {
		mod = r.Kvs[0].ModRevision
	}
	return r.Header.Revision, mod, nil
}

// commit applies tx's writes if no Update committed since it began.
func (s *EtcdStore) commit(ctx context.Context, tx *etcdTx, mod int64) (bool, error) {
	ops := make([]clientv3.Op, 0, len(tx.order)+1)
	for _, k := range tx.order {
		if v := tx.writes[k]; v != nil {
			ops = append(ops, clientv3.OpPut(s.prefix+k, string(*v)))
		} else {
			ops = append(ops, clientv3.OpDelete(s.prefix+k))
		}
	}
	ops = append(ops, clientv3.OpPut(s.revisionKey(), strconv.FormatInt(tx.rev, 10)))
	cmp := clientv3.Compare(clientv3.ModRevision(s.revisionKey()), "=", mod)
	r, err := s.c.Txn(ctx).If(cmp).Then(ops...).Commit()
	if err != nil {
		return false, fmt.Errorf("catalog: etcd: commit: %w", err)
	}
	return r.Succeeded, nil
}

// backoff waits a little longer after each lost race.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(min(attempt+1, 20)) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close implements Store.
func (s *EtcdStore) Close() error { return s.c.Close() }

// etcdTx reads at one revision and keeps its writes until the commit.
type etcdTx struct {
	ctx    context.Context
	s      *EtcdStore
	rev    int64
	writes map[string]*[]byte // nil value: deleted; nil map: read-only
	order  []string
}

func (t *etcdTx) Writable() bool { return t.writes != nil }

func (t *etcdTx) Get(key string) ([]byte, error) {
	if v, ok := t.writes[key]; ok {
		if v == nil {
			return nil, fmt.Errorf("%q: %w", key, ErrNotFound)
		}
		return slices.Clone(*v), nil
	}
	r, err := t.s.c.Get(t.ctx, t.s.prefix+key, clientv3.WithRev(t.rev))
	if err != nil {
		return nil, fmt.Errorf("catalog: etcd: get %q: %w", key, err)
	}
	if len(r.Kvs) == 0 {
		return nil, fmt.Errorf("%q: %w", key, ErrNotFound)
	}
	return r.Kvs[0].Value, nil
}

func (t *etcdTx) Put(key string, value []byte) error {
	if !t.Writable() {
		return ErrReadOnly
	}
	if key == "" {
		return errors.New("catalog: empty key")
	}
	v := slices.Clone(value)
	if v == nil {
		v = []byte{}
	}
	t.note(key, &v)
	return nil
}

func (t *etcdTx) Delete(key string) error {
	if !t.Writable() {
		return ErrReadOnly
	}
	t.note(key, nil)
	return nil
}

func (t *etcdTx) note(key string, v *[]byte) {
	if _, seen := t.writes[key]; !seen {
		t.order = append(t.order, key)
	}
	t.writes[key] = v
}

func (t *etcdTx) List(prefix string) ([]KV, error) {
	r, err := t.s.c.Get(t.ctx, t.s.prefix+prefix, clientv3.WithPrefix(), clientv3.WithRev(t.rev),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("catalog: etcd: list %q: %w", prefix, err)
	}
	byKey := map[string][]byte{}
	for _, kv := range r.Kvs {
		byKey[strings.TrimPrefix(string(kv.Key), t.s.prefix)] = kv.Value
	}
	for k, v := range t.writes {
		switch {
		case !strings.HasPrefix(k, prefix):
		case v == nil:
			delete(byKey, k)
		default:
			byKey[k] = slices.Clone(*v)
		}
	}
	out := make([]KV, 0, len(byKey))
	for k, v := range byKey {
		out = append(out, KV{Key: k, Value: v})
	}
	slices.SortFunc(out, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
