package cli

// The NDMP administration commands: vserver services ndmp ... (SVM scope)
// and system services ndmp ... (node scope), N2, N3, N7-N9, N13.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

const (
	svmNDMPAPI  = "/api/private/cli/vserver/services/ndmp"
	nodeNDMPAPI = "/api/private/cli/system/services/ndmp"
)

// addNDMPCommands adds the NDMP commands under vserver services ndmp and
// system services ndmp, groups that other command files may have created.
func (a *app) addNDMPCommands(root *cobra.Command) {
	vndmp := subgroup(subgroup(subgroup(root, "vserver", "Manage SVMs"), "services", "Manage the services of SVMs"),
		"ndmp", "Manage NDMP of an SVM")
	vndmp.AddCommand(
		a.svmNDMPState("on", true), a.svmNDMPState("off", false),
		a.svmNDMPShow(), a.svmNDMPModify(), a.svmNDMPVersion(),
		a.ndmpStatus(false, false), a.ndmpStatus(false, true),
		a.ndmpKill(false), a.ndmpKillAll(false, "kill-all", "Terminate all NDMP sessions"),
		group("extensions", "Display or modify the NDMP extensions of an SVM", a.svmNDMPExtShow(), a.svmNDMPExtModify()),
		group("log", "Start or stop logging of NDMP sessions", a.ndmpLog(false, true), a.ndmpLog(false, false)),
	)
	sndmp := subgroup(subgroup(subgroup(root, "system", "Manage the system"), "services", "Manage the node's services"),
		"ndmp", "Manage NDMP of a node (node scope)")
	sndmp.AddCommand(
		a.nodeNDMPState("on", "Enable the NDMP service of a node", admin.NDMPNodeModify{Enabled: ptr(true)}),
		a.nodeNDMPState("off", "Disable the NDMP service of a node", admin.NDMPNodeModify{Enabled: ptr(false)}),
		a.nodeNDMPShow(), a.nodeNDMPModify(), a.nodeNDMPVersion(),
		group("service", "Manage the NDMP service of a node",
			a.nodeNDMPServiceShow(), a.nodeNDMPServiceModify(),
			a.nodeNDMPServiceStart(), a.nodeNDMPServiceStop(),
			advanced(a.ndmpKillAll(true, "terminate", "Forcefully terminate all NDMP sessions"))),
		a.ndmpStatus(true, false), a.ndmpStatus(true, true),
		a.ndmpKill(true), a.ndmpKillAll(true, "kill-all", "Terminate all NDMP sessions"),
		a.nodeNDMPPassword(),
		group("node-scope-mode", "Enable, disable or display node-scoped NDMP mode",
			a.nodeNDMPState("on", "Enable node-scoped NDMP mode", admin.NDMPNodeModify{NodeScopeMode: ptr(true)}),
			a.nodeNDMPState("off", "Disable node-scoped NDMP mode", admin.NDMPNodeModify{NodeScopeMode: ptr(false)}),
			a.nodeScopeStatus()),
		group("log", "Start or stop logging of NDMP sessions", a.ndmpLog(true, true), a.ndmpLog(true, false)),
	)
}

func ptr[T any](v T) *T { return &v }

// advanced marks a command as one of the advanced privilege level.
func advanced(c *cobra.Command) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[advancedAnnotation] = admin.PrivAdvanced
	return c
}

// printRaw prints v as JSON when --json is on and reports whether it did.
func (a *app) printRaw(cmd *cobra.Command, v any) (bool, error) {
	if !a.json {
		return false, nil
	}
	return true, Table{Raw: v}.Print(cmd.OutOrStdout(), ShowOptions{JSON: true})
}

// ---- SVM scope

func (a *app) svmNDMPState(verb string, on bool) *cobra.Command {
	var svm string
	short := "Enable the NDMP service of an SVM"
	if !on {
		short = "Disable the NDMP service of an SVM"
	}
	c := &cobra.Command{
		Use:   verb + " -vserver NAME",
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("vserver", &svm)); err != nil {
				return err
			}
			_, err := a.modifySVMNDMP(cmd.Context(), svm, admin.NDMPSVMModify{Enabled: &on})
			return err
		},
	}
	c.Flags().StringVar(&svm, "vserver", "", "SVM")
	return c
}

func (a *app) modifySVMNDMP(ctx context.Context, svm string, in admin.NDMPSVMModify) (admin.NDMPSVMSettings, error) {
	var out admin.NDMPSVMSettings
	c, err := a.api()
	if err != nil {
		return out, err
	}
	err = c.Do(ctx, http.MethodPatch, svmNDMPAPI+"/settings/"+url.PathEscape(svm), nil, in, &out)
	return out, err
}

