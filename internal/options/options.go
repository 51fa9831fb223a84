// Package options is the node options store (the options command): the
// options the specification names, their defaults and allowed values, kept
// in the catalog. The packages that act on an option read it here
// themselves when they need it (the tape registry tape.reservations, the NDMP
// server ndmpd.offset_map.enable), so that setting one needs no hook into
// the running daemon.
//
// Catalog key layout: admin/option/<name> holds the value as text; an option
// without a key has its default.
package options

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// The options Tapestry knows.
const (
	// TapeReservations selects how tape devices are reserved (T6): off,
	// scsi or persistent. Read by package tape.
	TapeReservations = "tape.reservations"
	// BackupLog turns the backup event log on and off. Applied by the
	// admin API to the event log.
	BackupLog = "backup.log.enable"
	// OffsetMap makes dump backups write the offset map that enhanced DAR
	// needs. Read by the NDMP server when it starts a backup.
	OffsetMap = "ndmpd.offset_map.enable"
	// RestartableContexts is the most restartable-backup contexts the
	// node keeps (D12, issue 14): a decimal number from 1 to 1024. Read by
	// package restartable when a backup starts.
	RestartableContexts = "ndmpd.restartable_backup.max_contexts"
)

// Option is one option with its current value.
type Option struct {
	Name  string
	Value string
	// Default is the value the option has until it is set.
	Default string
}

// def describes a known option: its default and allowed values, a list
// or (when Max is set) the decimal numbers from Min to Max.
type def struct {
	Default  string
	Allowed  []string
	Min, Max int
}

// allows reports whether value is one of the option's values.
func (d def) allows(value string) bool {
	if d.Max == 0 {
		return slices.Contains(d.Allowed, value)
	}
	n, err := strconv.Atoi(value)
	return err == nil && strconv.Itoa(n) == value && n >= d.Min && n <= d.Max
}

// values describes the option's values for a refusal.
func (d def) values() string {
	if d.Max == 0 {
		return strings.Join(d.Allowed, ", ")
	}
	return fmt.Sprintf("a number from %d to %d", d.Min, d.Max)
}

// known are the options the specification names.
var known = map[string]def{
	TapeReservations:    {Default: "off", Allowed: []string{"scsi", "persistent", "off"}},
	BackupLog:           {Default: "on", Allowed: []string{"on", "off"}},
	OffsetMap:           {Default: "on", Allowed: []string{"on", "off"}},
	RestartableContexts: {Default: "64", Min: 1, Max: 1024},
}

// ErrUnknown is returned for an option name Tapestry does not know.
var ErrUnknown = errors.New("unknown option")

// ErrBadValue is returned for a value the option does not accept.
var ErrBadValue = errors.New("invalid option value")

func key(name string) string { return catalog.Key("admin", "option", name) }

// Names lists the known option names in order.
func Names() []string {
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Value returns the current value of a known option: the value stored in
// the catalog, or the option's default.
func Value(ctx context.Context, store catalog.Store, name string) (string, error) {
	d, ok := known[name]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknown, name)
	}
	val := d.Default
	err := store.View(ctx, func(tx catalog.Tx) error {
		b, err := tx.Get(key(name))
		if errors.Is(err, catalog.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		val = string(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read option %s: %w", name, err)
	}
	return val, nil
}

// Int returns the value of a numeric option.
func Int(ctx context.Context, store catalog.Store, name string) (int, error) {
	v, err := Value(ctx, store, name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("option %s: %w", name, err)
	}
	return n, nil
}

// On reports whether an on/off option is on.
func On(ctx context.Context, store catalog.Store, name string) (bool, error) {
	v, err := Value(ctx, store, name)
	return v == "on", err
}

// Set validates and stores an option value. Readers see it the next time
// they read the option.
func Set(ctx context.Context, store catalog.Store, name, value string) (Option, error) {
	d, ok := known[name]
	if !ok {
		return Option{}, fmt.Errorf("%w %q; known options are %s", ErrUnknown, name, strings.Join(Names(), ", "))
	}
	if value == "" || !d.allows(value) {
		return Option{}, fmt.Errorf("%w %q for option %s; use %s", ErrBadValue, value, name, d.values())
	}
	err := store.Update(ctx, func(tx catalog.Tx) error {
		return tx.Put(key(name), []byte(value))
	})
	if err != nil {
		return Option{}, fmt.Errorf("set option %s: %w", name, err)
	}
	return Option{Name: name, Value: value, Default: d.Default}, nil
}

// List returns every known option with its current value, in name order.
func List(ctx context.Context, store catalog.Store) ([]Option, error) {
	out := make([]Option, 0, len(known))
	err := store.View(ctx, func(tx catalog.Tx) error {
		out = out[:0]
		for _, n := range Names() {
			o := Option{Name: n, Value: known[n].Default, Default: known[n].Default}
			b, err := tx.Get(key(n))
			switch {
			case err == nil:
				o.Value = string(b)
			case !errors.Is(err, catalog.ErrNotFound):
				return err
			}
			out = append(out, o)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list options: %w", err)
	}
	return out, nil
}
