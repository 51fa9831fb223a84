package cli

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

func (a *app) vserverCmd() *cobra.Command {
	return group("vserver", "Manage storage virtual machines (SVMs)",
		a.vserverCreate(), a.vserverShow(), a.vserverModify(), a.vserverDelete(),
		a.vserverState("start", "running", "Start an SVM"), a.vserverState("stop", "stopped", "Stop an SVM (it serves no NDMP sessions)"),
		group("services", "Manage SVM services",
			group("ndmp", "Manage NDMP of an SVM", a.ndmpGeneratePassword())),
		group("nfs", "Manage the NFS configuration of SVMs", a.nfsShow(), a.nfsModify()),
	)
}

func (a *app) vserverCreate() *cobra.Command {
	var in admin.SVMCreate
	c := &cobra.Command{
		Use:   "create -vserver NAME [-comment TEXT] [-allowed-protocols P,..|-disallowed-protocols P,..]",
		Short: "Create a data SVM",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("vserver", &in.Name)); err != nil {
				return err
			}
			return a.call(cmd, http.MethodPost, "/api/svm/svms", nil, in, nil)
		},
	}
	f := c.Flags()
	f.StringVar(&in.Name, "vserver", "", "SVM name")
	f.StringVar(&in.Comment, "comment", "", "comment")
	f.StringSliceVar(&in.AllowedProtocols, "allowed-protocols", nil, "protocols the SVM may serve (the others are disallowed)")
	f.StringSliceVar(&in.DisallowedProtocols, "disallowed-protocols", nil, "protocols the SVM may not serve")
	return c
}

func (a *app) vserverModify() *cobra.Command {
	var name, comment string
	var allowed, disallowed []string
	c := &cobra.Command{
		Use:   "modify -vserver NAME [-comment TEXT] [-allowed-protocols P,..] [-disallowed-protocols P,..]",
		Short: "Modify an SVM",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("vserver", &name)); err != nil {
				return err
			}
			var in admin.SVMModify
			if cmd.Flags().Changed("comment") {
				in.Comment = &comment
			}
			if cmd.Flags().Changed("allowed-protocols") {
				in.AllowedProtocols = &allowed
			}
			if cmd.Flags().Changed("disallowed-protocols") {
				in.DisallowedProtocols = &disallowed
			}
			if in == (admin.SVMModify{}) {
				return fmt.Errorf("nothing to modify: give -comment, -allowed-protocols or -disallowed-protocols")
			}
			return a.call(cmd, http.MethodPatch, "/api/svm/svms/"+url.PathEscape(name), nil, in, nil)
		},
	}
	f := c.Flags()
	f.StringVar(&name, "vserver", "", "SVM name")
	f.StringVar(&comment, "comment", "", "comment")
	f.StringSliceVar(&allowed, "allowed-protocols", nil, "protocols the SVM may serve (the others become disallowed)")
	f.StringSliceVar(&disallowed, "disallowed-protocols", nil, "protocols the SVM may not serve (the others become allowed)")
	return c
}

func (a *app) vserverState(verb, state, short string) *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   verb + " -vserver NAME",
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("vserver", &name)); err != nil {
				return err
			}
			st := state
			return a.call(cmd, http.MethodPatch, "/api/svm/svms/"+url.PathEscape(name), nil, admin.SVMModify{State: &st}, nil)
		},
	}
	c.Flags().StringVar(&name, "vserver", "", "SVM name")
	return c
}

func (a *app) vserverDelete() *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "delete -vserver NAME",
		Short: "Delete a data SVM that owns no LIFs or volumes",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("vserver", &name)); err != nil {
				return err
			}
			return a.call(cmd, http.MethodDelete, "/api/svm/svms/"+url.PathEscape(name), nil, nil, nil)
		},
	}
	c.Flags().StringVar(&name, "vserver", "", "SVM name")
	return c
}