func roleNames(r []storage.LIFRole) string {
	s := make([]string, len(r))
	for i, v := range r {
		s[i] = string(v)
	}
	return strings.Join(s, ",")
}

func (a *app) svmNDMPShow() *cobra.Command {
	return showCmd(a, showSpec[admin.NDMPSVMSettings]{
		use: "show [-vserver NAME]", short: "Display the NDMP configuration of SVMs", path: svmNDMPAPI,
		filters: []filter{{"vserver", "vserver", "show only this SVM"}}, positional: 1,
		table: func(recs []admin.NDMPSVMSettings) Table {
			t := Table{
				Columns: []Column{
					{"vserver", "Vserver", "Vserver Name"},
					{"enable", "Enabled", "NDMP Service Enabled"},
					{"authtype", "Authentication type", "Authentication Type"},
					{"is-secure-control-connection-enabled", "Secure Control", "Is Secure Control Connection Enabled"},
					{"data-port-range", "Data Port Range", "Data Port Range"},
					{"preferred-interface-role", "Preferred Interface Role", "Preferred Interface Role"},
					{"debug-enable", "Debug", "Enable Debug"},
					{"debug-filter", "Debug Filter", "Debug Filter"},
					{"is-extension-enabled", "Extensions", "Are NDMP Extensions Enabled"},
					{"backup-log-enable", "Backup Log", "Enable Backup Log"},
					{"restore-uid-range", "Restore UIDs", "User IDs Kept by Restores"},
					{"restore-gid-range", "Restore GIDs", "Group IDs Kept by Restores"},
					{"restore-default-owner", "Restore Owner", "Default Owner of Restored Files"},
					{"restore-allow-any-owner", "Any Owner", "Restores Keep Any Owner"},
					{"data-connect-allow", "Data Connect Allow", "Data Connections Allowed To"},
				},
				Keys:    []string{"vserver"},
				Default: []string{"vserver", "enable", "authtype"},
			}
			for _, r := range recs {
				t.Rows = append(t.Rows, map[string]string{
					"vserver": r.SVM, "enable": boolText(r.Enabled), "authtype": list(r.AuthTypes),
					"is-secure-control-connection-enabled": boolText(r.SecureControlConnection),
					"data-port-range":                      r.DataPortRange,
					"preferred-interface-role":             roleNames(r.PreferredInterfaceRole),
					"debug-enable":                         boolText(r.DebugEnable), "debug-filter": r.DebugFilter,
					"is-extension-enabled": boolText(r.ExtensionsEnabled), "backup-log-enable": boolText(r.BackupLogEnable),
					"restore-uid-range": dashIfEmpty(r.RestoreUIDs), "restore-gid-range": dashIfEmpty(r.RestoreGIDs),
					"restore-default-owner": fmt.Sprintf("%d:%d", r.RestoreDefaultUID, r.RestoreDefaultGID), "restore-allow-any-owner": boolText(r.RestoreAnyOwner),
					"data-connect-allow": dashIfEmpty(strings.Join(r.DataConnectAllow, ",")),
				})
			}
			return t
		},
	})
}

// boolFlag parses an ONTAP boolean parameter value.
func boolFlag(name, v string) (*bool, error) {
	switch strings.ToLower(v) {
	case "true":
		return ptr(true), nil
	case "false":
		return ptr(false), nil
	}
	return nil, fmt.Errorf("invalid value %q for -%s: use true or false", v, name)
}

