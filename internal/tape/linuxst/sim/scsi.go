//go:build linux

package sim

import (
	"encoding/binary"
)

// SCSI status codes.
const (
	statusGood     = 0x00
	statusCheck    = 0x02
	statusConflict = 0x18
)

// Sense keys.
const (
	KeyNoSense        = 0x0
	KeyNotReady       = 0x2
	KeyMediumError    = 0x3
	KeyHardwareError  = 0x4
	KeyIllegalRequest = 0x5
	KeyUnitAttention  = 0x6
	KeyDataProtect    = 0x7
	KeyBlankCheck     = 0x8
	KeyVolumeOverflow = 0xD
)

// Sense is fixed-format sense data as a drive returns it.
type Sense struct {
	Key, ASC, ASCQ byte
	Filemark       bool  // FILEMARK bit
	EOM            bool  // EOM bit (early warning, end of medium, BOP)
	ILI            bool  // incorrect length
	Info           int32 // information field (residue), valid when non-zero
}

// Fixed returns the sense in fixed format (response code 70h, 18 bytes).
func (s Sense) Fixed() []byte {
	b := make([]byte, 18)
	b[0] = 0x70
	if s.Info != 0 {
		b[0] |= 0x80
		binary.BigEndian.PutUint32(b[3:], uint32(s.Info))
	}
	b[2] = s.Key
	if s.Filemark {
		b[2] |= 0x80
	}
	if s.EOM {
		b[2] |= 0x40
	}
	if s.ILI {
		b[2] |= 0x20
	}
	b[7] = 10
	b[12], b[13] = s.ASC, s.ASCQ
	return b
}

// Sense conditions.
var (
	senseNone           = Sense{}
	senseInvalidOpcode  = Sense{Key: KeyIllegalRequest, ASC: 0x20}
	senseInvalidField   = Sense{Key: KeyIllegalRequest, ASC: 0x24}
	senseInvalidElement = Sense{Key: KeyIllegalRequest, ASC: 0x21, ASCQ: 0x01}
	senseSourceEmpty    = Sense{Key: KeyIllegalRequest, ASC: 0x3B, ASCQ: 0x0E}
	senseDestFull       = Sense{Key: KeyIllegalRequest, ASC: 0x3B, ASCQ: 0x0D}
	senseRemovalPrev    = Sense{Key: KeyIllegalRequest, ASC: 0x53, ASCQ: 0x02}
	senseNoMedium       = Sense{Key: KeyNotReady, ASC: 0x3A}
	// SenseWriteProtected is DATA PROTECT, write protected.
	SenseWriteProtected = Sense{Key: KeyDataProtect, ASC: 0x27}
	// SenseWriteError is MEDIUM ERROR, write error.
	SenseWriteError = Sense{Key: KeyMediumError, ASC: 0x0C}
	// SenseReadError is MEDIUM ERROR, unrecovered read error.
	SenseReadError = Sense{Key: KeyMediumError, ASC: 0x11}
	// SenseHardware is HARDWARE ERROR, internal target failure.
	SenseHardware = Sense{Key: KeyHardwareError, ASC: 0x44}
	// SenseIncompatible is MEDIUM ERROR, cannot read medium (incompatible
	// format).
	SenseIncompatible = Sense{Key: KeyMediumError, ASC: 0x30}
	senseEOD          = Sense{Key: KeyBlankCheck, ASCQ: 0x05, EOM: false}
	senseOverflow     = Sense{Key: KeyVolumeOverflow, ASCQ: 0x02, EOM: true}
	senseEarlyWarning = Sense{Key: KeyNoSense, ASCQ: 0x02, EOM: true}
	senseBOP          = Sense{Key: KeyNoSense, ASCQ: 0x04, EOM: true}
	senseFilemark     = Sense{Key: KeyNoSense, ASCQ: 0x01, Filemark: true}
)

// TapeAlert flags (SSC-3 annex, LOG SENSE page 2Eh) the drive sets.
const (
	AlertHardError    = 3
	AlertMedia        = 4
	AlertReadFailure  = 5
	AlertWriteFailure = 6
	AlertWriteProtect = 9
)

// cmdResult is the outcome of a SCSI command.
type cmdResult struct {
	status byte
	data   []byte
	sense  Sense
}