func (a *app) vserverShow() *cobra.Command {
	return showCmd(a, showSpec[admin.SVM]{
		use: "show [-vserver NAME]", short: "Display SVMs", path: "/api/svm/svms",
		filters:    []filter{{"vserver", "name", "show only this SVM"}},
		positional: 1,
		table: func(svms []admin.SVM) Table {
			t := Table{
				Columns: []Column{
					{"vserver", "Vserver", "Vserver"},
					{"uuid", "UUID", "Vserver UUID"},
					{"type", "Type", "Vserver Type"},
					{"state", "Admin State", "Vserver Admin State"},
					{"operational-state", "Operational State", "Vserver Operational State"},
					{"rootvolume", "Root Volume", "Root Volume"},
					{"allowed-protocols", "Allowed Protocols", "Allowed Protocols"},
					{"disallowed-protocols", "Disallowed Protocols", "Disallowed Protocols"},
					{"comment", "Comment", "Comment"},
					{"create-time", "Create Time", "Create Time"},
				},
				Keys:    []string{"vserver"},
				Default: []string{"vserver", "type", "state", "operational-state", "rootvolume"},
			}
			for _, v := range svms {
				t.Rows = append(t.Rows, map[string]string{
					"vserver": v.Name, "uuid": v.UUID, "type": string(v.Type), "state": string(v.State),
					"operational-state": string(v.State), "rootvolume": v.RootVolume,
					"allowed-protocols": list(v.AllowedProtocols), "disallowed-protocols": list(v.DisallowedProtocols),
					"comment": v.Comment, "create-time": timeText(v.CreatedAt),
				})
			}
			return t
		},
	})
}

func (a *app) ndmpGeneratePassword() *cobra.Command {
	var in admin.NDMPPasswordRequest
	c := &cobra.Command{
		Use:   "generate-password -vserver NAME -user USER",
		Short: "Generate the NDMP password of a user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := required(req("vserver", in.SVM), req("user", in.User)); err != nil {
				return err
			}
			var out admin.NDMPPassword
			if err := a.call(cmd, http.MethodPost, "/api/private/cli/vserver/services/ndmp/generate-password", nil, in, &out); err != nil {
				return err
			}
			if done, err := a.printRaw(cmd, out); done {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "Vserver: %s\nUser: %s\nPassword: %s\n", out.SVM, out.User, out.Password)
			return err
		},
	}
	c.Flags().StringVar(&in.SVM, "vserver", "", "SVM of the user (the cluster name for cluster users)")
	c.Flags().StringVar(&in.User, "user", "", "user name")
	return c
}

func (a *app) networkCmd() *cobra.Command {
	return group("network", "Manage the network",
		group("interface", "Manage logical interfaces (LIFs)", a.lifCreate(), a.lifShow(), a.lifDelete()))
}

func (a *app) lifCreate() *cobra.Command {
	var in admin.LIFCreate
	c := &cobra.Command{
		Use:   "create -vserver SVM -lif NAME -role ROLE -address IP [-netmask MASK] [-home-node NODE] [-port PORT]",
		Short: "Create a LIF (an address NDMP listens on)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := required(req("vserver", in.SVM), req("lif", in.Name), req("role", in.Role), req("address", in.Address)); err != nil {
				return err
			}
			if in.Netmask != "" {
				if err := checkNetmask(in.Netmask); err != nil {
					return err
				}
			}
			return a.call(cmd, http.MethodPost, "/api/network/ip/interfaces", nil, in, nil)
		},
	}
	f := c.Flags()
	f.StringVar(&in.SVM, "vserver", "", "SVM that owns the LIF (the cluster name for node-mgmt, cluster-mgmt and intercluster LIFs)")
	f.StringVar(&in.Name, "lif", "", "LIF name")
	f.StringVar(&in.Role, "role", "", "role: data, node-mgmt, cluster-mgmt or intercluster")
	f.StringVar(&in.Address, "address", "", "IP address")
	f.StringVar(&in.Netmask, "netmask", "", "netmask (checked, informational: the address must already be configured on the host)")
	f.StringVar(&in.HomeNode, "home-node", "", "home node")
	f.IntVar(&in.Port, "port", 0, "NDMP TCP port (default 10000)")
	return c
}

func checkNetmask(m string) error {
	if n, err := strconv.Atoi(m); err == nil && n >= 0 && n <= 128 {
		return nil
	}
	if a, err := netip.ParseAddr(m); err == nil && a.Is4() {
		b := a.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		if v == 0 || (^v+1)&^v == 0 {
			return nil
		}
	}
	return fmt.Errorf("%q is not a valid netmask", m)
}