func (a *app) svmNDMPModify() *cobra.Command {
	var svm string
	var authtype, roles []string
	var secure, debug, ext, backupLog, enable string
	var portRange, debugFilter string
	var t tenantFlags
	c := &cobra.Command{
		Use:   "modify -vserver NAME [-authtype plaintext,challenge] [-is-secure-control-connection-enabled true|false] [-data-port-range all|LOW-HIGH] [-preferred-interface-role ROLE,...] [-debug-enable true|false] [-debug-filter TEXT] [-backup-log-enable true|false] [-enable true|false] [-restore-uid-range IDS] [-restore-gid-range IDS] [-restore-default-uid ID] [-restore-default-gid ID] [-restore-allow-any-owner true|false] [-data-connect-allow ADDR,...]",
		Short: "Modify the NDMP configuration of an SVM",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("vserver", &svm)); err != nil {
				return err
			}
			var in admin.NDMPSVMModify
			f := cmd.Flags()
			if f.Changed("authtype") {
				in.AuthTypes = &authtype
			}
			if f.Changed("preferred-interface-role") {
				in.PreferredInterfaceRole = &roles
			}
			if f.Changed("data-port-range") {
				in.DataPortRange = &portRange
			}
			if f.Changed("debug-filter") {
				in.DebugFilter = &debugFilter
			}
			for _, b := range []struct {
				name string
				val  string
				dst  **bool
			}{
				{"is-secure-control-connection-enabled", secure, &in.SecureControlConnection},
				{"debug-enable", debug, &in.DebugEnable},
				{"is-extension-enabled", ext, &in.ExtensionsEnabled},
				{"backup-log-enable", backupLog, &in.BackupLogEnable},
				{"enable", enable, &in.Enabled},
			} {
				if !f.Changed(b.name) {
					continue
				}
				v, err := boolFlag(b.name, b.val)
				if err != nil {
					return err
				}
				*b.dst = v
			}
			if err := t.apply(f, &in); err != nil {
				return err
			}
			if in == (admin.NDMPSVMModify{}) {
				return fmt.Errorf("nothing to modify: give at least one parameter to change")
			}
			_, err := a.modifySVMNDMP(cmd.Context(), svm, in)
			return err
		},
	}
	fl := c.Flags()
	fl.StringVar(&svm, "vserver", "", "SVM")
	fl.StringSliceVar(&authtype, "authtype", nil, "accepted authentication types: plaintext, challenge")
	fl.StringVar(&secure, "is-secure-control-connection-enabled", "", "accept NDMP over TLS on port 30000 (true|false)")
	fl.StringVar(&portRange, "data-port-range", "", "ports of data connections: all or LOW-HIGH (1024-65535)")
	fl.StringSliceVar(&roles, "preferred-interface-role", nil, "LIF roles of data connections, in order: intercluster, cluster-mgmt, node-mgmt, data")
	fl.StringVar(&debug, "debug-enable", "", "debug logging of the SVM's sessions (true|false)")
	fl.StringVar(&debugFilter, "debug-filter", "", "what debug logging records")
	fl.StringVar(&ext, "is-extension-enabled", "", "offer the NetApp extensions 0x2050, 0x2051, 0x2052 (true|false)")
	fl.StringVar(&backupLog, "backup-log-enable", "", "the SVM's backup log setting (true|false); the node-wide option backup.log.enable turns the event log on and off")
	fl.StringVar(&enable, "enable", "", "NDMP service state (true|false)")
	t.flags(fl)
	return c
}

// tenantFlags are the containment options of vserver services ndmp modify
// (issue 10, docs/security.md); only cluster administrators may set them.
type tenantFlags struct {
	uids, gids, anyOwner string
	defUID, defGID       uint32
	allow                []string
}

func (t *tenantFlags) flags(fl *pflag.FlagSet) {
	fl.StringVar(&t.uids, "restore-uid-range", "", "user ids (\"2000-2999,3100\") whose files the SVM's restores keep; others go to -restore-default-uid (cluster administrators only)")
	fl.StringVar(&t.gids, "restore-gid-range", "", "group ids whose files the SVM's restores keep; others go to -restore-default-gid (cluster administrators only)")
	fl.Uint32Var(&t.defUID, "restore-default-uid", 0, "owner of restored files whose user id is outside -restore-uid-range (default 65534; not 0)")
	fl.Uint32Var(&t.defGID, "restore-default-gid", 0, "group of restored files whose group id is outside -restore-gid-range (default 65534; not 0)")
	fl.StringVar(&t.anyOwner, "restore-allow-any-owner", "", "keep every owner of the SVM's restored images, root included (true|false; default false)")
	fl.StringSliceVar(&t.allow, "data-connect-allow", nil, "addresses or prefixes outside the cluster's LIFs that the SVM's DATA_CONNECT and MOVER_CONNECT may reach (\"\" for none)")
}

// apply copies the flags that were given into in.
func (t *tenantFlags) apply(f *pflag.FlagSet, in *admin.NDMPSVMModify) error {
	if f.Changed("restore-uid-range") {
		in.RestoreUIDs = &t.uids
	}
	if f.Changed("restore-gid-range") {
		in.RestoreGIDs = &t.gids
	}
	if f.Changed("restore-default-uid") {
		in.RestoreDefaultUID = &t.defUID
	}
	if f.Changed("restore-default-gid") {
		in.RestoreDefaultGID = &t.defGID
	}
	if f.Changed("data-connect-allow") {
		allow := []string{}
		for _, a := range t.allow {
			if a != "" {
				allow = append(allow, a)
			}
		}
		in.DataConnectAllow = &allow
	}
	if f.Changed("restore-allow-any-owner") {
		v, err := boolFlag("restore-allow-any-owner", t.anyOwner)
		if err != nil {
			return err
		}
		in.RestoreAnyOwner = v
	}
	return nil
}

