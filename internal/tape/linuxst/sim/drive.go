//go:build linux

package sim

import (
	"fmt"
)

// FaultKind is an error a cartridge produces at a given record.
type FaultKind int

// Faults.
const (
	// FaultWriteMedia makes the write of the record fail with MEDIUM
	// ERROR 3/0C/00 (TapeAlert 4 and 6).
	FaultWriteMedia FaultKind = iota + 1
	// FaultWriteHardware makes the write fail with HARDWARE ERROR
	// 4/44/00 (TapeAlert 3 and 6).
	FaultWriteHardware
	// FaultReadMedia makes the read of the record fail with MEDIUM ERROR
	// 3/11/00 (TapeAlert 4 and 5); the head moves past it.
	FaultReadMedia
	// FaultReadHardware makes the read fail with HARDWARE ERROR 4/44/00
	// (TapeAlert 3 and 5).
	FaultReadHardware
)

type entry struct {
	mark bool
	data []byte
}

// Cartridge is a tape cartridge: records and file marks from BOT, a
// capacity and an early-warning zone before its end.
type Cartridge struct {
	Barcode string
	// Capacity is the number of data bytes the cartridge holds.
	Capacity int64
	// EarlyWarning is the size of the zone before the end where writes
	// report the early warning.
	EarlyWarning int64
	// WriteProtect is the cartridge's write-protect tab.
	WriteProtect bool
	// Incompatible makes the cartridge unusable: the drive cannot read
	// its format (INCOMPATIBLE MEDIUM on MODE SELECT and every access).
	Incompatible bool

	entries []entry
	off     []int64 // off[i]: data bytes before entry i
	faults  map[int]FaultKind
}

// NewCartridge returns a blank cartridge.
func NewCartridge(barcode string, capacity, earlyWarning int64) *Cartridge {
	return &Cartridge{Barcode: barcode, Capacity: capacity, EarlyWarning: earlyWarning, off: []int64{0}, faults: map[int]FaultKind{}}
}

// Fault arms a fault at the record with index at (records and file marks
// counted from BOT, the SCSI logical object number). It fires once.
func (c *Cartridge) Fault(kind FaultKind, at int) { c.faults[at] = kind }

func (c *Cartridge) fire(at int, kinds ...FaultKind) FaultKind {
	k, ok := c.faults[at]
	if !ok {
		return 0
	}
	for _, want := range kinds {
		if k == want {
			delete(c.faults, at)
			return k
		}
	}
	return 0
}

// Records returns the records (nil entries are file marks) of the
// cartridge, for tests.
func (c *Cartridge) Records() [][]byte {
	out := make([][]byte, len(c.entries))
	for i, e := range c.entries {
		if !e.mark {
			out[i] = append([]byte{}, e.data...)
		}
	}
	return out
}

// truncate drops everything from entry i on (writing in the middle of
// a tape ends the recorded data there).
func (c *Cartridge) truncate(i int) {
	c.entries = c.entries[:i]
	c.off = c.off[:i+1]
}

func (c *Cartridge) appendEntry(e entry) {
	c.entries = append(c.entries, e)
	c.off = append(c.off, c.off[len(c.off)-1]+int64(len(e.data)))
}

// Drive is a simulated tape drive (SSC). Its state is guarded by the
// Host's lock.
type Drive struct {
	host *Host
	id   Identity

	cart     *Cartridge // in the drive element
	threaded bool       // loaded and ready (not ejected)
	head     int        // logical object number of the head
	density  byte
	compress bool
	resv     reservations
	sense    Sense  // for REQUEST SENSE through the sg node
	alerts   uint64 // TapeAlert flags, bit n-1 for flag n
	paths    []*Path
	timeouts map[byte]uint32 // the SG_IO timeout (ms) last given per operation code
}

// CommandTimeout returns the timeout, in milliseconds, of the last SG_IO
// with operation code op sent to the drive (0 if none was).
func (d *Drive) CommandTimeout(op byte) uint32 {
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	return d.timeouts[op]
}

// Identity returns the drive's INQUIRY identity.
func (d *Drive) Identity() Identity { return d.id }

// Load puts a cartridge in the drive and loads it, as an operator
// inserting it into a standalone drive; it fails if one is in it.
func (d *Drive) Load(c *Cartridge) error {
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	if d.cart != nil {
		return fmt.Errorf("sim: drive %s already holds %s", d.id.Serial, d.cart.Barcode)
	}
	d.insert(c)
	return nil
}

func (d *Drive) insert(c *Cartridge) {
	d.cart, d.threaded, d.head = c, true, 0
	d.setAlertsForLoad()
}

func (d *Drive) setAlertsForLoad() {
	d.alerts = 0
	if d.cart.WriteProtect {
		d.alerts |= 1 << (AlertWriteProtect - 1)
	}
}

