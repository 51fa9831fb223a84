package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

func (a *app) volumeCmd() *cobra.Command {
	return group("volume", "Manage volumes",
		a.volumeCreate(), a.volumeShow(), a.volumeModify(),
		a.volumeState("online", "online", "Bring a volume online"),
		a.volumeState("offline", "offline", "Take a volume offline"),
		a.volumeState("restrict", "restricted", "Restrict a volume"),
		a.volumeDelete(),
		group("qtree", "Manage qtrees", a.qtreeCreate(), a.qtreeShow(), a.qtreeModify(), a.qtreeDelete()),
		group("snapshot", "Manage Snapshot copies",
			a.snapshotCreate(), a.snapshotShow(), a.snapshotDelete(),
			a.snapshotLock("lock"), a.snapshotLock("unlock")),
	)
}

// volumeArgs binds -vserver and -volume, which are also positional.
type volumeArgs struct{ svm, vol string }

func (v *volumeArgs) flags(c *cobra.Command) {
	c.Flags().StringVar(&v.svm, "vserver", "", "SVM name")
	c.Flags().StringVar(&v.vol, "volume", "", "volume name")
}

func (v *volumeArgs) parse(cmd *cobra.Command, args []string) error {
	return named(cmd, args, pos("vserver", &v.svm), pos("volume", &v.vol))
}

// volume looks up the volume va names.
func (a *app) volume(cmd *cobra.Command, va volumeArgs) (admin.Volume, error) {
	c, err := a.api()
	if err != nil {
		return admin.Volume{}, err
	}
	return c.Volume(cmd.Context(), va.svm, va.vol)
}

func (a *app) volumeCreate() *cobra.Command {
	var in admin.VolumeCreate
	var va volumeArgs
	c := &cobra.Command{
		Use:   "create -vserver SVM -volume NAME -path DIR [-type RW|DP] [-snapshot-provider auto|btrfs|reflink|copy]",
		Short: "Register a host directory as a volume",
		Args:  cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := va.parse(cmd, args); err != nil {
				return err
			}
			if err := required(req("path", in.Path)); err != nil {
				return err
			}
			abs, err := filepath.Abs(in.Path)
			if err != nil {
				return fmt.Errorf("path %q: %w", in.Path, err)
			}
			in.SVM, in.Name, in.Path = va.svm, va.vol, abs
			in.Type = strings.ToUpper(in.Type)
			return a.call(cmd, http.MethodPost, "/api/storage/volumes", nil, in, nil)
		},
	}
	va.flags(c)
	f := c.Flags()
	f.StringVar(&in.Path, "path", "", "host directory of the volume (must exist)")
	f.StringVar(&in.Type, "type", "", "RW (default) or DP")
	f.StringVar(&in.State, "state", "", "online (default), restricted or offline")
	f.StringVar(&in.SecurityStyle, "security-style", "", "unix (default), ntfs or mixed")
	f.StringVar(&in.SnapshotProvider, "snapshot-provider", "auto", "auto, btrfs, reflink or copy")
	f.StringVar(&in.JunctionPath, "junction-path", "", "junction path in the SVM namespace")
	f.StringVar(&in.Comment, "comment", "", "comment")
	return c
}

func (a *app) volumeModify() *cobra.Command {
	var va volumeArgs
	var typ, style, provider, junction, comment string
	c := &cobra.Command{
		Use:   "modify -vserver SVM -volume NAME [-type RW|DP] [-security-style S] [-snapshot-provider P] [-junction-path P] [-comment TEXT]",
		Short: "Modify a volume",
		Args:  cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := va.parse(cmd, args); err != nil {
				return err
			}
			var in admin.VolumeModify
			set := func(flag string, v *string, dst **string) {
				if cmd.Flags().Changed(flag) {
					*dst = v
				}
			}
			typ = strings.ToUpper(typ)
			set("type", &typ, &in.Type)
			set("security-style", &style, &in.SecurityStyle)
			set("snapshot-provider", &provider, &in.SnapshotProvider)
			set("junction-path", &junction, &in.JunctionPath)
			set("comment", &comment, &in.Comment)
			if in == (admin.VolumeModify{}) {
				return fmt.Errorf("nothing to modify")
			}
			return a.patchVolume(cmd, va, in)
		},
	}
	va.flags(c)
	f := c.Flags()
	f.StringVar(&typ, "type", "", "RW or DP")
	f.StringVar(&style, "security-style", "", "unix, ntfs or mixed")
	f.StringVar(&provider, "snapshot-provider", "", "auto, btrfs, reflink or copy")
	f.StringVar(&junction, "junction-path", "", "junction path")
	f.StringVar(&comment, "comment", "", "comment")
	return c
}

