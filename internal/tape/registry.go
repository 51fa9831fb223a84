package tape

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/options"
)

// Per-node limits (T5) and the most paths a device may have (T7).
const (
	MaxDrives   = 64
	MaxChangers = 16
	MaxBridges  = 16
	MaxPaths    = 2
)

// Reservations is the tape.reservations option (T6).
type Reservations string

// Reservation methods.
const (
	// ReservationsOff (the default) reserves nothing: a device is only
	// busy while a session has it open.
	ReservationsOff Reservations = "off"
	// ReservationsSCSI reserves a device with SCSI RESERVE/RELEASE while
	// a session has it open. A reset loses the reservation.
	ReservationsSCSI Reservations = "scsi"
	// ReservationsPersistent reserves a device with SCSI persistent
	// reservations: from the first open by a session until the session
	// ends (ReleaseSession), surviving closes and resets.
	ReservationsPersistent Reservations = "persistent"
)

// ParseReservations checks a tape.reservations value.
func ParseReservations(s string) (Reservations, error) {
	switch Reservations(s) {
	case ReservationsOff, ReservationsSCSI, ReservationsPersistent:
		return Reservations(s), nil
	}
	return "", fmt.Errorf("tape: invalid tape.reservations value %q: must be scsi, persistent or off", s)
}

// Attachment describes one path to a device that appeared on the node.
type Attachment struct {
	Kind     DeviceKind
	Path     string  // physical path name, e.g. "0b.4L1"
	Serial   string  // serial number (VPD page 80h); "" if unknown
	Vendor   string  // INQUIRY vendor identification
	Product  string  // INQUIRY product identification
	Revision string  // INQUIRY product revision
	Drive    Drive   // the device through this path, for KindDrive
	Changer  Changer // the device through this path, for KindChanger
}

// Stats are a drive's statistics since it was added or they were zeroed
// (storage stats tape, storage stats tape zero).
type Stats struct {
	BytesRead        int64
	BytesWritten     int64
	RecordsRead      int64
	RecordsWritten   int64
	FilemarksWritten int64
	ReadErrors       int64
	WriteErrors      int64
	OtherErrors      int64
}

// Device is a snapshot of one device of the node, for the show commands.
type Device struct {
	Kind     DeviceKind
	Node     string
	Alias    string   // "" when the device has none
	Serial   string   // as the device reports it
	Vendor   string   // INQUIRY vendor
	Product  string   // INQUIRY product
	Revision string   // INQUIRY revision
	Paths    []string // PPNs, the primary path first
	Online   bool
	// Status and Config are the qualification of a drive; changers and
	// bridges are always usable and have no Config.
	Status     SupportStatus
	Config     *Config
	Trace      bool
	OpenBy     string // session that has the device open
	ReservedBy string // session holding its reservation
	Stats      Stats
}

// Mappings returns the mappings an alias of the device may use: its serial
// number mapping (if any) and its physical path names.
func (d Device) Mappings() []string {
	return deviceMappings(d.Serial, d.Paths)
}

func deviceMappings(serial string, paths []string) []string {
	var out []string
	lun := 0
	if len(paths) > 0 {
		if m, err := ParseMapping(paths[0]); err == nil {
			lun = m.LUN
		}
	}
	if serial != "" {
		if m, err := SerialMapping(serial, lun); err == nil {
			out = append(out, m.String())
		}
	}
	return append(out, paths...)
}

// Options configure a Registry.
type Options struct {
	// Qual is the qualification table; nil means NewQualTable().
	Qual *QualTable
	// Logger receives trace lines of devices with tracing on; nil
	// discards them.
	Logger *slog.Logger
}

// Registry is the set of tape devices of one node. Its methods are safe
// for concurrent use.
type Registry struct {
	node  string
	store catalog.Store
	log   *slog.Logger
	key   uint64 // persistent reservation key of the node

	mu           sync.Mutex
	qual         *QualTable
	reservations Reservations
	balance      bool
	devs         []*device
	handles      map[*handle]bool // open drives and changers
	// alive tells whether a session still exists (SetSessionCheck); nil
	// treats every session as alive.
	alive func(session string) bool
}

