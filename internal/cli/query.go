package cli

// ONTAP's query operators on the fields of show commands: * (wildcard),
// ! (not), | (or), .. (range), <, >, <=, >= and "..." (a literal).

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// queryOperators are the characters that make a value a query rather than
// a plain name (for the parameters a show command sends to the daemon).
const queryOperators = "*!|<>\""

// hasOperator reports whether v uses a query operator.
func hasOperator(v string) bool {
	return strings.ContainsAny(v, queryOperators) || strings.Contains(v, "..")
}

// matches reports whether value (a table cell; "" is shown as "-") matches
// the query pattern.
func matches(pattern, value string) bool {
	if value == "" {
		value = "-"
	}
	for _, alt := range strings.Split(pattern, "|") {
		if matchOne(strings.TrimSpace(alt), value) {
			return true
		}
	}
	return false
}

// matchOne matches one alternative of a pattern.
func matchOne(p, v string) bool {
	if rest, ok := strings.CutPrefix(p, "!"); ok {
		return !matchOne(rest, v)
	}
	if len(p) >= 2 && strings.HasPrefix(p, `"`) && strings.HasSuffix(p, `"`) {
		return strings.EqualFold(p[1:len(p)-1], v)
	}
	for _, op := range []string{"<=", ">=", "<", ">"} {
		if rest, ok := strings.CutPrefix(p, op); ok {
			return compareOp(op, compare(v, rest))
		}
	}
	if lo, hi, ok := strings.Cut(p, ".."); ok {
		return compare(v, lo) >= 0 && compare(v, hi) <= 0
	}
	if strings.Contains(p, "*") {
		return wildcard(p).MatchString(v)
	}
	return strings.EqualFold(p, v)
}

func compareOp(op string, c int) bool {
	switch op {
	case "<=":
		return c <= 0
	case ">=":
		return c >= 0
	case "<":
		return c < 0
	}
	return c > 0
}

// wildcard turns a pattern with * into an anchored, case-insensitive
// regular expression.
func wildcard(p string) *regexp.Regexp {
	parts := strings.Split(p, "*")
	for i, s := range parts {
		parts[i] = regexp.QuoteMeta(s)
	}
	return regexp.MustCompile("(?is)^" + strings.Join(parts, ".*") + "$")
}

// compare compares a and b as numbers (with an optional size unit, 10GB)
// when both are, else as text.
func compare(a, b string) int {
	x, okA := number(a)
	y, okB := number(b)
	if okA && okB {
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	{"PB", 1 << 50}, {"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1},
}

// number parses s as a number, optionally followed by a size unit.
func number(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	mult := 1.0
	u := strings.ToUpper(s)
	for _, su := range sizeUnits {
		if strings.HasSuffix(u, su.suffix) {
			s, mult = strings.TrimSpace(s[:len(s)-len(su.suffix)]), su.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	return f * mult, err == nil
}

// filter keeps the rows (and the records of Raw, when it holds one per
// row) that match every query.
func (t *Table) filter(qs []query) error {
	if len(qs) == 0 {
		return nil
	}
	fields := make([]string, len(qs))
	for i, q := range qs {
		f, err := t.queryField(q)
		if err != nil {
			return err
		}
		fields[i] = f
	}
	raw := reflect.ValueOf(t.Raw)
	keepRaw := raw.Kind() == reflect.Slice && raw.Len() == len(t.Rows)
	var rows []map[string]string
	var recs reflect.Value
	if keepRaw {
		recs = reflect.MakeSlice(raw.Type(), 0, raw.Len())
	}
	for i, r := range t.Rows {
		if matchAll(qs, fields, r) {
			rows = append(rows, r)
			if keepRaw {
				recs = reflect.Append(recs, raw.Index(i))
			}
		}
	}
	t.Rows = rows
	if keepRaw {
		t.Raw = recs.Interface()
	}
	return nil
}

func matchAll(qs []query, fields []string, r map[string]string) bool {
	for i, q := range qs {
		if !matches(q.pattern, r[fields[i]]) {
			return false
		}
	}
	return true
}

// queryField returns the field of t that q names exactly or abbreviates
// uniquely.
func (t *Table) queryField(q query) (string, error) {
	var found []string
	for _, c := range t.Columns {
		if c.Field == q.field {
			return c.Field, nil
		}
		if strings.HasPrefix(c.Field, q.field) {
			found = append(found, c.Field)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	if len(found) > 1 {
		return "", fmt.Errorf("parameter %q is ambiguous: it may be -%s", q.typed, strings.Join(found, ", -"))
	}
	return "", fmt.Errorf("invalid argument %q", q.typed)
}
