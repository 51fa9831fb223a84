package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
)

// The tape administration endpoints (T3, T7, T8), all below
// /api/private/cli/ because ONTAP has them only as commands:
//
//	GET  storage/tape                      devices (storage tape show and friends)
//	POST storage/tape/{online|offline|reset|trace|position}
//	GET  storage/tape/alias                POST storage/tape/alias (set), POST storage/tape/alias/clear
//	GET  storage/tape/library/paths        GET storage/tape/library/config
//	GET  storage/tape/supported            show-supported-status
//	POST storage/stats/tape/zero           storage stats tape zero
//	GET  storage/tape/vtl                  the node's virtual library
//	GET  storage/tape/vtl/cartridges       POST (add), DELETE .../{barcode},
//	POST storage/tape/vtl/cartridges/{barcode}/{import|export|label}
//	GET  storage/tape/vtls                 the node's extra virtual libraries
//	POST storage/tape/vtls (create)        DELETE storage/tape/vtls/{name}
const tapeAPI = "/api/private/cli/storage/tape"

// TapeStats are a drive's statistics (storage stats tape).
type TapeStats struct {
	BytesRead        int64 `json:"bytes-read"`
	BytesWritten     int64 `json:"bytes-written"`
	RecordsRead      int64 `json:"records-read"`
	RecordsWritten   int64 `json:"records-written"`
	FilemarksWritten int64 `json:"filemarks-written"`
	ReadErrors       int64 `json:"read-errors"`
	WriteErrors      int64 `json:"write-errors"`
	OtherErrors      int64 `json:"other-errors"`
}

// TapeDevice is a tape drive, medium changer or bridge of a node, as
// GET /api/private/cli/storage/tape returns it.
type TapeDevice struct {
	Node string `json:"node"`
	// DeviceID is the primary physical path name, e.g. "0a.1".
	DeviceID string `json:"device-id"`
	Alias    string `json:"alias"`
	// DeviceType is "tape drive", "media changer" or "bridge".
	DeviceType  string   `json:"device-type"`
	Description string   `json:"description"`
	Vendor      string   `json:"vendor"`
	Product     string   `json:"product"`
	Revision    string   `json:"revision"`
	Serial      string   `json:"serial-number"`
	Paths       []string `json:"paths"`
	Online      bool     `json:"online"`
	// Status is "normal" or "offline".
	Status string `json:"status"`
	// SupportStatus is the qualification of a drive ("" for changers).
	SupportStatus string    `json:"support-status,omitempty"`
	Trace         bool      `json:"is-trace-enabled"`
	InUseBy       string    `json:"in-use-by,omitempty"`
	ReservedBy    string    `json:"reserved-by,omitempty"`
	Stats         TapeStats `json:"stats"`
	// DeviceNames is the device listing of a drive (storage tape show
	// -device-names); empty for other devices.
	DeviceNames string `json:"device-names,omitempty"`
}

// TapeAction is the body of POST storage/tape/{online,offline,reset,trace,
// position} and storage/stats/tape/zero. An empty DeviceID is allowed for
// trace only and means every device of the node.
type TapeAction struct {
	Node           string `json:"node,omitempty"`
	DeviceID       string `json:"device-id,omitempty"`
	Operation      string `json:"operation,omitempty"`
	Count          *int64 `json:"count,omitempty"`
	IsTraceEnabled *bool  `json:"is-trace-enabled,omitempty"`
}

// TapeActionResult is the answer of a tape action.
type TapeActionResult struct {
	Devices []string `json:"devices"`
	// Residual is the count a position operation did not do.
	Residual uint32 `json:"residual"`
}

// TapeAlias is one alias (storage tape alias show) and the body of
// POST storage/tape/alias.
type TapeAlias struct {
	Node    string `json:"node"`
	Name    string `json:"name"`
	Mapping string `json:"mapping"`
	// DeviceID is the primary path of the attached device the alias
	// names, "" when none is attached.
	DeviceID string `json:"device-id,omitempty"`
	// DeviceType is "tape drive" or "media changer".
	DeviceType string `json:"device-type,omitempty"`
}

// TapeAliasClear is the body of POST storage/tape/alias/clear: either Name
// or ClearScope.
type TapeAliasClear struct {
	Node       string `json:"node,omitempty"`
	Name       string `json:"name,omitempty"`
	ClearScope string `json:"clear-scope,omitempty"`
}

// TapeAliasClearResult tells how many aliases were removed.
type TapeAliasClearResult struct {
	Cleared int `json:"cleared"`
}

// TapePath is one path to a device (storage tape library path show).
type TapePath struct {
	Node        string `json:"node"`
	DeviceID    string `json:"device-id"`
	Alias       string `json:"alias"`
	DeviceType  string `json:"device-type"`
	Serial      string `json:"serial-number"`
	Initiator   string `json:"initiator"`
	LUN         int    `json:"lun"`
	Primary     bool   `json:"primary"`
	Description string `json:"description"`
}

// TapeLibraryConfig is one LUN group of a library (storage tape library
// config show): the devices that share one set of initiators.
type TapeLibraryConfig struct {
	Node        string   `json:"node"`
	LUNGroup    int      `json:"lun-group"`
	LUNCount    int      `json:"lun-count"`
	LibraryName string   `json:"library-name"`
	TargetPort  string   `json:"target-port"`
	Initiators  []string `json:"initiators"`
	Devices     []string `json:"devices"`
}

// TapeLoadBalance is a node's multipath load balancing setting (T7):
// GET and POST storage/tape/load-balance (storage tape load-balance show
// and modify).
type TapeLoadBalance struct {
	Node    string `json:"node"`
	Enabled *bool  `json:"is-load-balance-enabled"`
}

func (s *Server) getLoadBalance(ctx context.Context, r *request) (int, any, error) {
	reg, err := s.tapes(r.URL.Query().Get("node"))
	if err != nil {
		return 0, nil, err
	}
	on, err := reg.LoadBalancing(ctx)
	if err != nil {
		return 0, nil, tapeErr(err)
	}
	return http.StatusOK, records([]TapeLoadBalance{{Node: reg.Node(), Enabled: &on}}), nil
}

