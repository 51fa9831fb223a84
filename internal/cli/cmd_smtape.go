package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

// The SMTape tape seeding commands (S10): system smtape backup, restore,
// continue, abort, showheader, status show|clear, break, and vserver
// smtape break.

const smtapeAPI = "/api/private/cli/system/smtape"

// addSMTapeCommands adds system smtape and vserver smtape.
func (a *app) addSMTapeCommands(root *cobra.Command) {
	system := subgroup(root, "system", "Manage the system")
	system.AddCommand(group("smtape", "Back up and restore volumes to and from tape with SMTape (tape seeding)",
		a.smtapeStart("backup"), a.smtapeStart("restore"), a.smtapeRef("continue"), a.smtapeRef("abort"),
		a.smtapeShowHeader(), a.smtapeBreak("break"),
		group("status", "Show and clear SMTape sessions", a.smtapeStatusShow(), a.smtapeStatusClear())))
	vserver := subgroup(root, "vserver", "Manage Vservers")
	vserver.AddCommand(group("smtape", "Manage SMTape mirrors of the Vserver", a.smtapeBreak("vserver")))
}

func (a *app) smtapeStart(verb string) *cobra.Command {
	var in admin.SMTapeRequest
	use := verb + " -vserver SVM -volume VOLUME -tape DEVICE [-tape-block-size KB]"
	if verb == "backup" {
		use = "backup -vserver SVM -volume VOLUME -backup-snapshot SNAPSHOT -tape DEVICE [-tape-block-size KB]"
	}
	c := &cobra.Command{
		Use:   use,
		Short: map[string]string{"backup": "Back up a volume to tape", "restore": "Restore a volume from tape"}[verb],
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			need := [][2]string{req("vserver", in.Vserver), req("volume", in.Volume), req("tape", in.Tape)}
			if verb == "backup" {
				need = append(need, req("backup-snapshot", in.BackupSnapshot))
			}
			if err := required(need...); err != nil {
				return err
			}
			var s admin.SMTapeSession
			if err := a.call(cmd, http.MethodPost, smtapeAPI+"/"+verb, nil, in, &s); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Session %d created successfully\n", s.Session)
			return nil
		},
	}
	c.Flags().StringVar(&in.Vserver, "vserver", "", "the Vserver of the volume")
	c.Flags().StringVar(&in.Volume, "volume", "", "the volume")
	c.Flags().StringVar(&in.Tape, "tape", "", "the tape device (nrst0a, ...)")
	c.Flags().IntVar(&in.TapeBlockSize, "tape-block-size", 0, "tape record size in KB: 4 to 256 in steps of 4 (default 240)")
	if verb == "backup" {
		c.Flags().StringVar(&in.BackupSnapshot, "backup-snapshot", "", "the Snapshot copy to back up")
	}
	return c
}

// smtapeRef is continue and abort, which name a session.
func (a *app) smtapeRef(verb string) *cobra.Command {
	var in admin.SMTapeSessionRef
	use := "abort -session N"
	if verb == "continue" {
		use = "continue -session N [-tape DEVICE]"
	}
	c := &cobra.Command{
		Use:   use,
		Short: map[string]string{"continue": "Continue a session waiting for the next tape", "abort": "Abort a session"}[verb],
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in.Session <= 0 {
				return fmt.Errorf("missing required parameter -session")
			}
			return a.call(cmd, http.MethodPost, smtapeAPI+"/"+verb, nil, in, nil)
		},
	}
	c.Flags().IntVar(&in.Session, "session", 0, "the session identifier")
	if verb == "continue" {
		c.Flags().StringVar(&in.Tape, "tape", "", "the tape device to go on with (default: the session's, with the next cartridge loaded)")
	}
	return c
}

func (a *app) smtapeShowHeader() *cobra.Command {
	var tape string
	c := &cobra.Command{
		Use:   "showheader -tape DEVICE",
		Short: "Show the SMTape image header at the start of a tape",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := required(req("tape", tape)); err != nil {
				return err
			}
			var h admin.SMTapeHeader
			if err := a.call(cmd, http.MethodGet, smtapeAPI+"/showheader", url.Values{"tape": {tape}}, nil, &h); err != nil {
				return err
			}
			if a.json {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(h)
			}
			printHeader(cmd.OutOrStdout(), h)
			return nil
		},
	}
	c.Flags().StringVar(&tape, "tape", "", "the tape device")
	return c
}

