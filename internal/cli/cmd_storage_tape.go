package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

// The tape administration commands (T3, T7, T8): storage tape ...,
// storage stats tape, storage show tape supported, system node hardware
// tape ... and Tapestry's own storage tape vtl ... for the node's virtual
// library.

const tapeAPI = "/api/private/cli/storage/tape"

// addTapeCommands adds the tape commands to root, under the storage and
// system groups, which other command files may already have created.
func (a *app) addTapeCommands(root *cobra.Command) {
	storage := subgroup(root, "storage", "Manage storage: tape drives, media changers and libraries")
	storage.AddCommand(a.storageTapeCmd(), a.storageStatsCmd(),
		group("show", "Show storage information (nodeshell form)",
			group("tape", "Show tape information", a.showTapeSupported())))
	system := subgroup(root, "system", "Manage the system")
	node := subgroup(system, "node", "Manage nodes")
	hw := subgroup(node, "hardware", "Show the node's hardware")
	hw.AddCommand(group("tape", "Show the node's tape hardware",
		group("drive", "Show tape drives", a.hardwareTapeShow("drive")),
		group("library", "Show tape libraries", a.hardwareTapeShow("library"))))
}

// subgroup returns parent's child group called name, creating it if needed.
func subgroup(parent *cobra.Command, name, short string) *cobra.Command {
	for _, c := range parent.Commands() {
		if c.Name() == name {
			return c
		}
	}
	g := group(name, short)
	parent.AddCommand(g)
	return g
}

func (a *app) storageTapeCmd() *cobra.Command {
	return group("tape", "Manage tape drives and media changers",
		a.tapeShow("show", "Display information about tape drives and media changers", ""),
		a.tapeShow("show-tape-drive", "Display information about tape drives", "tape drive"),
		a.tapeShow("show-media-changer", "Display information about media changers", "media changer"),
		a.tapeShowErrors(), a.tapeShowSupported(),
		a.tapeAction("online", "Bring a tape drive or media changer online"),
		a.tapeAction("offline", "Take a tape drive or media changer offline"),
		a.tapeAction("reset", "Reset a tape drive or media changer (advanced)"),
		a.tapeAction("trace", "Enable or disable tracing of tape operations"),
		a.tapeAction("position", "Modify the tape drive cartridge position"),
		a.tapeRescan(),
		group("load-balance", "Manage multipath load balancing of tape devices", a.loadBalanceShow(), a.loadBalanceModify()),
		group("alias", "Manage tape aliases", a.tapeAliasSet(), a.tapeAliasClear(), a.tapeAliasShow()),
		group("library", "Show tape library connections",
			group("path", "Show paths to tape libraries", a.tapePathShow(false), a.tapePathShow(true)),
			group("config", "Show tape library configuration", a.tapeLibraryConfigShow())),
		group("vtl", "Manage the node's virtual tape libraries (Tapestry)", a.vtlShow(),
			a.vtlCreate(), a.vtlDelete(), a.vtlShowLibraries(),
			group("cartridge", "Manage the virtual library's cartridges",
				a.vtlCartridgeShow(), a.vtlCartridgeAdd(),
				a.vtlCartridgeOp("remove", "Delete a cartridge and its contents"),
				a.vtlCartridgeOp("import", "Put a cartridge into an import/export slot"),
				a.vtlCartridgeOp("export", "Take a cartridge out of its import/export slot"),
				a.vtlCartridgeOp("move", "Move a cartridge to a slot, import/export slot or drive"),
				a.vtlCartridgeOp("label", "Put a new barcode label on a cartridge"))),
	)
}

