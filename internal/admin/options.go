package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// Option is one node option as the options command shows it.
type Option struct {
	Name  string `json:"option-name"`
	Value string `json:"option-value"`
	// Default is the value the option has until it is set.
	Default string `json:"default-value"`
}

// optionDef describes a known option: its default and allowed values
// (nil Allowed means any non-empty value).
type optionDef struct {
	Default string
	Allowed []string
}

// knownOptions are the options the specification names. Other packages read
// them with OptionValue.
var knownOptions = map[string]optionDef{
	ReservationsOption:        {Default: "off", Allowed: []string{"scsi", "persistent", "off"}},
	"backup.log.enable":       {Default: "on", Allowed: []string{"on", "off"}},
	"ndmpd.offset_map.enable": {Default: "on", Allowed: []string{"on", "off"}},
}

// ErrUnknownOption is returned for an option name Tapestry does not know.
var ErrUnknownOption = errors.New("unknown option")

// ErrBadOptionValue is returned for a value the option does not accept.
var ErrBadOptionValue = errors.New("invalid option value")

const optionsPrefix = "admin"

func optionKey(name string) string { return catalog.Key(optionsPrefix, "option", name) }

// OptionNames lists the known option names in order.
func OptionNames() []string {
	names := make([]string, 0, len(knownOptions))
	for n := range knownOptions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// OptionValue returns the current value of a known option: the value stored
// in the catalog, or the option's default.
func OptionValue(ctx context.Context, store catalog.Store, name string) (string, error) {
	def, ok := knownOptions[name]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownOption, name)
	}
	val := def.Default
	err := store.View(ctx, func(tx catalog.Tx) error {
		b, err := tx.Get(optionKey(name))
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

// ReservationsOption is the option that selects how tape devices are
// reserved (T6): off, scsi or persistent.
const ReservationsOption = "tape.reservations"

// OptionHook applies a changed option to the running node. The daemon
// sets ServerConfig.OptionHook so that an option set through the API takes
// effect at once (tape.reservations reaches the tape registry).
type OptionHook func(ctx context.Context, o Option) error

// SetOption validates and stores an option value. It does not apply the
// value to the running node; the API server does that after it
// (ServerConfig.OptionHook).
func SetOption(ctx context.Context, store catalog.Store, name, value string) (Option, error) {
	def, ok := knownOptions[name]
	if !ok {
		return Option{}, fmt.Errorf("%w %q; known options are %s", ErrUnknownOption, name, strings.Join(OptionNames(), ", "))
	}
	if value == "" || (def.Allowed != nil && !slices.Contains(def.Allowed, value)) {
		return Option{}, fmt.Errorf("%w %q for option %s; use %s", ErrBadOptionValue, value, name, strings.Join(def.Allowed, ", "))
	}
	err := store.Update(ctx, func(tx catalog.Tx) error {
		return tx.Put(optionKey(name), []byte(value))
	})
	if err != nil {
		return Option{}, fmt.Errorf("set option %s: %w", name, err)
	}
	return Option{Name: name, Value: value, Default: def.Default}, nil
}

// ListOptions returns every known option with its current value, in name
// order.
func ListOptions(ctx context.Context, store catalog.Store) ([]Option, error) {
	out := make([]Option, 0, len(knownOptions))
	err := store.View(ctx, func(tx catalog.Tx) error {
		for _, n := range OptionNames() {
			o := Option{Name: n, Value: knownOptions[n].Default, Default: knownOptions[n].Default}
			b, err := tx.Get(optionKey(n))
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
