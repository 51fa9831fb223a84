package catalog

import (
	"context"
	"errors"
)

// errRerun rolls back the first run of an Update function in a rerunStore.
var errRerun = errors.New("catalog: rerun")

// rerunStore is the Store of Rerun.
type rerunStore struct{ Store }

// Rerun returns a Store that runs every Update function twice, the way a
// store that retries on conflicts does: first in a transaction that it
// rolls back, then in the one it commits. A function that fails the first
// time is not run again. Tests use it to check that callers keep the
// contract of Store: an Update function only touches its Tx and assigns
// its results afresh on every run.
func Rerun(st Store) Store { return rerunStore{st} }

// Update implements Store.
func (s rerunStore) Update(ctx context.Context, fn func(Tx) error) error {
	err := s.Store.Update(ctx, func(tx Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errRerun
	})
	if !errors.Is(err, errRerun) {
		return err
	}
	return s.Store.Update(ctx, fn)
}