func (a *app) tapeDevices(ctx context.Context, node, deviceID, kind string) ([]admin.TapeDevice, error) {
	c, err := a.api()
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	setIf(q, "node", node)
	setIf(q, "device-id", deviceID)
	setIf(q, "device-type", kind)
	return admin.List[admin.TapeDevice](ctx, c, tapeAPI, q)
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

var tapeDeviceColumns = []Column{
	{"node", "Node", "Node"},
	{"device-id", "Device ID", "Device ID"},
	{"device-type", "Device Type", "Device Type"},
	{"description", "Description", "Description"},
	{"alias", "Alias", "Alias Name"},
	{"status", "Status", "Status"},
	{"serial-number", "Serial Number", "Serial Number"},
	{"paths", "Paths", "Paths"},
	{"vendor", "Vendor", "Vendor ID"},
	{"product", "Product", "Product ID"},
	{"revision", "Revision", "Firmware Revision"},
	{"support-status", "Support Status", "Support Status"},
	{"is-trace-enabled", "Trace", "Tape Trace Enabled"},
	{"in-use-by", "In Use By", "In Use By Session"},
	{"reserved-by", "Reserved By", "Reserved By Session"},
	{"read-errors", "Read Errors", "Read Errors"},
	{"write-errors", "Write Errors", "Write Errors"},
	{"other-errors", "Other Errors", "Other Errors"},
}

func tapeDeviceRow(d admin.TapeDevice) map[string]string {
	return map[string]string{
		"node": d.Node, "device-id": d.DeviceID, "device-type": d.DeviceType, "description": d.Description,
		"alias": d.Alias, "status": d.Status, "serial-number": d.Serial, "paths": strings.Join(d.Paths, ","),
		"vendor": d.Vendor, "product": d.Product, "revision": d.Revision, "support-status": d.SupportStatus,
		"is-trace-enabled": boolText(d.Trace), "in-use-by": d.InUseBy, "reserved-by": d.ReservedBy,
		"read-errors": strconv.FormatInt(d.Stats.ReadErrors, 10), "write-errors": strconv.FormatInt(d.Stats.WriteErrors, 10),
		"other-errors": strconv.FormatInt(d.Stats.OtherErrors, 10),
	}
}

// tapeArgs binds -node and -device-id.
type tapeArgs struct{ node, deviceID string }

func (t *tapeArgs) flags(c *cobra.Command) {
	c.Flags().StringVar(&t.node, "node", "", "node name")
	c.Flags().StringVar(&t.deviceID, "device-id", "", "device: alias (st0, mc0), physical path name (0a.1) or device name (nrst0a)")
}

func (a *app) tapeShow(verb, short, kind string) *cobra.Command {
	var o ShowOptions
	var ta tapeArgs
	var names bool
	c := &cobra.Command{
		Use:   verb + " [-node NODE] [-device-id ID]",
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"device-id": &ta.deviceID}, "device-id"); err != nil {
				return err
			}
			devs, err := a.tapeDevices(cmd.Context(), ta.node, ta.deviceID, kind)
			if err != nil {
				return err
			}
			if names {
				return printDeviceNames(cmd.OutOrStdout(), devs, a.json)
			}
			t := Table{Columns: tapeDeviceColumns, Keys: []string{"node", "device-id"}, Raw: devs,
				Default: []string{"node", "device-id", "device-type", "description", "status"}}
			if kind != "" {
				t.Default = []string{"node", "device-id", "alias", "description", "serial-number", "status"}
			}
			for _, d := range devs {
				t.Rows = append(t.Rows, tapeDeviceRow(d))
			}
			return a.print(cmd, t, o)
		},
	}
	ta.flags(c)
	if verb == "show" {
		c.Flags().BoolVar(&names, "device-names", false, "list the tape device names of each tape drive")
	}
	showFlags(c, &o)
	return c
}

// printDeviceNames writes the device listing of every drive, as
// storage tape show -device-names shows it (T1).
func printDeviceNames(w io.Writer, devs []admin.TapeDevice, asJSON bool) error {
	var drives []admin.TapeDevice
	for _, d := range devs {
		if d.DeviceType == "tape drive" {
			drives = append(drives, d)
		}
	}
	if asJSON {
		return Table{Raw: drives}.Print(w, ShowOptions{JSON: true})
	}
	if len(drives) == 0 {
		_, err := fmt.Fprintln(w, "There are no entries matching your query.")
		return err
	}
	var b strings.Builder
	for i, d := range drives {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Node: %s\n", d.Node)
		b.WriteString(d.DeviceNames)
		if !strings.HasSuffix(d.DeviceNames, "\n") {
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (a *app) tapeShowErrors() *cobra.Command {
	var o ShowOptions
	var ta tapeArgs
	c := &cobra.Command{
		Use:   "show-errors [-node NODE] [-device-id ID]",
		Short: "Display the error counters of tape drives",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"device-id": &ta.deviceID}, "device-id"); err != nil {
				return err
			}
			devs, err := a.tapeDevices(cmd.Context(), ta.node, ta.deviceID, "tape drive")
			if err != nil {
				return err
			}
			t := Table{Columns: tapeDeviceColumns, Keys: []string{"node", "device-id"}, Raw: devs,
				Default: []string{"node", "device-id", "alias", "read-errors", "write-errors", "other-errors"}}
			for _, d := range devs {
				t.Rows = append(t.Rows, tapeDeviceRow(d))
			}
			return a.print(cmd, t, o)
		},
	}
	ta.flags(c)
	showFlags(c, &o)
	return c
}

func (a *app) supportRows(ctx context.Context, node string) ([]admin.TapeSupport, error) {
	c, err := a.api()
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	setIf(q, "node", node)
	return admin.List[admin.TapeSupport](ctx, c, tapeAPI+"/supported", q)
}

var supportColumns = []Column{
	{"node", "Node", "Node"},
	{"tape-drive", "Tape Drive", "Tape Drive"},
	{"is-supported", "Is Supported", "Is Supported"},
	{"support-status", "Support Status", "Support Status"},
}

