package catalog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/testutil/etcdtest"
)

// TestEtcdConcurrentUpdates (issue 16, item 1): two stores on one etcd,
// as two nodes would have, increment one counter 50 times each at once:
// the serializable retries lose no increment, and a second prefix is
// another catalog.
func TestEtcdConcurrentUpdates(t *testing.T) {
	ep := etcdtest.Start(t)
	a, b := openEtcd(t, ep, "c1/"), openEtcd(t, ep, "c1/")
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, s := range []*EtcdStore{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if err := s.Update(ctx, increment); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := Read(ctx, a, func(tx Tx) ([]byte, error) { return tx.Get("counter") })
	if err != nil || string(got) != "100" {
		t.Fatalf("counter %q, %v; want 100", got, err)
	}
	other := openEtcd(t, ep, "c2/")
	if _, err := Read(ctx, other, func(tx Tx) ([]byte, error) { return tx.Get("counter") }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another prefix sees the counter: %v", err)
	}
}

func increment(tx Tx) error {
	n := 0
	if b, err := tx.Get("counter"); err == nil {
		n, _ = strconv.Atoi(string(b))
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	return tx.Put("counter", []byte(strconv.Itoa(n+1)))
}

// TestEtcdListSeesOwnWrites: a transaction's List shows its own puts and
// deletes over what the store holds, in key order; a failed Update keeps
// nothing.
func TestEtcdListSeesOwnWrites(t *testing.T) {
	s := openEtcd(t, etcdtest.Start(t), "l/")
	ctx := context.Background()
	if err := s.Update(ctx, func(tx Tx) error {
		for i := range 5 {
			if err := tx.Put(fmt.Sprintf("p/%d", i), []byte{byte(i)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	err := s.Update(ctx, func(tx Tx) error {
		_ = tx.Delete("p/1")
		_ = tx.Put("p/9", []byte{9})
		_ = tx.Put("q/0", []byte{0})
		kvs, err := tx.List("p/")
		if err != nil {
			return err
		}
		var keys []string
		for _, kv := range kvs {
			keys = append(keys, kv.Key)
		}
		if fmt.Sprint(keys) != "[p/0 p/2 p/3 p/4 p/9]" {
			t.Errorf("list inside the transaction: %v", keys)
		}
		return errors.New("roll back")
	})
	if err == nil || err.Error() != "roll back" {
		t.Fatalf("update: %v", err)
	}
	kvs, err := Read(ctx, s, func(tx Tx) ([]KV, error) { return tx.List("") })
	if err != nil || len(kvs) != 6 { // p/0..p/4 and the schema version
		t.Fatalf("after the failed update: %d keys, %v", len(kvs), err)
	}
}
