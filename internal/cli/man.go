package cli

// Manual pages generated from the command tree (issue 17 item 4): one page
// in section 1 per command, tapestry(1) for the root, written by
// internal/cli/genman (make man).

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// WriteManPages writes the manual page of every command of the tree into
// dir (created if needed), marked with version, and returns their names.
func WriteManPages(dir, version string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("man pages: %w", err)
	}
	root := (&app{env: Env{Version: version}}).newRoot()
	var names []string
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		if c.Hidden || c.Name() == "help" {
			return nil
		}
		name := manName(c) + ".1"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(manPage(c, version)), 0o644); err != nil {
			return fmt.Errorf("man page %s: %w", name, err)
		}
		names = append(names, name)
		for _, s := range c.Commands() {
			if err := walk(s); err != nil {
				return err
			}
		}
		return nil
	}
	return names, walk(root)
}

// manName is the page name of c: tapestry-volume-show.
func manName(c *cobra.Command) string {
	return strings.ReplaceAll(c.CommandPath(), " ", "-")
}

// manPage renders the page of c in roff (man macros).
func manPage(c *cobra.Command, version string) string {
	var b strings.Builder
	name := manName(c)
	fmt.Fprintf(&b, ".TH %q 1 \"\" \"Tapestry %s\" \"Tapestry Manual\"\n", strings.ToUpper(name), roff(version))
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", name, roff(c.Short))
	synopsis := c.CommandPath()
	if _, rest, ok := strings.Cut(c.Use, " "); ok {
		synopsis += " " + rest
	}
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n", roff(synopsis))
	desc := c.Long
	if desc == "" {
		desc = c.Short + "."
	}
	fmt.Fprintf(&b, ".SH DESCRIPTION\n%s\n", roff(desc))
	if isShow(c) {
		b.WriteString(".PP\n" + roff(showQueryText) + "\n")
	}
	writeFlags(&b, "OPTIONS", c.NonInheritedFlags())
	writeFlags(&b, "GLOBAL OPTIONS", c.InheritedFlags())
	if subs := visibleSubcommands(c); len(subs) > 0 {
		b.WriteString(".SH COMMANDS\n")
		for _, s := range subs {
			fmt.Fprintf(&b, ".TP\n.B %s\n%s (see \\fB%s\\fR(1))\n", roff(s.Name()), roff(s.Short), manName(s))
		}
	}
	b.WriteString(".SH SEE ALSO\n")
	var see []string
	if c.HasParent() {
		see = append(see, "\\fB"+manName(c.Parent())+"\\fR(1)")
	}
	see = append(see, "\\fBtapestryd\\fR(8)", "\\fBndmpcopy\\fR(1)")
	b.WriteString(strings.Join(see, ", ") + "\n")
	return b.String()
}

func visibleSubcommands(c *cobra.Command) []*cobra.Command {
	var res []*cobra.Command
	for _, s := range c.Commands() {
		if !s.Hidden && s.Name() != "help" {
			res = append(res, s)
		}
	}
	return res
}

// showQueryText is the paragraph every show command's page has.
const showQueryText = `Any field of the records may also be given as a query, -FIELD PATTERN (volume show -state online), with ONTAP's operators: * (any characters), ! (not), | (or), <, >, <=, >=, .. (a range) and "..." (the characters as written). Command words and parameter names may be abbreviated while they stay unique.`

// argTypes name the values of parameters in the pages.
var argTypes = map[string]string{"stringSlice": "LIST", "string": "TEXT", "int": "N", "int64": "N", "uint32": "N", "bool": "BOOL"}

// writeFlags writes a section listing the parameters of fs, as ONTAP
// writes them (one dash).
func writeFlags(b *strings.Builder, title string, fs *pflag.FlagSet) {
	if !fs.HasAvailableFlags() {
		return
	}
	fmt.Fprintf(b, ".SH %s\n", title)
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		arg := ""
		if f.NoOptDefVal == "" {
			arg = " \\fI" + first(argTypes[f.Value.Type()], strings.ToUpper(f.Value.Type())) + "\\fR"
		}
		fmt.Fprintf(b, ".TP\n.B \\-%s%s\n%s\n", roff(f.Name), arg, roff(f.Usage))
	})
}

// roff escapes text for a man page: backslashes, hyphens, and a leading dot
// or quote that roff would take for a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