func (a *app) patchVolume(cmd *cobra.Command, va volumeArgs, in admin.VolumeModify) error {
	v, err := a.volume(cmd, va)
	if err != nil {
		return err
	}
	return a.call(cmd, http.MethodPatch, "/api/storage/volumes/"+url.PathEscape(v.UUID), nil, in, nil)
}

func (a *app) volumeState(verb, state, short string) *cobra.Command {
	var va volumeArgs
	c := &cobra.Command{
		Use:   verb + " -vserver SVM -volume NAME",
		Short: short,
		Args:  cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := va.parse(cmd, args); err != nil {
				return err
			}
			st := state
			if err := a.patchVolume(cmd, va, admin.VolumeModify{State: &st}); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "Volume %q in Vserver %q is now %s.\n", va.vol, va.svm, state)
			return err
		},
	}
	va.flags(c)
	return c
}

func (a *app) volumeDelete() *cobra.Command {
	var va volumeArgs
	c := &cobra.Command{
		Use:   "delete -vserver SVM -volume NAME",
		Short: "Remove an offline volume's registration (the host directory is kept)",
		Args:  cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := va.parse(cmd, args); err != nil {
				return err
			}
			v, err := a.volume(cmd, va)
			if err != nil {
				return err
			}
			if err := a.call(cmd, http.MethodDelete, "/api/storage/volumes/"+url.PathEscape(v.UUID), nil, nil, nil); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Volume %q in Vserver %q deleted.\n", va.vol, va.svm)
			return err
		},
	}
	va.flags(c)
	return c
}

func (a *app) volumeShow() *cobra.Command {
	return showCmd(a, showSpec[admin.Volume]{
		use: "show [-vserver SVM] [-volume NAME]", short: "Display volumes", path: "/api/storage/volumes",
		filters: []filter{{"vserver", "svm.name", "show only volumes of this SVM"}, {"volume", "name", "show only this volume"}},
		table: func(vols []admin.Volume) Table {
			t := Table{
				Columns: []Column{
					{"vserver", "Vserver", "Vserver Name"},
					{"volume", "Volume", "Volume Name"},
					{"uuid", "UUID", "Volume UUID"},
					{"state", "State", "Volume State"},
					{"type", "Type", "Volume Type"},
					{"path", "Path", "Host Path"},
					{"security-style", "Style", "Security Style"},
					{"snapshot-provider", "Provider", "Snapshot Provider"},
					{"junction-path", "Junction Path", "Junction Path"},
					{"node", "Node", "Hosting Node"},
					{"comment", "Comment", "Comment"},
					{"create-time", "Create Time", "Create Time"},
					{"type-generation", "Type Generation", "Type Changes"},
				},
				Keys:    []string{"vserver", "volume"},
				Default: []string{"vserver", "volume", "state", "type", "snapshot-provider", "path"},
			}
			for _, v := range vols {
				t.Rows = append(t.Rows, map[string]string{
					"vserver": v.SVM, "volume": v.Name, "uuid": v.UUID, "state": string(v.State), "type": string(v.Type),
					"path": v.HostPath, "security-style": string(v.SecurityStyle), "snapshot-provider": v.SnapshotProvider,
					"junction-path": v.JunctionPath, "node": v.Node, "comment": v.Comment,
					"create-time": timeText(v.CreatedAt), "type-generation": strconv.FormatUint(v.TypeGeneration, 10),
				})
			}
			return t
		},
	})
}

// ---- qtrees

func (a *app) qtreeCreate() *cobra.Command {
	var in admin.QtreeCreate
	var va volumeArgs
	c := &cobra.Command{
		Use:   "create -vserver SVM -volume VOL -qtree NAME [-security-style S]",
		Short: "Create a qtree",
		Args:  cobra.MaximumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("vserver", &va.svm), pos("volume", &va.vol), pos("qtree", &in.Name)); err != nil {
				return err
			}
			in.SVM, in.Volume = va.svm, va.vol
			return a.call(cmd, http.MethodPost, "/api/storage/qtrees", nil, in, nil)
		},
	}
	va.flags(c)
	c.Flags().StringVar(&in.Name, "qtree", "", "qtree name")
	c.Flags().StringVar(&in.SecurityStyle, "security-style", "", "unix, ntfs or mixed (default: the volume's)")
	return c
}