func versionTable(recs []admin.NDMPVersionInfo, key, header string) Table {
	t := Table{
		Columns: []Column{{key, header, header}, {"version", "NDMP Version", "Default NDMP Version"}},
		Keys:    []string{key}, Default: []string{key, "version"}, Raw: recs,
	}
	for _, r := range recs {
		name := r.SVM
		if key == "node" {
			name = r.Node
		}
		t.Rows = append(t.Rows, map[string]string{key: name, "version": strconv.Itoa(r.Version)})
	}
	return t
}

func (a *app) svmNDMPVersion() *cobra.Command {
	return showCmd(a, showSpec[admin.NDMPVersionInfo]{
		use: "version [-vserver NAME]", short: "Display the default NDMP version", path: svmNDMPAPI + "/version",
		filters: []filter{{"vserver", "vserver", "show only this SVM"}}, positional: 1,
		table: func(recs []admin.NDMPVersionInfo) Table { return versionTable(recs, "vserver", "Vserver") },
	})
}

func (a *app) svmNDMPExtShow() *cobra.Command {
	return advanced(showCmd(a, showSpec[admin.NDMPSVMSettings]{
		use: "show [-vserver NAME]", short: "Display the NDMP extension status of SVMs", path: svmNDMPAPI,
		filters: []filter{{"vserver", "vserver", "show only this SVM"}}, positional: 1,
		table: func(recs []admin.NDMPSVMSettings) Table {
			t := Table{
				Columns: []Column{
					{"vserver", "Vserver", "Vserver"},
					{"is-extension-enabled", "Extensions Enabled", "Are NDMP Extensions Enabled"},
					{"extensions", "Extension Classes", "Extension Classes"},
				},
				Keys: []string{"vserver"}, Default: []string{"vserver", "is-extension-enabled"},
			}
			classes := fmt.Sprintf("0x%04x,0x%04x,0x%04x", ndmp.ExtClassNetAppRBE, ndmp.ExtClassNetAppCAE, ndmp.ExtClassNetAppCAB)
			for _, r := range recs {
				t.Rows = append(t.Rows, map[string]string{"vserver": r.SVM, "is-extension-enabled": boolText(r.ExtensionsEnabled), "extensions": classes})
			}
			return t
		},
	}))
}

func (a *app) svmNDMPExtModify() *cobra.Command {
	var svm, val string
	c := &cobra.Command{
		Use:   "modify -vserver NAME -is-extension-enabled true|false",
		Short: "Enable or disable the NDMP extensions of an SVM",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"vserver": &svm}, "vserver"); err != nil {
				return err
			}
			if err := required(req("vserver", svm), req("is-extension-enabled", val)); err != nil {
				return err
			}
			on, err := boolFlag("is-extension-enabled", val)
			if err != nil {
				return err
			}
			_, err = a.modifySVMNDMP(cmd.Context(), svm, admin.NDMPSVMModify{ExtensionsEnabled: on})
			return err
		},
	}
	c.Flags().StringVar(&svm, "vserver", "", "SVM")
	c.Flags().StringVar(&val, "is-extension-enabled", "", "true or false")
	return advanced(c)
}

// ---- sessions (both scopes)

func sessionsAPI(nodeScope bool) string {
	if nodeScope {
		return nodeNDMPAPI
	}
	return svmNDMPAPI
}