func supportTable(rows []admin.TapeSupport) Table {
	t := Table{Columns: supportColumns, Keys: []string{"node", "tape-drive"}, Raw: rows,
		Default: []string{"tape-drive", "is-supported", "support-status"}}
	for _, r := range rows {
		t.Rows = append(t.Rows, map[string]string{"node": r.Node, "tape-drive": r.TapeDrive,
			"is-supported": boolText(r.IsSupported), "support-status": r.SupportStatus})
	}
	return t
}

func (a *app) tapeShowSupported() *cobra.Command {
	var o ShowOptions
	var node string
	c := &cobra.Command{
		Use:   "show-supported-status [-node NODE]",
		Short: "Display the qualified, dynamically qualified and nonqualified tape drives of each node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := a.supportRows(cmd.Context(), node)
			if err != nil {
				return err
			}
			return a.printByNode(cmd, supportTable(rows), o, func(i int) string { return rows[i].Node })
		},
	}
	c.Flags().StringVar(&node, "node", "", "node name")
	showFlags(c, &o)
	return c
}

// printByNode prints a table the way ONTAP prints per-node listings: a
// "Node: NAME" line above the rows of each node. -fields, -instance and
// --json print as usual.
func (a *app) printByNode(cmd *cobra.Command, t Table, o ShowOptions, nodeOf func(int) string) error {
	if a.json || o.Instance || len(o.Fields) > 0 || len(t.Rows) == 0 {
		return a.print(cmd, t, o)
	}
	w := cmd.OutOrStdout()
	start := 0
	for i := 1; i <= len(t.Rows); i++ {
		if i < len(t.Rows) && nodeOf(i) == nodeOf(start) {
			continue
		}
		part := t
		part.Rows = t.Rows[start:i]
		cols := make([]Column, 0, len(t.Default))
		for _, f := range t.Default {
			cols = append(cols, t.column(f))
		}
		if start > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "Node: %s\n", nodeOf(start))
		if err := printGrid(w, cols, part.Rows); err != nil {
			return err
		}
		start = i
	}
	return entries(w, len(t.Rows))
}

func (a *app) showTapeSupported() *cobra.Command {
	var verbose bool
	c := &cobra.Command{
		Use:   "supported [-v]",
		Short: "Display the tape drives the node supports (nodeshell form)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := a.supportRows(cmd.Context(), "")
			if err != nil {
				return err
			}
			var sup []admin.TapeSupport
			for _, r := range rows {
				if r.IsSupported {
					sup = append(sup, r)
				}
			}
			if a.json {
				return a.print(cmd, Table{Raw: sup}, ShowOptions{})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, "Supported Tapes")
			fmt.Fprintln(w)
			for _, r := range sup {
				if verbose {
					fmt.Fprintf(w, "%-40s %s\n", r.TapeDrive, r.SupportStatus)
				} else {
					fmt.Fprintln(w, r.TapeDrive)
				}
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "show the support status of each drive")
	return c
}

func (a *app) tapeAction(verb, short string) *cobra.Command {
	var ta tapeArgs
	var op string
	var count int64
	var trace string
	use := verb + " -node NODE -device-id ID"
	switch verb {
	case "trace":
		use = "trace -node NODE [-device-id ID] -is-trace-enabled true|false"
	case "position":
		use += " -operation weof|fsf|bsf|fsr|bsr|rewind|offline [-count N]"
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"device-id": &ta.deviceID}, "device-id"); err != nil {
				return err
			}
			in := admin.TapeAction{Node: ta.node, DeviceID: ta.deviceID}
			switch verb {
			case "trace":
				if err := required(req("is-trace-enabled", trace)); err != nil {
					return err
				}
				on, err := strconv.ParseBool(trace)
				if err != nil || (trace != "true" && trace != "false") {
					return fmt.Errorf("invalid value %q for -is-trace-enabled; use true or false", trace)
				}
				in.IsTraceEnabled = &on
			case "position":
				if err := required(req("device-id", ta.deviceID), req("operation", op)); err != nil {
					return err
				}
				in.Operation = op
				in.Count = &count
			default:
				if err := required(req("device-id", ta.deviceID)); err != nil {
					return err
				}
			}
			var res admin.TapeActionResult
			if err := a.call(cmd, http.MethodPost, tapeAPI+"/"+verb, nil, in, &res); err != nil {
				return err
			}
			if verb == "position" && res.Residual > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "Warning: %d of %d operations were not done: the tape reached its beginning, its end or a file mark.\n", res.Residual, count)
			}
			return nil
		},
	}
	ta.flags(c)
	switch verb {
	case "trace":
		c.Flags().StringVar(&trace, "is-trace-enabled", "", "true to trace the operations of the device (every device of the node without -device-id)")
	case "position":
		c.Flags().StringVar(&op, "operation", "", "weof, fsf, bsf, fsr, bsr, rewind or offline")
		c.Flags().Int64Var(&count, "count", 1, "how many times to do the operation")
	case "reset":
		c.Annotations = map[string]string{advancedAnnotation: admin.PrivAdvanced}
	}
	return c
}

