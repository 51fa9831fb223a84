// Package vtl is Tapestry's virtual tape library: a medium changer with
// tape drives, storage slots and import/export slots, and cartridges that
// are SIMH tape images (package format/simtap) in a directory.
//
// A Library is persisted under its directory, which it holds locked while
// open (one Library per directory): state.json (written
// atomically) holds the configuration, where every cartridge is and its
// attributes; cartridges/<barcode>.tap and its index hold the contents. A
// restarted library finds every cartridge where it was, with its
// contents; a drive that held a cartridge holds it again, rewound.
//
// A Drive behaves as NDMP v4 (draft section 3.4) says a tape drive must
// behave: open and close in read or read-write mode, MTIO operations that
// return residual counts, reads and writes of variable-size records, file
// marks, early warning and end of medium, write protection, and the state
// TAPE_GET_STATE reports. Every record is stored with the compression the
// drive was opened with (device name suffix l, m, h or a) and read back
// transparently through any device name, which is more than ONTAP's T2
// asks (there, reading needs the compression type used for writing).
//
// The library and its drives also answer SCSI commands (ExecuteCDB) as an
// SMC-3 medium changer and an SSC tape drive do, for NDMP's
// SCSI_EXECUTE_CDB and TAPE_EXECUTE_CDB. Faults can be injected per
// cartridge so that every tape error message ONTAP lists (messages.go) can
// be produced.
package vtl

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/simtap"
)

// Element address assignment (reported by MODE SENSE page 1Dh).
const (
	TransportAddr uint16 = 0x0000 // the one medium transport (robot)
	IEBase        uint16 = 0x000A // first import/export slot
	DriveBase     uint16 = 0x01F4 // first drive
	SlotBase      uint16 = 0x03E8 // first storage slot
)

// Limits of a library (T5 allows 64 drives per node).
const (
	MaxDrives  = 64
	MaxIESlots = 16
	MaxSlots   = 4096
)

// DefaultCapacity is a cartridge's capacity when none is given: LTO-6's
// native 2.5 TB.
const DefaultCapacity int64 = 2_500_000_000_000

// ElementType is an SMC element type code.
type ElementType uint8

// Element types.
const (
	TypeAll       ElementType = 0
	TypeTransport ElementType = 1
	TypeSlot      ElementType = 2
	TypeIE        ElementType = 3
	TypeDrive     ElementType = 4
)

// String names the element type.
func (t ElementType) String() string {
	switch t {
	case TypeTransport:
		return "transport"
	case TypeSlot:
		return "slot"
	case TypeIE:
		return "import/export"
	case TypeDrive:
		return "drive"
	}
	return fmt.Sprintf("element-type(%d)", uint8(t))
}

// Config describes a library to create.
type Config struct {
	Drives  int // tape drives, 1..64
	Slots   int // storage slots, 1..4096
	IESlots int // import/export slots, 0..16
	// Capacity of new cartridges in bytes; 0 means DefaultCapacity.
	Capacity int64 `json:",omitempty"`
	// EarlyWarning is the size of the early-warning zone before the end
	// of a new cartridge; 0 means capacity/32, at most 4 GiB.
	EarlyWarning int64 `json:",omitempty"`
	// MinCapacity is the least capacity a tape operation needs; a write
	// that reaches the end of a smaller cartridge reports
	// MsgMinimumCapacity. 0 disables the check.
	MinCapacity int64 `json:",omitempty"`
	// MaxActive is how many drives may be open at once (ONTAP: 16 local
	// tape I/O threads); 0 means 16.
	MaxActive int `json:",omitempty"`
	// Serial is the library serial number; generated when empty.
	Serial string `json:",omitempty"`
}

// Cartridge describes a cartridge of the library.
type Cartridge struct {
	Barcode      string
	Capacity     int64   // bytes
	EarlyWarning int64   // bytes before the end where early warning starts
	WriteProtect bool    // the write-protect tab
	WORM         bool    // write once: appending only
	ShortTape    int64   `json:",omitempty"` // fault: the tape ends here (bytes) instead of at Capacity
	Faults       []Fault `json:",omitempty"`
}

func (c *Cartridge) effCapacity() int64 {
	if c.ShortTape > 0 && c.ShortTape < c.Capacity {
		return c.ShortTape
	}
	return c.Capacity
}

