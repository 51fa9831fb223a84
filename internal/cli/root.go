// Package cli is the tapestry command line: an ONTAP-style command tree
// (cluster show, vserver create, volume snapshot create, ...) that talks to
// tapestryd's admin API and prints ONTAP-like tables.
//
// Parameters are written as ONTAP writes them, with one dash
// (-vserver vs1 -volume vol1); Run rewrites them for the flag parser.
// Every show command takes -fields a,b, -instance and the global --json.
// Failures print "Error: <message>" and give exit status 1.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

// DefaultSocket is the admin socket used when neither --socket nor
// TAPESTRY_SOCKET names one.
const DefaultSocket = "./tapestry-data/admin.sock"

// Env is the process environment of one run.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads environment variables; nil means none are set.
	Getenv func(string) string
	// ReadPassword reads a password from the terminal without echo; nil
	// means there is no terminal to prompt on.
	ReadPassword func(prompt string) (string, error)
	// Version is what --version prints (internal/buildinfo).
	Version string
}

// app is the state shared by the commands of one run.
type app struct {
	env       Env
	socket    string
	user      string
	password  string
	privilege string
	json      bool
	client    *admin.Client
	// typed is how the user wrote each parameter; queries are the field
	// queries of a show command (shell.go).
	typed   spelling
	queries []query
}

// advancedAnnotation marks commands of the advanced privilege level.
const advancedAnnotation = "privilege"

// groupAnnotation marks commands that only hold subcommands.
const groupAnnotation = "group"

// Run executes the command line args (without the program name) and returns
// the exit status.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	a := &app{env: env, typed: newSpelling(args)}
	root := a.newRoot()
	rest, err := a.takeGlobals(NormalizeArgs(args))
	switch {
	case err != nil:
	case completionRequest(rest):
		rest = completionWords(root, rest)
	default:
		rest, err = a.resolve(root, rest)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", err)
		return 1
	}
	root.SetArgs(rest)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err = root.ExecuteContext(ctx)
	if a.client != nil {
		a.client.Close()
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", errorText(err))
		return 1
	}
	return 0
}

// completionRequest reports whether args ask for the completions of a
// partial command line (the shell's completion script runs
// "tapestry __complete WORDS..."): its words are left as typed.
func completionRequest(args []string) bool {
	return len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd)
}

// completionWords expands the abbreviated command words of a completion
// request, all but the word being completed (the last).
func completionWords(root *cobra.Command, args []string) []string {
	if len(args) < 3 {
		return args
	}
	_, words, rest, err := resolveWords(root, args[1:len(args)-1])
	if err != nil {
		return args
	}
	out := append([]string{args[0]}, words...)
	out = append(out, rest...)
	return append(out, args[len(args)-1])
}

func errorText(err error) string {
	var ae *admin.APIError
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}

// takeGlobals consumes the global flags written before the command words.
// Some commands have parameters of the same name (generate-password -user,
// security login create -password), which win after the command words, so
// the login settings must come first.
func (a *app) takeGlobals(args []string) ([]string, error) {
	vals := map[string]*string{"--socket": &a.socket, "--user": &a.user, "--password": &a.password, "--privilege": &a.privilege}
	for len(args) > 0 {
		arg := args[0]
		if arg == "--json" {
			a.json = true
			args = args[1:]
			continue
		}
		name, val, hasVal := strings.Cut(arg, "=")
		dst, ok := vals[name]
		if !ok {
			break
		}
		if hasVal {
			*dst = val
			args = args[1:]
			continue
		}
		if len(args) < 2 {
			return nil, fmt.Errorf("flag needs an argument: %s", name)
		}
		*dst = args[1]
		args = args[2:]
	}
	return args, nil
}

var ontapParam = regexp.MustCompile(`^-[a-zA-Z][a-zA-Z0-9_.-]+(=.*)?$`)

// NormalizeArgs rewrites ONTAP's single-dash long parameters (-vserver) into
// the double-dash form (--vserver) the flag parser expects. Single-letter
// flags, values and everything after "--" are left alone.
func NormalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, s := range args {
		if s == "--" {
			out = append(out, args[i:]...)
			break
		}
		if ontapParam.MatchString(s) {
			s = "-" + s
		}
		out = append(out, s)
	}
	return out
}