// tapeRescan is storage tape rescan (Tapestry): look for real tape
// devices added to or removed from the node now instead of at the next
// periodic rescan, and reload the tape configuration files.
func (a *app) tapeRescan() *cobra.Command {
	var node string
	c := &cobra.Command{
		Use:   "rescan [-node NODE]",
		Short: "Look for added and removed tape devices and reload the tape configuration files (Tapestry)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res admin.TapeRescanResult
			if err := a.call(cmd, http.MethodPost, tapeAPI+"/rescan", nil, admin.TapeAction{Node: node}, &res); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Paths added: %s\n", listOrNone(res.Added))
			fmt.Fprintf(w, "Paths removed: %s\n", listOrNone(res.Removed))
			if res.Errors != "" {
				fmt.Fprintf(w, "Warning: %s\n", res.Errors)
			}
			return nil
		},
	}
	c.Flags().StringVar(&node, "node", "", "node name")
	return c
}

func (a *app) loadBalanceShow() *cobra.Command {
	var o ShowOptions
	var node string
	c := &cobra.Command{
		Use:   "show [-node NODE]",
		Short: "Display whether multipath load balancing is enabled on each node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.api()
			if err != nil {
				return err
			}
			q := url.Values{}
			setIf(q, "node", node)
			rows, err := admin.List[admin.TapeLoadBalance](cmd.Context(), cl, tapeAPI+"/load-balance", q)
			if err != nil {
				return err
			}
			t := Table{Columns: []Column{{"node", "Node", "Node"}, {"is-load-balance-enabled", "Is Load Balance Enabled", "Is Load Balance Enabled"}},
				Keys: []string{"node"}, Raw: rows, Default: []string{"node", "is-load-balance-enabled"}}
			for _, r := range rows {
				t.Rows = append(t.Rows, map[string]string{"node": r.Node, "is-load-balance-enabled": boolText(r.Enabled != nil && *r.Enabled)})
			}
			return a.print(cmd, t, o)
		},
	}
	c.Flags().StringVar(&node, "node", "", "node name")
	showFlags(c, &o)
	return c
}

func (a *app) loadBalanceModify() *cobra.Command {
	var node, enabled string
	c := &cobra.Command{
		Use:   "modify -node NODE -is-load-balance-enabled true|false",
		Short: "Enable or disable multipath load balancing of the node's tape devices (off by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := required(req("node", node), req("is-load-balance-enabled", enabled)); err != nil {
				return err
			}
			on, err := strconv.ParseBool(enabled)
			if err != nil || (enabled != "true" && enabled != "false") {
				return fmt.Errorf("invalid value %q for -is-load-balance-enabled; use true or false", enabled)
			}
			return a.call(cmd, http.MethodPost, tapeAPI+"/load-balance", nil, admin.TapeLoadBalance{Node: node, Enabled: &on}, nil)
		},
	}
	c.Flags().StringVar(&node, "node", "", "node name")
	c.Flags().StringVar(&enabled, "is-load-balance-enabled", "", "true to use the paths of each device in turn")
	return c
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func (a *app) tapeAliasSet() *cobra.Command {
	var in admin.TapeAlias
	c := &cobra.Command{
		Use:   "set -node NODE -name stN|mcN -mapping PPN|SN[serial]L[lun]",
		Short: "Set an alias name for a tape drive or media changer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := required(req("name", in.Name), req("mapping", in.Mapping)); err != nil {
				return err
			}
			return a.call(cmd, http.MethodPost, tapeAPI+"/alias", nil, in, nil)
		},
	}
	f := c.Flags()
	f.StringVar(&in.Node, "node", "", "node name")
	f.StringVar(&in.Name, "name", "", "alias: st<N> for a tape drive, mc<N> for a media changer")
	f.StringVar(&in.Mapping, "mapping", "", "physical path name (0b.4, MY_SWITCH:5.3L2) or serial number (SN[123456]L4)")
	return c
}

func (a *app) tapeAliasClear() *cobra.Command {
	var in admin.TapeAliasClear
	c := &cobra.Command{
		Use:   "clear -node NODE {-name stN|mcN | -clear-scope tape|media-changer|all}",
		Short: "Clear aliases of tape drives or media changers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in.Name == "" && in.ClearScope == "" {
				return fmt.Errorf("missing required parameter -name or -clear-scope")
			}
			return a.call(cmd, http.MethodPost, tapeAPI+"/alias/clear", nil, in, nil)
		},
	}
	f := c.Flags()
	f.StringVar(&in.Node, "node", "", "node name")
	f.StringVar(&in.Name, "name", "", "the alias to clear")
	f.StringVar(&in.ClearScope, "clear-scope", "", "clear every alias of: tape, media-changer or all")
	return c
}

