package catalog

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// SchemaKey returns the key of the schema version: the version of the key
// layout the store holds, a decimal number. An empty store has version 0.
func SchemaKey() string { return Key("catalog", "schema-version") }

// Migration moves the key layout from version From to From+1. Apply runs in
// one read-write transaction together with the version bump; like every
// Update function it may run more than once and must only touch its Tx.
type Migration struct {
	From  int
	Apply func(Tx) error
}

// CurrentSchema is the schema version this build writes.
const CurrentSchema = 3

// Migrations returns every step up to CurrentSchema, oldest first.
func Migrations() []Migration {
	return []Migration{
		{From: 0, Apply: func(Tx) error { return nil }},
		{From: 1, Apply: func(tx Tx) error { return rekeyEscaped(tx, "dump", "dates") }},
		{From: 2, Apply: func(tx Tx) error { return rekeyEscaped(tx, "dump", "inomap") }},
	}
}

// SchemaVersion returns the schema version st holds.
func SchemaVersion(ctx context.Context, st Store) (int, error) {
	return Read(ctx, st, schemaVersion)
}

func schemaVersion(tx Tx) (int, error) {
	b, err := tx.Get(SchemaKey())
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(string(b))
	if err != nil || v < 0 {
		return 0, fmt.Errorf("catalog: bad schema version %q", b)
	}
	return v, nil
}

// Migrate brings the key layout of st to the last version steps lead to,
// one step per transaction, and returns that version. It works on any
// Store; every process that opens a store calls it (OpenBolt does). A store
// written by a newer build (a higher version) is refused.
func Migrate(ctx context.Context, st Store, steps []Migration) (int, error) {
	target := 0
	for _, m := range steps {
		target = max(target, m.From+1)
	}
	for {
		v, err := SchemaVersion(ctx, st)
		if err != nil {
			return 0, err
		}
		switch {
		case v > target:
			return v, fmt.Errorf("catalog: schema version %d is newer than this build's %d", v, target)
		case v == target:
			return v, nil
		}
		if err := st.Update(ctx, func(tx Tx) error { return migrateStep(tx, v, steps) }); err != nil {
			return v, err
		}
	}
}

// migrateStep applies the step from version from, unless another process
// did already.
func migrateStep(tx Tx, from int, steps []Migration) error {
	v, err := schemaVersion(tx)
	if err != nil || v != from {
		return err // another process migrated meanwhile: look again
	}
	for _, m := range steps {
		if m.From != v {
			continue
		}
		if err := m.Apply(tx); err != nil {
			return fmt.Errorf("catalog: migrate schema %d to %d: %w", v, v+1, err)
		}
		return tx.Put(SchemaKey(), []byte(strconv.Itoa(v+1)))
	}
	return fmt.Errorf("catalog: no migration from schema version %d", v)
}

// rekeyEscaped rebuilds with Key the keys below Prefix(ns, kind) whose
// parts were escaped with url.PathEscape: the dump dates until schema 2,
// the dump inode maps until schema 3.
func rekeyEscaped(tx Tx, ns, kind string) error {
	prefix := Prefix(ns, kind)
	kvs, err := tx.List(prefix)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		parts := strings.Split(strings.TrimPrefix(kv.Key, prefix), "/")
		for i, p := range parts {
			if parts[i], err = url.PathUnescape(p); err != nil {
				return fmt.Errorf("key %q: %w", kv.Key, err)
			}
		}
		nk := Key(append([]string{ns, kind}, parts...)...)
		if nk == kv.Key {
			continue
		}
		if err := tx.Put(nk, kv.Value); err != nil {
			return err
		}
		if err := tx.Delete(kv.Key); err != nil {
			return err
		}
	}
	return nil
}
