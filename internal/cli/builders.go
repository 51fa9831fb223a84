package cli

// Builders for the two shapes most commands share: a show command that
// lists one API collection and prints it as a Table, and an action command
// that checks its parameters and sends one request.

import (
	"net/url"

	"github.com/spf13/cobra"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

// filter is a string parameter of a show command that, when given, is
// sent to the API as a query parameter.
type filter struct {
	// flag is the parameter's name (-vserver), param the query parameter
	// (svm.name) and usage the help text.
	flag, param, usage string
}

// showSpec describes a show command that lists the records of type T found
// at one API path.
type showSpec[T any] struct {
	use, short string
	// path is the API collection the records come from.
	path string
	// filters are the command's parameters, in the order the leading
	// positional ones are taken.
	filters []filter
	// positional is how many of the leading filters may also be given
	// positionally; 0 refuses positional arguments.
	positional int
	// table builds the table; Raw is set to the records.
	table func([]T) Table
}

// showCmd builds the command s describes, with -fields and -instance.
func showCmd[T any](a *app, s showSpec[T]) *cobra.Command {
	var o ShowOptions
	vals := make([]string, len(s.filters))
	c := &cobra.Command{
		Use:   s.use,
		Short: s.short,
		Args:  maxArgs(s.positional),
		RunE: func(cmd *cobra.Command, args []string) error {
			if s.positional > 0 {
				targets := map[string]*string{}
				order := make([]string, s.positional)
				for i, f := range s.filters[:s.positional] {
					targets[f.flag] = &vals[i]
					order[i] = f.flag
				}
				if err := positional(cmd, args, targets, order...); err != nil {
					return err
				}
			}
			q := url.Values{}
			for i, f := range s.filters {
				setIf(q, f.param, vals[i])
			}
			return printList(a, cmd, s.path, q, o, s.table)
		},
	}
	for i, f := range s.filters {
		c.Flags().StringVar(&vals[i], f.flag, "", f.usage)
	}
	showFlags(c, &o)
	return c
}

// maxArgs accepts up to n positional arguments; n == 0 refuses them the
// way cobra.NoArgs does.
func maxArgs(n int) cobra.PositionalArgs {
	if n == 0 {
		return cobra.NoArgs
	}
	return cobra.MaximumNArgs(n)
}

// printList fetches the records of type T at path that match q and prints
// the table that table builds from them, with the records as its Raw.
func printList[T any](a *app, cmd *cobra.Command, path string, q url.Values, o ShowOptions, table func([]T) Table) error {
	c, err := a.api()
	if err != nil {
		return err
	}
	recs, err := admin.List[T](cmd.Context(), c, path, q)
	if err != nil {
		return err
	}
	t := table(recs)
	t.Raw = recs
	return a.print(cmd, t, o)
}

// call sends one request to the admin API and decodes the answer into out
// (nil ignores it).
func (a *app) call(cmd *cobra.Command, method, path string, q url.Values, in, out any) error {
	c, err := a.api()
	if err != nil {
		return err
	}
	return c.Do(cmd.Context(), method, path, q, in, out)
}

// named reads the positional arguments of a command into the named
// parameters, in order, then checks that each of them has a value.
func named(cmd *cobra.Command, args []string, params ...param) error {
	targets := make(map[string]*string, len(params))
	order := make([]string, len(params))
	reqs := make([][2]string, len(params))
	for i, p := range params {
		targets[p.name], order[i] = p.val, p.name
	}
	if err := positional(cmd, args, targets, order...); err != nil {
		return err
	}
	for i, p := range params {
		reqs[i] = req(p.name, *p.val)
	}
	return required(reqs...)
}

// param is a required string parameter that may also be given
// positionally.
type param struct {
	name string
	val  *string
}

// pos names a positional parameter for named.
func pos(name string, val *string) param { return param{name, val} }
