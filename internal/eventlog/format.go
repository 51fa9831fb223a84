package eventlog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is the type indicator that begins every line.
type Type string

// The three line types of the spec's table.
const (
	TypeLog     Type = "log" // logging event
	TypeDump    Type = "dmp" // dump event
	TypeRestore Type = "rst" // restore event
)

// Event is the name of an event, the field after the identifier.
type Event string

// Logging events.
const (
	EventStartLogging Event = "Start_Logging" // logging began or was turned back on
	EventStopLogging  Event = "Stop_Logging"  // logging was turned off
)

// Dump and restore events. Snapshot and Base_dump occur only in dump lines.
const (
	EventStart       Event = "Start"        // operation started: level and type
	EventEnd         Event = "End"          // completed: amount of data (restore: files and amount)
	EventAbort       Event = "Abort"        // cancelled: amount of data (restore: files and amount)
	EventOptions     Event = "Options"      // all options and their values
	EventTapeOpen    Event = "Tape_open"    // tape opened: device name
	EventTapeClose   Event = "Tape_close"   // tape closed: device name
	EventPhaseChange Event = "Phase-change" // new processing phase: phase name
	EventError       Event = "Error"        // unexpected event: error message
	EventSnapshot    Event = "Snapshot"     // Snapshot copy created or located: name and time
	EventBaseDump    Event = "Base_dump"    // base dump located: level and time
)

// TimeLayout is the layout of the timestamp field and of the times inside
// Snapshot and Base_dump event information.
const TimeLayout = "Mon Jan 2 15:04:05 MST 2006"

// timestampFields is the number of space-separated words in a timestamp.
const timestampFields = 6

var (
	dumpEvents    = []Event{EventStart, EventEnd, EventAbort, EventOptions, EventTapeOpen, EventTapeClose, EventPhaseChange, EventError, EventSnapshot, EventBaseDump}
	restoreEvents = []Event{EventStart, EventEnd, EventAbort, EventOptions, EventTapeOpen, EventTapeClose, EventPhaseChange, EventError}
	logEvents     = []Event{EventStartLogging, EventStopLogging}
)

// Events returns the events a line of type t may carry, in the order of the
// spec's tables, or nil for an unknown type.
func Events(t Type) []Event {
	switch t {
	case TypeLog:
		return append([]Event(nil), logEvents...)
	case TypeDump:
		return append([]Event(nil), dumpEvents...)
	case TypeRestore:
		return append([]Event(nil), restoreEvents...)
	}
	return nil
}

// Entry is one line of the event log, split into its fields.
type Entry struct {
	Type       Type
	Timestamp  string    // the timestamp exactly as written
	Time       time.Time // Timestamp parsed; see Parse for the time zone
	Identifier string    // empty for logging events
	Event      Event
	Info       string // event information without the parentheses; empty for logging events
}

// String renders e as a log line without the trailing newline. For an entry
// returned by Parse it gives back the parsed line.
func (e Entry) String() string {
	var b strings.Builder
	b.WriteString(string(e.Type))
	b.WriteByte(' ')
	b.WriteString(e.Timestamp)
	b.WriteByte(' ')
	if e.Type != TypeLog {
		b.WriteString(e.Identifier)
		b.WriteByte(' ')
	}
	b.WriteString(string(e.Event))
	if e.Type != TypeLog {
		b.WriteString(" (")
		b.WriteString(e.Info)
		b.WriteByte(')')
	}
	return b.String()
}

// DumpIdentifier returns the identifier of a dump line: the dump path
// followed by the unique id of the dump in parentheses, as in "/vs1/vol1/(7)".
func DumpIdentifier(path string, id uint64) string {
	return clean(path) + "(" + strconv.FormatUint(id, 10) + ")"
}