func (a *app) tapeAliasShow() *cobra.Command {
	var o ShowOptions
	var node, name string
	c := &cobra.Command{
		Use:   "show [-node NODE] [-name ALIAS]",
		Short: "Display the aliases of tape drives and media changers",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"name": &name}, "name"); err != nil {
				return err
			}
			c, err := a.api()
			if err != nil {
				return err
			}
			q := url.Values{}
			setIf(q, "node", node)
			setIf(q, "name", name)
			as, err := admin.List[admin.TapeAlias](cmd.Context(), c, tapeAPI+"/alias", q)
			if err != nil {
				return err
			}
			t := Table{
				Columns: []Column{
					{"node", "Node", "Node"},
					{"name", "Alias", "Alias Name"},
					{"mapping", "Mapping", "Mapping"},
					{"device-id", "Device ID", "Attached Device"},
					{"device-type", "Device Type", "Device Type"},
				},
				Keys: []string{"node", "name"}, Raw: as,
				Default: []string{"name", "mapping", "device-id", "device-type"},
			}
			for _, x := range as {
				t.Rows = append(t.Rows, map[string]string{"node": x.Node, "name": x.Name, "mapping": x.Mapping,
					"device-id": x.DeviceID, "device-type": x.DeviceType})
			}
			return a.printByNode(cmd, t, o, func(i int) string { return as[i].Node })
		},
	}
	c.Flags().StringVar(&node, "node", "", "node name")
	c.Flags().StringVar(&name, "name", "", "alias name")
	showFlags(c, &o)
	return c
}

func (a *app) tapePathShow(byInitiator bool) *cobra.Command {
	verb, short := "show", "Display the paths to tape drives and media changers"
	if byInitiator {
		verb, short = "show-by-initiator", "Display the paths to tape devices for every initiator"
	}
	return showCmd(a, showSpec[admin.TapePath]{
		use: verb + " [-node NODE] [-initiator PORT]", short: short, path: tapeAPI + "/library/paths",
		filters: []filter{{"node", "node", "node name"}, {"initiator", "initiator", "initiator port (host adapter or switch:port)"}},
		table: func(ps []admin.TapePath) Table {
			t := Table{
				Columns: []Column{
					{"node", "Node", "Node"},
					{"initiator", "Initiator", "Initiator Port"},
					{"device-id", "Device ID", "Device ID"},
					{"alias", "Alias", "Alias Name"},
					{"device-type", "Device Type", "Device Type"},
					{"description", "Description", "Description"},
					{"serial-number", "Serial Number", "Serial Number"},
					{"lun", "LUN", "LUN"},
					{"primary", "Primary", "Primary Path"},
				},
				Keys:    []string{"node", "device-id"},
				Default: []string{"node", "device-id", "alias", "initiator", "lun", "primary", "description"},
			}
			if byInitiator {
				t.Keys = []string{"node", "initiator", "device-id"}
				t.Default = []string{"node", "initiator", "device-id", "alias", "device-type", "lun"}
				sort.SliceStable(ps, func(i, j int) bool { return ps[i].Initiator < ps[j].Initiator })
			}
			for _, p := range ps {
				t.Rows = append(t.Rows, map[string]string{"node": p.Node, "initiator": p.Initiator, "device-id": p.DeviceID,
					"alias": p.Alias, "device-type": p.DeviceType, "description": p.Description, "serial-number": p.Serial,
					"lun": strconv.Itoa(p.LUN), "primary": boolText(p.Primary)})
			}
			return t
		},
	})
}

func (a *app) tapeLibraryConfigShow() *cobra.Command {
	var o ShowOptions
	var node string
	c := &cobra.Command{
		Use:   "show [-node NODE]",
		Short: "Display the LUN groups of the tape libraries and their initiators",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			q := url.Values{}
			setIf(q, "node", node)
			gs, err := admin.List[admin.TapeLibraryConfig](cmd.Context(), c, tapeAPI+"/library/config", q)
			if err != nil {
				return err
			}
			t := Table{
				Columns: []Column{
					{"node", "Node", "Node"},
					{"lun-group", "LUN Group", "LUN Group"},
					{"lun-count", "LUN Count", "LUN Count"},
					{"library-name", "Library Name", "Library Name"},
					{"target-port", "Library Target Port", "Library Target Port"},
					{"initiator", "Initiator", "Initiator"},
				},
				Keys: []string{"node", "lun-group"}, Raw: gs,
				Default: []string{"node", "lun-group", "lun-count", "library-name", "target-port", "initiator"},
			}
			// As the specification shows it: one line per initiator, the
			// group's other fields on its first line only.
			if !a.json && !o.Instance && len(o.Fields) == 0 {
				for _, g := range gs {
					for i, ini := range g.Initiators {
						r := map[string]string{"node": " ", "lun-group": " ", "lun-count": " ", "library-name": " ", "target-port": " ", "initiator": ini}
						if i == 0 {
							r = map[string]string{"node": g.Node, "lun-group": strconv.Itoa(g.LUNGroup), "lun-count": strconv.Itoa(g.LUNCount),
								"library-name": g.LibraryName, "target-port": g.TargetPort, "initiator": ini}
						}
						t.Rows = append(t.Rows, r)
					}
				}
				return a.print(cmd, t, o)
			}
			for _, g := range gs {
				t.Rows = append(t.Rows, map[string]string{"node": g.Node, "lun-group": strconv.Itoa(g.LUNGroup), "lun-count": strconv.Itoa(g.LUNCount),
					"library-name": g.LibraryName, "target-port": g.TargetPort, "initiator": strings.Join(g.Initiators, ",")})
			}
			return a.print(cmd, t, o)
		},
	}
	c.Flags().StringVar(&node, "node", "", "node name")
	showFlags(c, &o)
	return c
}