// sessionTable renders sessions: status shows node and session id, probe
// every field of each session.
func sessionTable(ss []admin.NDMPSession) Table {
	t := Table{
		Columns: []Column{
			{"node", "Node", "Node"},
			{"session-id", "Session ID", "Session Identifier"},
			{"vserver", "Vserver", "Vserver"},
			{"lif", "LIF", "LIF Name"},
			{"lif-role", "LIF Role", "LIF Role"},
			{"client-addr", "Client Address", "Client Address"},
			{"server-addr", "Server Address", "Server Address"},
			{"is-secure-control-connection", "Secure", "Is Secure Control Connection"},
			{"node-scope", "Node Scope", "Node-Scope Session"},
			{"user-id", "User", "User ID"},
			{"auth-type", "Auth Type", "Authentication Type"},
			{"session-start-time", "Start Time", "Session Start Time"},
			{"tape-device", "Tape Device", "Tape Device"},
			{"scsi-device", "SCSI Device", "SCSI Device"},
			{"data-state", "Data State", "Data State"},
			{"data-operation", "Data Operation", "Data Operation"},
			{"data-bytes-processed", "Data Bytes", "Data Bytes Processed"},
			{"mover-state", "Mover State", "Mover State"},
			{"mover-mode", "Mover Mode", "Mover Mode"},
			{"mover-bytes-moved", "Mover Bytes", "Mover Bytes Moved"},
			{"extensions", "Extensions", "Negotiated Extensions"},
		},
		Keys:    []string{"node", "session-id"},
		Default: []string{"node", "session-id"},
		Raw:     ss,
	}
	for _, s := range ss {
		t.Rows = append(t.Rows, map[string]string{
			"node": s.Node, "session-id": strconv.FormatUint(s.ID, 10), "vserver": s.SVM, "lif": s.LIF,
			"lif-role": s.LIFRole, "client-addr": s.ClientAddr, "server-addr": s.ServerAddr,
			"is-secure-control-connection": boolText(s.Secure), "node-scope": boolText(s.NodeScope),
			"user-id": s.User, "auth-type": s.AuthType, "session-start-time": timeText(s.Started),
			"tape-device": s.Tape, "scsi-device": s.SCSI, "data-state": s.DataState, "data-operation": s.DataOp,
			"data-bytes-processed": strconv.FormatUint(s.DataBytes, 10), "mover-state": s.MoverState,
			"mover-mode": s.MoverMode, "mover-bytes-moved": strconv.FormatUint(s.MoverBytes, 10),
			"extensions": strings.Join(s.Extensions, ","),
		})
	}
	return t
}

// ndmpStatus is status (the sessions' ids) or probe (every detail).
func (a *app) ndmpStatus(nodeScope, probe bool) *cobra.Command {
	var o ShowOptions
	var svm, node, id string
	use, short := "status", "Display all NDMP sessions"
	if probe {
		use, short = "probe", "Display detailed information about NDMP sessions"
	}
	scope := " [-vserver NAME]"
	if nodeScope {
		scope = " [-node NAME]"
	}
	c := &cobra.Command{
		Use:   use + scope + " [-session-id ID]",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			setIf(q, "vserver", svm)
			setIf(q, "node", node)
			setIf(q, "session-id", id)
			if probe && len(o.Fields) == 0 && !a.json {
				o.Instance = true
			}
			return printList(a, cmd, sessionsAPI(nodeScope)+"/sessions", q, o, sessionTable)
		},
	}
	if nodeScope {
		c.Flags().StringVar(&node, "node", "", "node")
	} else {
		c.Flags().StringVar(&svm, "vserver", "", "SVM")
	}
	c.Flags().StringVar(&id, "session-id", "", "show only this session")
	showFlags(c, &o)
	return c
}

func (a *app) ndmpKill(nodeScope bool) *cobra.Command {
	var in admin.NDMPKill
	scope := " [-vserver NAME]"
	if nodeScope {
		scope = " [-node NAME]"
	}
	c := &cobra.Command{
		Use:   "kill -session-id ID" + scope,
		Short: "Terminate the specified NDMP session",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("session-id", &in.SessionID)); err != nil {
				return err
			}
			var out admin.NDMPKillResult
			return a.call(cmd, http.MethodPost, sessionsAPI(nodeScope)+"/kill", nil, in, &out)
		},
	}
	if nodeScope {
		c.Flags().StringVar(&in.Node, "node", "", "node")
	} else {
		c.Flags().StringVar(&in.SVM, "vserver", "", "SVM")
	}
	c.Flags().StringVar(&in.SessionID, "session-id", "", "session to terminate")
	return c
}

func (a *app) ndmpKillAll(nodeScope bool, use, short string) *cobra.Command {
	var in admin.NDMPKill
	scope := " [-vserver NAME]"
	if nodeScope {
		scope = " [-node NAME]"
	}
	c := &cobra.Command{
		Use:   use + scope,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out admin.NDMPKillResult
			if err := a.call(cmd, http.MethodPost, sessionsAPI(nodeScope)+"/kill-all", nil, in, &out); err != nil {
				return err
			}
			if done, err := a.printRaw(cmd, out); done {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "%d NDMP sessions terminated.\n", len(out.Sessions))
			return err
		},
	}
	if nodeScope {
		c.Flags().StringVar(&in.Node, "node", "", "node")
	} else {
		c.Flags().StringVar(&in.SVM, "vserver", "", "terminate only this SVM's sessions")
	}
	return c
}