// SplitDumpIdentifier splits a dump identifier into the dump path and id.
func SplitDumpIdentifier(ident string) (path string, id uint64, err error) {
	if !strings.HasSuffix(ident, ")") {
		return "", 0, fmt.Errorf("eventlog: dump identifier %q: no (id) at the end", ident)
	}
	open := strings.LastIndexByte(ident, '(')
	if open < 0 {
		return "", 0, fmt.Errorf("eventlog: dump identifier %q: no (id) at the end", ident)
	}
	digits := ident[open+1 : len(ident)-1]
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return "", 0, fmt.Errorf("eventlog: dump identifier %q: id %q is not a number", ident, digits)
	}
	id, err = strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("eventlog: dump identifier %q: %w", ident, err)
	}
	return ident[:open], id, nil
}

// Parse splits one log line (without its newline) into its fields. It
// accepts exactly the lines this package writes: a known type, a timestamp
// of six words in the layout of TimeLayout, an identifier (for dmp lines
// ending in "(id)"), an event allowed for the type and, for dmp and rst
// lines, the event information in parentheses at the end of the line.
// Identifiers may contain spaces; when a line could be split in more than
// one way, the shortest identifier wins.
//
// Entry.Time carries the time zone as follows: UTC and GMT are UTC, a
// numeric zone (+04, -0330) is a fixed offset, and other abbreviations get
// the offset they have in the local time zone, or zero if it has none.
func Parse(line string) (Entry, error) {
	var e Entry
	if !utf8.ValidString(line) {
		return e, errors.New("eventlog: line is not valid UTF-8")
	}
	for _, r := range line {
		if r < 0x20 || r == 0x7f {
			return e, fmt.Errorf("eventlog: line contains control character %U", r)
		}
	}
	parts := strings.SplitN(line, " ", 2+timestampFields)
	if len(parts) < 2+timestampFields {
		return e, fmt.Errorf("eventlog: line %q: too few fields", short(line))
	}
	e.Type = Type(parts[0])
	switch e.Type {
	case TypeLog, TypeDump, TypeRestore:
	default:
		return e, fmt.Errorf("eventlog: line %q: unknown type %q", short(line), short(parts[0]))
	}
	e.Timestamp = strings.Join(parts[1:1+timestampFields], " ")
	t, err := parseTime(parts[1 : 1+timestampFields])
	if err != nil {
		return Entry{}, fmt.Errorf("eventlog: line %q: %w", short(line), err)
	}
	e.Time = t
	rest := parts[1+timestampFields]
	if e.Type == TypeLog {
		for _, ev := range logEvents {
			if rest == string(ev) {
				e.Event = ev
				return e, nil
			}
		}
		return Entry{}, fmt.Errorf("eventlog: line %q: unknown logging event %q", short(line), short(rest))
	}
	if !strings.HasSuffix(rest, ")") {
		return Entry{}, fmt.Errorf("eventlog: line %q: no (event_info) at the end", short(line))
	}
	events := dumpEvents
	if e.Type == TypeRestore {
		events = restoreEvents
	}
	best := -1
	for _, ev := range events {
		sep := " " + string(ev) + " ("
		from := 0
		for {
			i := strings.Index(rest[from:], sep)
			if i < 0 {
				break
			}
			i += from
			from = i + 1
			if i == 0 || (best >= 0 && i >= best) {
				continue
			}
			if i+len(sep) > len(rest)-1 {
				break
			}
			if e.Type == TypeDump {
				if _, _, err := SplitDumpIdentifier(rest[:i]); err != nil {
					continue
				}
			}
			best = i
			e.Event = ev
			e.Identifier = rest[:i]
			e.Info = rest[i+len(sep) : len(rest)-1]
			break
		}
	}
	if best < 0 {
		if e.Type == TypeDump {
			return Entry{}, fmt.Errorf("eventlog: line %q: no dump identifier \"path(id)\" followed by a dump event", short(line))
		}
		return Entry{}, fmt.Errorf("eventlog: line %q: no identifier followed by a restore event", short(line))
	}
	return e, nil
}