func (s *Server) setLoadBalance(ctx context.Context, r *request, in TapeLoadBalance) (int, any, error) {
	reg, err := s.tapes(in.Node)
	if err != nil {
		return 0, nil, err
	}
	if in.Enabled == nil {
		return 0, nil, badf("missing required parameter -is-load-balance-enabled")
	}
	if err := reg.SetLoadBalancing(ctx, *in.Enabled); err != nil {
		return 0, nil, tapeErr(err)
	}
	return http.StatusOK, in, nil
}

// TapeRescanResult is the answer of POST storage/tape/rescan: the
// physical path names of the paths added and removed.
type TapeRescanResult struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	// Errors are the problems with single devices (unreadable sysfs
	// entries, devices beyond the node limits); the others were handled.
	Errors string `json:"errors,omitempty"`
}

// rescanTapes looks for added and removed real devices (T9).
func (s *Server) rescanTapes(ctx context.Context, r *request) (int, any, error) {
	var in TapeAction
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if _, err := s.tapes(in.Node); err != nil {
		return 0, nil, err
	}
	if s.cfg.TapeRescan == nil {
		return 0, nil, &storage.Error{Kind: storage.ErrDisallowed, Msg: "this node has no real tape device discovery"}
	}
	res, err := s.cfg.TapeRescan(ctx)
	if res.Added == nil {
		res.Added = []string{}
	}
	if res.Removed == nil {
		res.Removed = []string{}
	}
	var se *storage.Error
	if errors.As(err, &se) {
		return 0, nil, se
	}
	if err != nil {
		res.Errors = err.Error()
	}
	return http.StatusOK, res, nil
}

// TapeSupport is one line of storage tape show-supported-status.
type TapeSupport struct {
	Node          string `json:"node"`
	TapeDrive     string `json:"tape-drive"`
	IsSupported   bool   `json:"is-supported"`
	SupportStatus string `json:"support-status"`
}

// VTLInfo describes the node's virtual tape library.
type VTLInfo struct {
	Node       string `json:"node"`
	Directory  string `json:"directory"`
	Serial     string `json:"serial-number"`
	Drives     int    `json:"drives"`
	Slots      int    `json:"slots"`
	IESlots    int    `json:"ie-slots"`
	Cartridges int    `json:"cartridges"`
	Capacity   int64  `json:"capacity"`
	// MediaChanger is the changer's alias on the node, "" if none.
	MediaChanger string `json:"media-changer"`
}

// VTLCartridge is one cartridge of the virtual library.
type VTLCartridge struct {
	Barcode      string `json:"barcode"`
	Capacity     int64  `json:"capacity"`
	WriteProtect bool   `json:"write-protect"`
	WORM         bool   `json:"worm"`
	// Location is "drive N", "slot N", "ie-slot N" (1-based) or "outside".
	Location string `json:"location"`
	// Address is the element address, 0 when outside.
	Address uint16 `json:"element-address"`
}

// VTLCartridgeAdd is the body of POST storage/tape/vtl/cartridges.
type VTLCartridgeAdd struct {
	Barcode  string `json:"barcode"`
	Capacity int64  `json:"capacity,omitempty"`
}

// VTLCartridgeMove is the body of POST .../cartridges/{barcode}/move: the
// destination as cartridge show writes locations ("slot 3", "ie-slot 1",
// "drive 0").
type VTLCartridgeMove struct {
	To string `json:"to"`
}

// VTLCartridgeLabel is the body of POST .../cartridges/{barcode}/label.
type VTLCartridgeLabel struct {
	NewBarcode string `json:"new-barcode"`
}

// VTLCreate is the body of POST storage/tape/vtls (storage tape vtl
// create): a new virtual library with Drives drives, Slots storage slots,
// IESlots import/export slots and Cartridges blank cartridges of Capacity
// bytes each (0: vtl.DefaultCapacity).
type VTLCreate struct {
	Name       string `json:"name"`
	Drives     int    `json:"drives"`
	Slots      int    `json:"slots"`
	IESlots    int    `json:"ie-slots"`
	Cartridges int    `json:"cartridges"`
	Capacity   int64  `json:"capacity,omitempty"`
}

// VTLLibrary is one extra virtual library of a node, as GET
// storage/tape/vtls lists it and POST storage/tape/vtls returns it.
type VTLLibrary struct {
	Node string `json:"node"`
	Name string `json:"name"`
	// Adapter is the host adapter the library's devices are attached
	// to: its changer is <adapter>.0, drive i is <adapter>.<i+1>.
	Adapter    string `json:"adapter"`
	Directory  string `json:"directory"`
	Serial     string `json:"serial-number"`
	Drives     int    `json:"drives"`
	Slots      int    `json:"slots"`
	IESlots    int    `json:"ie-slots"`
	Cartridges int    `json:"cartridges"`
	Capacity   int64  `json:"capacity"`
	// MediaChanger and TapeDrives are the aliases of the library's
	// devices on the node.
	MediaChanger string   `json:"media-changer"`
	TapeDrives   []string `json:"tape-drives"`
}

// VTLManager creates and deletes a node's extra virtual libraries while the
// node runs (T9). The daemon implements it and hands it to the admin API
// in ServerConfig.VTLs. Errors should be *storage.Error values for people
// (exists, not found, in use) or errors of package tape or vtl.
type VTLManager interface {
	CreateVTL(ctx context.Context, c VTLCreate) (VTLLibrary, error)
	DeleteVTL(ctx context.Context, name string) error
	VTLs(ctx context.Context) ([]VTLLibrary, error)
}

func (s *Server) vtlManager() (VTLManager, error) {
	m := s.cfg.VTLs
	if m == nil {
		return nil, &storage.Error{Kind: storage.ErrDisallowed, Msg: "this node cannot create or delete virtual tape libraries"}
	}
	return m, nil
}