// effEarlyWarning returns the early-warning zone of the tape as it is
// (a short tape's zone shrinks with it).
func (c *Cartridge) effEarlyWarning() int64 {
	if c.ShortTape > 0 && c.ShortTape < c.Capacity {
		return min(c.EarlyWarning, c.ShortTape/32)
	}
	return c.EarlyWarning
}

type elemState struct {
	Barcode string `json:",omitempty"`
	Source  uint16 `json:",omitempty"` // where the cartridge was moved from
}

type state struct {
	Version int
	Config  Config
	Drives  []elemState
	Slots   []elemState
	IE      []elemState
	Prevent bool
	Carts   map[string]*Cartridge
}

// Library is an open virtual tape library.
type Library struct {
	dir    string
	lock   *os.File   // holds the directory's exclusive lock
	mu     sync.Mutex // guards st, active, sense; taken after a Drive's mu
	st     state
	drives []*Drive
	active int
	sense  senseData // changer's pending sense for REQUEST SENSE
	ua     senseData // pending unit attention
	closed bool
}

var barcodeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$`)

// ValidBarcode reports whether s can be a volume tag: 1 to 32 letters,
// digits, '_', '.' or '-', starting with a letter or digit.
func ValidBarcode(s string) bool { return barcodeRE.MatchString(s) }

const (
	stateFile = "state.json"
	lockFile  = "lock"
)

// ErrLocked is returned when another Library (in this or another process)
// has the directory open.
var ErrLocked = errors.New("vtl: library directory in use")

// lockDir takes the library directory's exclusive lock.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vtl: lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("vtl: lock %s: %w", dir, err)
	}
	return f, nil
}

// Create makes a new, empty library in dir (created if needed; it must
// not already hold a library).
func Create(dir string, cfg Config) (*Library, error) {
	switch {
	case cfg.Drives < 1 || cfg.Drives > MaxDrives:
		return nil, fmt.Errorf("vtl: create: %d drives, want 1..%d", cfg.Drives, MaxDrives)
	case cfg.Slots < 1 || cfg.Slots > MaxSlots:
		return nil, fmt.Errorf("vtl: create: %d slots, want 1..%d", cfg.Slots, MaxSlots)
	case cfg.IESlots < 0 || cfg.IESlots > MaxIESlots:
		return nil, fmt.Errorf("vtl: create: %d import/export slots, want 0..%d", cfg.IESlots, MaxIESlots)
	case cfg.Capacity < 0 || cfg.EarlyWarning < 0 || cfg.MinCapacity < 0 || cfg.MaxActive < 0:
		return nil, fmt.Errorf("vtl: create: negative size in configuration")
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = DefaultCapacity
	}
	if cfg.MaxActive == 0 {
		cfg.MaxActive = 16
	}
	if cfg.Serial == "" {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("vtl: create: %w", err)
		}
		cfg.Serial = "TPVTL" + hex.EncodeToString(b[:])
	}
	if len(cfg.Serial) > 28 {
		return nil, fmt.Errorf("vtl: create: serial %q longer than 28 characters", cfg.Serial)
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return nil, fmt.Errorf("vtl: create: %s already holds a library", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, "cartridges"), 0o755); err != nil {
		return nil, fmt.Errorf("vtl: create: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Library{dir: dir, lock: lock, st: state{
		Version: 1,
		Config:  cfg,
		Drives:  make([]elemState, cfg.Drives),
		Slots:   make([]elemState, cfg.Slots),
		IE:      make([]elemState, cfg.IESlots),
		Carts:   map[string]*Cartridge{},
	}}
	if err := l.save(); err != nil {
		_ = lock.Close()
		return nil, err
	}
	l.makeDrives()
	return l, nil
}

// Open opens the library persisted in dir.
func Open(dir string) (*Library, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("vtl: open: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Library{dir: dir, lock: lock}
	if err := json.Unmarshal(b, &l.st); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("vtl: open %s: %w", filepath.Join(dir, stateFile), err)
	}
	if err := l.check(); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("vtl: open %s: %w", dir, err)
	}
	l.makeDrives()
	return l, nil
}

// check validates a loaded state.
func (l *Library) check() error {
	s := &l.st
	if s.Version != 1 {
		return fmt.Errorf("state version %d not supported", s.Version)
	}
	if len(s.Drives) != s.Config.Drives || len(s.Slots) != s.Config.Slots || len(s.IE) != s.Config.IESlots ||
		s.Config.Drives < 1 || s.Config.Drives > MaxDrives || s.Config.Slots > MaxSlots || s.Config.IESlots > MaxIESlots {
		return errors.New("element counts do not match the configuration")
	}
	if s.Carts == nil {
		s.Carts = map[string]*Cartridge{}
	}
	if s.Config.MaxActive == 0 {
		s.Config.MaxActive = 16
	}
	seen := map[string]bool{}
	for _, list := range [][]elemState{s.Drives, s.Slots, s.IE} {
		for _, e := range list {
			if e.Barcode == "" {
				continue
			}
			if s.Carts[e.Barcode] == nil || seen[e.Barcode] {
				return fmt.Errorf("cartridge %q unknown or in two places", e.Barcode)
			}
			seen[e.Barcode] = true
		}
	}
	for bc, c := range s.Carts {
		if !ValidBarcode(bc) || c == nil || c.Barcode != bc {
			return fmt.Errorf("bad cartridge entry %q", bc)
		}
	}
	return nil
}

func (l *Library) makeDrives() {
	l.drives = make([]*Drive, len(l.st.Drives))
	for i := range l.drives {
		l.drives[i] = &Drive{lib: l, index: i, serial: fmt.Sprintf("%sD%02d", l.st.Config.Serial, i)}
		if l.st.Drives[i].Barcode != "" {
			l.drives[i].loaded = true
		}
	}
}

// save writes the state file atomically. Call with l.mu held.
func (l *Library) save() error {
	b, err := json.MarshalIndent(&l.st, "", "  ")
	if err != nil {
		return fmt.Errorf("vtl: save: %w", err)
	}
	tmp := filepath.Join(l.dir, stateFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("vtl: save: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(l.dir, stateFile))
	}
	if err != nil {
		return fmt.Errorf("vtl: save: %w", err)
	}
	if d, err := os.Open(l.dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Close closes every drive (flushing the cartridges' indexes) and releases
// the directory. The library must not be used afterwards.
func (l *Library) Close() error {
	var first error
	for _, d := range l.drives {
		if err := d.shutdown(); err != nil && first == nil {
			first = err
		}
	}
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		_ = l.lock.Close()
	}
	l.mu.Unlock()
	return first
}

// Dir returns the library's directory.
func (l *Library) Dir() string { return l.dir }

// Serial returns the library's serial number.
func (l *Library) Serial() string { return l.st.Config.Serial }

// Config returns the library's configuration.
func (l *Library) Config() Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.Config
}

// Drives returns the library's drives, in element address order.
func (l *Library) Drives() []*Drive { return append([]*Drive(nil), l.drives...) }

// Drive returns drive i (0-based).
func (l *Library) Drive(i int) (*Drive, error) {
	if i < 0 || i >= len(l.drives) {
		return nil, fmt.Errorf("vtl: drive %d: %w", i, ErrBadElement)
	}
	return l.drives[i], nil
}

// DriveBySerial returns the drive with that serial number.
func (l *Library) DriveBySerial(serial string) (*Drive, error) {
	for _, d := range l.drives {
		if d.serial == serial {
			return d, nil
		}
	}
	return nil, fmt.Errorf("vtl: no drive with serial %q: %w", serial, ErrBadElement)
}

func (l *Library) cartPath(barcode string) string {
	return filepath.Join(l.dir, "cartridges", barcode+".tap")
}

// Element identifies an element of the changer by type and address.
type Element struct {
	Type ElementType
	Addr uint16
}

// ElementStatus is one element's state as Inventory reports it.
type ElementStatus struct {
	Element
	Full        bool
	Barcode     string `json:",omitempty"`
	Source      uint16 `json:",omitempty"` // meaningful when SourceValid
	SourceValid bool   `json:",omitempty"`
	Serial      string `json:",omitempty"` // drive serial number
}

// slot returns the state of the element at addr. Call with l.mu held.
func (l *Library) slot(addr uint16) (*elemState, ElementType, error) {
	s := &l.st
	switch {
	case addr >= SlotBase && int(addr-SlotBase) < len(s.Slots):
		return &s.Slots[addr-SlotBase], TypeSlot, nil
	case addr >= DriveBase && int(addr-DriveBase) < len(s.Drives):
		return &s.Drives[addr-DriveBase], TypeDrive, nil
	case addr >= IEBase && int(addr-IEBase) < len(s.IE):
		return &s.IE[addr-IEBase], TypeIE, nil
	}
	return nil, 0, newErr(fmt.Sprintf("element %#04x", addr), ErrBadElement, "", nil)
}

// Inventory returns every element (transport, slots, import/export slots,
// drives) with its contents.
func (l *Library) Inventory() []ElementStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inventory()
}

func (l *Library) inventory() []ElementStatus {
	out := []ElementStatus{{Element: Element{TypeTransport, TransportAddr}}}
	add := func(t ElementType, base uint16, list []elemState) {
		for i, e := range list {
			es := ElementStatus{Element: Element{t, base + uint16(i)}, Full: e.Barcode != "",
				Barcode: e.Barcode, Source: e.Source, SourceValid: e.Barcode != "" && e.Source != 0}
			if t == TypeDrive {
				es.Serial = l.drives[i].serial
			}
			out = append(out, es)
		}
	}
	add(TypeSlot, SlotBase, l.st.Slots)
	add(TypeIE, IEBase, l.st.IE)
	add(TypeDrive, DriveBase, l.st.Drives)
	return out
}

// Cartridges returns every cartridge the library knows, sorted by barcode.
func (l *Library) Cartridges() []Cartridge {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Cartridge, 0, len(l.st.Carts))
	for _, c := range l.st.Carts {
		cc := *c
		cc.Faults = append([]Fault(nil), c.Faults...)
		out = append(out, cc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Barcode < out[j].Barcode })
	return out
}

// Locate returns where the cartridge is; ok is false when it is outside
// the library (exported).
func (l *Library) Locate(barcode string) (el Element, ok bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.Carts[barcode] == nil {
		return Element{}, false, newErr(barcode, ErrNoCartridge, "", nil)
	}
	el, ok = l.where(barcode)
	return el, ok, nil
}

func (l *Library) where(barcode string) (Element, bool) {
	for _, e := range l.inventory() {
		if e.Barcode == barcode {
			return e.Element, true
		}
	}
	return Element{}, false
}

func (l *Library) newCartridge(barcode string, capacity int64) (*Cartridge, error) {
	if !ValidBarcode(barcode) {
		return nil, newErr(barcode, ErrBadBarcode, "", nil)
	}
	if l.st.Carts[barcode] != nil {
		return nil, newErr(barcode, ErrExists, "", nil)
	}
	if capacity < 0 {
		return nil, fmt.Errorf("vtl: cartridge %s: negative capacity", barcode)
	}
	if capacity == 0 {
		capacity = l.st.Config.Capacity
	}
	ew := l.st.Config.EarlyWarning
	if ew == 0 {
		ew = min(capacity/32, 4<<30)
	}
	if ew >= capacity {
		return nil, fmt.Errorf("vtl: cartridge %s: early-warning zone %d not below capacity %d", barcode, ew, capacity)
	}
	c, err := simtap.Create(l.cartPath(barcode))
	if err != nil {
		return nil, fmt.Errorf("vtl: cartridge %s: %w", barcode, err)
	}
	if err := c.Close(); err != nil {
		return nil, fmt.Errorf("vtl: cartridge %s: %w", barcode, err)
	}
	return &Cartridge{Barcode: barcode, Capacity: capacity, EarlyWarning: ew}, nil
}

// AddCartridge makes a new blank cartridge with that barcode and capacity
// (0: the library's default) and puts it in the first empty storage slot.
func (l *Library) AddCartridge(barcode string, capacity int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := firstFree(l.st.Slots)
	if i < 0 {
		return newErr("add "+barcode, ErrNoSpace, "", nil)
	}
	c, err := l.newCartridge(barcode, capacity)
	if err != nil {
		return err
	}
	l.st.Carts[barcode] = c
	l.st.Slots[i] = elemState{Barcode: barcode}
	return l.save()
}

func firstFree(list []elemState) int {
	for i, e := range list {
		if e.Barcode == "" {
			return i
		}
	}
	return -1
}

// RemoveCartridge deletes a cartridge and its contents. It must not be in
// a drive.
func (l *Library) RemoveCartridge(barcode string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.Carts[barcode] == nil {
		return newErr("remove "+barcode, ErrNoCartridge, "", nil)
	}
	if el, ok := l.where(barcode); ok {
		if el.Type == TypeDrive {
			return newErr("remove "+barcode, ErrInDrive, "", nil)
		}
		st, _, _ := l.slot(el.Addr)
		*st = elemState{}
	}
	delete(l.st.Carts, barcode)
	if err := l.save(); err != nil {
		return err
	}
	p := l.cartPath(barcode)
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("vtl: remove %s: %w", barcode, err)
	}
	_ = os.Remove(simtap.IndexPath(p))
	return nil
}

// Import puts a cartridge that is outside the library into the first
// empty import/export slot (a storage slot if the library has none).
// A barcode the library does not know yet becomes a new blank cartridge
// of the default capacity.
func (l *Library) Import(barcode string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.st.Carts[barcode]
	if c != nil {
		if _, in := l.where(barcode); in {
			return newErr("import "+barcode, ErrExists, "", nil)
		}
	}
	list := l.st.IE
	if len(list) == 0 {
		list = l.st.Slots
	}
	i := firstFree(list)
	if i < 0 {
		return newErr("import "+barcode, ErrNoSpace, "", nil)
	}
	if c == nil {
		var err error
		if c, err = l.newCartridge(barcode, 0); err != nil {
			return err
		}
		l.st.Carts[barcode] = c
	}
	list[i] = elemState{Barcode: barcode}
	l.ua = senseData{key: KeyUnitAttention, asc: 0x28, ascq: 0x00}
	return l.save()
}

// Export takes a cartridge out of its import/export slot: it is then
// outside the library (kept on disk, to be imported again). Refused while
// medium removal is prevented.
func (l *Library) Export(barcode string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.Carts[barcode] == nil {
		return newErr("export "+barcode, ErrNoCartridge, "", nil)
	}
	el, ok := l.where(barcode)
	if !ok {
		return newErr("export "+barcode, ErrSourceEmpty, "", errors.New("cartridge is outside the library"))
	}
	if el.Type != TypeIE && len(l.st.IE) > 0 {
		return newErr("export "+barcode, ErrIllegalArgs, "", fmt.Errorf("cartridge is in %s %#04x, not an import/export slot", el.Type, el.Addr))
	}
	if el.Type == TypeDrive {
		return newErr("export "+barcode, ErrInDrive, "", nil)
	}
	if l.st.Prevent {
		return newErr("export "+barcode, ErrPrevented, "", nil)
	}
	st, _, _ := l.slot(el.Addr)
	*st = elemState{}
	l.ua = senseData{key: KeyUnitAttention, asc: 0x28, ascq: 0x00}
	return l.save()
}

// Label puts a new barcode label on a cartridge that is not in a drive.
func (l *Library) Label(barcode, newBarcode string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.st.Carts[barcode]
	if c == nil {
		return newErr("label "+barcode, ErrNoCartridge, "", nil)
	}
	if !ValidBarcode(newBarcode) {
		return newErr("label "+newBarcode, ErrBadBarcode, "", nil)
	}
	if l.st.Carts[newBarcode] != nil {
		return newErr("label "+newBarcode, ErrExists, "", nil)
	}
	el, in := l.where(barcode)
	if in && el.Type == TypeDrive {
		return newErr("label "+barcode, ErrInDrive, "", nil)
	}
	oldP, newP := l.cartPath(barcode), l.cartPath(newBarcode)
	if err := os.Rename(oldP, newP); err != nil {
		return fmt.Errorf("vtl: label %s: %w", barcode, err)
	}
	_ = os.Rename(simtap.IndexPath(oldP), simtap.IndexPath(newP))
	delete(l.st.Carts, barcode)
	c.Barcode = newBarcode
	l.st.Carts[newBarcode] = c
	if in {
		st, _, _ := l.slot(el.Addr)
		st.Barcode = newBarcode
	}
	return l.save()
}

// SetWriteProtect sets or clears a cartridge's write-protect tab. A
// drive that has the cartridge open keeps the mode it was opened with
// but refuses further writes.
func (l *Library) SetWriteProtect(barcode string, on bool) error {
	return l.updateCart(barcode, func(c *Cartridge) { c.WriteProtect = on })
}

// SetWORM makes a cartridge write-once (appending only) or not.
func (l *Library) SetWORM(barcode string, on bool) error {
	return l.updateCart(barcode, func(c *Cartridge) { c.WORM = on })
}

func (l *Library) updateCart(barcode string, f func(*Cartridge)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.st.Carts[barcode]
	if c == nil {
		return newErr(barcode, ErrNoCartridge, "", nil)
	}
	f(c)
	return l.save()
}

// SetPrevent sets the changer's PREVENT MEDIUM REMOVAL state.
func (l *Library) SetPrevent(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.Prevent = on
	return l.save()
}

// Move moves a cartridge from element src to element dst, as MOVE MEDIUM
// does. A cartridge moved into a drive is loaded at BOT; one moved out of
// a drive is unloaded, which the drive refuses while it is open.
func (l *Library) Move(src, dst uint16) error {
	// Lock order: drives first (by index), then the library.
	var ds []*Drive
	for _, a := range []uint16{src, dst} {
		if a >= DriveBase && int(a-DriveBase) < len(l.drives) {
			d := l.drives[a-DriveBase]
			if len(ds) == 0 || ds[0] != d {
				ds = append(ds, d)
			}
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].index < ds[j].index })
	for _, d := range ds {
		d.mu.Lock()
		defer d.mu.Unlock()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	op := fmt.Sprintf("move %#04x to %#04x", src, dst)
	s, st, err := l.slot(src)
	if err != nil {
		return err
	}
	d, dt, err := l.slot(dst)
	if err != nil {
		return err
	}
	if s.Barcode == "" {
		return newErr(op, ErrSourceEmpty, "", nil)
	}
	if d.Barcode != "" {
		return newErr(op, ErrDestFull, "", nil)
	}
	if st == TypeDrive {
		drv := l.drives[src-DriveBase]
		if drv.open {
			return newErr(op, ErrPrevented, "", errors.New("drive is open"))
		}
		if err := drv.unloadLocked(); err != nil {
			return err
		}
	}
	*d = elemState{Barcode: s.Barcode, Source: src}
	*s = elemState{}
	if dt == TypeDrive {
		l.drives[dst-DriveBase].loadLocked()
	}
	return l.save()
}

// CreateDefault makes the default library in dir: 4 drives, 20 storage
// slots, 4 import/export slots and 10 labelled blank cartridges TAP001L8
// to TAP010L8 of the default capacity, one loaded in each drive.
func CreateDefault(dir string) (*Library, error) {
	l, err := Create(dir, Config{Drives: 4, Slots: 20, IESlots: 4})
	if err != nil {
		return nil, err
	}
	for i := 1; i <= 10; i++ {
		if err := l.AddCartridge(fmt.Sprintf("TAP%03dL8", i), 0); err != nil {
			return nil, err
		}
	}
	for i := 0; i < 4; i++ {
		if err := l.Move(SlotBase+uint16(i), DriveBase+uint16(i)); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// LoadNext replaces the cartridge in drive d with the next one, as an
// "ur" (unload/reload) device name asks: the cartridge goes back to the
// storage slot it came from (or the first empty one) and the first full
// storage slot after that one is loaded. With no cartridge in the drive
// the first full slot is loaded. It returns the new cartridge's barcode,
// or an error matching ErrNoCartridge when no further cartridge is left.
func (l *Library) LoadNext(d *Drive) (string, error) {
	l.mu.Lock()
	cur := l.st.Drives[d.index]
	after := SlotBase
	if cur.Barcode != "" {
		back := -1
		if cur.Source >= SlotBase && int(cur.Source-SlotBase) < len(l.st.Slots) && l.st.Slots[cur.Source-SlotBase].Barcode == "" {
			back = int(cur.Source - SlotBase)
		} else {
			back = firstFree(l.st.Slots)
		}
		if back < 0 {
			l.mu.Unlock()
			return "", newErr("load next", ErrNoSpace, "", nil)
		}
		after = SlotBase + uint16(back) + 1
	}
	next := -1
	for i := int(after - SlotBase); i < len(l.st.Slots); i++ {
		if l.st.Slots[i].Barcode != "" {
			next = i
			break
		}
	}
	l.mu.Unlock()
	if next < 0 {
		return "", newErr("load next", ErrNoCartridge, "", errors.New("no further cartridge in the storage slots"))
	}
	if cur.Barcode != "" {
		if err := l.Move(d.Address(), after-1); err != nil {
			return "", err
		}
	}
	if err := l.Move(SlotBase+uint16(next), d.Address()); err != nil {
		return "", err
	}
	return d.Barcode(), nil
}
