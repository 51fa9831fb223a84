package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

// pageData is what every page template gets.
type pageData struct {
	Title  string
	Active string
	Node   string
	User   string
	CSRF   string
	// Flash is a message from the last action (?msg=), Error one from
	// reading the page's data.
	Flash  string
	Errors []string
	Data   any
}

func (h *Handler) base(r *http.Request, lg *login, active, title string) pageData {
	user := lg.name
	if lg.svm != h.cfg.Auth.AdminSVM() {
		user = lg.svm + "/" + lg.name
	}
	return pageData{Title: title, Active: active, Node: h.cfg.Node, User: user, CSRF: lg.csrf, Flash: r.URL.Query().Get("msg")}
}

// clusterUser reports whether the login is a cluster user (node-scope
// NDMP commands) rather than an SVM user.
func (h *Handler) clusterUser(lg *login) bool { return lg.svm == h.cfg.Auth.AdminSVM() }

// ndmpAPI returns the NDMP session endpoints and command directory of the
// login's scope.
func (h *Handler) ndmpAPI(lg *login) (path, cmd string) {
	if h.clusterUser(lg) {
		return "/api/private/cli/system/services/ndmp", "system services ndmp"
	}
	return "/api/private/cli/vserver/services/ndmp", "vserver services ndmp"
}

// sessionRow is one live NDMP session as the page shows it.
type sessionRow struct {
	admin.NDMPSession
	Operation string
	State     string
	Bytes     uint64
	Rate      float64
	ETA       string
	Elapsed   string
}

type sessionsData struct {
	Rows    []sessionRow
	CanKill bool
	// Updated is when the rows were read.
	Updated time.Time
}

func (h *Handler) sessionRows(ctx context.Context, lg *login) (sessionsData, error) {
	path, cmd := h.ndmpAPI(lg)
	ss, err := list[admin.NDMPSession](ctx, h, lg, path+"/sessions")
	now := h.cfg.Now()
	out := sessionsData{CanKill: h.may(ctx, lg, cmd+" kill"), Updated: now}
	if err != nil {
		return out, err
	}
	ids := make([]uint64, 0, len(ss))
	for _, s := range ss {
		ids = append(ids, s.ID)
		row := sessionRow{NDMPSession: s, Operation: operationName(s.DataOp), Bytes: s.DataBytes}
		row.State = strings.ToLower(trimState(s.DataState)) + " / " + strings.ToLower(trimState(s.MoverState))
		if row.Operation == "" {
			row.Bytes = s.MoverBytes
		}
		row.Rate = h.rates.rate(s.ID, row.Bytes, now, s.OpStarted)
		row.ETA = eta(s, now)
		if !s.OpStarted.IsZero() {
			row.Elapsed = roundDuration(now.Sub(s.OpStarted))
		}
		out.Rows = append(out.Rows, row)
	}
	h.rates.keep(ids)
	return out, nil
}

func (h *Handler) sessionsPage(w http.ResponseWriter, r *http.Request, lg *login) {
	pd := h.base(r, lg, "sessions", "NDMP sessions")
	d, err := h.sessionRows(r.Context(), lg)
	if err != nil {
		pd.Errors = append(pd.Errors, err.Error())
	}
	pd.Data = d
	h.render(w, "sessions", pd)
}

// sessionsLive is the table body the page's script reloads every second.
func (h *Handler) sessionsLive(w http.ResponseWriter, r *http.Request, lg *login) {
	pd := h.base(r, lg, "sessions", "")
	d, err := h.sessionRows(r.Context(), lg)
	if err != nil {
		pd.Errors = append(pd.Errors, err.Error())
	}
	pd.Data = d
	h.render(w, "sessionrows", pd)
}

func (h *Handler) killSession(w http.ResponseWriter, r *http.Request, lg *login) {
	id := r.PathValue("id")
	path, _ := h.ndmpAPI(lg)
	var res admin.NDMPKillResult
	msg := "Session " + id + " killed."
	if err := h.call(r.Context(), lg, http.MethodPost, path+"/kill", admin.NDMPKill{SessionID: id}, &res); err != nil {
		msg = "Error: " + err.Error()
	} else {
		h.log.Info("web: NDMP session killed", "session", id, "user", lg.name)
	}
	http.Redirect(w, r, "/sessions?msg="+url.QueryEscape(msg), http.StatusSeeOther)
}

// operationName turns NDMP_DATA_OP_BACKUP into "backup" ("" for none).
func operationName(op string) string {
	op = strings.ToLower(op)
	for _, p := range []string{"ndmp_data_op_", "ndmp4_data_op_"} {
		op = strings.TrimPrefix(op, p)
	}
	switch op {
	case "noaction", "":
		return ""
	case "recover", "recover_filehist":
		return "restore"
	}
	return op
}

