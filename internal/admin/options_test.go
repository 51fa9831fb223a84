package admin

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// T6: SetOption runs the context's OptionHook after storing a valid value,
// not for a refused one, and reports a hook's failure.
func TestSetOptionHook(t *testing.T) {
	st, err := catalog.OpenBolt(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got []Option
	fail := false
	ctx := WithOptionHook(context.Background(), func(_ context.Context, o Option) error {
		got = append(got, o)
		if fail {
			return errors.New("device gone")
		}
		return nil
	})
	if _, err := SetOption(ctx, st, ReservationsOption, "scsi"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (Option{Name: ReservationsOption, Value: "scsi", Default: "off"}) {
		t.Fatalf("hook saw %+v", got)
	}
	if _, err := SetOption(ctx, st, ReservationsOption, "sometimes"); !errors.Is(err, ErrBadOptionValue) || len(got) != 1 {
		t.Fatalf("bad value: %v, hook calls %d", err, len(got))
	}
	fail = true
	if _, err := SetOption(ctx, st, ReservationsOption, "persistent"); err == nil || len(got) != 2 {
		t.Fatalf("failing hook: %v, hook calls %d", err, len(got))
	}
	// Without a hook the value is only stored.
	if _, err := SetOption(context.Background(), st, ReservationsOption, "off"); err != nil || len(got) != 2 {
		t.Fatalf("no hook: %v, hook calls %d", err, len(got))
	}
	if v, err := OptionValue(context.Background(), st, ReservationsOption); err != nil || v != "off" {
		t.Fatalf("stored %q %v", v, err)
	}
}
