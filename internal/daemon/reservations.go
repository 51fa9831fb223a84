package daemon

import (
	"context"
	"fmt"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// applyReservations sets the tape registry's reservation method from the
// stored tape.reservations option (T6); Open calls it at start.
func (d *Daemon) applyReservations(ctx context.Context) error {
	v, err := admin.OptionValue(ctx, d.store, admin.ReservationsOption)
	if err != nil {
		return err
	}
	return d.setReservations(v)
}

func (d *Daemon) setReservations(v string) error {
	m, err := tape.ParseReservations(v)
	if err != nil {
		return fmt.Errorf("option %s: %w", admin.ReservationsOption, err)
	}
	if err := d.tapes.SetReservations(m); err != nil {
		return fmt.Errorf("option %s: %w", admin.ReservationsOption, err)
	}
	d.log.Info("tape reservations", "method", string(m))
	return nil
}

// applyOption is the admin API's OptionHook: a changed option takes effect
// on the running node at once.
func (d *Daemon) applyOption(_ context.Context, o admin.Option) error {
	if o.Name == admin.ReservationsOption && d.tapes != nil {
		return d.setReservations(o.Value)
	}
	return nil
}