func trimState(s string) string {
	for _, p := range []string{"NDMP_DATA_STATE_", "NDMP_MOVER_STATE_", "NDMP4_DATA_STATE_", "NDMP4_MOVER_STATE_"} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// eta estimates the time left of a running operation from the share of
// its inodes done (the dump engine knows the total after phase II).
func eta(s admin.NDMPSession, now time.Time) string {
	if s.FilesTotal <= 0 || s.Files <= 0 || s.OpStarted.IsZero() || trimState(s.DataState) != "ACTIVE" {
		return ""
	}
	done := float64(min(s.Files, s.FilesTotal)) / float64(s.FilesTotal)
	elapsed := now.Sub(s.OpStarted)
	left := time.Duration(float64(elapsed) * (1 - done) / done)
	return roundDuration(left)
}

func roundDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "<1s"
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

func (h *Handler) tapeAction(w http.ResponseWriter, r *http.Request, lg *login) {
	id, verb := r.PathValue("id"), r.PathValue("verb")
	if verb != "offline" && verb != "online" {
		http.Error(w, "unknown tape action "+verb, http.StatusNotFound)
		return
	}
	msg := fmt.Sprintf("Tape device %s is %s.", id, verb)
	err := h.call(r.Context(), lg, http.MethodPost, "/api/private/cli/storage/tape/"+verb, admin.TapeAction{DeviceID: id}, nil)
	if err != nil {
		msg = "Error: " + err.Error()
	} else {
		h.log.Info("web: tape device "+verb, "device", id, "user", lg.name)
	}
	http.Redirect(w, r, "/tapes?msg="+url.QueryEscape(msg), http.StatusSeeOther)
}

// driveRow is a tape device with the cartridge it holds.
type driveRow struct {
	admin.TapeDevice
	Cartridge string
}

// cartridgeRow is a cartridge with the drive that holds it and who uses
// that drive.
type cartridgeRow struct {
	admin.VTLCartridge
	Drive, InUseBy string
}

type tapesData struct {
	Devices    []driveRow
	Cartridges []cartridgeRow
	CanOffline bool
}

func (h *Handler) tapesPage(w http.ResponseWriter, r *http.Request, lg *login) {
	ctx := r.Context()
	pd := h.base(r, lg, "tapes", "Tape devices")
	d := tapesData{CanOffline: h.may(ctx, lg, "storage tape offline")}
	devs, err := list[admin.TapeDevice](ctx, h, lg, "/api/private/cli/storage/tape")
	if err != nil {
		pd.Errors = append(pd.Errors, err.Error())
	}
	carts, err := list[admin.VTLCartridge](ctx, h, lg, "/api/private/cli/storage/tape/vtl/cartridges")
	if err != nil {
		pd.Errors = append(pd.Errors, "cartridges: "+err.Error())
	}
	vtls, _ := list[admin.VTLInfo](ctx, h, lg, "/api/private/cli/storage/tape/vtl")
	byPath := map[string]int{}
	for i, dv := range devs {
		d.Devices = append(d.Devices, driveRow{TapeDevice: dv})
		byPath[dv.DeviceID] = i
	}
	adapter := vtlAdapter(devs, vtls)
	for _, c := range carts {
		row := cartridgeRow{VTLCartridge: c}
		if n, ok := strings.CutPrefix(c.Location, "drive "); ok && adapter != "" {
			if i, err := strconv.Atoi(n); err == nil {
				if j, ok := byPath[fmt.Sprintf("%s.%d", adapter, i+1)]; ok {
					d.Devices[j].Cartridge = c.Barcode
					row.Drive = d.Devices[j].Alias
					row.InUseBy = d.Devices[j].InUseBy
				}
			}
		}
		d.Cartridges = append(d.Cartridges, row)
	}
	pd.Data = d
	h.render(w, "tapes", pd)
}

// vtlAdapter returns the host adapter of the virtual library's devices:
// its changer is <adapter>.0 and drive i (from 0) is <adapter>.<i+1>.
func vtlAdapter(devs []admin.TapeDevice, vtls []admin.VTLInfo) string {
	if len(vtls) == 0 {
		return ""
	}
	for _, d := range devs {
		if d.Alias != "" && d.Alias == vtls[0].MediaChanger {
			if a, ok := strings.CutSuffix(d.DeviceID, ".0"); ok {
				return a
			}
		}
	}
	return ""
}

// snapshotRow is one snapshot copy of a volume.
type snapshotRow struct {
	admin.Snapshot
	Locked bool
}

type snapshotsData struct {
	Volumes   int
	Snapshots []snapshotRow
	Locked    int
}

func (h *Handler) snapshotsPage(w http.ResponseWriter, r *http.Request, lg *login) {
	ctx := r.Context()
	pd := h.base(r, lg, "snapshots", "Snapshots and locks")
	var d snapshotsData
	vols, err := list[admin.Volume](ctx, h, lg, "/api/storage/volumes")
	if err != nil {
		pd.Errors = append(pd.Errors, err.Error())
	}
	d.Volumes = len(vols)
	for _, v := range vols {
		snaps, err := list[admin.Snapshot](ctx, h, lg, "/api/storage/volumes/"+url.PathEscape(v.UUID)+"/snapshots")
		if err != nil {
			pd.Errors = append(pd.Errors, v.SVM+":"+v.Name+": "+err.Error())
			continue
		}
		for _, s := range snaps {
			row := snapshotRow{Snapshot: s, Locked: len(s.Owners) > 0}
			if row.Locked {
				d.Locked++
			}
			d.Snapshots = append(d.Snapshots, row)
		}
	}
	pd.Data = d
	h.render(w, "snapshots", pd)
}