func (a *app) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "tapestry",
		Short:         "Administer a Tapestry NDMP backup server",
		Long:          "tapestry administers a tapestryd node through its admin API, with ONTAP's cluster shell commands.",
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       first(a.env.Version, "devel"),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.privilege != admin.PrivAdmin && a.privilege != admin.PrivAdvanced {
				return fmt.Errorf("%q is not a privilege level; use admin or advanced", a.privilege)
			}
			if cmd.Annotations[advancedAnnotation] == admin.PrivAdvanced && a.privilege != admin.PrivAdvanced {
				return fmt.Errorf("command %q is available only at the advanced privilege level; use -privilege advanced", cmd.CommandPath()[len("tapestry "):])
			}
			return nil
		},
	}
	root.CompletionOptions.HiddenDefaultCmd = false
	root.SetFlagErrorFunc(a.flagError)
	root.SetVersionTemplate("tapestry {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&a.socket, "socket", "", "admin socket of tapestryd (env TAPESTRY_SOCKET, default "+DefaultSocket+")")
	pf.StringVar(&a.user, "user", "", "cluster user name (env TAPESTRY_USER, default admin)")
	pf.StringVar(&a.password, "password", "", "password (env TAPESTRY_PASSWORD; prompted for on a terminal)")
	pf.StringVar(&a.privilege, "privilege", admin.PrivAdmin, "privilege level: admin or advanced")
	pf.BoolVar(&a.json, "json", false, "print show output as JSON")
	root.AddCommand(
		a.clusterCmd(),
		a.vserverCmd(),
		a.networkCmd(),
		a.volumeCmd(),
		a.securityCmd(),
		a.optionsCmd(),
	)
	a.addTapeCommands(root)
	a.addSMTapeCommands(root)
	a.addNDMPCommands(root)
	a.addEventLogCommands(root)
	addLocalDumpCommands(root, a.env)
	addDMACommands(root, a.env)
	// cobra adds these when it executes; resolve (shell.go) must see them
	// before: tapestry completion bash, help, --version.
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	root.InitDefaultHelpFlag()
	root.InitDefaultVersionFlag()
	return root
}

// api returns the client, connecting on first use.
func (a *app) api() (*admin.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	socket := first(a.socket, a.env.Getenv("TAPESTRY_SOCKET"), DefaultSocket)
	user := first(a.user, a.env.Getenv("TAPESTRY_USER"), "admin")
	pw := first(a.password, a.env.Getenv("TAPESTRY_PASSWORD"))
	if pw == "" {
		if a.env.ReadPassword == nil {
			return nil, errors.New("no password: give --password or set TAPESTRY_PASSWORD")
		}
		p, err := a.env.ReadPassword(fmt.Sprintf("Password for %s: ", user))
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		pw = p
	}
	a.client = admin.NewClient(socket, user, pw)
	a.client.SetPrivilege(a.privilege)
	return a.client, nil
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// group returns a command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:         use,
		Short:       short,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{groupAnnotation: "yes"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fmt.Errorf("%q is incomplete; add one of: %s", cmd.CommandPath()[len("tapestry "):], subNames(cmd))
		},
	}
	c.AddCommand(subs...)
	return c
}

func subNames(c *cobra.Command) string {
	var n []string
	for _, s := range c.Commands() {
		n = append(n, s.Name())
	}
	return strings.Join(n, ", ")
}

// showFlags adds -fields and -instance to a show command.
func showFlags(c *cobra.Command, o *ShowOptions) {
	c.Flags().StringSliceVar(&o.Fields, "fields", nil, "show only these fields (comma-separated)")
	c.Flags().BoolVar(&o.Instance, "instance", false, "show every field of each record")
}

func (a *app) print(cmd *cobra.Command, t Table, o ShowOptions) error {
	o.JSON = a.json
	if err := t.filter(a.queries); err != nil {
		return err
	}
	return t.Print(cmd.OutOrStdout(), o)
}

// positional assigns positional arguments to the named string parameters
// that were not given as flags, in order, as ONTAP accepts them.
func positional(cmd *cobra.Command, args []string, targets map[string]*string, order ...string) error {
	i := 0
	for _, name := range order {
		if i >= len(args) {
			return nil
		}
		if cmd.Flags().Changed(name) {
			continue
		}
		*targets[name] = args[i]
		i++
	}
	if i < len(args) {
		return fmt.Errorf("unexpected argument %q", args[i])
	}
	return nil
}

// required checks that parameters have values.
func required(params ...[2]string) error {
	for _, p := range params {
		if p[1] == "" {
			return fmt.Errorf("missing required parameter -%s", p[0])
		}
	}
	return nil
}

func req(name, v string) [2]string { return [2]string{name, v} }

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