// SetSessionCheck gives the registry a way to tell whether a session that
// holds a device still exists: Reset frees a device from a holder that
// does not (issue 10). The NDMP server sets it.
func (r *Registry) SetSessionCheck(alive func(session string) bool) {
	r.mu.Lock()
	r.alive = alive
	r.mu.Unlock()
}

// Holders returns the sessions that have a device open or reserved,
// sorted.
func (r *Registry) Holders() []string {
	r.mu.Lock()
	set := map[string]bool{}
	for h := range r.handles {
		set[h.session] = true
	}
	for _, d := range r.devs {
		if d.reservedBy != "" {
			set[d.reservedBy] = true
		}
	}
	r.mu.Unlock()
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

type path struct {
	ppn     string
	drive   Drive
	changer Changer
}

type device struct {
	kind                      DeviceKind
	serial                    string
	vendor, product, revision string
	paths                     []*path
	online                    bool
	trace                     bool
	status                    SupportStatus
	cfg                       *Config
	openBy                    string
	openPath                  *path
	turn                      int // next path to use with load balancing
	reservedBy                string
	stats                     Stats
}

func (d *device) ppns() []string {
	out := make([]string, len(d.paths))
	for i, p := range d.paths {
		out[i] = p.ppn
	}
	return out
}

// NewRegistry returns the empty registry of node, keeping aliases in
// store.
func NewRegistry(store catalog.Store, node string, o Options) (*Registry, error) {
	if node == "" {
		return nil, errors.New("tape: new registry: empty node name")
	}
	if store == nil {
		return nil, errors.New("tape: new registry: nil catalog")
	}
	r := &Registry{node: node, store: store, qual: o.Qual, reservations: ReservationsOff, log: o.Logger,
		handles: map[*handle]bool{}, key: reservationKey(node)}
	if r.qual == nil {
		r.qual = NewQualTable()
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// Node returns the node name.
func (r *Registry) Node() string { return r.node }

// ReservationKey returns the node's SCSI persistent reservation key (T6):
// a hash of the node name, the same after a restart, never 0.
func (r *Registry) ReservationKey() uint64 { return r.key }

func reservationKey(node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte("tapestry node " + node))
	k := h.Sum64()
	if k == 0 {
		k = 1
	}
	return k
}

// SetReservations stores the tape.reservations option in the registry's
// catalog (as the options command does) and applies it.
func (r *Registry) SetReservations(ctx context.Context, m Reservations) error {
	if _, err := ParseReservations(string(m)); err != nil {
		return err
	}
	if _, err := options.Set(ctx, r.store, options.TapeReservations, string(m)); err != nil {
		return err
	}
	_, err := r.Reservations(ctx)
	return err
}

// Reservations reads the tape.reservations option from the registry's
// catalog and returns it. The registry reads it so whenever a device is
// opened or reset, so that a value set with the options command applies
// from the next open on; reservations held under a previous method are
// then dropped, or, for an open device, kept by its user.
func (r *Registry) Reservations(ctx context.Context) (Reservations, error) {
	v, err := options.Value(ctx, r.store, options.TapeReservations)
	if err != nil {
		return "", fmt.Errorf("tape: %w", err)
	}
	m, err := ParseReservations(v)
	if err != nil {
		return "", fmt.Errorf("option %s: %w", options.TapeReservations, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m != r.reservations {
		for _, d := range r.devs {
			if d.openBy == "" || m == ReservationsOff {
				d.reservedBy = ""
			} else {
				d.reservedBy = d.openBy
			}
		}
		r.log.Info("tape reservations", "node", r.node, "method", string(m))
	}
	r.reservations = m
	return m, nil
}

// method returns the reservation method read last (Reservations).
func (r *Registry) method() Reservations {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reservations
}

// loadBalanceKey is where the node's load balancing setting is kept.
func loadBalanceKey(node string) string { return catalog.Key("tape", "load-balance", node) }

// SetLoadBalancing turns multipath load balancing on or off (T7; off by
// default; storage tape load-balance modify) and keeps the setting in the
// catalog. With it off a device is always used through its first path;
// with it on, opens take the paths in turn.
func (r *Registry) SetLoadBalancing(ctx context.Context, on bool) error {
	v := []byte("false")
	if on {
		v = []byte("true")
	}
	if err := r.store.Update(ctx, func(tx catalog.Tx) error { return tx.Put(loadBalanceKey(r.node), v) }); err != nil {
		return fmt.Errorf("tape: load balancing: %w", err)
	}
	_, err := r.LoadBalancing(ctx)
	return err
}

// LoadBalancing reads the load balancing setting from the catalog and
// applies it; opens read it too, so a change applies from the next open.
func (r *Registry) LoadBalancing(ctx context.Context) (bool, error) {
	var on bool
	err := r.store.View(ctx, func(tx catalog.Tx) error {
		v, err := tx.Get(loadBalanceKey(r.node))
		on = err == nil && string(v) == "true"
		if errors.Is(err, catalog.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("tape: load balancing: %w", err)
	}
	r.mu.Lock()
	r.balance = on
	r.mu.Unlock()
	return on, nil
}

// Qualification returns the registry's qualification table. Callers must
// not modify it; use LoadConfigs to add tape configuration files.
func (r *Registry) Qualification() *QualTable {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.qual
}

// LoadConfigs loads the tape configuration files of dir (QualTable.LoadDir)
// and requalifies every drive, so that a drive listed as nonqualified
// becomes usable once its file is installed.
func (r *Registry) LoadConfigs(dir string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.qual.LoadDir(dir); err != nil {
		return err
	}
	for _, d := range r.devs {
		if d.kind == KindDrive {
			d.cfg, d.status = r.qual.Qualify(d.vendor, d.product)
		}
	}
	return nil
}

func (r *Registry) count(k DeviceKind) int {
	n := 0
	for _, d := range r.devs {
		if d.kind == k {
			n++
		}
	}
	return n
}

func limitOf(k DeviceKind) int {
	switch k {
	case KindDrive:
		return MaxDrives
	case KindChanger:
		return MaxChangers
	}
	return MaxBridges
}

// Add registers a path to a device while the node runs (T9). A path to a
// device already known by its serial number becomes its second path (T7:
// at most two, with the same LUN on both). A new device must fit the node
// limits (T5); it gets its alias from the catalog if one is bound to its
// serial number or path, otherwise the lowest free st<N> or mc<N> bound to
// its serial number (to its path when it has none). It returns the device.
func (r *Registry) Add(ctx context.Context, a Attachment) (Device, error) {
	m, err := ParseMapping(a.Path)
	if err != nil || m.Kind != ByPath {
		return Device{}, fmt.Errorf("tape: add device: %q is not a physical path name: %v", a.Path, err)
	}
	ppn := m.String()
	switch a.Kind {
	case KindDrive:
		if a.Drive == nil {
			return Device{}, fmt.Errorf("tape: add tape drive %s: no drive given", ppn)
		}
	case KindChanger:
		if a.Changer == nil {
			return Device{}, fmt.Errorf("tape: add media changer %s: no changer given", ppn)
		}
	case KindBridge:
	default:
		return Device{}, fmt.Errorf("tape: add device %s: unknown device kind %d", ppn, a.Kind)
	}
	if a.Serial != "" {
		if err := checkSerial(a.Serial); err != nil {
			return Device{}, fmt.Errorf("tape: add %s %s: serial number %q: %v", a.Kind, ppn, a.Serial, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.devs {
		for _, p := range d.paths {
			if p.ppn == ppn {
				return Device{}, fmt.Errorf("tape: add %s %s: path already in use by a %s", a.Kind, ppn, d.kind)
			}
		}
	}
	if a.Serial != "" {
		for _, d := range r.devs {
			if d.kind != a.Kind || !strings.EqualFold(d.serial, a.Serial) {
				continue
			}
			if len(d.paths) >= MaxPaths {
				return Device{}, &Error{Op: "add path " + ppn, Device: d.serial, Err: ErrLimit,
					Cause: fmt.Errorf("a device can be reached over at most %d paths (already %s)", MaxPaths, strings.Join(d.ppns(), ", "))}
			}
			first, _ := ParseMapping(d.paths[0].ppn)
			if first.LUN != m.LUN {
				return Device{}, fmt.Errorf("tape: add path %s to %s %s: LUN mapping is not symmetrical (LUN %d on %s, %d here)",
					ppn, d.kind, d.serial, first.LUN, d.paths[0].ppn, m.LUN)
			}
			d.paths = append(d.paths, &path{ppn: ppn, drive: a.Drive, changer: a.Changer})
			return r.snapshot(ctx, d)
		}
	}
	if n, limit := r.count(a.Kind), limitOf(a.Kind); n >= limit {
		return Device{}, &Error{Op: "add " + ppn, Err: ErrLimit,
			Cause: fmt.Errorf("node %s already has %d %ss, the most a node supports", r.node, n, a.Kind)}
	}
	d := &device{kind: a.Kind, serial: a.Serial, vendor: a.Vendor, product: a.Product, revision: a.Revision,
		paths: []*path{{ppn: ppn, drive: a.Drive, changer: a.Changer}}, online: true}
	if a.Kind == KindDrive {
		d.cfg, d.status = r.qual.Qualify(a.Vendor, a.Product)
	}
	if a.Kind != KindBridge {
		maps := deviceMappings(d.serial, d.ppns())
		err := r.store.Update(ctx, func(tx catalog.Tx) error {
			_, err := assignAlias(tx, r.node, d.kind, maps[0], maps)
			return err
		})
		if err != nil {
			return Device{}, fmt.Errorf("tape: add %s %s: %w", a.Kind, ppn, err)
		}
	}
	r.devs = append(r.devs, d)
	return r.snapshot(ctx, d)
}

// Remove removes a path from the node (the device was detached). A device
// that loses its last path is removed; its alias stays in the catalog for
// when it comes back. A path in use by an open session is refused. The
// device behind the path is released (Releaser); an error doing so is
// returned after the path is removed.
func (r *Registry) Remove(ctx context.Context, ppnText string) error {
	m, err := ParseMapping(ppnText)
	if err != nil {
		return fmt.Errorf("tape: remove: %w", err)
	}
	ppn := m.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, d := range r.devs {
		for j, p := range d.paths {
			if p.ppn != ppn {
				continue
			}
			if d.openBy != "" && d.openPath == p {
				return &Error{Op: "remove", Device: ppn, Err: ErrBusy, Msg: MsgInUse}
			}
			d.paths = append(d.paths[:j:j], d.paths[j+1:]...)
			if len(d.paths) == 0 {
				r.devs = append(r.devs[:i:i], r.devs[i+1:]...)
			}
			var x any = p.drive
			if d.kind == KindChanger {
				x = p.changer
			}
			if rl, ok := x.(Releaser); ok {
				if err := rl.Release(); err != nil {
					return &Error{Op: "remove", Device: ppn, Err: ErrIO, Cause: err}
				}
			}
			return nil
		}
	}
	return &Error{Op: "remove", Device: ppn, Err: ErrNoDevice}
}

// aliases reads the node's aliases from the catalog; it does not need r.mu.
func (r *Registry) aliases(ctx context.Context) ([]Alias, error) {
	var as []Alias
	err := r.store.View(ctx, func(tx catalog.Tx) error {
		var err error
		as, err = listAliases(tx, r.node)
		return err
	})
	return as, err
}

func (r *Registry) snapshot(ctx context.Context, d *device) (Device, error) {
	as, err := r.aliases(ctx)
	if err != nil {
		return Device{}, err
	}
	return r.snapshotWith(as, d), nil
}

func (r *Registry) snapshotWith(as []Alias, d *device) Device {
	paths := d.ppns()
	return Device{Kind: d.kind, Node: r.node, Alias: findAlias(as, d.kind, deviceMappings(d.serial, paths)),
		Serial: d.serial, Vendor: d.vendor, Product: d.product, Revision: d.revision, Paths: paths,
		Online: d.online, Status: d.status, Config: d.cfg, Trace: d.trace, OpenBy: d.openBy,
		ReservedBy: d.reservedBy, Stats: d.stats}
}

// Devices returns every device of the node: drives, then changers, then
// bridges, each sorted by alias and path.
func (r *Registry) Devices(ctx context.Context) ([]Device, error) {
	as, err := r.aliases(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	out := make([]Device, len(r.devs))
	for i, d := range r.devs {
		out[i] = r.snapshotWith(as, d)
	}
	r.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		ai, aj := out[i].Alias, out[j].Alias
		if ai != aj {
			if ai == "" || aj == "" {
				return aj == ""
			}
			return lessAlias(ai, aj)
		}
		return out[i].Paths[0] < out[j].Paths[0]
	})
	return out, nil
}

func lessAlias(a, b string) bool {
	_, na, _ := parseAlias(a)
	_, nb, _ := parseAlias(b)
	if na != nb {
		return na < nb
	}
	return a < b
}

// lookup resolves an alias to a device. Call with r.mu held.
func (r *Registry) lookupLocked(as []Alias, name string) (*device, error) {
	k, _, err := ParseAlias(name)
	if err != nil {
		return nil, err
	}
	var mapping string
	for _, a := range as {
		if a.Name == name {
			mapping = a.Mapping
		}
	}
	if mapping == "" {
		return nil, &Error{Op: "look up", Device: name, Err: ErrNoDevice, Cause: errors.New("no such alias on node " + r.node)}
	}
	for _, d := range r.devs {
		if d.kind != k {
			continue
		}
		for _, m := range deviceMappings(d.serial, d.ppns()) {
			if m == mapping {
				return d, nil
			}
		}
	}
	return nil, &Error{Op: "look up", Device: name, Err: ErrNoDevice, Cause: fmt.Errorf("alias maps to %s, which is not attached", mapping)}
}

// Device returns the device an alias (st0, mc1) names.
func (r *Registry) Device(ctx context.Context, alias string) (Device, error) {
	as, err := r.aliases(ctx)
	if err != nil {
		return Device{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.lookupLocked(as, alias)
	if err != nil {
		return Device{}, err
	}
	return r.snapshotWith(as, d), nil
}

// Aliases returns the node's aliases (storage tape alias show), drives
// first, by number.
func (r *Registry) Aliases(ctx context.Context) ([]Alias, error) { return r.aliases(ctx) }

// SetAlias binds an alias to a mapping (storage tape alias set -name
// -mapping). The mapping is a PPN or SN[...]; an alias already bound to
// the same mapping is replaced by the new name.
func (r *Registry) SetAlias(ctx context.Context, name, mapping string) error {
	return r.store.Update(ctx, func(tx catalog.Tx) error { return setAlias(tx, r.node, name, mapping) })
}

// ClearAlias removes one alias (storage tape alias clear -name).
func (r *Registry) ClearAlias(ctx context.Context, name string) error {
	if _, _, err := ParseAlias(name); err != nil {
		return err
	}
	return r.store.Update(ctx, func(tx catalog.Tx) error {
		key := aliasKey(r.node, name)
		ok, err := catalog.Exists(tx, key)
		if err != nil {
			return fmt.Errorf("tape: alias clear %s: %w", name, err)
		}
		if !ok {
			return &Error{Op: "alias clear", Device: name, Err: ErrNoDevice, Cause: errors.New("no such alias on node " + r.node)}
		}
		if err := tx.Delete(key); err != nil {
			return fmt.Errorf("tape: alias clear %s: %w", name, err)
		}
		return nil
	})
}

// ClearAliases removes the aliases of a scope (storage tape alias clear
// -clear-scope) and returns how many it removed. A device without an alias
// cannot be opened until one is set again.
func (r *Registry) ClearAliases(ctx context.Context, scope ClearScope) (int, error) {
	if _, err := ParseClearScope(string(scope)); err != nil {
		return 0, err
	}
	n := 0
	err := r.store.Update(ctx, func(tx catalog.Tx) error {
		n = 0
		as, err := listAliases(tx, r.node)
		if err != nil {
			return err
		}
		for _, a := range as {
			if scope.covers(a.Kind()) {
				if err := tx.Delete(aliasKey(r.node, a.Name)); err != nil {
					return fmt.Errorf("tape: alias clear: %w", err)
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

// withDevice runs fn with the device an alias names, r.mu held.
func (r *Registry) withDevice(ctx context.Context, alias string, fn func(d *device) error) error {
	as, err := r.aliases(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.lookupLocked(as, alias)
	if err != nil {
		return err
	}
	return fn(d)
}

// Online brings a device online (storage tape online).
func (r *Registry) Online(ctx context.Context, alias string) error {
	return r.withDevice(ctx, alias, func(d *device) error {
		d.online = true
		return nil
	})
}

// Offline takes a device offline (storage tape offline): it cannot be
// opened until it is online again. A device in use is refused.
func (r *Registry) Offline(ctx context.Context, alias string) error {
	return r.withDevice(ctx, alias, func(d *device) error {
		if d.openBy != "" {
			return &Error{Op: "offline", Device: alias, Err: ErrBusy, Msg: MsgInUse}
		}
		d.online = false
		return nil
	})
}

// Trace turns tracing of a device's operations on or off
// (storage tape trace).
func (r *Registry) Trace(ctx context.Context, alias string, on bool) error {
	return r.withDevice(ctx, alias, func(d *device) error {
		d.trace = on
		return nil
	})
}

// Stats returns a drive's statistics (storage stats tape).
func (r *Registry) Stats(ctx context.Context, alias string) (Stats, error) {
	var s Stats
	err := r.withDevice(ctx, alias, func(d *device) error {
		s = d.stats
		return nil
	})
	return s, err
}

// ZeroStats zeroes a drive's statistics (storage stats tape zero).
func (r *Registry) ZeroStats(ctx context.Context, alias string) error {
	return r.withDevice(ctx, alias, func(d *device) error {
		d.stats = Stats{}
		return nil
	})
}

// Reset resets a device (storage tape reset). Under scsi reservations the
// reservation is lost, so the session holding it gets
// MsgReservationPreempted on its next operation; persistent reservations
// survive. A device held (open or reserved) by a session that no longer
// exists (SetSessionCheck) is freed, whatever the reservation mode. Paths
// whose device implements Resetter are reset.
func (r *Registry) Reset(ctx context.Context, alias string) error {
	if _, err := r.Reservations(ctx); err != nil {
		return err
	}
	var resetters []Resetter
	var orphans []*handle
	err := r.withDevice(ctx, alias, func(d *device) error {
		if r.reservations == ReservationsSCSI {
			d.reservedBy = ""
		}
		if d.reservedBy != "" && r.alive != nil && !r.alive(d.reservedBy) {
			d.reservedBy = ""
		}
		orphans = r.orphanHandlesLocked(d)
		for _, p := range d.paths {
			var x any = p.drive
			if d.kind == KindChanger {
				x = p.changer
			}
			if rs, ok := x.(Resetter); ok {
				resetters = append(resetters, rs)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, h := range orphans {
		r.log.Warn("tape device freed from a session that no longer exists", "device", alias, "session", h.session)
		_ = h.close(true)
	}
	for _, rs := range resetters {
		if err := rs.Reset(ctx); err != nil {
			return &Error{Op: "reset", Device: alias, Err: ErrIO, Cause: err}
		}
	}
	return nil
}

// orphanHandlesLocked returns the handles of d held by sessions that no
// longer exist. Call with r.mu held.
func (r *Registry) orphanHandlesLocked(d *device) []*handle {
	if r.alive == nil {
		return nil
	}
	var out []*handle
	for h := range r.handles {
		if h.d == d && !r.alive(h.session) {
			out = append(out, h)
		}
	}
	return out
}

// claimLocked makes session the user of a device and picks the path. Its
// errors name the device by its physical path name, as every error after
// the alias has been resolved does. Call with r.mu held.
func (r *Registry) claimLocked(d *device, session string) (*path, error) {
	if session == "" {
		return nil, &Error{Op: "open", Device: d.paths[0].ppn, Err: ErrIllegalArgs, Cause: errors.New("empty session id")}
	}
	if !d.online {
		return nil, &Error{Op: "open", Device: d.paths[0].ppn, Err: ErrOffline}
	}
	if d.kind == KindDrive && !d.status.Supported() {
		return nil, &Error{Op: "open", Device: d.paths[0].ppn, Err: ErrNotQualified,
			Cause: fmt.Errorf("%s %s is a nonqualified tape drive; install a tape configuration file for it", strings.TrimSpace(d.vendor), strings.TrimSpace(d.product))}
	}
	if r.reservations != ReservationsOff && d.reservedBy != "" && d.reservedBy != session {
		return nil, &Error{Op: "open", Device: d.paths[0].ppn, Err: ErrReserved, Msg: MsgReservationPreempted,
			Cause: fmt.Errorf("reserved by session %s", d.reservedBy)}
	}
	if d.openBy != "" {
		return nil, &Error{Op: "open", Device: d.paths[0].ppn, Err: ErrBusy, Msg: MsgInUse, Cause: fmt.Errorf("open by session %s", d.openBy)}
	}
	p := d.paths[0]
	if r.balance {
		p = d.paths[d.turn%len(d.paths)]
		d.turn++
	}
	d.openBy, d.openPath = session, p
	if r.reservations != ReservationsOff {
		d.reservedBy = session
	}
	return p, nil
}

// releaseLocked ends session's use of d (close). Call with r.mu held.
func (r *Registry) releaseLocked(d *device) {
	d.openBy, d.openPath = "", nil
	if r.reservations != ReservationsPersistent {
		d.reservedBy = ""
	}
}

// ReleaseSession ends a session: its persistent reservations are released
// and the devices it left open are closed (their close errors are
// returned joined).
func (r *Registry) ReleaseSession(session string) error {
	r.mu.Lock()
	var open []*handle
	for h := range r.handles {
		if h.session == session {
			open = append(open, h)
		}
	}
	r.mu.Unlock()
	var errs []error
	for _, h := range open {
		if err := h.close(true); err != nil {
			errs = append(errs, err)
		}
	}
	// Only now, with its devices closed, drop every reservation of the
	// session (persistent ones survive the closes above); devices that
	// hold one themselves release it.
	var rel []ReservationReleaser
	r.mu.Lock()
	for _, d := range r.devs {
		if d.reservedBy == session {
			d.reservedBy = ""
			for _, p := range d.paths {
				if rr, ok := p.drive.(ReservationReleaser); ok {
					rel = append(rel, rr)
					break
				}
			}
		}
	}
	r.mu.Unlock()
	for _, rr := range rel {
		if err := rr.ReleaseReservation(context.Background(), r.key); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PathInfo is one path to a device, for storage tape library path show
// and show-by-initiator.
type PathInfo struct {
	Node      string
	Alias     string // the device's alias, "" if none
	Kind      DeviceKind
	Serial    string
	Path      string // the PPN
	Initiator string // the host adapter, or switch:port, of the path
	LUN       int
	Primary   bool // the path used when load balancing is off
}

// Paths lists every path of every device, sorted by initiator then path.
func (r *Registry) Paths(ctx context.Context) ([]PathInfo, error) {
	devs, err := r.Devices(ctx)
	if err != nil {
		return nil, err
	}
	var out []PathInfo
	for _, d := range devs {
		for i, p := range d.Paths {
			m, err := ParseMapping(p)
			if err != nil {
				return nil, fmt.Errorf("tape: paths: %w", err)
			}
			init := m.Adapter
			if m.Switch != "" {
				init = m.Switch + ":" + m.Port
			}
			out = append(out, PathInfo{Node: r.node, Alias: d.Alias, Kind: d.Kind, Serial: d.Serial, Path: p,
				Initiator: init, LUN: m.LUN, Primary: i == 0})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Initiator != out[j].Initiator {
			return out[i].Initiator < out[j].Initiator
		}
		return out[i].Path < out[j].Path
	})
	return out, nil
}

// SupportRow is one line of storage tape show-supported-status.
type SupportRow struct {
	TapeDrive   string // "Hewlett-Packard LTO-5"; a nonqualified drive's INQUIRY names in quotes
	IsSupported bool
	Status      SupportStatus
}

// SupportStatus lists the drives the node can qualify (its qualification
// table) followed by the attached drives that no configuration qualifies,
// for storage tape show-supported-status.
func (r *Registry) SupportStatus() []SupportRow {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []SupportRow
	for _, c := range r.qual.builtin {
		out = append(out, SupportRow{TapeDrive: c.Vendor() + " " + c.Product(), IsSupported: true, Status: Qualified})
	}
	for _, c := range r.qual.dynamic {
		out = append(out, SupportRow{TapeDrive: c.Vendor() + " " + c.Product(), IsSupported: true, Status: DynamicallyQualified})
	}
	seen := map[string]bool{}
	for _, d := range r.devs {
		if d.kind != KindDrive || d.status.Supported() {
			continue
		}
		name := `"` + strings.TrimSpace(d.vendor) + " " + strings.TrimSpace(d.product) + `"`
		if !seen[name] {
			seen[name] = true
			out = append(out, SupportRow{TapeDrive: name, Status: Nonqualified})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].TapeDrive < out[j].TapeDrive })
	return out
}