func (a *app) hardwareTapeShow(what string) *cobra.Command {
	var o ShowOptions
	var ta tapeArgs
	kind := "tape drive"
	if what == "library" {
		kind = "media changer"
	}
	c := &cobra.Command{
		Use:   "show [-node NODE] [-device-id ID]",
		Short: "Display the node's tape " + what + "s with their serial numbers",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"device-id": &ta.deviceID}, "device-id"); err != nil {
				return err
			}
			devs, err := a.tapeDevices(cmd.Context(), ta.node, ta.deviceID, kind)
			if err != nil {
				return err
			}
			t := Table{Columns: tapeDeviceColumns, Keys: []string{"node", "device-id"}, Raw: devs,
				Default: []string{"node", "device-id", "description", "serial-number", "alias", "paths"}}
			for _, d := range devs {
				t.Rows = append(t.Rows, tapeDeviceRow(d))
			}
			return a.print(cmd, t, o)
		},
	}
	ta.flags(c)
	showFlags(c, &o)
	return c
}

// ---- storage stats tape

func (a *app) storageStatsCmd() *cobra.Command {
	var o ShowOptions
	stats := &cobra.Command{
		Use:   "tape [tape_name]",
		Short: "Display tape drive statistics (nodeshell form); zero them with storage stats tape zero",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			devs, err := a.tapeDevices(cmd.Context(), "", id, "tape drive")
			if err != nil {
				return err
			}
			t := Table{
				Columns: []Column{
					{"alias", "Tape", "Tape Name"},
					{"device-id", "Device ID", "Device ID"},
					{"bytes-read", "Bytes Read", "Bytes Read"},
					{"bytes-written", "Bytes Written", "Bytes Written"},
					{"records-read", "Records Read", "Records Read"},
					{"records-written", "Records Written", "Records Written"},
					{"filemarks-written", "File Marks", "File Marks Written"},
					{"read-errors", "Read Errors", "Read Errors"},
					{"write-errors", "Write Errors", "Write Errors"},
					{"other-errors", "Other Errors", "Other Errors"},
				},
				Keys: []string{"alias"}, Raw: devs,
				Default: []string{"alias", "device-id", "bytes-read", "bytes-written", "records-read", "records-written", "filemarks-written", "read-errors", "write-errors"},
			}
			i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
			for _, d := range devs {
				s := d.Stats
				t.Rows = append(t.Rows, map[string]string{"alias": d.Alias, "device-id": d.DeviceID,
					"bytes-read": i64(s.BytesRead), "bytes-written": i64(s.BytesWritten), "records-read": i64(s.RecordsRead),
					"records-written": i64(s.RecordsWritten), "filemarks-written": i64(s.FilemarksWritten),
					"read-errors": i64(s.ReadErrors), "write-errors": i64(s.WriteErrors), "other-errors": i64(s.OtherErrors)})
			}
			return a.print(cmd, t, o)
		},
	}
	showFlags(stats, &o)
	zero := &cobra.Command{
		Use:   "zero tape_name",
		Short: "Reset the statistics of a tape drive to zero",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, http.MethodPost, "/api/private/cli/storage/stats/tape/zero", nil, admin.TapeAction{DeviceID: args[0]}, nil)
		},
	}
	stats.AddCommand(zero)
	return group("stats", "Display storage statistics", stats)
}

// ---- the virtual library