func check(s Sense) cmdResult { return cmdResult{status: statusCheck, sense: s} }

func good(data []byte) cmdResult { return cmdResult{data: data} }

func be16(b []byte) int { return int(binary.BigEndian.Uint16(b)) }
func be24(b []byte) int { return int(b[0])<<16 | int(b[1])<<8 | int(b[2]) }

func put16(b []byte, v int) { binary.BigEndian.PutUint16(b, uint16(v)) }
func put24(b []byte, v int) { b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v) }
func put32(b []byte, v int) { binary.BigEndian.PutUint32(b, uint32(v)) }

// padded returns s in a field of n bytes padded with spaces.
func padded(s string, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = ' '
	}
	copy(b, s)
	return b
}

// cdbLen returns the length of a command of this opcode's group.
func cdbLen(op byte) int {
	switch op >> 5 {
	case 1, 2:
		return 10
	case 4:
		return 16
	case 5:
		return 12
	}
	return 6
}

// Identity is what INQUIRY reports about a device.
type Identity struct {
	Vendor   string // up to 8 characters
	Product  string // up to 16 characters
	Revision string // up to 4 characters
	Serial   string // VPD page 80h
}

// inquiry builds standard INQUIRY data or VPD page 00h, 80h or 83h.
func inquiry(c []byte, devType byte, id Identity, barcode bool) cmdResult {
	evpd := c[1]&1 == 1
	page := c[2]
	if !evpd {
		if page != 0 {
			return check(senseInvalidField)
		}
		b := make([]byte, 96)
		b[0] = devType
		b[1] = 0x80 // removable medium
		b[2] = 0x05 // SPC-3
		b[3] = 0x02
		b[4] = byte(len(b) - 5)
		copy(b[8:], padded(id.Vendor, 8))
		copy(b[16:], padded(id.Product, 16))
		copy(b[32:], padded(id.Revision, 4))
		if barcode {
			b[55] |= 0x01
		}
		return good(b)
	}
	switch page {
	case 0x00:
		return good([]byte{devType, 0x00, 0x00, 3, 0x00, 0x80, 0x83})
	case 0x80:
		return good(append([]byte{devType, 0x80, 0x00, byte(len(id.Serial))}, id.Serial...))
	case 0x83:
		t10 := append(padded(id.Vendor, 8), id.Serial...)
		d := append([]byte{0x02, 0x01, 0x00, byte(len(t10))}, t10...)
		naa := naaFor(id.Serial)
		d = append(d, 0x01, 0x03, 0x00, 8)
		d = append(d, naa[:]...)
		return good(append([]byte{devType, 0x83, byte(len(d) >> 8), byte(len(d))}, d...))
	}
	return check(senseInvalidField)
}

// naaFor returns an NAA IEEE registered designator (type 5) derived from a
// serial number, stable for the same serial.
func naaFor(serial string) [8]byte {
	var h uint64 = 1469598103934665603
	for i := 0; i < len(serial); i++ {
		h = (h ^ uint64(serial[i])) * 1099511628211
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], h)
	b[0] = 0x50 | b[0]&0x0F
	return b
}

// reservations is the reservation state of one logical unit: an SPC-2
// RESERVE(6) holder and SPC-3 persistent reservations. Initiators are
// named by the caller (one name per I_T nexus).
type reservations struct {
	holder   string            // RESERVE(6) holder, "" when none
	keys     map[string]uint64 // registered keys by initiator
	prHolder string            // persistent reservation holder
	prType   byte
	prKey    uint64
	gen      uint32
}

// conflicts tells whether a command from initiator conflicts with a
// reservation. INQUIRY, REQUEST SENSE, REPORT LUNS and PERSISTENT RESERVE
// IN never do, nor RELEASE(6) and PERSISTENT RESERVE OUT (REGISTER).
func (r *reservations) conflicts(initiator string, c []byte) bool {
	switch c[0] {
	case 0x12, 0x03, 0xA0, 0x5E:
		return false
	case 0x17, 0x57:
		return false
	case 0x5F:
		if c[1]&0x1F == 0x00 || c[1]&0x1F == 0x06 {
			return false
		}
	}
	if r.holder != "" && r.holder != initiator {
		return true
	}
	if r.prHolder == "" {
		return false
	}
	if r.prType == 5 || r.prType == 6 { // registrants only
		_, ok := r.keys[initiator]
		return !ok
	}
	return r.prHolder != initiator
}

