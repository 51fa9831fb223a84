package cli

// ONTAP's cluster shell habits (issue 17 item 3): command words and
// parameter names may be abbreviated as long as the abbreviation is unique
// (vol sh, vserver ser ndmp sh, -vs); a show command takes a query on any of
// its fields (volume show -state online) with ONTAP's query operators;
// "node run" and "run" are the short forms of "system node run"; errors name
// parameters the way the user typed them.

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// shortForms are command words ONTAP accepts at the top level for longer
// command paths.
var shortForms = map[string][]string{
	"node": {"system", "node"},
	"run":  {"system", "node", "run"},
}

// query is a query on one field of a show command's records.
type query struct {
	// field is the parameter name as resolved (without dashes); typed is
	// the parameter as the user wrote it (-state).
	field, typed string
	pattern      string
}

// spelling remembers how the user wrote each parameter, so that errors can
// repeat it: ONTAP's single dash unless two were typed.
type spelling map[string]string

// newSpelling records the parameters of args (before NormalizeArgs).
func newSpelling(args []string) spelling {
	s := spelling{}
	for _, a := range args {
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "--") && len(a) > 2 {
			name, _, _ := strings.Cut(a[2:], "=")
			s[name] = "--" + name
		}
	}
	return s
}

// of returns name (without dashes) as the user wrote it.
func (s spelling) of(name string) string {
	if t, ok := s[name]; ok {
		return t
	}
	return "-" + name
}

// resolve expands abbreviated command words and parameter names of args
// (normalized, globals taken) for the command tree under root, takes the
// queries of a show command out of them into a.queries and returns the
// arguments to execute.
func (a *app) resolve(root *cobra.Command, args []string) ([]string, error) {
	cmd, words, rest, err := resolveWords(root, args)
	if err != nil {
		return nil, err
	}
	params, err := a.resolveParams(cmd, rest)
	if err != nil {
		return nil, err
	}
	return append(words, params...), nil
}

// resolveWords walks the leading command words of args down the tree and
// returns the command they name, the full words and the remaining args.
func resolveWords(root *cobra.Command, args []string) (*cobra.Command, []string, []string, error) {
	cmd := root
	var words []string
	i := 0
	for ; i < len(args) && cmd.HasSubCommands() && !strings.HasPrefix(args[i], "-"); i++ {
		if cmd == root {
			if path, ok := shortForm(args[i]); ok {
				for _, w := range path {
					cmd, _ = childNamed(cmd, w)
				}
				words = append(words, path...)
				continue
			}
		}
		next, err := child(cmd, args[i])
		if err != nil {
			return nil, nil, nil, err
		}
		if next == nil {
			if cmd.Annotations[groupAnnotation] != "" || !cmd.Runnable() {
				return nil, nil, nil, fmt.Errorf("%q is not a recognized command", args[i])
			}
			break // a positional argument of a command that also has subcommands
		}
		cmd = next
		words = append(words, next.Name())
	}
	return cmd, words, args[i:], nil
}

// shortForm returns the command path a top-level short form stands for.
// Only the exact word counts: "no" stays an abbreviation of the tree's own
// words.
func shortForm(word string) ([]string, bool) {
	p, ok := shortForms[word]
	return p, ok
}

// childNamed returns the subcommand of cmd called name.
func childNamed(cmd *cobra.Command, name string) (*cobra.Command, bool) {
	for _, c := range cmd.Commands() {
		if c.Name() == name {
			return c, true
		}
	}
	return nil, false
}