// Cartridge returns the cartridge in the drive, nil if none.
func (d *Drive) Cartridge() *Cartridge {
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	return d.cart
}

// Density returns the density code and compression last set by MODE
// SELECT (MTSETDENSITY, MTCOMPRESSION).
func (d *Drive) Density() (code byte, compression bool) {
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	return d.density, d.compress
}

// ReserveFor makes another initiator (another host) reserve the drive
// with RESERVE(6); "" releases it.
func (d *Drive) ReserveFor(initiator string) {
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	d.resv.holder = initiator
}

// PreemptFor makes another initiator register key and take the persistent
// reservation (Exclusive Access), removing every other registration.
func (d *Drive) PreemptFor(initiator string, key uint64) {
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	d.resv.keys = map[string]uint64{initiator: key}
	d.resv.prHolder, d.resv.prType, d.resv.prKey = initiator, 3, key
	d.resv.gen++
}

// Reservation reports the RESERVE(6) holder and the persistent reservation
// holder and registered initiators, for tests.
func (d *Drive) Reservation() (holder, prHolder string, registered []string) {
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	for i := range d.resv.keys {
		registered = append(registered, i)
	}
	return d.resv.holder, d.resv.prHolder, registered
}

func (d *Drive) alert(flags ...int) {
	for _, f := range flags {
		d.alerts |= 1 << (f - 1)
	}
}

// ready checks for a loaded, usable cartridge.
func (d *Drive) ready() (Sense, bool) {
	switch {
	case d.cart == nil || !d.threaded:
		return senseNoMedium, false
	case d.cart.Incompatible:
		return SenseIncompatible, false
	}
	return senseNone, true
}

// atEW tells whether the head is inside the early-warning zone.
func (d *Drive) atEW() bool {
	c := d.cart
	return c.off[d.head] > c.Capacity-c.EarlyWarning
}

// write writes one record (SSC WRITE, variable block). written tells
// whether the record is on the tape; a non-zero sense goes with it.
func (d *Drive) write(p []byte) (sense Sense, written bool) {
	if s, ok := d.ready(); !ok {
		return s, false
	}
	c := d.cart
	if c.WriteProtect {
		d.alert(AlertWriteProtect)
		return SenseWriteProtected, false
	}
	switch c.fire(d.head, FaultWriteMedia, FaultWriteHardware) {
	case FaultWriteMedia:
		d.alert(AlertMedia, AlertWriteFailure)
		return SenseWriteError, false
	case FaultWriteHardware:
		d.alert(AlertHardError, AlertWriteFailure)
		return SenseHardware, false
	}
	if c.off[d.head]+int64(len(p)) > c.Capacity {
		return senseOverflow, false
	}
	c.truncate(d.head)
	c.appendEntry(entry{data: append([]byte(nil), p...)})
	d.head++
	if d.atEW() {
		return senseEarlyWarning, true
	}
	return senseNone, true
}

// writeMark writes one file mark.
func (d *Drive) writeMark() (Sense, bool) {
	if s, ok := d.ready(); !ok {
		return s, false
	}
	c := d.cart
	if c.WriteProtect {
		d.alert(AlertWriteProtect)
		return SenseWriteProtected, false
	}
	if c.off[d.head] > c.Capacity {
		return senseOverflow, false
	}
	c.truncate(d.head)
	c.appendEntry(entry{mark: true})
	d.head++
	if d.atEW() {
		return senseEarlyWarning, true
	}
	return senseNone, true
}

// read reads the record at the head into a buffer of max bytes (SSC READ,
// variable block, SILI off). It returns the bytes and the sense: FILEMARK
// (head past the mark), BLANK CHECK at the end of data, ILI with the
// residue for a record longer than max (head past it).
func (d *Drive) read(max int) ([]byte, Sense) {
	if s, ok := d.ready(); !ok {
		return nil, s
	}
	c := d.cart
	if d.head >= len(c.entries) {
		return nil, senseEOD
	}
	switch c.fire(d.head, FaultReadMedia, FaultReadHardware) {
	case FaultReadMedia:
		d.head++
		d.alert(AlertMedia, AlertReadFailure)
		return nil, SenseReadError
	case FaultReadHardware:
		d.alert(AlertHardError, AlertReadFailure)
		return nil, SenseHardware
	}
	e := c.entries[d.head]
	d.head++
	if e.mark {
		return nil, senseFilemark
	}
	if len(e.data) > max {
		s := Sense{ILI: true, Info: int32(max - len(e.data))}
		return e.data[:max], s
	}
	return e.data, senseNone
}