func (a *app) qtreeModify() *cobra.Command {
	var va volumeArgs
	var name, style string
	c := &cobra.Command{
		Use:   "modify -vserver SVM -volume VOL -qtree NAME -security-style S",
		Short: "Change a qtree's security style",
		Args:  cobra.MaximumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positional(cmd, args, map[string]*string{"vserver": &va.svm, "volume": &va.vol, "qtree": &name}, "vserver", "volume", "qtree"); err != nil {
				return err
			}
			if err := required(req("vserver", va.svm), req("volume", va.vol), req("qtree", name), req("security-style", style)); err != nil {
				return err
			}
			v, err := a.volume(cmd, va)
			if err != nil {
				return err
			}
			return a.call(cmd, http.MethodPatch, "/api/storage/qtrees/"+url.PathEscape(v.UUID)+"/"+url.PathEscape(name), nil,
				admin.QtreeModify{SecurityStyle: style}, nil)
		},
	}
	va.flags(c)
	c.Flags().StringVar(&name, "qtree", "", "qtree name")
	c.Flags().StringVar(&style, "security-style", "", "unix, ntfs or mixed")
	return c
}

func (a *app) qtreeDelete() *cobra.Command {
	var va volumeArgs
	var name string
	var force bool
	c := &cobra.Command{
		Use:   "delete -vserver SVM -volume VOL -qtree NAME [-force true]",
		Short: "Delete a qtree and its (empty, unless -force) directory",
		Args:  cobra.MaximumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("vserver", &va.svm), pos("volume", &va.vol), pos("qtree", &name)); err != nil {
				return err
			}
			v, err := a.volume(cmd, va)
			if err != nil {
				return err
			}
			q := url.Values{}
			if force {
				q.Set("force", "true")
			}
			return a.call(cmd, http.MethodDelete, "/api/storage/qtrees/"+url.PathEscape(v.UUID)+"/"+url.PathEscape(name), q, nil, nil)
		},
	}
	va.flags(c)
	c.Flags().StringVar(&name, "qtree", "", "qtree name")
	c.Flags().BoolVar(&force, "force", false, "delete the qtree's contents too")
	return c
}

func (a *app) qtreeShow() *cobra.Command {
	return showCmd(a, showSpec[admin.Qtree]{
		use: "show [-vserver SVM] [-volume VOL] [-qtree NAME]", short: "Display qtrees", path: "/api/storage/qtrees",
		filters: []filter{{"vserver", "svm.name", "SVM name"}, {"volume", "volume.name", "volume name"}, {"qtree", "name", "show only this qtree"}},
		table: func(qs []admin.Qtree) Table {
			t := Table{
				Columns: []Column{
					{"vserver", "Vserver", "Vserver Name"},
					{"volume", "Volume", "Volume Name"},
					{"qtree", "Qtree", "Qtree Name"},
					{"id", "ID", "Qtree Id"},
					{"security-style", "Style", "Security Style"},
					{"create-time", "Create Time", "Create Time"},
				},
				Keys:    []string{"vserver", "volume", "qtree"},
				Default: []string{"vserver", "volume", "qtree", "security-style", "id"},
			}
			for _, qt := range qs {
				t.Rows = append(t.Rows, map[string]string{
					"vserver": qt.SVM, "volume": qt.Volume, "qtree": qt.Name, "id": strconv.Itoa(qt.ID),
					"security-style": string(qt.SecurityStyle), "create-time": timeText(qt.CreatedAt),
				})
			}
			return t
		},
	})
}

// ---- snapshots

func (a *app) snapshotCreate() *cobra.Command {
	return a.snapshotCmd("create", "Create a Snapshot copy of a volume", func(cmd *cobra.Command, snaps, name string) error {
		return a.call(cmd, http.MethodPost, snaps, nil, admin.SnapshotCreate{Name: name}, nil)
	})
}

func (a *app) snapshotDelete() *cobra.Command {
	return a.snapshotCmd("delete", "Delete a Snapshot copy", func(cmd *cobra.Command, snaps, name string) error {
		return a.call(cmd, http.MethodDelete, snaps+"/"+url.PathEscape(name), nil, nil, nil)
	})
}

