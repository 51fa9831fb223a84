package admin

import (
	"github.com/tapestry-ndmp/tapestry/internal/options"
)

// Option is one node option as the options command shows it.
type Option struct {
	Name  string `json:"option-name"`
	Value string `json:"option-value"`
	// Default is the value the option has until it is set.
	Default string `json:"default-value"`
}

// ReservationsOption is the option that selects how tape devices are
// reserved (T6): off, scsi or persistent. The tape registry reads it
// (package options).
const ReservationsOption = options.TapeReservations

func wireOption(o options.Option) Option {
	return Option{Name: o.Name, Value: o.Value, Default: o.Default}
}