// printHeader writes every field of an image header.
func printHeader(w io.Writer, h admin.SMTapeHeader) {
	line := func(k, v string) { fmt.Fprintf(w, "%24s: %s\n", k, v) }
	line("Tape Number", strconv.Itoa(int(h.Tape)))
	line("Backup Set ID", h.BackupSetID)
	line("Backup Mode", h.Mode)
	line("Backup Sequence", strconv.FormatUint(uint64(h.Sequence), 10))
	line("Backup Time Stamp", h.Time.UTC().Format(time.RFC3339Nano))
	if !h.BaseTime.IsZero() {
		line("Base Time Stamp", h.BaseTime.UTC().Format(time.RFC3339Nano))
		line("Base Snapshot", h.BaseSnapshot)
	}
	line("Source Node", h.Node)
	line("Source Vserver", h.Vserver)
	line("Source Volume", h.Volume)
	line("Volume Type", h.VolumeType)
	line("File System", h.FSType)
	line("Volume Capacity", sizeText(int64(h.Capacity)))
	line("Volume Used Size", sizeText(int64(h.Used)))
	line("Tape Block Size", fmt.Sprintf("%dKB", h.TapeBlockSize/1024))
	line("First Chunk", strconv.FormatUint(h.FirstChunk, 10))
	line("Snapshots", strconv.Itoa(len(h.Snapshots)))
	for i, s := range h.Snapshots {
		line(fmt.Sprintf("Snapshot %d", i+1), s.Name+" "+s.Created.UTC().Format(time.RFC3339))
	}
}

var smtapeColumns = []Column{
	{"session", "Session", "Session Identifier"},
	{"node", "Node", "Node Name"},
	{"type", "Type", "Operation Type"},
	{"status", "Status", "Session Status"},
	{"progress", "Progress", "Progress"},
	{"path", "Path", "Path Name"},
	{"device", "Device", "Device Name"},
	{"start-time", "Start Time", "Start Time"},
	{"end-time", "End Time", "End Time"},
	{"update-time", "Update Time", "Update Time"},
	{"backup-snapshot", "Backup Snapshot", "Snapshot Name"},
	{"tape-block-size", "Tape Block Size", "Tape Block Size"},
	{"tape-number", "Tape", "Tape Number"},
	{"error", "Error", "Error Description"},
}

func smtapeRow(s admin.SMTapeSession) map[string]string {
	tm := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("1/2/2006 15:04:05")
	}
	return map[string]string{
		"session": strconv.Itoa(s.Session), "node": s.Node, "type": s.Type, "status": s.Status,
		"progress": sizeText(s.Progress), "path": s.Path, "device": s.Device,
		"start-time": tm(s.StartTime), "end-time": tm(s.EndTime), "update-time": tm(s.UpdateTime),
		"backup-snapshot": dash(s.BackupSnapshot), "tape-block-size": strconv.Itoa(s.TapeBlockSize),
		"tape-number": strconv.Itoa(s.Tape), "error": dash(s.Error),
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) smtapeStatusShow() *cobra.Command {
	var o ShowOptions
	c := &cobra.Command{
		Use:   "show",
		Short: "Show the status of SMTape sessions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ss []admin.SMTapeSession
			if err := a.call(cmd, http.MethodGet, smtapeAPI+"/status", nil, nil, &ss); err != nil {
				return err
			}
			t := Table{Columns: smtapeColumns, Keys: []string{"session"}, Raw: ss,
				Default: []string{"session", "type", "status", "progress", "path", "device", "node"}}
			for _, s := range ss {
				t.Rows = append(t.Rows, smtapeRow(s))
			}
			return a.print(cmd, t, o)
		},
	}
	showFlags(c, &o)
	return c
}

func (a *app) smtapeStatusClear() *cobra.Command {
	var in admin.SMTapeClear
	c := &cobra.Command{
		Use:   "clear [-session N] [-type backup|restore] [-status COMPLETED|FAILED|UNKNOWN] [-path PATH] [-device DEVICE]",
		Short: "Clear finished SMTape sessions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res admin.SMTapeCleared
			if err := a.call(cmd, http.MethodPost, smtapeAPI+"/status/clear", nil, in, &res); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d sessions cleared.\n", res.Cleared)
			return nil
		},
	}
	c.Flags().IntVar(&in.Session, "session", 0, "the session identifier")
	c.Flags().StringVar(&in.Type, "type", "", "backup or restore")
	c.Flags().StringVar(&in.Status, "status", "", "COMPLETED, FAILED or UNKNOWN")
	c.Flags().StringVar(&in.Path, "path", "", "the volume path")
	c.Flags().StringVar(&in.Device, "device", "", "the tape device")
	return c
}

// smtapeBreak is system smtape break and vserver smtape break.
func (a *app) smtapeBreak(where string) *cobra.Command {
	var in admin.SMTapeVolume
	path := smtapeAPI + "/break"
	if where == "vserver" {
		path = "/api/private/cli/vserver/smtape/break"
	}
	c := &cobra.Command{
		Use:   "break -vserver SVM -volume VOLUME",
		Short: "Make a volume restored by SMTape read/write (break the mirror)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := required(req("vserver", in.Vserver), req("volume", in.Volume)); err != nil {
				return err
			}
			return a.call(cmd, http.MethodPost, path, nil, in, nil)
		},
	}
	c.Flags().StringVar(&in.Vserver, "vserver", "", "the Vserver of the volume")
	c.Flags().StringVar(&in.Volume, "volume", "", "the volume")
	return c
}
