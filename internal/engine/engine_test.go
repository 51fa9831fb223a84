package engine

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// named is an engine that only has a name.
type named string

func (n named) Info() Info { return Info{Name: string(n)} }
func (named) Backup(context.Context, *BackupJob) (Result, error) {
	return Result{}, nil
}
func (named) Recover(context.Context, *RecoverJob) (Result, error) {
	return Result{}, nil
}
func (named) Failure(err error) Failure { return DefaultFailure(err) }

// Issue 12 item 1: the registry keeps engines by name in order, refuses a
// second engine of a name and an empty name; nil holds none.
func TestRegistry(t *testing.T) {
	r, err := NewRegistry(named("dump"), named("fake"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(named("dump")); err == nil {
		t.Fatal("second dump registered")
	}
	if err := r.Register(named("")); err == nil {
		t.Fatal("empty name registered")
	}
	var names []string
	for _, i := range r.Infos() {
		names = append(names, i.Name)
	}
	if !slices.Equal(names, []string{"dump", "fake"}) {
		t.Fatalf("infos %v", names)
	}
	if e, ok := r.Get("fake"); !ok || e.Info().Name != "fake" {
		t.Fatalf("get fake: %v %v", e, ok)
	}
	if e, ok := r.Default(); !ok || e.Info().Name != "dump" {
		t.Fatalf("default: %v %v", e, ok)
	}
	var none *Registry
	if _, ok := none.Get("dump"); ok || none.Infos() != nil {
		t.Fatal("nil registry holds an engine")
	}
	if _, ok := none.Default(); ok {
		t.Fatal("nil registry has a default")
	}
}

// Issue 12 item 2: Run returns f's error, turns a panic into a
// *PanicError with the value and the stack, and Go reports it to done.
func TestRunRecoversPanic(t *testing.T) {
	want := errors.New("plain")
	if err := Run(func() error { return want }); err != want {
		t.Fatalf("Run error %v", err)
	}
	cause := errors.New("cause")
	err := Run(func() error { panic(cause) })
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != cause || len(pe.Stack) == 0 || !errors.Is(err, cause) {
		t.Fatalf("Run panic: %#v", err)
	}
	f := DefaultFailure(err)
	if f.Halt != ndmp.DataHaltInternalError || f.Message != pe.Message() {
		t.Fatalf("failure of a panic %+v", f)
	}
	done := make(chan error, 1)
	Go(func() error { panic("in goroutine") }, func(err error) { done <- err })
	if err := <-done; !errors.As(err, &pe) || pe.Value != "in goroutine" {
		t.Fatalf("Go: %v", err)
	}
}

// DefaultFailure halts a closed data connection with CONNECT_ERROR and
// anything else with INTERNAL_ERROR.
func TestDefaultFailure(t *testing.T) {
	if f := DefaultFailure(io.ErrClosedPipe); f.Halt != ndmp.DataHaltConnectError {
		t.Fatalf("closed pipe: %+v", f)
	}
	if f := DefaultFailure(errors.New("x")); f.Halt != ndmp.DataHaltInternalError || f.Message != "x" {
		t.Fatalf("other: %+v", f)
	}
}
