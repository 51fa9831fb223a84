package testutil

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// recorder is a testing.TB that keeps the failures it is told about.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

var errKind = errors.New("kind")

func TestRefusedUnchanged(t *testing.T) {
	st, err := catalog.OpenBolt(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	put := func(k, v string) error {
		return st.Update(ctx, func(tx catalog.Tx) error { return tx.Put(k, []byte(v)) })
	}
	if err := put("a", "1"); err != nil {
		t.Fatal(err)
	}
	if got := DumpCatalog(t, st); len(got) != 2 || got["a"] != "1" || got[catalog.SchemaKey()] != strconv.Itoa(catalog.CurrentSchema) {
		t.Fatalf("DumpCatalog = %v", got)
	}
	refused := fmt.Errorf("wrapped: %w", errKind)
	cases := []struct {
		name  string
		kind  error
		msg   string
		fn    func() error
		fails int
	}{
		{"refused", errKind, "wrapped", func() error { return refused }, 0},
		{"no error", errKind, "", func() error { return nil }, 1},
		{"other kind", errors.ErrUnsupported, "", func() error { return refused }, 1},
		{"other message", nil, "elsewhere", func() error { return refused }, 1},
		{"changed value", nil, "", func() error { put("a", "2"); return refused }, 1},
		{"added key", nil, "", func() error { put("b", "1"); return refused }, 1},
	}
	for _, c := range cases {
		r := &recorder{TB: t}
		RefusedUnchanged(r, st, c.name, c.kind, c.msg, c.fn)
		if len(r.errs) != c.fails {
			t.Errorf("%s: %d failures %q, want %d", c.name, len(r.errs), r.errs, c.fails)
		}
	}
}