func (a *app) ndmpLog(nodeScope, start bool) *cobra.Command {
	var in admin.NDMPKill
	verb, short := "start", "Start logging for the specified NDMP session"
	if !start {
		verb, short = "stop", "Stop logging for the specified NDMP session"
	}
	scope := " [-vserver NAME]"
	if nodeScope {
		scope = " [-node NAME]"
	}
	c := &cobra.Command{
		Use:   verb + scope + " -session-filter all|ID",
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("session-filter", &in.SessionFilter)); err != nil {
				return err
			}
			var out admin.NDMPKillResult
			if err := a.call(cmd, http.MethodPost, sessionsAPI(nodeScope)+"/log/"+verb, nil, in, &out); err != nil {
				return err
			}
			if done, err := a.printRaw(cmd, out); done {
				return err
			}
			ids := make([]string, len(out.Sessions))
			for i, id := range out.Sessions {
				ids[i] = strconv.FormatUint(id, 10)
			}
			state := "started"
			if !start {
				state = "stopped"
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "Logging %s for %d NDMP sessions: %s\n", state, len(ids), strings.Join(ids, ", "))
			return err
		},
	}
	if nodeScope {
		c.Flags().StringVar(&in.Node, "node", "", "node")
	} else {
		c.Flags().StringVar(&in.SVM, "vserver", "", "SVM")
	}
	c.Flags().StringVar(&in.SessionFilter, "session-filter", "", "all, a session id or session-id=ID")
	return advanced(c)
}

// ---- node scope

func (a *app) modifyNodeNDMP(ctx context.Context, node string, in admin.NDMPNodeModify) (admin.NDMPNodeSettings, error) {
	var out admin.NDMPNodeSettings
	c, err := a.api()
	if err != nil {
		return out, err
	}
	path := nodeNDMPAPI + "/settings" // the node serving the API
	if node != "" {
		path += "/" + url.PathEscape(node)
	}
	err = c.Do(ctx, http.MethodPatch, path, nil, in, &out)
	return out, err
}

func (a *app) nodeNDMPState(verb, short string, in admin.NDMPNodeModify) *cobra.Command {
	var node string
	c := &cobra.Command{
		Use:   verb + " [-node NAME]",
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"node": &node}, "node"); err != nil {
				return err
			}
			_, err := a.modifyNodeNDMP(cmd.Context(), node, in)
			return err
		},
	}
	c.Flags().StringVar(&node, "node", "", "node (default: this node)")
	return c
}

func (a *app) nodeNDMPList(ctx context.Context, node string) ([]admin.NDMPNodeSettings, error) {
	c, err := a.api()
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if node != "" {
		q.Set("node", node)
	}
	return admin.List[admin.NDMPNodeSettings](ctx, c, nodeNDMPAPI, q)
}

func (a *app) nodeNDMPShow() *cobra.Command {
	return showCmd(a, showSpec[admin.NDMPNodeSettings]{
		use: "show [-node NAME]", short: "Display the NDMP configuration of nodes", path: nodeNDMPAPI,
		filters: []filter{{"node", "node", "show only this node"}}, positional: 1,
		table: func(recs []admin.NDMPNodeSettings) Table {
			t := Table{
				Columns: []Column{
					{"node", "Node", "Node"},
					{"enable", "Enabled", "NDMP Service Enabled"},
					{"clear-text", "Clear text", "Allow Clear Text Password"},
					{"user-id", "User Id", "NDMP User ID"},
					{"password-set", "Password Set", "NDMP Password Set"},
					{"node-scope-mode", "Node Scope", "Node-Scoped NDMP Mode"},
					{"data-port-range", "Data Port Range", "Data Port Range"},
					{"debug-enable", "Debug", "Enable Debug"},
					{"auth-timeout", "Auth Timeout", "Seconds to Authenticate"},
					{"max-unauthenticated", "Max Unauth", "Maximum Unauthenticated Connections"},
					{"max-unauthenticated-per-address", "Max Unauth/Addr", "Maximum Unauthenticated Connections per Address"},
				},
				Keys: []string{"node"}, Default: []string{"node", "enable", "clear-text", "user-id"},
			}
			for _, r := range recs {
				t.Rows = append(t.Rows, map[string]string{
					"node": r.Node, "enable": boolText(r.Enabled), "clear-text": boolText(r.Plaintext), "user-id": r.User,
					"password-set": boolText(r.PasswordSet), "node-scope-mode": boolText(r.NodeScopeMode),
					"data-port-range": r.DataPortRange, "debug-enable": boolText(r.DebugEnable),
					"auth-timeout": strconv.Itoa(r.AuthTimeout), "max-unauthenticated": strconv.Itoa(r.MaxUnauthenticated),
					"max-unauthenticated-per-address": strconv.Itoa(r.MaxUnauthenticatedPerAddress),
				})
			}
			return t
		},
	})
}

