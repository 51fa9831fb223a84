package cli

// Reading the backup event log: rdfile and the nodeshell's
// system node run -node NODE -command "rdfile /etc/log/backup" (M3).

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

const rdfileAPI = "/api/private/cli/rdfile"

// addEventLogCommands adds rdfile and system node run.
func (a *app) addEventLogCommands(root *cobra.Command) {
	root.AddCommand(a.rdfileCmd())
	node := subgroup(subgroup(root, "system", "Manage the system"), "node", "Manage nodes")
	node.AddCommand(a.nodeRunCmd())
}

// rdfile prints a backup event log file of node ("" for this node); tail
// above zero prints only its last lines.
func (a *app) rdfile(cmd *cobra.Command, node, path string, tail int) error {
	q := url.Values{"path": {path}}
	setIf(q, "node", node)
	if tail > 0 {
		q.Set("tail", strconv.Itoa(tail))
	}
	var out admin.RDFile
	if err := a.call(cmd, "GET", rdfileAPI, q, nil, &out); err != nil {
		return err
	}
	if done, err := a.printRaw(cmd, out); done {
		return err
	}
	_, err := io.WriteString(cmd.OutOrStdout(), out.Content)
	return err
}

func (a *app) rdfileCmd() *cobra.Command {
	var node string
	var tail int
	c := &cobra.Command{
		Use:   "rdfile [-node NAME] [-tail N] /etc/log/backup[.0-5]",
		Short: "Print a backup event log file (/etc/log/backup, /etc/log/backup.0 ... backup.5)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.rdfile(cmd, node, args[0], tail)
		},
	}
	c.Flags().StringVar(&node, "node", "", "node (default: this node)")
	c.Flags().IntVar(&tail, "tail", 0, "print only the last N lines")
	return c
}

// nodeRunCmd is the nodeshell: of its commands Tapestry has rdfile.
func (a *app) nodeRunCmd() *cobra.Command {
	var node, command string
	c := &cobra.Command{
		Use:   `run -node NAME [-command] "rdfile /etc/log/backup"`,
		Short: "Run a nodeshell command on a node (rdfile)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := required(req("node", node)); err != nil {
				return err
			}
			words := strings.Fields(command)
			if len(args) > 0 {
				if command != "" {
					return fmt.Errorf("give the nodeshell command either with -command or as arguments, not both")
				}
				words = args
			}
			if len(words) == 0 {
				return fmt.Errorf("missing required parameter -command")
			}
			switch words[0] {
			case "rdfile":
				if len(words) != 2 {
					return fmt.Errorf("usage: rdfile <path>, for example rdfile /etc/log/backup")
				}
				return a.rdfile(cmd, node, words[1], 0)
			}
			return fmt.Errorf("nodeshell command %q is not supported; Tapestry's nodeshell has rdfile", words[0])
		},
	}
	c.Flags().StringVar(&node, "node", "", "node")
	c.Flags().StringVar(&command, "command", "", "the nodeshell command, for example \"rdfile /etc/log/backup\"")
	return c
}
