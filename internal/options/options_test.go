package options

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// T6, M2: Set stores a valid value and refuses a bad one or an unknown
// option without changing anything; Value and List read the stored value or
// the default (issue 12 item 7: the options store its readers share).
func TestSetValueList(t *testing.T) {
	st := testutil.OpenCatalog(t, filepath.Join(t.TempDir(), "c.db")) // reruns every Update (issue 12, item 5)
	ctx := context.Background()
	if v, err := Value(ctx, st, TapeReservations); err != nil || v != "off" {
		t.Fatalf("default %q %v", v, err)
	}
	if on, err := On(ctx, st, OffsetMap); err != nil || !on {
		t.Fatalf("offset map default %v %v", on, err)
	}
	o, err := Set(ctx, st, TapeReservations, "scsi")
	if err != nil || o != (Option{Name: TapeReservations, Value: "scsi", Default: "off"}) {
		t.Fatalf("Set: %+v %v", o, err)
	}
	if _, err := Set(ctx, st, TapeReservations, "sometimes"); !errors.Is(err, ErrBadValue) {
		t.Fatalf("bad value: %v", err)
	}
	if _, err := Set(ctx, st, "no.such.option", "on"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown option: %v", err)
	}
	if _, err := Value(ctx, st, "no.such.option"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown option value: %v", err)
	}
	if _, err := Set(ctx, st, OffsetMap, "off"); err != nil {
		t.Fatal(err)
	}
	if on, err := On(ctx, st, OffsetMap); err != nil || on {
		t.Fatalf("offset map after off: %v %v", on, err)
	}
	all, err := List(ctx, st)
	if err != nil || len(all) != 4 {
		t.Fatalf("List: %+v %v", all, err)
	}
	want := []Option{{BackupLog, "on", "on"}, {OffsetMap, "off", "on"}, {RestartableContexts, "64", "64"}, {TapeReservations, "scsi", "off"}}
	for i, w := range want {
		if all[i] != w {
			t.Errorf("List[%d] = %+v, want %+v", i, all[i], w)
		}
	}
}

// D12, issue 14 item 1: the bound on restartable-backup contexts is a
// number from 1 to 1024; anything else is refused and the value kept.
func TestNumericOption(t *testing.T) {
	st := testutil.OpenCatalog(t, filepath.Join(t.TempDir(), "c.db"))
	ctx := context.Background()
	if n, err := Int(ctx, st, RestartableContexts); err != nil || n != 64 {
		t.Fatalf("default %d %v", n, err)
	}
	for _, bad := range []string{"0", "1025", "-1", "012", "10k", " 5", ""} {
		testutil.RefusedUnchanged(t, st, "value "+bad, ErrBadValue, "a number from 1 to 1024", func() error {
			_, err := Set(ctx, st, RestartableContexts, bad)
			return err
		})
	}
	if _, err := Set(ctx, st, RestartableContexts, "1024"); err != nil {
		t.Fatal(err)
	}
	if n, err := Int(ctx, st, RestartableContexts); err != nil || n != 1024 {
		t.Fatalf("after set %d %v", n, err)
	}
}