// child returns the subcommand of cmd that word names exactly or
// abbreviates uniquely, nil when none does.
func child(cmd *cobra.Command, word string) (*cobra.Command, error) {
	var matches []*cobra.Command
	for _, c := range cmd.Commands() {
		if c.Hidden && c.Name() != word {
			continue
		}
		if c.Name() == word || c.HasAlias(word) {
			return c, nil
		}
		if strings.HasPrefix(c.Name(), word) {
			matches = append(matches, c)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return nil, nil
	}
	paths := make([]string, len(matches))
	for i, c := range matches {
		paths[i] = "  " + strings.TrimPrefix(c.CommandPath(), "tapestry ")
	}
	//lint:ignore ST1005 ONTAP's exact wording
	return nil, fmt.Errorf("Ambiguous command.  Possible matches include:\n%s", strings.Join(paths, "\n"))
}

// isShow reports whether cmd is a show command (it takes -fields).
func isShow(cmd *cobra.Command) bool { return cmd.Flags().Lookup("fields") != nil }

// resolveParams expands abbreviated parameter names of cmd in args and,
// for a show command, takes out the queries: parameters that are not the
// command's own (field queries) and values of its own string parameters
// that use query operators.
func (a *app) resolveParams(cmd *cobra.Command, args []string) ([]string, error) {
	if cmd.DisableFlagParsing {
		return args, nil
	}
	var out []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(out, args[i:]...), nil
		}
		if !strings.HasPrefix(arg, "--") || len(arg) == 2 {
			out = append(out, arg)
			continue
		}
		name, val, hasVal := strings.Cut(arg[2:], "=")
		f, err := a.flagFor(cmd, name)
		if err != nil {
			return nil, err
		}
		if f == nil && !isShow(cmd) {
			out = append(out, arg) // the flag parser reports it
			continue
		}
		takesValue := f == nil || f.NoOptDefVal == ""
		if takesValue && !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("parameter %q needs a value", a.typed.of(name))
			}
			i++
			val = args[i]
		}
		if isShow(cmd) && (f == nil || (cmd.LocalFlags().Lookup(f.Name) != nil && f.Value.Type() == "string" && hasOperator(val))) {
			field := name
			if f != nil {
				field = f.Name
			}
			a.queries = append(a.queries, query{field: field, typed: a.typed.of(name), pattern: val})
			continue
		}
		if !takesValue && !hasVal {
			out = append(out, "--"+f.Name)
			continue
		}
		out = append(out, "--"+f.Name+"="+val)
	}
	return out, nil
}

// flagFor returns the parameter of cmd that name names exactly or
// abbreviates uniquely, nil when none does.
func (a *app) flagFor(cmd *cobra.Command, name string) (*pflag.Flag, error) {
	all := cmd.Flags()
	all.AddFlagSet(cmd.InheritedFlags())
	if f := all.Lookup(name); f != nil {
		return f, nil
	}
	var matches []string
	all.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && strings.HasPrefix(f.Name, name) {
			matches = append(matches, f.Name)
		}
	})
	switch len(matches) {
	case 0:
		return nil, nil
	case 1:
		return all.Lookup(matches[0]), nil
	}
	sort.Strings(matches)
	for i := range matches {
		matches[i] = "-" + matches[i]
	}
	return nil, fmt.Errorf("parameter %q is ambiguous: it may be %s", a.typed.of(name), strings.Join(matches, ", "))
}

// flagError rewrites the flag parser's errors as sentences that name the
// parameter as the user typed it.
func (a *app) flagError(_ *cobra.Command, err error) error {
	var notExist *pflag.NotExistError
	var needsValue *pflag.ValueRequiredError
	var invalid *pflag.InvalidValueError
	switch {
	case errors.As(err, &notExist):
		return fmt.Errorf("invalid argument %q", a.typed.of(notExist.GetSpecifiedName()))
	case errors.As(err, &needsValue):
		return fmt.Errorf("parameter %q needs a value", a.typed.of(needsValue.GetSpecifiedName()))
	case errors.As(err, &invalid):
		f := invalid.GetFlag()
		return fmt.Errorf("%q is not a valid value for %s: %s", invalid.GetValue(), a.typed.of(f.Name), expected(f))
	}
	return err
}

// expected says in words what values a parameter takes.
func expected(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "int", "int64", "int32":
		return "give a whole number"
	case "uint", "uint64", "uint32", "uint16", "uint8":
		return "give a whole number, 0 or more"
	case "bool":
		return "give true or false"
	case "duration":
		return "give a duration such as 30s or 5m"
	case "float64", "float32":
		return "give a number"
	}
	return "see the command's help for its values"
}