// snapshotCmd builds a command on one Snapshot copy (-vserver, -volume,
// -snapshot, also positional); send gets the API path of the volume's
// Snapshot copies and the copy's name.
func (a *app) snapshotCmd(verb, short string, send func(cmd *cobra.Command, snaps, name string) error) *cobra.Command {
	var va volumeArgs
	var name string
	c := &cobra.Command{
		Use:   verb + " -vserver SVM -volume VOL -snapshot NAME",
		Short: short,
		Args:  cobra.MaximumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := named(cmd, args, pos("vserver", &va.svm), pos("volume", &va.vol), pos("snapshot", &name)); err != nil {
				return err
			}
			v, err := a.volume(cmd, va)
			if err != nil {
				return err
			}
			return send(cmd, "/api/storage/volumes/"+url.PathEscape(v.UUID)+"/snapshots", name)
		},
	}
	va.flags(c)
	c.Flags().StringVar(&name, "snapshot", "", "Snapshot copy name")
	return c
}

func (a *app) snapshotLock(verb string) *cobra.Command {
	var in admin.SnapshotLock
	c := &cobra.Command{
		Use:         verb + " -vserver SVM -volume VOL -snapshot NAME -owner OWNER",
		Short:       "Lock or unlock a Snapshot copy for an owner (advanced)",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{advancedAnnotation: admin.PrivAdvanced},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := required(req("vserver", in.SVM), req("volume", in.Volume), req("snapshot", in.Snapshot), req("owner", in.Owner)); err != nil {
				return err
			}
			return a.call(cmd, http.MethodPost, "/api/private/cli/volume/snapshot/"+verb, nil, in, nil)
		},
	}
	f := c.Flags()
	f.StringVar(&in.SVM, "vserver", "", "SVM name")
	f.StringVar(&in.Volume, "volume", "", "volume name")
	f.StringVar(&in.Snapshot, "snapshot", "", "Snapshot copy name")
	f.StringVar(&in.Owner, "owner", "", "lock owner")
	return c
}

func (a *app) snapshotShow() *cobra.Command {
	var o ShowOptions
	var va volumeArgs
	var name string
	c := &cobra.Command{
		Use:   "show [-vserver SVM] [-volume VOL] [-snapshot NAME]",
		Short: "Display Snapshot copies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			q := url.Values{}
			if va.svm != "" {
				q.Set("svm.name", va.svm)
			}
			if va.vol != "" {
				q.Set("name", va.vol)
			}
			vols, err := admin.List[admin.Volume](ctx, c, "/api/storage/volumes", q)
			if err != nil {
				return err
			}
			if va.vol != "" && va.svm != "" && len(vols) == 0 {
				return fmt.Errorf("command failed: volume %q in Vserver %q does not exist", va.vol, va.svm)
			}
			sq := url.Values{}
			if name != "" {
				sq.Set("name", name)
			}
			snaps := []admin.Snapshot{}
			for _, v := range vols {
				s, err := admin.List[admin.Snapshot](ctx, c, "/api/storage/volumes/"+url.PathEscape(v.UUID)+"/snapshots", sq)
				if err != nil {
					return err
				}
				snaps = append(snaps, s...)
			}
			t := Table{
				Columns: []Column{
					{"vserver", "Vserver", "Vserver"},
					{"volume", "Volume", "Volume"},
					{"snapshot", "Snapshot", "Snapshot"},
					{"create-time", "Create Time", "Creation Time"},
					{"provider", "Provider", "Snapshot Provider"},
					{"path", "Path", "Host Path"},
					{"locked", "Locked", "Locked"},
					{"owners", "Lock Owners", "Lock Owners"},
				},
				Keys:    []string{"vserver", "volume", "snapshot"},
				Default: []string{"vserver", "volume", "snapshot", "create-time", "provider", "locked"},
				Raw:     snaps,
			}
			for _, p := range snaps {
				t.Rows = append(t.Rows, map[string]string{
					"vserver": p.SVM, "volume": p.Volume, "snapshot": p.Name, "create-time": timeText(p.CreatedAt),
					"provider": p.Provider, "path": p.HostPath, "locked": boolText(p.Locked()), "owners": list(p.Owners),
				})
			}
			return a.print(cmd, t, o)
		},
	}
	va.flags(c)
	c.Flags().StringVar(&name, "snapshot", "", "show only this Snapshot copy")
	showFlags(c, &o)
	return c
}