// busy tells whether an initiator's medium access conflicts.
func (r *reservations) busy(initiator string) bool {
	return r.conflicts(initiator, []byte{0x08})
}

// command runs RESERVE, RELEASE and the PERSISTENT RESERVE commands; ok
// is false for other opcodes.
func (r *reservations) command(initiator string, c, out []byte) (cmdResult, bool) {
	switch c[0] {
	case 0x16, 0x56: // RESERVE(6/10)
		if r.holder != "" && r.holder != initiator || r.prHolder != "" {
			return cmdResult{status: statusConflict}, true
		}
		r.holder = initiator
		return good(nil), true
	case 0x17, 0x57: // RELEASE(6/10)
		if r.holder == initiator {
			r.holder = ""
		}
		return good(nil), true
	case 0x5E:
		return r.prIn(c), true
	case 0x5F:
		return r.prOut(initiator, c, out), true
	}
	return cmdResult{}, false
}

func (r *reservations) prIn(c []byte) cmdResult {
	switch c[1] & 0x1F {
	case 0x00: // READ KEYS
		b := make([]byte, 8)
		put32(b, int(r.gen))
		for _, k := range r.sortedKeys() {
			var kb [8]byte
			binary.BigEndian.PutUint64(kb[:], k)
			b = append(b, kb[:]...)
		}
		put32(b[4:], len(b)-8)
		return good(b)
	case 0x01: // READ RESERVATION
		b := make([]byte, 8)
		put32(b, int(r.gen))
		if r.prHolder != "" {
			d := make([]byte, 16)
			binary.BigEndian.PutUint64(d, r.prKey)
			d[13] = r.prType
			b = append(b, d...)
			put32(b[4:], 16)
		}
		return good(b)
	}
	return check(senseInvalidField)
}

func (r *reservations) sortedKeys() []uint64 {
	var ks []uint64
	for _, k := range r.keys {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}

// prOut runs PERSISTENT RESERVE OUT: REGISTER, RESERVE, RELEASE, CLEAR,
// PREEMPT and REGISTER AND IGNORE EXISTING KEY.
func (r *reservations) prOut(initiator string, c, out []byte) cmdResult {
	if len(out) < 24 {
		return check(senseInvalidField)
	}
	key := binary.BigEndian.Uint64(out[0:])
	sakey := binary.BigEndian.Uint64(out[8:])
	typ := c[2] & 0x0F
	if r.keys == nil {
		r.keys = map[string]uint64{}
	}
	mine, registered := r.keys[initiator]
	action := c[1] & 0x1F
	if action != 0x00 && action != 0x06 && (!registered || mine != key) {
		return cmdResult{status: statusConflict}
	}
	switch action {
	case 0x00, 0x06: // REGISTER, REGISTER AND IGNORE EXISTING KEY
		if action == 0x00 && registered && mine != key {
			return cmdResult{status: statusConflict}
		}
		if sakey == 0 {
			delete(r.keys, initiator)
			if r.prHolder == initiator {
				r.prHolder = ""
			}
		} else {
			r.keys[initiator] = sakey
		}
	case 0x01: // RESERVE
		if r.prHolder != "" && r.prHolder != initiator && !(r.prType == typ && (typ == 5 || typ == 6)) {
			return cmdResult{status: statusConflict}
		}
		if r.prHolder == "" {
			r.prHolder, r.prType, r.prKey = initiator, typ, key
		}
	case 0x02: // RELEASE
		if r.prHolder == initiator || (r.prType == 5 || r.prType == 6) && r.prHolder != "" {
			r.prHolder = ""
		}
	case 0x03: // CLEAR
		r.keys, r.prHolder = map[string]uint64{}, ""
	case 0x04, 0x05: // PREEMPT (AND ABORT)
		for i, k := range r.keys {
			if k == sakey && i != initiator {
				delete(r.keys, i)
			}
		}
		if r.prKey == sakey || r.prHolder == "" {
			r.prHolder, r.prType, r.prKey = initiator, typ, key
		}
	default:
		return check(senseInvalidField)
	}
	r.gen++
	return good(nil)
}
