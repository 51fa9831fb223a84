package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

// timeText formats a time as ONTAP does in its show output.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("Mon Jan 02 15:04:05 2006")
}

func (a *app) clusterCmd() *cobra.Command {
	var o ShowOptions
	show := &cobra.Command{
		Use:   "show",
		Short: "Display the nodes of the cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var info admin.ClusterInfo
			if err := a.call(cmd, http.MethodGet, "/api/cluster", nil, nil, &info); err != nil {
				return err
			}
			t := Table{
				Columns: []Column{
					{"node", "Node", "Node"},
					{"uuid", "Node UUID", "Node UUID"},
					{"cluster-name", "Cluster", "Cluster Name"},
					{"cluster-uuid", "Cluster UUID", "Cluster UUID"},
					{"epsilon", "Epsilon", "Epsilon"},
					{"eligibility", "Eligibility", "Eligibility"},
					{"health", "Health", "Health"},
					{"version", "Version", "Tapestry Version"},
					{"create-time", "Create Time", "Create Time"},
				},
				Keys:    []string{"node"},
				Default: []string{"node", "health", "eligibility"},
				Raw:     info,
			}
			for _, n := range info.Nodes {
				t.Rows = append(t.Rows, map[string]string{
					"node": n.Name, "uuid": n.UUID, "cluster-name": info.Name, "cluster-uuid": info.UUID,
					"epsilon": "false", "eligibility": "true", "health": "true", "version": info.Version,
					"create-time": timeText(n.CreatedAt),
				})
			}
			return a.print(cmd, t, o)
		},
	}
	showFlags(show, &o)
	return group("cluster", "Manage the cluster", show)
}

func (a *app) optionsCmd() *cobra.Command {
	var o ShowOptions
	var name, value string
	c := &cobra.Command{
		Use:   "options [-option-name NAME] [-option-value VALUE]",
		Short: "Display or set node options (tape.reservations, backup.log.enable, ...)",
		Args:  cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"option-name": &name, "option-value": &value}, "option-name", "option-value"); err != nil {
				return err
			}
			// Connect first: without a login even a bad call says so.
			if _, err := a.api(); err != nil {
				return err
			}
			if cmd.Flags().Changed("option-value") || value != "" {
				if err := required(req("option-name", name), req("option-value", value)); err != nil {
					return err
				}
				return a.call(cmd, http.MethodPost, "/api/private/cli/options", nil, admin.OptionSet{Name: name, Value: value}, nil)
			}
			q := url.Values{}
			setIf(q, "option-name", name)
			return printList(a, cmd, "/api/private/cli/options", q, o, optionsTable)
		},
	}
	c.Flags().StringVar(&name, "option-name", "", "option name")
	c.Flags().StringVar(&value, "option-value", "", "new value")
	// The specification also writes -option_name.
	c.Flags().StringVar(&name, "option_name", "", "same as -option-name")
	_ = c.Flags().MarkHidden("option_name")
	showFlags(c, &o)
	return c
}

// optionsTable is the table of options.
func optionsTable(opts []admin.Option) Table {
	t := Table{
		Columns: []Column{
			{"option-name", "Option Name", "Option Name"},
			{"option-value", "Value", "Option Value"},
			{"default-value", "Default", "Default Value"},
		},
		Keys:    []string{"option-name"},
		Default: []string{"option-name", "option-value"},
	}
	for _, op := range opts {
		t.Rows = append(t.Rows, map[string]string{"option-name": op.Name, "option-value": op.Value, "default-value": op.Default})
	}
	return t
}

func list(v []string) string { return strings.Join(v, ",") }

// noSuch reports an empty filter result for a single-record command.
func noSuch(what string) error { return fmt.Errorf("command failed: %s does not exist", what) }