// spaceBlocks spaces count records forward (count > 0) or backward. A
// file mark stops it with FILEMARK, the head past the mark (on its EOM
// side forward, its BOT side backward); BOT and the end of data stop it
// too. It returns the count not done.
func (d *Drive) spaceBlocks(count int) (int, Sense) {
	if s, ok := d.ready(); !ok {
		return abs(count), s
	}
	c := d.cart
	for i := 0; i < abs(count); i++ {
		if count > 0 {
			if d.head >= len(c.entries) {
				return count - i, senseEOD
			}
			d.head++
			if c.entries[d.head-1].mark {
				return count - i - 1, senseFilemark
			}
			continue
		}
		if d.head == 0 {
			return -count - i, senseBOP
		}
		d.head--
		if c.entries[d.head].mark {
			return -count - i - 1, senseFilemark
		}
	}
	return 0, senseNone
}

// spaceMarks spaces over count file marks forward (ending after the last)
// or backward (ending before it). It returns the count not done.
func (d *Drive) spaceMarks(count int) (int, Sense) {
	if s, ok := d.ready(); !ok {
		return abs(count), s
	}
	c := d.cart
	for i := 0; i < abs(count); i++ {
		if count > 0 {
			for {
				if d.head >= len(c.entries) {
					return count - i, senseEOD
				}
				d.head++
				if c.entries[d.head-1].mark {
					break
				}
			}
			continue
		}
		for {
			if d.head == 0 {
				return -count - i, senseBOP
			}
			d.head--
			if c.entries[d.head].mark {
				break
			}
		}
	}
	return 0, senseNone
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// position returns the st file and block numbers of the head.
func (d *Drive) position() (file, block int32) {
	if d.cart == nil || !d.threaded {
		return -1, -1
	}
	for i := 0; i < d.head; i++ {
		if d.cart.entries[i].mark {
			file++
			block = 0
		} else {
			block++
		}
	}
	return file, block
}

// unload rewinds and ejects the cartridge; it stays in the drive element
// until the changer moves it.
func (d *Drive) unload() {
	d.head, d.threaded = 0, false
}

// scsi runs a command sent to the drive's sg node by initiator.
func (d *Drive) scsi(initiator string, c, out []byte, inLen int) cmdResult {
	if len(c) < cdbLen(c[0]) {
		return check(senseInvalidField)
	}
	if d.resv.conflicts(initiator, c) {
		return cmdResult{status: statusConflict}
	}
	if r, ok := d.resv.command(initiator, c, out); ok {
		return r
	}
	switch c[0] {
	case 0x00: // TEST UNIT READY
		if s, ok := d.ready(); !ok {
			return check(s)
		}
		return good(nil)
	case 0x03: // REQUEST SENSE
		b := d.sense.Fixed()
		d.sense = Sense{}
		return good(b)
	case 0x12:
		return inquiry(c, 0x01, d.id, false)
	case 0x05: // READ BLOCK LIMITS: variable 1 byte to 16 MiB
		return good([]byte{0x00, 0xFF, 0xFF, 0xFF, 0x00, 0x01})
	case 0x34: // READ POSITION, short form
		if s, ok := d.ready(); !ok {
			return check(s)
		}
		b := make([]byte, 20)
		if d.head == 0 {
			b[0] |= 0x80 // BOP
		}
		if d.atEW() {
			b[0] |= 0x40
		}
		put32(b[4:], d.head)
		put32(b[8:], d.head)
		return good(b)
	case 0x1A: // MODE SENSE(6): header and block descriptor
		b := make([]byte, 12)
		b[0] = 11
		if d.cart != nil && d.cart.WriteProtect {
			b[2] = 0x80
		}
		b[3] = 8
		b[4] = d.density
		return good(b)
	case 0x4D: // LOG SENSE
		return d.logSense(c)
	}
	return check(senseInvalidOpcode)
}

// logSense answers LOG SENSE for the supported pages list (00h) and
// TapeAlert (2Eh); reading TapeAlert clears the flags, as SSC says.
func (d *Drive) logSense(c []byte) cmdResult {
	switch c[2] & 0x3F {
	case 0x00:
		return good([]byte{0x00, 0x00, 0x00, 0x02, 0x00, 0x2E})
	case 0x2E:
		b := []byte{0x2E, 0x00, 0x00, 0x00}
		for f := 1; f <= 64; f++ {
			v := byte(0)
			if d.alerts&(1<<(f-1)) != 0 {
				v = 1
			}
			b = append(b, byte(f>>8), byte(f), 0x03, 0x01, v)
		}
		put16(b[2:], len(b)-4)
		d.alerts = 0
		if d.cart != nil && d.cart.WriteProtect {
			d.alert(AlertWriteProtect)
		}
		return good(b)
	}
	return check(senseInvalidField)
}
