package catalog

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"
)

type rec struct {
	Name string
	N    int
}

func openTemp(t *testing.T) (*BoltStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestBoltCRUDAndList(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if s.SchemaVersion() != CurrentSchema {
		t.Fatalf("schema %d, want %d", s.SchemaVersion(), CurrentSchema)
	}
	err := s.Update(ctx, func(tx Tx) error {
		for i, n := range []string{"b", "a", "c/d"} {
			if err := PutJSON(tx, Key("svm", n), rec{n, i}); err != nil {
				return err
			}
		}
		return PutJSON(tx, Key("svmx", "z"), rec{"z", 9})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(tx Tx) error {
		got, err := ListJSON[rec](tx, Prefix("svm"))
		if err != nil {
			return err
		}
		// Key order, and "c/d" escaped so it stays one part; svmx/ excluded.
		want := []rec{{"a", 1}, {"b", 0}, {"c/d", 2}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("list: got %v want %v", got, want)
		}
		if _, err := tx.Get(Key("svm", "nope")); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing key: %v", err)
		}
		if err := tx.Put("x", nil); !errors.Is(err, ErrReadOnly) {
			t.Errorf("put in View: %v", err)
		}
		if tx.Writable() {
			t.Error("View transaction says writable")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx Tx) error { return tx.Delete(Key("svm", "a")) }); err != nil {
		t.Fatal(err)
	}
	_ = s.View(ctx, func(tx Tx) error {
		if ok, _ := Exists(tx, Key("svm", "a")); ok {
			t.Error("deleted key still exists")
		}
		return nil
	})
}

func TestBoltFailedUpdateKeepsNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx Tx) error {
		if err := tx.Put("k", []byte("v")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	_ = s.View(ctx, func(tx Tx) error {
		if _, err := tx.Get("k"); !errors.Is(err, ErrNotFound) {
			t.Errorf("rolled-back write visible: %v", err)
		}
		return nil
	})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Update(cctx, func(Tx) error { t.Error("ran after cancel"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled update: %v", err)
	}
}

func TestBoltReopenAndSchema(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.Update(ctx, func(tx Tx) error { return tx.Put("k", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	_ = s2.View(ctx, func(tx Tx) error {
		if b, err := tx.Get("k"); err != nil || string(b) != "v" {
			t.Errorf("after reopen: %q %v", b, err)
		}
		return nil
	})
	s2.Close()

	// A migration to version 2 runs once, in order, and the version sticks.
	ran := 0
	steps := append(append([]Migration{}, migrations...), Migration{From: 1, Apply: func(tx Tx) error {
		ran++
		return tx.Put("migrated", []byte("yes"))
	}})
	s3, err := openBolt(path, steps)
	if err != nil {
		t.Fatal(err)
	}
	if s3.SchemaVersion() != 2 || ran != 1 {
		t.Fatalf("version %d, migration ran %d times", s3.SchemaVersion(), ran)
	}
	s3.Close()
	s4, err := openBolt(path, steps)
	if err != nil || ran != 1 {
		t.Fatalf("reopen at v2: %v, ran %d", err, ran)
	}
	s4.Close()

	// This build (v1) refuses a file written by a newer one.
	if _, err := OpenBolt(path); err == nil {
		t.Fatal("opened a catalog with a newer schema")
	}

	// A file whose version cannot be parsed is refused.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(btx *bolt.Tx) error { return btx.Bucket(bucketMeta).Put(keySchema, []byte("x")) })
	db.Close()
	if _, err := OpenBolt(path); err == nil {
		t.Fatal("opened a catalog with a garbled schema version")
	}
}

func TestKeyEscaping(t *testing.T) {
	if Key("a/b", "c%d") == Key("a", "b/c%d") {
		t.Fatal("parts with / run into each other")
	}
	if got := Key("a/b", "c%"); got != "a%2Fb/c%25" {
		t.Fatalf("Key = %q", got)
	}
}

// Read returns what its function read, and its function's error.
func TestRead(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if err := s.Update(ctx, func(tx Tx) error { return PutJSON(tx, Key("r", "a"), rec{Name: "a", N: 7}) }); err != nil {
		t.Fatal(err)
	}
	got, err := Read(ctx, s, func(tx Tx) (rec, error) { return GetJSON[rec](tx, Key("r", "a")) })
	if err != nil || got != (rec{Name: "a", N: 7}) {
		t.Errorf("Read = %+v, %v", got, err)
	}
	_, err = Read(ctx, s, func(tx Tx) (rec, error) { return GetJSON[rec](tx, Key("r", "missing")) })
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Read of a missing key: %v, want ErrNotFound", err)
	}
	_, err = Read(ctx, s, func(tx Tx) (bool, error) {
		if tx.Writable() {
			return false, errors.New("writable")
		}
		return true, tx.Put("x", []byte("y"))
	})
	if err == nil {
		t.Error("Read let its function write")
	}
}