func (a *app) nodeNDMPModify() *cobra.Command {
	var node, enable, clear, debug, user, portRange string
	var authTimeout, maxUnauth, maxUnauthAddr int
	c := &cobra.Command{
		Use: "modify [-node NAME] [-enable true|false] [-clear-text true|false] [-user-id NAME] [-data-port-range all|LOW-HIGH] [-debug-enable true|false] " +
			"[-auth-timeout SECONDS] [-max-unauthenticated N] [-max-unauthenticated-per-address N]",
		Short: "Modify the NDMP configuration of a node",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"node": &node}, "node"); err != nil {
				return err
			}
			var in admin.NDMPNodeModify
			f := cmd.Flags()
			if f.Changed("user-id") {
				in.User = &user
			}
			if f.Changed("data-port-range") {
				in.DataPortRange = &portRange
			}
			for _, n := range []struct {
				name string
				val  *int
				dst  **int
			}{
				{"auth-timeout", &authTimeout, &in.AuthTimeout}, {"max-unauthenticated", &maxUnauth, &in.MaxUnauthenticated},
				{"max-unauthenticated-per-address", &maxUnauthAddr, &in.MaxUnauthenticatedPerAddress},
			} {
				if f.Changed(n.name) {
					*n.dst = n.val
				}
			}
			for _, b := range []struct {
				name, val string
				dst       **bool
			}{
				{"enable", enable, &in.Enabled}, {"clear-text", clear, &in.Plaintext}, {"debug-enable", debug, &in.DebugEnable},
			} {
				if !f.Changed(b.name) {
					continue
				}
				v, err := boolFlag(b.name, b.val)
				if err != nil {
					return err
				}
				*b.dst = v
			}
			if in == (admin.NDMPNodeModify{}) {
				return fmt.Errorf("nothing to modify: give at least one parameter to change")
			}
			_, err := a.modifyNodeNDMP(cmd.Context(), node, in)
			return err
		},
	}
	fl := c.Flags()
	fl.StringVar(&node, "node", "", "node (default: this node)")
	fl.StringVar(&enable, "enable", "", "NDMP service state (true|false)")
	fl.StringVar(&clear, "clear-text", "", "allow plaintext authentication; challenge is always allowed (true|false)")
	fl.StringVar(&user, "user-id", "", "node-scope NDMP user")
	fl.StringVar(&portRange, "data-port-range", "", "ports of data connections: all or LOW-HIGH")
	fl.StringVar(&debug, "debug-enable", "", "debug logging of node-scope sessions (true|false)")
	fl.IntVar(&authTimeout, "auth-timeout", 0, "seconds a connection has to authenticate before it is closed (0: default 30)")
	fl.IntVar(&maxUnauth, "max-unauthenticated", 0, "most connections not yet authenticated on the node; the oldest is closed beyond it (0: default 256)")
	fl.IntVar(&maxUnauthAddr, "max-unauthenticated-per-address", 0, "most connections not yet authenticated from one client address; more are refused (0: default 32)")
	return c
}

func (a *app) nodeNDMPVersion() *cobra.Command {
	return showCmd(a, showSpec[admin.NDMPVersionInfo]{
		use: "version [-node NAME]", short: "Display the default NDMP version", path: nodeNDMPAPI + "/version",
		filters: []filter{{"node", "node", "node"}}, positional: 1,
		table: func(recs []admin.NDMPVersionInfo) Table { return versionTable(recs, "node", "Node") },
	})
}

func serviceStatus(r admin.NDMPNodeSettings) string {
	switch {
	case !r.ServiceRunning:
		return "not running"
	case !r.Enabled:
		return "stopped"
	}
	return "running"
}

func (a *app) nodeNDMPServiceShow() *cobra.Command {
	return showCmd(a, showSpec[admin.NDMPNodeSettings]{
		use: "show [-node NAME]", short: "Display the NDMP service configuration of nodes", path: nodeNDMPAPI,
		filters: []filter{{"node", "node", "show only this node"}}, positional: 1,
		table: func(recs []admin.NDMPNodeSettings) Table {
			t := Table{
				Columns: []Column{
					{"node", "Node", "Node"},
					{"status", "Current Status", "Current Status"},
					{"enable", "Enabled", "NDMP Service Enabled"},
				},
				Keys: []string{"node"}, Default: []string{"node", "status"},
			}
			for _, r := range recs {
				t.Rows = append(t.Rows, map[string]string{"node": r.Node, "status": serviceStatus(r), "enable": boolText(r.Enabled)})
			}
			return t
		},
	})
}

