package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// Column is one field of a show command's records.
type Column struct {
	// Field is the field's name for -fields (ONTAP's parameter name).
	Field string
	// Header is the table column title.
	Header string
	// Label is the -instance label.
	Label string
}

// Table is the result of a show command, ready to print in any of the
// output forms.
type Table struct {
	// Columns are every field, in -instance order.
	Columns []Column
	// Keys are the fields -fields always shows first.
	Keys []string
	// Default are the fields of the plain table.
	Default []string
	// Rows map field names to values; "" prints as "-".
	Rows []map[string]string
	// Raw is what --json prints.
	Raw any
}

// ShowOptions selects the output form.
type ShowOptions struct {
	Fields   []string
	Instance bool
	JSON     bool
}

// Print writes t in the form opts asks for.
func (t Table) Print(w io.Writer, opts ShowOptions) error {
	if opts.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(t.Raw)
	}
	if len(opts.Fields) > 0 && opts.Instance {
		return fmt.Errorf("-fields and -instance cannot be used together")
	}
	if err := t.checkFields(opts.Fields); err != nil {
		return err
	}
	if len(t.Rows) == 0 {
		_, err := fmt.Fprintln(w, "There are no entries matching your query.")
		return err
	}
	var err error
	switch {
	case opts.Instance:
		err = t.printInstance(w)
	case len(opts.Fields) > 0:
		err = t.printFields(w, opts.Fields)
	default:
		cols := make([]Column, 0, len(t.Default))
		for _, f := range t.Default {
			cols = append(cols, t.column(f))
		}
		err = printGrid(w, cols, t.Rows)
	}
	if err != nil {
		return err
	}
	return entries(w, len(t.Rows))
}

// entries prints ONTAP's trailer, which it shows only for two or more
// records.
func entries(w io.Writer, n int) error {
	if n < 2 {
		return nil
	}
	_, err := fmt.Fprintf(w, "%d entries were displayed.\n", n)
	return err
}

func (t Table) column(field string) Column {
	for _, c := range t.Columns {
		if c.Field == field {
			return c
		}
	}
	return Column{Field: field, Header: field, Label: field}
}

// checkFields refuses a field name the table does not have.
func (t Table) checkFields(fields []string) error {
	for _, f := range fields {
		if f == "" || slices.ContainsFunc(t.Columns, func(c Column) bool { return c.Field == f }) {
			continue
		}
		valid := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			valid[i] = c.Field
		}
		return fmt.Errorf("invalid field %q; valid fields are: %s", f, strings.Join(valid, ", "))
	}
	return nil
}

func (t Table) printFields(w io.Writer, fields []string) error {
	var names []string
	for _, f := range fields {
		if f == "" {
			continue
		}
		if !slices.Contains(names, f) {
			names = append(names, f)
		}
	}
	cols := []Column{}
	for _, k := range t.Keys {
		cols = append(cols, Column{Field: k, Header: k})
	}
	for _, f := range names {
		if !slices.Contains(t.Keys, f) {
			cols = append(cols, Column{Field: f, Header: f})
		}
	}
	return printGrid(w, cols, t.Rows)
}

func printGrid(w io.Writer, cols []Column, rows []map[string]string) error {
	width := make([]int, len(cols))
	for i, c := range cols {
		width[i] = utf8.RuneCountInString(c.Header)
		for _, r := range rows {
			width[i] = max(width[i], utf8.RuneCountInString(value(r, c.Field)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, s := range cells {
			if i == len(cells)-1 {
				b.WriteString(s)
				break
			}
			b.WriteString(s)
			b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(s)+1))
		}
		b.WriteString("\n")
	}
	hdr := make([]string, len(cols))
	dash := make([]string, len(cols))
	for i, c := range cols {
		hdr[i] = c.Header
		dash[i] = strings.Repeat("-", width[i])
	}
	line(hdr)
	line(dash)
	for _, r := range rows {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = value(r, c.Field)
		}
		line(cells)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (t Table) printInstance(w io.Writer) error {
	lw := 0
	for _, c := range t.Columns {
		lw = max(lw, utf8.RuneCountInString(c.Label))
	}
	var b strings.Builder
	for i, r := range t.Rows {
		if i > 0 {
			b.WriteString("\n")
		}
		for _, c := range t.Columns {
			fmt.Fprintf(&b, "%*s: %s\n", lw, c.Label, value(r, c.Field))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func value(r map[string]string, field string) string {
	if v := r[field]; v != "" {
		return v
	}
	return "-"
}
