package tape

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxSerialLen is the longest serial number an SN mapping may hold.
const MaxSerialLen = 32

// MappingKind tells what an alias is bound to.
type MappingKind int

// Mapping kinds.
const (
	// ByPath binds an alias to a physical path name (PPN).
	ByPath MappingKind = iota + 1
	// BySerial binds an alias to a serial number.
	BySerial
)

// Mapping is what an alias points at: a physical path name, either
// host_adapter.device_id[Llun] for a direct-attached device or
// switch:port.device_id[Llun] for a Fibre Channel switch-attached one, or a
// serial number SN[xxxxxxxxxx]L[X]. The zero LUN is not written.
type Mapping struct {
	Kind MappingKind
	// Switch and Port are set for a switch-attached PPN.
	Switch, Port string
	// Adapter is the host adapter of a direct-attached PPN, e.g. "0b".
	Adapter  string
	DeviceID int
	// Serial is the serial number of an SN mapping, upper case.
	Serial string
	LUN    int
}

// String returns the canonical text of the mapping: "0b.4", "0b.4L1",
// "MY_SWITCH:5.3L2", "SN[123456]L4". The serial number is upper case.
func (m Mapping) String() string {
	lun := ""
	if m.LUN != 0 {
		lun = "L" + strconv.Itoa(m.LUN)
	}
	switch m.Kind {
	case BySerial:
		return "SN[" + m.Serial + "]" + lun
	case ByPath:
		if m.Switch != "" {
			return m.Switch + ":" + m.Port + "." + strconv.Itoa(m.DeviceID) + lun
		}
		return m.Adapter + "." + strconv.Itoa(m.DeviceID) + lun
	}
	return ""
}

// SerialMapping returns the SN mapping of a serial number and LUN, checking
// the serial number as ParseMapping does.
func SerialMapping(serial string, lun int) (Mapping, error) {
	if err := checkSerial(serial); err != nil {
		return Mapping{}, fmt.Errorf("%w: serial number %q: %v", ErrBadName, serial, err)
	}
	if lun < 0 || lun > maxLUN {
		return Mapping{}, fmt.Errorf("%w: LUN %d out of range 0-%d", ErrBadName, lun, maxLUN)
	}
	return Mapping{Kind: BySerial, Serial: strings.ToUpper(serial), LUN: lun}, nil
}

const (
	maxLUN      = 16383 // SAM flat addressing
	maxDeviceID = 1<<24 - 1
	maxNameLen  = 64 // switch, port and adapter names
)

// ParseMapping parses an alias mapping: a PPN (0b.4, 8.6L2,
// MY_SWITCH:5.3L2) or a serial number (SN[123456]L4, case-insensitive).
func ParseMapping(s string) (Mapping, error) {
	if len(s) >= 3 && strings.EqualFold(s[:3], "SN[") {
		return parseSerialMapping(s)
	}
	return parsePPN(s)
}

func parseSerialMapping(s string) (Mapping, error) {
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return Mapping{}, fmt.Errorf("%w: serial number mapping %q: missing ']'", ErrBadName, s)
	}
	serial := s[3:end]
	if err := checkSerial(serial); err != nil {
		return Mapping{}, fmt.Errorf("%w: serial number mapping %q: %v", ErrBadName, s, err)
	}
	lun, err := parseLUN(s[end+1:], true)
	if err != nil {
		return Mapping{}, fmt.Errorf("%w: serial number mapping %q: %v", ErrBadName, s, err)
	}
	return Mapping{Kind: BySerial, Serial: strings.ToUpper(serial), LUN: lun}, nil
}

func checkSerial(serial string) error {
	if serial == "" {
		return fmt.Errorf("empty serial number")
	}
	if len(serial) > MaxSerialLen {
		return fmt.Errorf("serial number longer than %d characters", MaxSerialLen)
	}
	for i := 0; i < len(serial); i++ {
		if !isAlnum(serial[i]) {
			return fmt.Errorf("serial number character %q is not alphanumeric", serial[i])
		}
	}
	return nil
}

// parseLUN parses "" (LUN 0), "L<n>" or, when brackets is set, "L[<n>]".
func parseLUN(s string, brackets bool) (int, error) {
	if s == "" {
		return 0, nil
	}
	if s[0] != 'L' && s[0] != 'l' {
		return 0, fmt.Errorf("unexpected %q (a LUN is written L<number>)", s)
	}
	d := s[1:]
	if brackets && strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		d = d[1 : len(d)-1]
	}
	n, err := parseDecimal(d, maxLUN)
	if err != nil {
		return 0, fmt.Errorf("LUN: %v", err)
	}
	return n, nil
}

func parseDecimal(d string, limit int) (int, error) {
	if d == "" {
		return 0, fmt.Errorf("missing number")
	}
	if len(d) > 8 {
		return 0, fmt.Errorf("number %q too long", d)
	}
	n := 0
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", d)
		}
		n = n*10 + int(d[i]-'0')
	}
	if n > limit {
		return 0, fmt.Errorf("%d is larger than %d", n, limit)
	}
	return n, nil
}

func parsePPN(s string) (Mapping, error) {
	m := Mapping{Kind: ByPath}
	rest := s
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		m.Switch, rest = rest[:i], rest[i+1:]
		if err := checkName(m.Switch, true); err != nil {
			return Mapping{}, fmt.Errorf("%w: physical path name %q: switch: %v", ErrBadName, s, err)
		}
	}
	dot := strings.IndexByte(rest, '.')
	if dot < 0 {
		return Mapping{}, fmt.Errorf("%w: physical path name %q: expected host_adapter.device_id or switch:port.device_id", ErrBadName, s)
	}
	head, tail := rest[:dot], rest[dot+1:]
	if err := checkName(head, false); err != nil {
		what := "host adapter"
		if m.Switch != "" {
			what = "port"
		}
		return Mapping{}, fmt.Errorf("%w: physical path name %q: %s: %v", ErrBadName, s, what, err)
	}
	if m.Switch != "" {
		m.Port = head
	} else {
		m.Adapter = head
	}
	i := 0
	for i < len(tail) && tail[i] >= '0' && tail[i] <= '9' {
		i++
	}
	id, err := parseDecimal(tail[:i], maxDeviceID)
	if err != nil {
		return Mapping{}, fmt.Errorf("%w: physical path name %q: device id: %v", ErrBadName, s, err)
	}
	m.DeviceID = id
	if m.LUN, err = parseLUN(tail[i:], false); err != nil {
		return Mapping{}, fmt.Errorf("%w: physical path name %q: %v", ErrBadName, s, err)
	}
	return m, nil
}

// checkName checks a switch, port or host adapter name: letters, digits
// and, for switches, '_' and '-'.
func checkName(s string, isSwitch bool) error {
	if s == "" {
		return fmt.Errorf("empty name")
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("name longer than %d characters", maxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || (isSwitch && (c == '_' || c == '-')) {
			continue
		}
		return fmt.Errorf("character %q not allowed in %q", c, s)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
