package testutil

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// DumpCatalog returns every key of st with its value; the test fails if
// the store cannot be read.
func DumpCatalog(t testing.TB, st catalog.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := st.View(context.Background(), func(tx catalog.Tx) error {
		kvs, err := tx.List("")
		for _, kv := range kvs {
			out[kv.Key] = string(kv.Value)
		}
		return err
	})
	if err != nil {
		t.Fatalf("reading the catalog: %v", err)
	}
	return out
}

// RefusedUnchanged runs fn, which must fail with an error wrapping kind
// (when kind is set) and containing msg (when msg is set), and checks that
// fn left every key and value of st as it was. name labels the failures.
func RefusedUnchanged(t testing.TB, st catalog.Store, name string, kind error, msg string, fn func() error) {
	t.Helper()
	before := DumpCatalog(t, st)
	err := fn()
	if err == nil {
		t.Errorf("%s: no error, want %v", name, kind)
		return
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("%s: error %q does not wrap %v", name, err, kind)
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		t.Errorf("%s: error %q does not contain %q", name, err, msg)
	}
	after := DumpCatalog(t, st)
	if len(before) != len(after) {
		t.Errorf("%s: catalog changed from %d to %d keys", name, len(before), len(after))
	}
	for k, v := range before {
		if a, ok := after[k]; !ok || a != v {
			t.Errorf("%s: catalog key %s changed", name, k)
		}
	}
}

// OpenCatalog opens (creating it) the bbolt catalog at path for a test and
// returns it wrapped in catalog.Rerun, so that every Update function runs
// twice as a store that retries would run it: the code under test must keep
// the contract of catalog.Store. The test's cleanup closes it.
func OpenCatalog(t testing.TB, path string) catalog.Store {
	t.Helper()
	st, err := catalog.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return catalog.Rerun(st)
}