// parseTime parses the six words of a timestamp.
func parseTime(w []string) (time.Time, error) {
	ts := strings.Join(w, " ")
	if err := checkTimeWords(w); err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", ts, err)
	}
	zone := w[4]
	if off, ok := numericZone(zone); ok {
		noZone := strings.Join([]string{w[0], w[1], w[2], w[3], w[5]}, " ")
		t, err := time.ParseInLocation("Mon Jan 2 15:04:05 2006", noZone, time.FixedZone(zone, off))
		if err != nil {
			return time.Time{}, fmt.Errorf("timestamp %q: %w", ts, err)
		}
		if t.Weekday().String()[:3] != w[0] {
			return time.Time{}, fmt.Errorf("timestamp %q: %s is a %s", ts, t.Format("Jan 2 2006"), t.Weekday())
		}
		return t, nil
	}
	t, err := time.Parse(TimeLayout, ts)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", ts, err)
	}
	if t.Weekday().String()[:3] != w[0] {
		return time.Time{}, fmt.Errorf("timestamp %q: %s is a %s", ts, t.Format("Jan 2 2006"), t.Weekday())
	}
	return t, nil
}

// checkTimeWords checks the shape of the words of a timestamp as
// TimeLayout writes them, which time.Parse alone does not: two-digit hours,
// minutes and seconds, a day without a leading zero, a four-digit year, a
// zone of letters or a numeric zone.
func checkTimeWords(w []string) error {
	digits := func(s string) bool {
		for _, c := range s {
			if c < '0' || c > '9' {
				return false
			}
		}
		return s != ""
	}
	day, hms, zone, year := w[2], w[3], w[4], w[5]
	if !strings.Contains("Sun Mon Tue Wed Thu Fri Sat", w[0]) || len(w[0]) != 3 {
		return fmt.Errorf("bad day of the week %q", w[0])
	}
	if !strings.Contains("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", w[1]) || len(w[1]) != 3 {
		return fmt.Errorf("bad month %q", w[1])
	}
	if len(day) > 2 || !digits(day) || day[0] == '0' {
		return fmt.Errorf("bad day %q", day)
	}
	if len(hms) != 8 || hms[2] != ':' || hms[5] != ':' || !digits(hms[:2]) || !digits(hms[3:5]) || !digits(hms[6:]) {
		return fmt.Errorf("bad time of day %q", hms)
	}
	if len(year) != 4 || !digits(year) {
		return fmt.Errorf("bad year %q", year)
	}
	if _, ok := numericZone(zone); ok {
		return nil
	}
	if len(zone) < 3 || len(zone) > 5 {
		return fmt.Errorf("bad time zone %q", zone)
	}
	for _, c := range zone {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return fmt.Errorf("bad time zone %q", zone)
		}
	}
	return nil
}

// numericZone recognises the zone names Go writes for zones without an
// abbreviation: +hh, -hh, +hhmm, -hhmm.
func numericZone(z string) (int, bool) {
	if (len(z) != 3 && len(z) != 5) || (z[0] != '+' && z[0] != '-') {
		return 0, false
	}
	for _, c := range z[1:] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	h, _ := strconv.Atoi(z[1:3])
	m := 0
	if len(z) == 5 {
		m, _ = strconv.Atoi(z[3:5])
	}
	if h > 23 || m > 59 {
		return 0, false
	}
	off := h*3600 + m*60
	if z[0] == '-' {
		off = -off
	}
	return off, true
}

// clean makes s safe to put into a line: control characters and bytes that
// are not valid UTF-8 are written as \xNN, so that every entry stays on one
// line and Parse accepts it.
func clean(s string) string {
	ok := utf8.ValidString(s)
	if ok {
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] == 0x7f {
				ok = false
				break
			}
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n <= 1) || r < 0x20 || r == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, s[i])
			i++
			continue
		}
		b.WriteString(s[i : i+n])
		i += n
	}
	return b.String()
}

// short shortens s for error messages.
func short(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