func (a *app) vtlShow() *cobra.Command {
	return showCmd(a, showSpec[admin.VTLInfo]{
		use: "show", short: "Display the node's virtual tape library", path: tapeAPI + "/vtl",
		table: func(ls []admin.VTLInfo) Table {
			t := Table{
				Columns: []Column{
					{"node", "Node", "Node"},
					{"media-changer", "Changer", "Media Changer Alias"},
					{"serial-number", "Serial Number", "Serial Number"},
					{"drives", "Drives", "Tape Drives"},
					{"slots", "Slots", "Storage Slots"},
					{"ie-slots", "IE Slots", "Import/Export Slots"},
					{"cartridges", "Cartridges", "Cartridges"},
					{"capacity", "Capacity", "Capacity of New Cartridges"},
					{"directory", "Directory", "Directory"},
				},
				Keys:    []string{"node"},
				Default: []string{"node", "media-changer", "serial-number", "drives", "slots", "ie-slots", "cartridges"},
			}
			for _, l := range ls {
				t.Rows = append(t.Rows, map[string]string{"node": l.Node, "media-changer": l.MediaChanger, "serial-number": l.Serial,
					"drives": strconv.Itoa(l.Drives), "slots": strconv.Itoa(l.Slots), "ie-slots": strconv.Itoa(l.IESlots),
					"cartridges": strconv.Itoa(l.Cartridges), "capacity": sizeText(l.Capacity), "directory": l.Directory})
			}
			return t
		},
	})
}

// vtlCreate is storage tape vtl create (T9): a new virtual library whose
// devices appear on the node at once.
func (a *app) vtlCreate() *cobra.Command {
	var in admin.VTLCreate
	var capacity string
	c := &cobra.Command{
		Use:   "create -name NAME -drives N -slots N -ie-slots N -cartridges N [-capacity SIZE]",
		Short: "Create a virtual tape library and attach its drives and media changer to the node",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("name", &in.Name)); err != nil {
				return err
			}
			for _, f := range []string{"drives", "slots", "ie-slots", "cartridges"} {
				if !cmd.Flags().Changed(f) {
					return fmt.Errorf("missing required parameter -%s", f)
				}
			}
			if err := sizeParam(capacity, &in.Capacity); err != nil {
				return err
			}
			var l admin.VTLLibrary
			if err := a.call(cmd, http.MethodPost, tapeAPI+"/vtls", nil, in, &l); err != nil {
				return err
			}
			if done, err := a.printRaw(cmd, l); done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Virtual tape library %s created: media changer %s, tape drives %s.\n",
				l.Name, l.MediaChanger, strings.Join(l.TapeDrives, ", "))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&in.Name, "name", "", "name of the library: letters, digits, '_' or '-', starting with a letter")
	f.IntVar(&in.Drives, "drives", 0, "number of tape drives (1-64)")
	f.IntVar(&in.Slots, "slots", 0, "number of storage slots (1-4096)")
	f.IntVar(&in.IESlots, "ie-slots", 0, "number of import/export slots (0-16)")
	f.IntVar(&in.Cartridges, "cartridges", 0, "number of blank cartridges NAME001, NAME002, ... in the first slots; the first ones are loaded into the drives")
	f.StringVar(&capacity, "capacity", "", "capacity of the cartridges, e.g. 800GB or 2.5TB (default 800GB)")
	return c
}

// vtlDelete is storage tape vtl delete: the library's devices leave the
// node and its directory is removed.
func (a *app) vtlDelete() *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "delete -name NAME",
		Short: "Delete a virtual tape library made with storage tape vtl create, with its cartridges",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("name", &name)); err != nil {
				return err
			}
			return a.call(cmd, http.MethodDelete, tapeAPI+"/vtls/"+url.PathEscape(name), nil, nil, nil)
		},
	}
	c.Flags().StringVar(&name, "name", "", "name of the library")
	return c
}

// vtlShowLibraries lists the libraries made with storage tape vtl create.
func (a *app) vtlShowLibraries() *cobra.Command {
	return showCmd(a, showSpec[admin.VTLLibrary]{
		use: "show-libraries [-name NAME]", short: "Display the virtual tape libraries made with storage tape vtl create", path: tapeAPI + "/vtls",
		filters: []filter{{"name", "name", "name of the library"}}, positional: 1,
		table: func(ls []admin.VTLLibrary) Table {
			t := Table{
				Columns: []Column{
					{"node", "Node", "Node"},
					{"name", "Name", "Library Name"},
					{"adapter", "Adapter", "Host Adapter"},
					{"media-changer", "Changer", "Media Changer Alias"},
					{"tape-drives", "Tape Drives", "Tape Drive Aliases"},
					{"serial-number", "Serial Number", "Serial Number"},
					{"drives", "Drives", "Tape Drives"},
					{"slots", "Slots", "Storage Slots"},
					{"ie-slots", "IE Slots", "Import/Export Slots"},
					{"cartridges", "Cartridges", "Cartridges"},
					{"capacity", "Capacity", "Capacity of New Cartridges"},
					{"directory", "Directory", "Directory"},
				},
				Keys:    []string{"node", "name"},
				Default: []string{"node", "name", "media-changer", "tape-drives", "slots", "ie-slots", "cartridges"},
			}
			for _, l := range ls {
				t.Rows = append(t.Rows, map[string]string{"node": l.Node, "name": l.Name, "adapter": l.Adapter,
					"media-changer": l.MediaChanger, "tape-drives": strings.Join(l.TapeDrives, ","), "serial-number": l.Serial,
					"drives": strconv.Itoa(l.Drives), "slots": strconv.Itoa(l.Slots), "ie-slots": strconv.Itoa(l.IESlots),
					"cartridges": strconv.Itoa(l.Cartridges), "capacity": sizeText(l.Capacity), "directory": l.Directory})
			}
			return t
		},
	})
}

