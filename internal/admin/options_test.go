package admin

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// T6: SetOption stores a valid value and refuses a bad one; the server's
// applyOption runs ServerConfig.OptionHook and reports a hook's failure.
func TestSetOptionHook(t *testing.T) {
	st, err := catalog.OpenBolt(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	var got []Option
	fail := false
	s := NewServer(ServerConfig{Store: st, OptionHook: func(_ context.Context, o Option) error {
		got = append(got, o)
		if fail {
			return errors.New("device gone")
		}
		return nil
	}})
	o, err := SetOption(ctx, st, ReservationsOption, "scsi")
	if err != nil {
		t.Fatal(err)
	}
	if o != (Option{Name: ReservationsOption, Value: "scsi", Default: "off"}) {
		t.Fatalf("SetOption returned %+v", o)
	}
	if err := s.applyOption(ctx, o); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != o {
		t.Fatalf("hook saw %+v", got)
	}
	if _, err := SetOption(ctx, st, ReservationsOption, "sometimes"); !errors.Is(err, ErrBadOptionValue) {
		t.Fatalf("bad value: %v", err)
	}
	fail = true
	if err := s.applyOption(ctx, Option{Name: ReservationsOption, Value: "persistent"}); err == nil || len(got) != 2 {
		t.Fatalf("failing hook: %v, hook calls %d", err, len(got))
	}
	// Without a hook nothing but the API's own options is applied.
	if err := NewServer(ServerConfig{Store: st}).applyOption(ctx, Option{Name: ReservationsOption, Value: "off"}); err != nil || len(got) != 2 {
		t.Fatalf("no hook: %v, hook calls %d", err, len(got))
	}
	if v, err := OptionValue(ctx, st, ReservationsOption); err != nil || v != "scsi" {
		t.Fatalf("stored %q %v", v, err)
	}
}