// MaxVTLNameLen is the longest name of an extra virtual library.
const MaxVTLNameLen = 24

// CheckVTLName checks the name of an extra virtual library: 1 to
// MaxVTLNameLen letters, digits, '_' or '-', starting with a letter.
func CheckVTLName(name string) error {
	if name == "" {
		return badf("missing required parameter -name")
	}
	ok := len(name) <= MaxVTLNameLen
	for i, c := range name {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '_' || c == '-')) {
			ok = false
		}
	}
	if !ok {
		return invalid("invalid library name %q: use 1 to %d letters, digits, '_' or '-', starting with a letter", name, MaxVTLNameLen)
	}
	return nil
}

// CheckVTLCreate checks the parameters of storage tape vtl create.
func CheckVTLCreate(c VTLCreate) error {
	if err := CheckVTLName(c.Name); err != nil {
		return err
	}
	switch {
	case c.Drives < 1 || c.Drives > vtl.MaxDrives:
		return invalid("-drives %d is out of range (1 to %d)", c.Drives, vtl.MaxDrives)
	case c.Slots < 1 || c.Slots > vtl.MaxSlots:
		return invalid("-slots %d is out of range (1 to %d)", c.Slots, vtl.MaxSlots)
	case c.IESlots < 0 || c.IESlots > vtl.MaxIESlots:
		return invalid("-ie-slots %d is out of range (0 to %d)", c.IESlots, vtl.MaxIESlots)
	case c.Cartridges < 0 || c.Cartridges > c.Slots:
		return invalid("-cartridges %d is out of range (0 to the %d storage slots)", c.Cartridges, c.Slots)
	case c.Capacity < 0:
		return invalid("-capacity %d is negative", c.Capacity)
	}
	return nil
}

func (s *Server) tapeRoutes() {
	s.handle("GET "+tapeAPI, route{cmd: "storage tape show"}, s.listTapeDevices)
	s.handle("POST "+tapeAPI+"/online", route{cmd: "storage tape online", write: true}, s.tapeAction("online"))
	s.handle("POST "+tapeAPI+"/offline", route{cmd: "storage tape offline", write: true}, s.tapeAction("offline"))
	s.handle("POST "+tapeAPI+"/reset", route{cmd: "storage tape reset", write: true, advanced: true}, s.tapeAction("reset"))
	s.handle("POST "+tapeAPI+"/trace", route{cmd: "storage tape trace", write: true}, s.tapeAction("trace"))
	s.handle("POST "+tapeAPI+"/position", route{cmd: "storage tape position", write: true}, s.tapeAction("position"))
	s.handle("POST /api/private/cli/storage/stats/tape/zero", route{cmd: "storage stats", write: true}, s.tapeAction("zero"))
	s.handle("GET "+tapeAPI+"/alias", route{cmd: "storage tape alias show"}, s.listTapeAliases)
	s.handle("POST "+tapeAPI+"/alias", route{cmd: "storage tape alias set", write: true}, withBody(s.setTapeAlias))
	s.handle("POST "+tapeAPI+"/alias/clear", route{cmd: "storage tape alias clear", write: true}, withBody(s.clearTapeAlias))
	s.handle("GET "+tapeAPI+"/library/paths", route{cmd: "storage tape library path show"}, s.listTapePaths)
	s.handle("GET "+tapeAPI+"/library/config", route{cmd: "storage tape library config show"}, s.listTapeLibraryConfig)
	s.handle("GET "+tapeAPI+"/load-balance", route{cmd: "storage tape load-balance show"}, s.getLoadBalance)
	s.handle("POST "+tapeAPI+"/load-balance", route{cmd: "storage tape load-balance modify", write: true}, withBody(s.setLoadBalance))
	s.handle("POST "+tapeAPI+"/rescan", route{cmd: "storage tape rescan", write: true}, s.rescanTapes)
	s.handle("GET "+tapeAPI+"/supported", route{cmd: "storage tape show-supported-status"}, s.listTapeSupport)
	s.handle("GET "+tapeAPI+"/vtl", route{cmd: "storage tape vtl show"}, s.getVTL)
	s.handle("GET "+tapeAPI+"/vtls", route{cmd: "storage tape vtl show"}, s.listVTLs)
	s.handle("POST "+tapeAPI+"/vtls", route{cmd: "storage tape vtl create", write: true}, withBody(s.createVTL))
	s.handle("DELETE "+tapeAPI+"/vtls/{name}", route{cmd: "storage tape vtl delete", write: true}, s.deleteVTL)
	s.handle("GET "+tapeAPI+"/vtl/cartridges", route{cmd: "storage tape vtl cartridge show"}, s.listVTLCartridges)
	s.handle("POST "+tapeAPI+"/vtl/cartridges", route{cmd: "storage tape vtl cartridge add", write: true}, s.addVTLCartridge)
	s.handle("DELETE "+tapeAPI+"/vtl/cartridges/{barcode}", route{cmd: "storage tape vtl cartridge remove", write: true}, s.vtlCartridgeOp("remove"))
	s.handle("POST "+tapeAPI+"/vtl/cartridges/{barcode}/import", route{cmd: "storage tape vtl cartridge import", write: true}, s.vtlCartridgeOp("import"))
	s.handle("POST "+tapeAPI+"/vtl/cartridges/{barcode}/export", route{cmd: "storage tape vtl cartridge export", write: true}, s.vtlCartridgeOp("export"))
	s.handle("POST "+tapeAPI+"/vtl/cartridges/{barcode}/move", route{cmd: "storage tape vtl cartridge move", write: true}, s.vtlCartridgeOp("move"))
	s.handle("POST "+tapeAPI+"/vtl/cartridges/{barcode}/label", route{cmd: "storage tape vtl cartridge label", write: true}, s.vtlCartridgeOp("label"))
}