// sizeText writes a byte count in decimal units, as tape capacities are
// given (2.5TB).
func sizeText(n int64) string {
	units := []string{"B", "KB", "MB", "GB", "TB", "PB"}
	v, i := float64(n), 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + units[i]
}

func (a *app) vtlCartridgeShow() *cobra.Command {
	return showCmd(a, showSpec[admin.VTLCartridge]{
		use: "show [-barcode BARCODE]", short: "Display the virtual library's cartridges and where they are", path: tapeAPI + "/vtl/cartridges",
		filters: []filter{{"barcode", "barcode", "cartridge barcode"}}, positional: 1,
		table: func(cs []admin.VTLCartridge) Table {
			t := Table{
				Columns: []Column{
					{"barcode", "Barcode", "Barcode"},
					{"location", "Location", "Location"},
					{"element-address", "Element", "Element Address"},
					{"capacity", "Capacity", "Capacity"},
					{"write-protect", "Write Protect", "Write Protected"},
					{"worm", "WORM", "Write Once"},
				},
				Keys:    []string{"barcode"},
				Default: []string{"barcode", "location", "capacity", "write-protect", "worm"},
			}
			for _, x := range cs {
				addr := ""
				if x.Location != "outside" {
					addr = fmt.Sprintf("%#04x", x.Address)
				}
				t.Rows = append(t.Rows, map[string]string{"barcode": x.Barcode, "location": x.Location, "element-address": addr,
					"capacity": sizeText(x.Capacity), "write-protect": boolText(x.WriteProtect), "worm": boolText(x.WORM)})
			}
			return t
		},
	})
}

func (a *app) vtlCartridgeAdd() *cobra.Command {
	var in admin.VTLCartridgeAdd
	var capacity string
	c := &cobra.Command{
		Use:   "add -barcode BARCODE [-capacity SIZE]",
		Short: "Make a new blank cartridge in the first empty storage slot",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("barcode", &in.Barcode)); err != nil {
				return err
			}
			if err := sizeParam(capacity, &in.Capacity); err != nil {
				return err
			}
			return a.call(cmd, http.MethodPost, tapeAPI+"/vtl/cartridges", nil, in, nil)
		},
	}
	c.Flags().StringVar(&in.Barcode, "barcode", "", "barcode of the new cartridge")
	c.Flags().StringVar(&capacity, "capacity", "", "capacity, e.g. 800GB or 2.5TB (default: the library's)")
	return c
}

// sizeParam sets *dst to the size s gives, leaving it alone when s is
// empty.
func sizeParam(s string, dst *int64) error {
	if s == "" {
		return nil
	}
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*dst = n
	return nil
}

// parseSize reads a size such as 800GB, 2.5TB, 512MB or a plain byte
// count; units are decimal.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := float64(1)
	for _, u := range []struct {
		suffix string
		m      float64
	}{{"PB", 1e15}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	// !(v*mult >= 1) also refuses NaN.
	if err != nil || !(v*mult >= 1) || v*mult > 1e18 {
		return 0, fmt.Errorf("invalid size %q; use a positive number with an optional unit KB, MB, GB, TB or PB", s)
	}
	return int64(v * mult), nil
}

func (a *app) vtlCartridgeOp(verb, short string) *cobra.Command {
	var barcode, newBarcode, to string
	use := verb + " -barcode BARCODE"
	switch verb {
	case "label":
		use += " -new-barcode BARCODE"
	case "move":
		use += " -to \"slot N\"|\"ie-slot N\"|\"drive N\""
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("barcode", &barcode)); err != nil {
				return err
			}
			var body any
			method, path := http.MethodPost, tapeAPI+"/vtl/cartridges/"+url.PathEscape(barcode)+"/"+verb
			switch verb {
			case "remove":
				method, path = http.MethodDelete, tapeAPI+"/vtl/cartridges/"+url.PathEscape(barcode)
			case "label":
				if err := required(req("new-barcode", newBarcode)); err != nil {
					return err
				}
				body = admin.VTLCartridgeLabel{NewBarcode: newBarcode}
			case "move":
				if err := required(req("to", to)); err != nil {
					return err
				}
				body = admin.VTLCartridgeMove{To: to}
			}
			return a.call(cmd, method, path, nil, body, nil)
		},
	}
	c.Flags().StringVar(&barcode, "barcode", "", "cartridge barcode")
	switch verb {
	case "label":
		c.Flags().StringVar(&newBarcode, "new-barcode", "", "the new barcode")
	case "move":
		c.Flags().StringVar(&to, "to", "", "destination: \"slot N\", \"ie-slot N\" or \"drive N\"")
	}
	return c
}
