package vtl

import "fmt"

// FaultKind is a kind of injected fault.
type FaultKind string

// Kinds of faults. Each produces one of ONTAP's tape error messages.
const (
	// FaultWriteMedia fails a write with a media error
	// (MsgMediaErrorOnWrite, or MsgWriteFailedNewMediaError on the first
	// write to a newly loaded tape).
	FaultWriteMedia FaultKind = "write-media-error"
	// FaultWrite fails a write without a media error (MsgWriteFailed).
	FaultWrite FaultKind = "write-error"
	// FaultReadMedia fails a read with a media error (MsgMediaErrorOnRead).
	FaultReadMedia FaultKind = "read-media-error"
	// FaultRead fails a read (MsgReadError).
	FaultRead FaultKind = "read-error"
	// FaultInit makes the cartridge impossible to initialise when a drive
	// opens it (MsgCouldNotInitializeMedia).
	FaultInit FaultKind = "init-error"
)

// Fault is a fault injected into a cartridge.
type Fault struct {
	Kind FaultKind
	// At is the tape position (objects, records and file marks, from
	// BOT) at which a read or write fault fires; -1 means anywhere.
	At int64
	// Count is how many times the fault fires before it is gone; 0 means
	// every time.
	Count int `json:",omitempty"`
}

// InjectFault adds a fault to a cartridge. Faults persist with the
// library's state until they have fired Count times or are cleared.
func (l *Library) InjectFault(barcode string, f Fault) error {
	switch f.Kind {
	case FaultWriteMedia, FaultWrite, FaultReadMedia, FaultRead, FaultInit:
	default:
		return fmt.Errorf("vtl: unknown fault kind %q", f.Kind)
	}
	if f.At < -1 || f.Count < 0 {
		return fmt.Errorf("vtl: fault %+v: bad position or count", f)
	}
	return l.updateCart(barcode, func(c *Cartridge) { c.Faults = append(c.Faults, f) })
}

// ClearFaults removes every injected fault of a cartridge and its short
// tape setting.
func (l *Library) ClearFaults(barcode string) error {
	return l.updateCart(barcode, func(c *Cartridge) { c.Faults, c.ShortTape = nil, 0 })
}

// SetShortTape makes a cartridge end after size bytes, below its nominal
// capacity (a fault: a short or damaged tape). 0 restores it.
func (l *Library) SetShortTape(barcode string, size int64) error {
	if size < 0 {
		return fmt.Errorf("vtl: short tape %s: negative size", barcode)
	}
	return l.updateCart(barcode, func(c *Cartridge) { c.ShortTape = size })
}

// fire reports whether a fault of that kind fires on the cartridge at
// tape position at, consuming one count. Call without l.mu.
func (l *Library) fire(barcode string, kind FaultKind, at int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.st.Carts[barcode]
	if c == nil {
		return false
	}
	for i, f := range c.Faults {
		if f.Kind != kind || (f.At >= 0 && f.At != at) {
			continue
		}
		if f.Count > 0 {
			c.Faults[i].Count--
			if c.Faults[i].Count == 0 {
				c.Faults = append(c.Faults[:i], c.Faults[i+1:]...)
			}
			_ = l.save()
		}
		return true
	}
	return false
}