func notFound(format string, args ...any) error {
	return &storage.Error{Kind: storage.ErrNotFound, Msg: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) error {
	return &storage.Error{Kind: storage.ErrInvalidArgument, Msg: fmt.Sprintf(format, args...)}
}

// tapeErr turns an error of package tape or vtl into an API error with a
// message for people: the ONTAP message when the error carries one (T10).
func tapeErr(err error) error {
	if err == nil {
		return nil
	}
	var se *storage.Error
	var br *badRequest
	if errors.As(err, &se) || errors.As(err, &br) || errors.Is(err, context.Canceled) {
		return err
	}
	msg := tape.Message(err)
	if msg == "" {
		msg = vtl.Message(err)
	}
	var te *tape.Error
	if msg == "" && errors.As(err, &te) && te.Err != nil {
		// As ONTAP does once a device is reached, name it by its
		// physical path name; add the device's own words unless they
		// only repeat the error.
		what := strings.TrimPrefix(te.Err.Error(), "tape: ")
		msg = what
		if te.Device != "" {
			msg = te.Device + ": " + what
		}
		if te.Cause != nil && !strings.Contains(te.Cause.Error(), what) {
			msg += ": " + strings.TrimPrefix(te.Cause.Error(), "vtl: ")
		}
	}
	if msg == "" {
		msg = strings.TrimPrefix(strings.TrimPrefix(err.Error(), "tape: "), "vtl: ")
	}
	kind := storage.ErrInvalidArgument
	switch {
	case errors.Is(err, tape.ErrNoDevice), errors.Is(err, vtl.ErrNoCartridge):
		kind = storage.ErrNotFound
	case errors.Is(err, tape.ErrBusy), errors.Is(err, tape.ErrReserved), errors.Is(err, vtl.ErrInDrive),
		errors.Is(err, vtl.ErrBusy), errors.Is(err, vtl.ErrPrevented):
		kind = storage.ErrInUse
	case errors.Is(err, vtl.ErrExists):
		kind = storage.ErrExists
	case errors.Is(err, vtl.ErrNoSpace), errors.Is(err, tape.ErrLimit):
		kind = storage.ErrLimit
	case errors.Is(err, tape.ErrBadName), errors.Is(err, vtl.ErrBadBarcode), errors.Is(err, tape.ErrIllegalArgs),
		errors.Is(err, tape.ErrNotSupported):
		kind = storage.ErrInvalidArgument
	case errors.Is(err, tape.ErrOffline), errors.Is(err, tape.ErrNoTape), errors.Is(err, tape.ErrNotQualified),
		errors.Is(err, tape.ErrIO), errors.Is(err, tape.ErrEOM), errors.Is(err, tape.ErrWriteProtect):
		kind = storage.ErrDisallowed
	}
	return &storage.Error{Kind: kind, Msg: msg}
}

// tapes returns the node's registry, refusing nodes this daemon is not.
func (s *Server) tapes(node string) (*tape.Registry, error) {
	reg := s.cfg.Tapes
	if reg == nil {
		return nil, &storage.Error{Kind: storage.ErrDisallowed, Msg: "this node has no tape subsystem"}
	}
	if node != "" && node != reg.Node() {
		return nil, notFound("node %q does not exist", node)
	}
	return reg, nil
}

func deviceView(d tape.Device) TapeDevice {
	out := TapeDevice{
		Node: d.Node, Alias: d.Alias, DeviceType: d.Kind.String(), Vendor: d.Vendor, Product: d.Product,
		Revision: d.Revision, Serial: d.Serial, Paths: slices.Clone(d.Paths), Online: d.Online,
		Status: "normal", Trace: d.Trace, InUseBy: d.OpenBy, ReservedBy: d.ReservedBy,
		Stats: TapeStats{
			BytesRead: d.Stats.BytesRead, BytesWritten: d.Stats.BytesWritten,
			RecordsRead: d.Stats.RecordsRead, RecordsWritten: d.Stats.RecordsWritten,
			FilemarksWritten: d.Stats.FilemarksWritten, ReadErrors: d.Stats.ReadErrors,
			WriteErrors: d.Stats.WriteErrors, OtherErrors: d.Stats.OtherErrors,
		},
	}
	if out.Paths == nil {
		out.Paths = []string{}
	}
	if len(d.Paths) > 0 {
		out.DeviceID = d.Paths[0]
	}
	if !d.Online {
		out.Status = "offline"
	}
	out.Description = strings.TrimSpace(strings.TrimSpace(d.Vendor) + " " + strings.TrimSpace(d.Product))
	if d.Kind == tape.KindDrive {
		out.SupportStatus = string(d.Status)
		if d.Config != nil {
			out.Description = d.Config.Vendor() + " " + d.Config.Product()
		}
		out.DeviceNames = tape.DeviceListing(d)
	}
	return out
}

// findDevice resolves a -device-id: an alias (st0, mc0), a physical path
// name of the device (0a.1) or a tape device name (nrst0a).
func findDevice(ctx context.Context, reg *tape.Registry, id string) (tape.Device, error) {
	if id == "" {
		return tape.Device{}, badf("missing required parameter -device-id")
	}
	devs, err := reg.Devices(ctx)
	if err != nil {
		return tape.Device{}, err
	}
	alias := id
	if n, err := tape.ParseDeviceName(id); err == nil {
		alias = n.Alias
	}
	for _, d := range devs {
		if d.Alias != "" && d.Alias == alias {
			return d, nil
		}
		for _, p := range d.Paths {
			if strings.EqualFold(p, id) {
				return d, nil
			}
		}
	}
	return tape.Device{}, notFound("tape device %q does not exist on node %q", id, reg.Node())
}

func (s *Server) listTapeDevices(ctx context.Context, r *request) (int, any, error) {
	q := r.URL.Query()
	reg, err := s.tapes(q.Get("node"))
	if err != nil {
		return 0, nil, err
	}
	devs, err := reg.Devices(ctx)
	if err != nil {
		return 0, nil, tapeErr(err)
	}
	kind, id := q.Get("device-type"), q.Get("device-id")
	if id != "" {
		d, err := findDevice(ctx, reg, id)
		if err != nil {
			return 0, nil, tapeErr(err)
		}
		devs = []tape.Device{d}
	}
	out := make([]TapeDevice, 0, len(devs))
	for _, d := range devs {
		if kind != "" && d.Kind.String() != kind {
			continue
		}
		out = append(out, deviceView(d))
	}
	return http.StatusOK, records(out), nil
}

func (s *Server) tapeAction(verb string) handlerFunc {
	return func(ctx context.Context, r *request) (int, any, error) {
		var in TapeAction
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		reg, err := s.tapes(in.Node)
		if err != nil {
			return 0, nil, err
		}
		if verb == "trace" && in.IsTraceEnabled == nil {
			return 0, nil, badf("missing required parameter -is-trace-enabled")
		}
		var targets []tape.Device
		if verb == "trace" && in.DeviceID == "" {
			if targets, err = reg.Devices(ctx); err != nil {
				return 0, nil, tapeErr(err)
			}
		} else {
			d, err := findDevice(ctx, reg, in.DeviceID)
			if err != nil {
				return 0, nil, tapeErr(err)
			}
			targets = []tape.Device{d}
		}
		res := TapeActionResult{Devices: []string{}}
		for _, d := range targets {
			if d.Alias == "" {
				if len(targets) == 1 {
					return 0, nil, &storage.Error{Kind: storage.ErrDisallowed,
						Msg: fmt.Sprintf("tape device %s has no alias; set one with \"storage tape alias set\"", d.Paths[0])}
				}
				continue
			}
			if err := s.doTapeAction(ctx, reg, verb, d, in, &res); err != nil {
				return 0, nil, tapeErr(err)
			}
			res.Devices = append(res.Devices, d.Alias)
		}
		return http.StatusOK, res, nil
	}
}

func (s *Server) doTapeAction(ctx context.Context, reg *tape.Registry, verb string, d tape.Device, in TapeAction, res *TapeActionResult) error {
	drive := func() error {
		if d.Kind != tape.KindDrive {
			return invalid("%s is a %s, not a tape drive", d.Alias, d.Kind)
		}
		return nil
	}
	switch verb {
	case "online":
		return reg.Online(ctx, d.Alias)
	case "offline":
		return reg.Offline(ctx, d.Alias)
	case "reset":
		return reg.Reset(ctx, d.Alias)
	case "trace":
		return reg.Trace(ctx, d.Alias, *in.IsTraceEnabled)
	case "zero":
		if err := drive(); err != nil {
			return err
		}
		return reg.ZeroStats(ctx, d.Alias)
	case "position":
		if err := drive(); err != nil {
			return err
		}
		ops := []string{"weof", "fsf", "bsf", "fsr", "bsr", "rewind", "offline"}
		if !slices.Contains(ops, in.Operation) {
			if in.Operation == "" {
				return badf("missing required parameter -operation")
			}
			return invalid("%q is not a position operation; use one of %s", in.Operation, strings.Join(ops, ", "))
		}
		count := int64(1)
		if in.Count != nil {
			count = *in.Count
		}
		if count < 0 || count > int64(^uint32(0)) {
			return invalid("-count %d is out of range (0 to %d)", count, ^uint32(0))
		}
		resid, err := reg.Position(ctx, d.Alias, tape.PositionOp(in.Operation), uint32(count))
		res.Residual = resid
		return err
	}
	return fmt.Errorf("unknown tape action %q", verb)
}

func (s *Server) aliasViews(ctx context.Context, reg *tape.Registry) ([]TapeAlias, error) {
	as, err := reg.Aliases(ctx)
	if err != nil {
		return nil, err
	}
	devs, err := reg.Devices(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TapeAlias, 0, len(as))
	for _, a := range as {
		v := TapeAlias{Node: a.Node, Name: a.Name, Mapping: a.Mapping, DeviceType: a.Kind().String()}
		for _, d := range devs {
			if d.Alias == a.Name && len(d.Paths) > 0 {
				v.DeviceID = d.Paths[0]
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// nodeViews returns the records views makes from the tape registry of the
// node that the request's "node" parameter names (this one when empty).
func nodeViews[T any](ctx context.Context, s *Server, r *request, views func(context.Context, *tape.Registry) ([]T, error)) ([]T, error) {
	reg, err := s.tapes(r.URL.Query().Get("node"))
	if err != nil {
		return nil, err
	}
	out, err := views(ctx, reg)
	return out, tapeErr(err)
}

func (s *Server) listTapeAliases(ctx context.Context, r *request) (int, any, error) {
	all, err := nodeViews(ctx, s, r, s.aliasViews)
	if err != nil {
		return 0, nil, err
	}
	out := byName(all, r.URL.Query().Get("name"), func(v TapeAlias) string { return v.Name })
	return http.StatusOK, records(out), nil
}

func (s *Server) setTapeAlias(ctx context.Context, r *request, in TapeAlias) (int, any, error) {
	reg, err := s.tapes(in.Node)
	if err != nil {
		return 0, nil, err
	}
	if in.Name == "" || in.Mapping == "" {
		return 0, nil, badf("missing required parameter -%s", map[bool]string{true: "name", false: "mapping"}[in.Name == ""])
	}
	kind, _, err := tape.ParseAlias(in.Name)
	if err != nil {
		return 0, nil, invalid("invalid alias name %q: use st<N> for a tape drive or mc<N> for a media changer", in.Name)
	}
	m, err := tape.ParseMapping(in.Mapping)
	if err != nil {
		return 0, nil, invalid("invalid mapping %q: use a physical path name (0b.4, MY_SWITCH:5.3L2) or a serial number (SN[123456]L4)", in.Mapping)
	}
	// A name in use for another device is refused rather than silently
	// taken from it, which would leave that device without an alias.
	aliases, err := s.aliasViews(ctx, reg)
	if err != nil {
		return 0, nil, tapeErr(err)
	}
	for _, a := range aliases {
		if a.Name == in.Name && !strings.EqualFold(a.Mapping, m.String()) && a.DeviceID != "" && !s.sameDevice(ctx, reg, a.DeviceID, m) {
			return 0, nil, &storage.Error{Kind: storage.ErrExists,
				Msg: fmt.Sprintf("alias %s is already in use by %s %s (%s); clear it first with \"storage tape alias clear -name %s\"", a.Name, a.DeviceType, a.DeviceID, a.Mapping, a.Name)}
		}
	}
	// The mapping must not name a device of the other kind.
	devs, err := reg.Devices(ctx)
	if err != nil {
		return 0, nil, tapeErr(err)
	}
	for _, d := range devs {
		if slices.ContainsFunc(d.Mappings(), func(x string) bool { return strings.EqualFold(x, m.String()) }) && d.Kind != kind {
			return 0, nil, invalid("mapping %s names a %s; alias %s is for a %s", m, d.Kind, in.Name, kind)
		}
	}
	if err := reg.SetAlias(ctx, in.Name, m.String()); err != nil {
		return 0, nil, tapeErr(err)
	}
	return http.StatusOK, TapeAlias{Node: reg.Node(), Name: in.Name, Mapping: m.String(), DeviceType: kind.String()}, nil
}

// sameDevice reports whether the attached device at path ppn is also the
// device mapping m names (its serial number or another of its paths).
func (s *Server) sameDevice(ctx context.Context, reg *tape.Registry, ppn string, m tape.Mapping) bool {
	d, err := findDevice(ctx, reg, ppn)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(d.Mappings(), func(x string) bool { return strings.EqualFold(x, m.String()) })
}

func (s *Server) clearTapeAlias(ctx context.Context, r *request, in TapeAliasClear) (int, any, error) {
	reg, err := s.tapes(in.Node)
	if err != nil {
		return 0, nil, err
	}
	switch {
	case in.Name != "" && in.ClearScope != "":
		return 0, nil, badf("specify either -name or -clear-scope, not both")
	case in.Name != "":
		if _, _, err := tape.ParseAlias(in.Name); err != nil {
			return 0, nil, invalid("invalid alias name %q: use st<N> for a tape drive or mc<N> for a media changer", in.Name)
		}
		if err := reg.ClearAlias(ctx, in.Name); err != nil {
			if errors.Is(err, tape.ErrNoDevice) {
				return 0, nil, notFound("alias %q does not exist on node %q", in.Name, reg.Node())
			}
			return 0, nil, tapeErr(err)
		}
		return http.StatusOK, TapeAliasClearResult{Cleared: 1}, nil
	case in.ClearScope != "":
		scope, err := tape.ParseClearScope(in.ClearScope)
		if err != nil {
			return 0, nil, invalid("invalid -clear-scope %q: use tape, media-changer or all", in.ClearScope)
		}
		n, err := reg.ClearAliases(ctx, scope)
		if err != nil {
			return 0, nil, tapeErr(err)
		}
		return http.StatusOK, TapeAliasClearResult{Cleared: n}, nil
	}
	return 0, nil, badf("specify -name or -clear-scope")
}

func (s *Server) pathViews(ctx context.Context, reg *tape.Registry) ([]TapePath, error) {
	ps, err := reg.Paths(ctx)
	if err != nil {
		return nil, err
	}
	devs, err := reg.Devices(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TapePath, 0, len(ps))
	for _, p := range ps {
		v := TapePath{Node: p.Node, DeviceID: p.Path, Alias: p.Alias, DeviceType: p.Kind.String(), Serial: p.Serial,
			Initiator: p.Initiator, LUN: p.LUN, Primary: p.Primary}
		for _, d := range devs {
			if slices.Contains(d.Paths, p.Path) {
				v.Description = deviceView(d).Description
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Server) listTapePaths(ctx context.Context, r *request) (int, any, error) {
	out, err := nodeViews(ctx, s, r, s.pathViews)
	if err != nil {
		return 0, nil, err
	}
	if ini := r.URL.Query().Get("initiator"); ini != "" {
		out = slices.DeleteFunc(out, func(p TapePath) bool { return p.Initiator != ini })
	}
	return http.StatusOK, records(out), nil
}

// libraryConfig groups the node's devices into LUN groups: the devices
// reached through the same set of initiators form one group, numbered per
// library from 0; a library is named after the media changer of its group
// (vendor product_N), or after its first drive when it has none.
func libraryConfig(ctx context.Context, reg *tape.Registry) ([]TapeLibraryConfig, error) {
	ps, err := reg.Paths(ctx)
	if err != nil {
		return nil, err
	}
	devs, err := reg.Devices(ctx)
	if err != nil {
		return nil, err
	}
	inits := map[string][]string{} // device serial or path -> initiators
	key := func(p tape.PathInfo) string {
		if p.Serial != "" {
			return "SN:" + p.Serial
		}
		return "PPN:" + p.Path
	}
	for _, p := range ps {
		k := key(p)
		if !slices.Contains(inits[k], p.Initiator) {
			inits[k] = append(inits[k], p.Initiator)
		}
	}
	groups := map[string]*TapeLibraryConfig{}
	var order []string
	for _, d := range devs {
		if len(d.Paths) == 0 {
			continue
		}
		k := "PPN:" + d.Paths[0]
		if d.Serial != "" {
			k = "SN:" + d.Serial
		}
		is := slices.Clone(inits[k])
		sort.Strings(is)
		gk := strings.Join(is, ",")
		g, ok := groups[gk]
		if !ok {
			g = &TapeLibraryConfig{Node: reg.Node(), Initiators: is}
			groups[gk] = g
			order = append(order, gk)
		}
		name := d.Alias
		if name == "" {
			name = d.Paths[0]
		}
		g.Devices = append(g.Devices, name)
		g.LUNCount++
		if d.Kind == tape.KindChanger && g.LibraryName == "" {
			g.LibraryName = strings.TrimSpace(d.Vendor) + " " + strings.TrimSpace(d.Product)
			g.TargetPort = d.Serial
		}
	}
	sort.Strings(order)
	out := make([]TapeLibraryConfig, 0, len(order))
	seen := map[string]int{}
	for _, gk := range order {
		g := groups[gk]
		if g.LibraryName == "" {
			g.LibraryName = "standalone"
		}
		seen[g.LibraryName]++
		g.LibraryName += "_" + strconv.Itoa(seen[g.LibraryName])
		g.LUNGroup = len(out)
		out = append(out, *g)
	}
	return out, nil
}

func (s *Server) listTapeLibraryConfig(ctx context.Context, r *request) (int, any, error) {
	reg, err := s.tapes(r.URL.Query().Get("node"))
	if err != nil {
		return 0, nil, err
	}
	out, err := libraryConfig(ctx, reg)
	if err != nil {
		return 0, nil, tapeErr(err)
	}
	return http.StatusOK, records(out), nil
}

func (s *Server) listTapeSupport(_ context.Context, r *request) (int, any, error) {
	reg, err := s.tapes(r.URL.Query().Get("node"))
	if err != nil {
		return 0, nil, err
	}
	rows := reg.SupportStatus()
	out := make([]TapeSupport, 0, len(rows))
	for _, row := range rows {
		out = append(out, TapeSupport{Node: reg.Node(), TapeDrive: row.TapeDrive, IsSupported: row.IsSupported, SupportStatus: string(row.Status)})
	}
	return http.StatusOK, records(out), nil
}

// ---- the virtual library

func (s *Server) library() (*vtl.Library, error) {
	if s.cfg.VTL == nil {
		return nil, &storage.Error{Kind: storage.ErrNotFound, Msg: "this node has no virtual tape library"}
	}
	return s.cfg.VTL, nil
}

func (s *Server) getVTL(ctx context.Context, _ *request) (int, any, error) {
	lib, err := s.library()
	if err != nil {
		return 0, nil, err
	}
	cfg := lib.Config()
	info := VTLInfo{Directory: lib.Dir(), Serial: lib.Serial(), Drives: cfg.Drives, Slots: cfg.Slots,
		IESlots: cfg.IESlots, Cartridges: len(lib.Cartridges()), Capacity: cfg.Capacity}
	if info.Capacity == 0 {
		info.Capacity = vtl.DefaultCapacity
	}
	if reg := s.cfg.Tapes; reg != nil {
		info.Node = reg.Node()
		devs, err := reg.Devices(ctx)
		if err != nil {
			return 0, nil, tapeErr(err)
		}
		for _, d := range devs {
			if d.Kind == tape.KindChanger && d.Serial == lib.Serial() {
				info.MediaChanger = d.Alias
			}
		}
	}
	return http.StatusOK, records([]VTLInfo{info}), nil
}

func cartridgeViews(lib *vtl.Library) []VTLCartridge {
	where := map[string]vtl.ElementStatus{}
	for _, e := range lib.Inventory() {
		if e.Full && e.Barcode != "" {
			where[e.Barcode] = e
		}
	}
	cs := lib.Cartridges()
	out := make([]VTLCartridge, 0, len(cs))
	for _, c := range cs {
		v := VTLCartridge{Barcode: c.Barcode, Capacity: c.Capacity, WriteProtect: c.WriteProtect, WORM: c.WORM, Location: "outside"}
		if e, ok := where[c.Barcode]; ok {
			v.Address = e.Addr
			switch e.Type {
			case vtl.TypeDrive:
				v.Location = fmt.Sprintf("drive %d", int(e.Addr-vtl.DriveBase))
			case vtl.TypeSlot:
				v.Location = fmt.Sprintf("slot %d", int(e.Addr-vtl.SlotBase)+1)
			case vtl.TypeIE:
				v.Location = fmt.Sprintf("ie-slot %d", int(e.Addr-vtl.IEBase)+1)
			default:
				v.Location = e.Type.String()
			}
		}
		out = append(out, v)
	}
	return out
}

func (s *Server) listVTLCartridges(_ context.Context, r *request) (int, any, error) {
	lib, err := s.library()
	if err != nil {
		return 0, nil, err
	}
	out := cartridgeViews(lib)
	if bc := r.URL.Query().Get("barcode"); bc != "" {
		out = slices.DeleteFunc(out, func(c VTLCartridge) bool { return c.Barcode != bc })
	}
	return http.StatusOK, records(out), nil
}

func (s *Server) addVTLCartridge(_ context.Context, r *request) (int, any, error) {
	var in VTLCartridgeAdd
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	lib, err := s.library()
	if err != nil {
		return 0, nil, err
	}
	if err := checkBarcode(in.Barcode); err != nil {
		return 0, nil, err
	}
	if in.Capacity < 0 {
		return 0, nil, invalid("capacity %d is negative", in.Capacity)
	}
	if err := lib.AddCartridge(in.Barcode, in.Capacity); err != nil {
		return 0, nil, cartridgeErr(err, in.Barcode)
	}
	return http.StatusCreated, nil, nil
}

func checkBarcode(bc string) error {
	if bc == "" {
		return badf("missing required parameter -barcode")
	}
	if !vtl.ValidBarcode(bc) {
		return invalid("invalid barcode %q: use 1 to 32 letters, digits, '_', '.' or '-', starting with a letter or digit", bc)
	}
	return nil
}

// cartridgeErr words the library's refusals about one cartridge.
func cartridgeErr(err error, barcode string) error {
	switch {
	case errors.Is(err, vtl.ErrNoCartridge):
		return notFound("cartridge %q does not exist in the virtual library", barcode)
	case errors.Is(err, vtl.ErrExists):
		return &storage.Error{Kind: storage.ErrExists, Msg: fmt.Sprintf("cartridge %q already exists in the virtual library", barcode)}
	case errors.Is(err, vtl.ErrInDrive):
		return &storage.Error{Kind: storage.ErrInUse, Msg: fmt.Sprintf("cartridge %q is loaded in a tape drive; move it to a slot first", barcode)}
	case errors.Is(err, vtl.ErrNoSpace):
		return &storage.Error{Kind: storage.ErrLimit, Msg: "the virtual library has no free slot"}
	}
	return tapeErr(err)
}

func (s *Server) vtlCartridgeOp(op string) handlerFunc {
	return func(_ context.Context, r *request) (int, any, error) {
		lib, err := s.library()
		if err != nil {
			return 0, nil, err
		}
		bc := r.PathValue("barcode")
		if err := checkBarcode(bc); err != nil {
			return 0, nil, err
		}
		switch op {
		case "remove":
			err = lib.RemoveCartridge(bc)
		case "import":
			if _, inside, lerr := lib.Locate(bc); lerr == nil && inside {
				return 0, nil, &storage.Error{Kind: storage.ErrExists, Msg: fmt.Sprintf("cartridge %q is already in the virtual library", bc)}
			}
			err = lib.Import(bc)
		case "export":
			el, inside, lerr := lib.Locate(bc)
			switch {
			case lerr != nil:
				err = lerr
			case !inside:
				return 0, nil, &storage.Error{Kind: storage.ErrDisallowed, Msg: fmt.Sprintf("cartridge %q is already outside the virtual library", bc)}
			case el.Type != vtl.TypeIE && lib.Config().IESlots > 0:
				return 0, nil, &storage.Error{Kind: storage.ErrDisallowed,
					Msg: fmt.Sprintf("cartridge %q is not in an import/export slot; move it there first", bc)}
			default:
				err = lib.Export(bc)
			}
		case "move":
			var in VTLCartridgeMove
			if err := decode(r, &in); err != nil {
				return 0, nil, err
			}
			dst, err := parseLocation(lib, in.To)
			if err != nil {
				return 0, nil, err
			}
			el, inside, lerr := lib.Locate(bc)
			if lerr != nil {
				return 0, nil, cartridgeErr(lerr, bc)
			}
			if !inside {
				return 0, nil, &storage.Error{Kind: storage.ErrDisallowed, Msg: fmt.Sprintf("cartridge %q is outside the virtual library; import it first", bc)}
			}
			if err := lib.Move(el.Addr, dst); err != nil {
				if errors.Is(err, vtl.ErrDestFull) {
					return 0, nil, &storage.Error{Kind: storage.ErrInUse, Msg: fmt.Sprintf("%s is not empty", in.To)}
				}
				return 0, nil, cartridgeErr(err, bc)
			}
		case "label":
			var in VTLCartridgeLabel
			if err := decode(r, &in); err != nil {
				return 0, nil, err
			}
			if err := checkBarcode(in.NewBarcode); err != nil {
				return 0, nil, err
			}
			if err := lib.Label(bc, in.NewBarcode); err != nil {
				if errors.Is(err, vtl.ErrExists) {
					return 0, nil, cartridgeErr(err, in.NewBarcode)
				}
				return 0, nil, cartridgeErr(err, bc)
			}
		}
		if err != nil {
			return 0, nil, cartridgeErr(err, bc)
		}
		return http.StatusOK, nil, nil
	}
}

// parseLocation turns "slot N", "ie-slot N" (1-based) or "drive N"
// (0-based, as drives are numbered) into an element address of lib.
func parseLocation(lib *vtl.Library, loc string) (uint16, error) {
	kind, num, ok := strings.Cut(strings.TrimSpace(loc), " ")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	cfg := lib.Config()
	if ok && err == nil {
		switch {
		case kind == "slot" && n >= 1 && n <= cfg.Slots:
			return vtl.SlotBase + uint16(n-1), nil
		case kind == "ie-slot" && n >= 1 && n <= cfg.IESlots:
			return vtl.IEBase + uint16(n-1), nil
		case kind == "drive" && n >= 0 && n < cfg.Drives:
			return vtl.DriveBase + uint16(n), nil
		}
	}
	return 0, invalid("invalid destination %q: use \"slot N\" (1-%d), \"ie-slot N\" (1-%d) or \"drive N\" (0-%d)", loc, cfg.Slots, cfg.IESlots, cfg.Drives-1)
}

// ---- extra virtual libraries (storage tape vtl create|delete)

func (s *Server) listVTLs(ctx context.Context, r *request) (int, any, error) {
	if _, err := s.tapes(r.URL.Query().Get("node")); err != nil {
		return 0, nil, err
	}
	m, err := s.vtlManager()
	if err != nil {
		return 0, nil, err
	}
	ls, err := m.VTLs(ctx)
	if err != nil {
		return 0, nil, tapeErr(err)
	}
	if name := r.URL.Query().Get("name"); name != "" {
		ls = slices.DeleteFunc(ls, func(l VTLLibrary) bool { return l.Name != name })
	}
	return http.StatusOK, records(ls), nil
}

func (s *Server) createVTL(ctx context.Context, r *request, in VTLCreate) (int, any, error) {
	if _, err := s.tapes(""); err != nil {
		return 0, nil, err
	}
	if err := CheckVTLCreate(in); err != nil {
		return 0, nil, err
	}
	m, err := s.vtlManager()
	if err != nil {
		return 0, nil, err
	}
	l, err := m.CreateVTL(ctx, in)
	if err != nil {
		return 0, nil, tapeErr(err)
	}
	return http.StatusCreated, l, nil
}

func (s *Server) deleteVTL(ctx context.Context, r *request) (int, any, error) {
	name := r.PathValue("name")
	if err := CheckVTLName(name); err != nil {
		return 0, nil, err
	}
	if _, err := s.tapes(r.URL.Query().Get("node")); err != nil {
		return 0, nil, err
	}
	m, err := s.vtlManager()
	if err != nil {
		return 0, nil, err
	}
	if err := m.DeleteVTL(ctx, name); err != nil {
		return 0, nil, tapeErr(err)
	}
	return http.StatusOK, nil, nil
}
