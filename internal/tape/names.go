package tape

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadName is wrapped by every error about a malformed device name,
// alias or mapping.
var ErrBadName = errors.New("tape: invalid name")

// maxAliasDigits bounds the digits of an alias number ("st" + digits).
const maxAliasDigits = 6

// Rewind is the rewind type of a tape device name (T1).
type Rewind int

// Rewind types.
const (
	// RewindOnClose (prefix r) rewinds the tape when the device is
	// closed.
	RewindOnClose Rewind = iota
	// NoRewind (prefix nr) leaves the tape where it is on close, so that
	// several tape files can be written one after the other.
	NoRewind
	// UnloadReload (prefix ur) unloads the tape at the end of a tape file
	// and loads the next cartridge of the library's sequence.
	UnloadReload
)

// Prefix returns the device name prefix of the rewind type: r, nr or ur.
func (r Rewind) Prefix() string {
	switch r {
	case RewindOnClose:
		return "r"
	case NoRewind:
		return "nr"
	case UnloadReload:
		return "ur"
	}
	return "?"
}

// Meaning returns the description of the rewind type used in device
// listings, for example "no rewind device".
func (r Rewind) Meaning() string {
	switch r {
	case RewindOnClose:
		return "rewind device"
	case NoRewind:
		return "no rewind device"
	case UnloadReload:
		return "unload/reload device"
	}
	return "unknown device"
}

// String returns the prefix.
func (r Rewind) String() string { return r.Prefix() }

// Compression is the compression type of a tape device name: one of the
// letters l, m, h and a.
type Compression byte

// Compression types, from the least to the most compression.
const (
	Low     Compression = 'l'
	Medium  Compression = 'm'
	High    Compression = 'h'
	Highest Compression = 'a'
)

// Compressions lists the compression types in the order device listings
// show them.
var compressions = [4]Compression{Low, Medium, High, Highest}

// Compressions returns the four compression types in listing order
// (l, m, h, a).
func Compressions() []Compression { return compressions[:] }

// Valid reports whether c is one of l, m, h and a.
func (c Compression) Valid() bool {
	return c == Low || c == Medium || c == High || c == Highest
}

// Meaning returns the spec's description of the compression type, for
// example "Highest compression".
func (c Compression) Meaning() string {
	switch c {
	case Low:
		return "Low compression"
	case Medium:
		return "Medium compression"
	case High:
		return "High compression"
	case Highest:
		return "Highest compression"
	}
	return "unknown compression"
}

// String returns the letter.
func (c Compression) String() string { return string(rune(c)) }

// DeviceName is a parsed tape device name such as nrst0a.
type DeviceName struct {
	Rewind      Rewind
	Alias       string // the drive's alias, "st" followed by digits
	Compression Compression
}

// String returns the device name, for example "nrst0a".
func (n DeviceName) String() string {
	return n.Rewind.Prefix() + n.Alias + n.Compression.String()
}

// ParseDeviceName parses a tape device name of the form
// rewind_type st alias_number compression_type, for example nrst0a, rst12l
// or urst3h. The alias number keeps its digits as written: st0 and st00 are
// different aliases.
func ParseDeviceName(s string) (DeviceName, error) {
	var n DeviceName
	rest := s
	switch {
	case strings.HasPrefix(rest, "nr"):
		n.Rewind, rest = NoRewind, rest[2:]
	case strings.HasPrefix(rest, "ur"):
		n.Rewind, rest = UnloadReload, rest[2:]
	case strings.HasPrefix(rest, "r"):
		n.Rewind, rest = RewindOnClose, rest[1:]
	default:
		return n, fmt.Errorf("%w: tape device name %q: must begin with a rewind type r, nr or ur", ErrBadName, s)
	}
	if !strings.HasPrefix(rest, "st") {
		return n, fmt.Errorf("%w: tape device name %q: expected \"st\" after the rewind type %q", ErrBadName, s, n.Rewind.Prefix())
	}
	if len(rest) < 2 {
		return n, fmt.Errorf("%w: tape device name %q: missing compression type", ErrBadName, s)
	}
	c := Compression(rest[len(rest)-1])
	if !c.Valid() {
		return n, fmt.Errorf("%w: tape device name %q: must end with a compression type l, m, h or a", ErrBadName, s)
	}
	alias := rest[:len(rest)-1]
	if _, _, err := parseAlias(alias); err != nil {
		return n, fmt.Errorf("%w: tape device name %q: %v", ErrBadName, s, err)
	}
	if !strings.HasPrefix(alias, "st") {
		return n, fmt.Errorf("%w: tape device name %q: alias %q is not a tape drive alias", ErrBadName, s, alias)
	}
	n.Alias, n.Compression = alias, c
	return n, nil
}

// DeviceNames returns the twelve device names of a drive alias in listing
// order: for each compression type l, m, h, a the r, nr and ur devices.
func DeviceNames(alias string) []DeviceName {
	out := make([]DeviceName, 0, 12)
	for _, c := range compressions {
		for _, r := range []Rewind{RewindOnClose, NoRewind, UnloadReload} {
			out = append(out, DeviceName{Rewind: r, Alias: alias, Compression: c})
		}
	}
	return out
}

// DeviceKind is the kind of a tape device of a node.
type DeviceKind int

// Device kinds.
const (
	KindDrive DeviceKind = iota + 1
	KindChanger
	KindBridge
)

// String returns "tape drive", "media changer" or "bridge".
func (k DeviceKind) String() string {
	switch k {
	case KindDrive:
		return "tape drive"
	case KindChanger:
		return "media changer"
	case KindBridge:
		return "bridge"
	}
	return "unknown"
}

// aliasPrefix returns the alias prefix of a kind: st or mc.
func (k DeviceKind) aliasPrefix() string {
	switch k {
	case KindDrive:
		return "st"
	case KindChanger:
		return "mc"
	}
	return ""
}

// ParseAlias checks an alias name, st<N> for a tape drive or mc<N> for a
// medium changer, and returns the kind of device it names and its number.
func ParseAlias(s string) (DeviceKind, int, error) {
	k, n, err := parseAlias(s)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %v", ErrBadName, err)
	}
	return k, n, nil
}

func parseAlias(s string) (DeviceKind, int, error) {
	var k DeviceKind
	switch {
	case strings.HasPrefix(s, "st"):
		k = KindDrive
	case strings.HasPrefix(s, "mc"):
		k = KindChanger
	default:
		return 0, 0, fmt.Errorf("alias %q must be st<number> (tape drive) or mc<number> (media changer)", s)
	}
	digits := s[2:]
	if digits == "" {
		return 0, 0, fmt.Errorf("alias %q has no number", s)
	}
	if len(digits) > maxAliasDigits {
		return 0, 0, fmt.Errorf("alias %q: number longer than %d digits", s, maxAliasDigits)
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, 0, fmt.Errorf("alias %q: %q is not a decimal number", s, digits)
		}
	}
	n, _ := strconv.Atoi(digits)
	return k, n, nil
}
