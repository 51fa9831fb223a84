package catalog

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil/etcdtest"
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

// eachStore runs test against a bbolt store, against the same wrapped in
// Rerun, which runs every Update function twice (issue 12, item 5), and
// against a store on a real etcd member (issue 16, item 1).
func eachStore(t *testing.T, test func(t *testing.T, s Store)) {
	t.Run("bolt", func(t *testing.T) {
		s, _ := openTemp(t)
		test(t, s)
	})
	t.Run("rerun", func(t *testing.T) {
		s, _ := openTemp(t)
		test(t, Rerun(s))
	})
	t.Run("etcd", func(t *testing.T) {
		test(t, openEtcd(t, etcdtest.Start(t), "test/"))
	})
}

// openEtcd opens an EtcdStore under prefix.
func openEtcd(t *testing.T, endpoint, prefix string) *EtcdStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutilHangGuard)
	defer cancel()
	s, err := OpenEtcd(ctx, EtcdOptions{Endpoints: []string{endpoint}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testutilHangGuard is testutil.HangGuard (testutil imports this package).
const testutilHangGuard = 2 * time.Minute

func TestBoltCRUDAndList(t *testing.T) { eachStore(t, testCRUDAndList) }

func testCRUDAndList(t *testing.T, s Store) {
	ctx := context.Background()
	if v, err := SchemaVersion(ctx, s); err != nil || v != CurrentSchema {
		t.Fatalf("schema %d, %v, want %d", v, err, CurrentSchema)
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

func TestBoltFailedUpdateKeepsNothing(t *testing.T) { eachStore(t, testFailedUpdateKeepsNothing) }

func testFailedUpdateKeepsNothing(t *testing.T, s Store) {
	ctx := context.Background()
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

	// A file whose version cannot be parsed is refused.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(btx *bolt.Tx) error { return btx.Bucket(bucketKV).Put([]byte(SchemaKey()), []byte("x")) })
	db.Close()
	if _, err := OpenBolt(path); err == nil {
		t.Fatal("opened a catalog with a garbled schema version")
	}
}

// Migrate runs for any Store (here one that reruns every Update): a step
// takes effect once, in order, the version sticks, and a store written by
// a newer build is refused (issue 12, item 5).
func TestMigrateAnyStore(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		steps := append(Migrations(), Migration{From: CurrentSchema, Apply: func(tx Tx) error {
			n := 0
			if b, err := tx.Get("migrated"); err == nil {
				n, _ = strconv.Atoi(string(b))
			}
			return tx.Put("migrated", []byte(strconv.Itoa(n+1)))
		}})
		for i := 0; i < 2; i++ {
			v, err := Migrate(ctx, s, steps)
			if err != nil || v != CurrentSchema+1 {
				t.Fatalf("Migrate: %d, %v", v, err)
			}
		}
		got, err := Read(ctx, s, func(tx Tx) ([]byte, error) { return tx.Get("migrated") })
		if err != nil || string(got) != "1" {
			t.Fatalf("the step took effect %q times (%v), want once", got, err)
		}
		if _, err := Migrate(ctx, s, Migrations()); err == nil {
			t.Fatal("migrated a store with a newer schema")
		}
		if _, err := Migrate(ctx, s, append(Migrations(), Migration{From: CurrentSchema + 3})); err == nil {
			t.Fatal("no error for a missing migration step")
		}
	})
}

// A file of schema 1 keeps its version in the bucket "meta" and its dump
// dates and inode map keys escaped with url.PathEscape: OpenBolt moves the
// version into the key space and migrates those keys to Key's escaping
// (schemas 2 and 3).
func TestBoltSchema1Upgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]string{
		"dump/dates/%2Fvs1%2Fvol%201/-":       "dates a",
		"dump/dates/%2Fvs1%2Fvol1/nightly%3F": "dates b",
		"dump/inomap/vs1%2Fvol%3B1@u-1":       "map",
		"storage/volume/vs1/vol1":             "volume",
	}
	err = db.Update(func(btx *bolt.Tx) error {
		kv, _ := btx.CreateBucket(bucketKV)
		meta, _ := btx.CreateBucket(bucketMeta)
		for k, v := range old {
			if err := kv.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return meta.Put(keySchema, []byte("1"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[string]string{
		Key("dump", "dates", "/vs1/vol 1", "-"):       "dates a",
		Key("dump", "dates", "/vs1/vol1", "nightly?"): "dates b",
		Key("dump", "inomap", "vs1/vol;1@u-1"):        "map",
		"storage/volume/vs1/vol1":                     "volume",
		SchemaKey():                                   strconv.Itoa(CurrentSchema),
	}
	got := map[string]string{}
	_ = s.View(context.Background(), func(tx Tx) error {
		kvs, err := tx.List("")
		for _, kv := range kvs {
			got[kv.Key] = string(kv.Value)
		}
		return err
	})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after the upgrade:\n got %v\nwant %v", got, want)
	}
}

// Rerun runs a function twice, keeps only the second run's writes, and
// does not rerun a function that fails.
func TestRerun(t *testing.T) {
	ctx := context.Background()
	b, _ := openTemp(t)
	s := Rerun(b)
	runs := 0
	err := s.Update(ctx, func(tx Tx) error {
		runs++
		return tx.Put(Key("run", strconv.Itoa(runs)), nil)
	})
	if err != nil || runs != 2 {
		t.Fatalf("Update: %v after %d runs", err, runs)
	}
	kvs, err := Read(ctx, s, func(tx Tx) ([]KV, error) { return tx.List(Prefix("run")) })
	if err != nil || len(kvs) != 1 || kvs[0].Key != Key("run", "2") {
		t.Fatalf("kept %v, %v; want only the second run's write", kvs, err)
	}
	boom := errors.New("boom")
	runs = 0
	if err := s.Update(ctx, func(Tx) error { runs++; return boom }); !errors.Is(err, boom) || runs != 1 {
		t.Fatalf("failing function: %v after %d runs", err, runs)
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
func TestRead(t *testing.T) { eachStore(t, testRead) }

func testRead(t *testing.T, s Store) {
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