func (a *app) nodeNDMPServiceModify() *cobra.Command {
	var node, enable string
	c := &cobra.Command{
		Use:   "modify [-node NAME] -enable true|false",
		Short: "Modify the NDMP service configuration of a node",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"node": &node}, "node"); err != nil {
				return err
			}
			if err := required(req("enable", enable)); err != nil {
				return err
			}
			on, err := boolFlag("enable", enable)
			if err != nil {
				return err
			}
			_, err = a.modifyNodeNDMP(cmd.Context(), node, admin.NDMPNodeModify{Enabled: on})
			return err
		},
	}
	c.Flags().StringVar(&node, "node", "", "node (default: this node)")
	c.Flags().StringVar(&enable, "enable", "", "whether the NDMP service accepts sessions (true|false)")
	return c
}

func (a *app) nodeNDMPServiceStart() *cobra.Command {
	var node string
	c := &cobra.Command{
		Use:   "start [-node NAME]",
		Short: "Start the NDMP service of a node: new sessions are accepted",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"node": &node}, "node"); err != nil {
				return err
			}
			_, err := a.modifyNodeNDMP(cmd.Context(), node, admin.NDMPNodeModify{Enabled: ptr(true)})
			return err
		},
	}
	c.Flags().StringVar(&node, "node", "", "node (default: this node)")
	return advanced(c)
}

func (a *app) nodeNDMPServiceStop() *cobra.Command {
	var node string
	c := &cobra.Command{
		Use:   "stop [-node NAME]",
		Short: "Stop the NDMP service of a node: new sessions are refused and running ones terminated",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"node": &node}, "node"); err != nil {
				return err
			}
			if _, err := a.modifyNodeNDMP(cmd.Context(), node, admin.NDMPNodeModify{Enabled: ptr(false)}); err != nil {
				return err
			}
			return a.call(cmd, http.MethodPost, nodeNDMPAPI+"/kill-all", nil, admin.NDMPKill{Node: node}, nil)
		},
	}
	c.Flags().StringVar(&node, "node", "", "node (default: this node)")
	return advanced(c)
}

func (a *app) nodeScopeStatus() *cobra.Command {
	var node string
	c := &cobra.Command{
		Use:   "status [-node NAME]",
		Short: "Display the node-scoped NDMP mode status",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"node": &node}, "node"); err != nil {
				return err
			}
			recs, err := a.nodeNDMPList(cmd.Context(), node)
			if err != nil {
				return err
			}
			if done, err := a.printRaw(cmd, recs); done {
				return err
			}
			for _, r := range recs {
				state := "disabled"
				if r.NodeScopeMode {
					state = "enabled"
				}
				if _, err := fmt.Fprintf(cmd.OutOrStdout(), "NDMP node-scope-mode is %s on node %s.\n", state, r.Node); err != nil {
					return err
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&node, "node", "", "node")
	return c
}

func (a *app) nodeNDMPPassword() *cobra.Command {
	var node, pw string
	c := &cobra.Command{
		Use:   "password [-node NAME]",
		Short: "Change the NDMP password of the node-scope NDMP user",
		Long: "password sets the password of the node's NDMP user (system services ndmp modify -user-id). " +
			"It is prompted for twice on a terminal; -new-password gives it without a prompt.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"node": &node}, "node"); err != nil {
				return err
			}
			if !cmd.Flags().Changed("new-password") {
				if a.env.ReadPassword == nil {
					return fmt.Errorf("no terminal to prompt for the password on: give -new-password")
				}
				p1, err := a.env.ReadPassword("Enter the new NDMP password: ")
				if err != nil {
					return fmt.Errorf("read password: %w", err)
				}
				p2, err := a.env.ReadPassword("Confirm the new NDMP password: ")
				if err != nil {
					return fmt.Errorf("read password: %w", err)
				}
				if p1 != p2 {
					return fmt.Errorf("the passwords do not match")
				}
				pw = p1
			}
			return a.call(cmd, http.MethodPost, nodeNDMPAPI+"/password", nil, admin.NDMPNodePassword{Node: node, Password: pw}, nil)
		},
	}
	c.Flags().StringVar(&node, "node", "", "node (default: this node)")
	c.Flags().StringVar(&pw, "new-password", "", "the new password (instead of the prompt)")
	return c
}

// dashIfEmpty shows an empty value as "-", as ONTAP's tables do.
func dashIfEmpty(v string) string {
	if v == "" {
		return "-"
	}
	return v
}