func (a *app) lifShow() *cobra.Command {
	return showCmd(a, showSpec[admin.LIF]{
		use: "show [-vserver SVM] [-lif NAME]", short: "Display LIFs", path: "/api/network/ip/interfaces",
		filters: []filter{{"vserver", "svm.name", "show only LIFs of this SVM"}, {"lif", "name", "show only this LIF"}},
		table: func(lifs []admin.LIF) Table {
			t := Table{
				Columns: []Column{
					{"vserver", "Vserver", "Vserver Name"},
					{"lif", "Logical Interface", "Logical Interface Name"},
					{"role", "Role", "Role"},
					{"address", "Address", "Network Address"},
					{"port", "Port", "NDMP Port"},
					{"home-node", "Home Node", "Home Node"},
					{"lif-uuid", "UUID", "LIF UUID"},
					{"create-time", "Create Time", "Create Time"},
				},
				Keys:    []string{"vserver", "lif"},
				Default: []string{"vserver", "lif", "role", "address", "port", "home-node"},
			}
			for _, l := range lifs {
				t.Rows = append(t.Rows, map[string]string{
					"vserver": l.SVM, "lif": l.Name, "role": string(l.Role), "address": l.Address.String(),
					"port": strconv.Itoa(l.Port), "home-node": l.HomeNode, "lif-uuid": l.UUID, "create-time": timeText(l.CreatedAt),
				})
			}
			return t
		},
	})
}

func (a *app) lifDelete() *cobra.Command {
	var svm, name string
	c := &cobra.Command{
		Use:   "delete -vserver SVM -lif NAME",
		Short: "Delete a LIF",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := required(req("vserver", svm), req("lif", name)); err != nil {
				return err
			}
			c, err := a.api()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			lifs, err := admin.List[admin.LIF](ctx, c, "/api/network/ip/interfaces", url.Values{"svm.name": {svm}, "name": {name}})
			if err != nil {
				return err
			}
			if len(lifs) == 0 {
				return noSuch(fmt.Sprintf("LIF %q in Vserver %q", name, svm))
			}
			return c.Do(ctx, http.MethodDelete, "/api/network/ip/interfaces/"+url.PathEscape(lifs[0].UUID), nil, nil, nil)
		},
	}
	c.Flags().StringVar(&svm, "vserver", "", "SVM of the LIF")
	c.Flags().StringVar(&name, "lif", "", "LIF name")
	return c
}

func (a *app) nfsShow() *cobra.Command {
	return showCmd(a, showSpec[admin.NFSService]{
		use: "show [-vserver NAME]", short: "Display the NFS configuration of SVMs", path: "/api/protocols/nfs/services",
		filters:    []filter{{"vserver", "svm.name", "show only this SVM"}},
		positional: 1,
		table: func(ns []admin.NFSService) Table {
			t := Table{
				Columns: []Column{
					{"vserver", "Vserver", "Vserver"},
					{"v4.2-seclabel", "v4.2 Seclabel", "NFSv4.2 Security Label Support"},
				},
				Keys:    []string{"vserver"},
				Default: []string{"vserver", "v4.2-seclabel"},
			}
			for _, n := range ns {
				t.Rows = append(t.Rows, map[string]string{"vserver": n.SVM, "v4.2-seclabel": n.V42SecLabel})
			}
			return t
		},
	})
}

func (a *app) nfsModify() *cobra.Command {
	var name, seclabel string
	c := &cobra.Command{
		Use:   "modify -vserver NAME -v4.2-seclabel enabled|disabled",
		Short: "Modify the NFS configuration of an SVM",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("vserver", &name)); err != nil {
				return err
			}
			var in admin.NFSModify
			if cmd.Flags().Changed("v4.2-seclabel") {
				in.V42SecLabel = &seclabel
			}
			if in.V42SecLabel == nil {
				return fmt.Errorf("nothing to modify: give -v4.2-seclabel")
			}
			return a.call(cmd, http.MethodPatch, "/api/protocols/nfs/services/"+url.PathEscape(name), nil, in, nil)
		},
	}
	f := c.Flags()
	f.StringVar(&name, "vserver", "", "SVM name")
	f.StringVar(&seclabel, "v4.2-seclabel", "", "NFSv4.2 security labels: enabled or disabled (default disabled); when enabled, a dump refuses files with a security label, as ONTAP's does")
	return c
}
