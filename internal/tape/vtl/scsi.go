package vtl

import (
	"encoding/binary"
	"errors"
	"sort"
)

// Direction is the data direction of a SCSI command (NDMP's EXECUTE_CDB
// flags).
type Direction uint32

// Data directions.
const (
	DirNone Direction = 0
	DirIn   Direction = 1 // data from the device (NDMP_SCSI_DATA_IN)
	DirOut  Direction = 2 // data to the device (NDMP_SCSI_DATA_OUT)
)

// CDB is a SCSI command for ExecuteCDB.
type CDB struct {
	CDB       []byte
	Dir       Direction
	DataOut   []byte
	DataInLen int // the most data-in bytes the caller accepts
}

// INQUIRY identification of the library's devices: the T10 vendor and the
// product of the medium changer and of the drives.
const (
	Vendor         = "TAPESTRY"
	ChangerProduct = "VTL"
	DriveProduct   = "VTL-TAPE"
)

// SCSI status codes.
const (
	StatusGood           = 0x00
	StatusCheckCondition = 0x02
)

// CDBResult is the outcome of a SCSI command. Sense holds fixed-format
// sense data (response code 70h) when Status is CHECK CONDITION.
type CDBResult struct {
	Status uint8
	DataIn []byte // may accompany CHECK CONDITION (a short READ)
	Sense  []byte
	sd     senseData
}

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
)

type senseData struct {
	key, asc, ascq byte
	bits           byte  // FILEMARK 0x80, EOM 0x40, ILI 0x20 (sense byte 2)
	valid          bool  // info holds a residue
	info           int32 // information field
}

// Sense conditions this emulation reports.
var (
	senseInvalidOpcode  = senseData{key: KeyIllegalRequest, asc: 0x20, ascq: 0x00}
	senseInvalidField   = senseData{key: KeyIllegalRequest, asc: 0x24, ascq: 0x00}
	senseInvalidElement = senseData{key: KeyIllegalRequest, asc: 0x21, ascq: 0x01}
	senseSourceEmpty    = senseData{key: KeyIllegalRequest, asc: 0x3B, ascq: 0x0E}
	senseDestFull       = senseData{key: KeyIllegalRequest, asc: 0x3B, ascq: 0x0D}
	senseRemovalPrev    = senseData{key: KeyIllegalRequest, asc: 0x53, ascq: 0x02}
	senseSavingNotSupp  = senseData{key: KeyIllegalRequest, asc: 0x39, ascq: 0x00}
	senseNoMedium       = senseData{key: KeyNotReady, asc: 0x3A, ascq: 0x00}
	senseWriteProtected = senseData{key: KeyDataProtect, asc: 0x27, ascq: 0x00}
	senseInternal       = senseData{key: KeyHardwareError, asc: 0x44, ascq: 0x00}
)

// Fixed returns the sense in fixed format (response code 70h, 18 bytes).
func (s senseData) fixed() []byte {
	b := make([]byte, 18)
	b[0] = 0x70
	if s.valid {
		b[0] |= 0x80
		binary.BigEndian.PutUint32(b[3:], uint32(s.info))
	}
	b[2] = s.key | s.bits
	b[7] = 10
	b[12], b[13] = s.asc, s.ascq
	return b
}

func check(s senseData) CDBResult {
	return CDBResult{Status: StatusCheckCondition, Sense: s.fixed(), sd: s}
}

// cdbLen returns the length a command of this opcode has.
func cdbLen(op byte) int {
	switch op >> 5 {
	case 0:
		return 6
	case 1, 2:
		return 10
	case 4:
		return 16
	case 5:
		return 12
	}
	return 6
}

// finish limits data-in to the allocation length and the caller's
// buffer, and records the sense for a later REQUEST SENSE.
func finish(r CDBResult, req CDB, alloc int, pending *senseData) CDBResult {
	if r.Status == StatusCheckCondition {
		*pending = r.sd
	}
	if req.Dir&DirIn == 0 {
		r.DataIn = nil
		return r
	}
	n := len(r.DataIn)
	if alloc >= 0 && alloc < n {
		n = alloc
	}
	if req.DataInLen >= 0 && req.DataInLen < n {
		n = req.DataInLen
	}
	r.DataIn = r.DataIn[:n]
	return r
}

func be16(b []byte) int { return int(binary.BigEndian.Uint16(b)) }
func be24(b []byte) int { return int(b[0])<<16 | int(b[1])<<8 | int(b[2]) }
func be32(b []byte) int { return int(binary.BigEndian.Uint32(b)) }

func put16(b []byte, v int) { binary.BigEndian.PutUint16(b, uint16(v)) }
func put24(b []byte, v int) { b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v) }

// padded returns s in a field of n bytes padded with spaces.
func padded(s string, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = ' '
	}
	copy(b, s)
	return b
}

// allocLen returns the allocation length field of a command, or -1.
func allocLen(c []byte) int {
	switch c[0] {
	case 0x03, 0x1A:
		return int(c[4])
	case 0x12:
		return be16(c[3:])
	case 0x5A:
		return be16(c[7:])
	case 0xB8:
		return be24(c[7:])
	case 0xA0:
		return be32(c[6:])
	}
	return -1
}

// inquiry builds standard INQUIRY data or a VPD page.
func inquiry(c []byte, devType byte, rmb bool, product, serial string, barcode bool) CDBResult {
	evpd := c[1]&1 == 1
	page := c[2]
	if !evpd {
		if page != 0 {
			return check(senseInvalidField)
		}
		b := make([]byte, 96)
		b[0] = devType
		if rmb {
			b[1] = 0x80
		}
		b[2] = 0x05 // SPC-3
		b[3] = 0x02 // response data format
		b[4] = byte(len(b) - 5)
		copy(b[8:], padded(Vendor, 8))
		copy(b[16:], padded(product, 16))
		copy(b[32:], padded("0100", 4))
		copy(b[36:], padded(serial, 19))
		if barcode {
			b[55] |= 0x01 // barcode reader present
		}
		return CDBResult{DataIn: b}
	}
	switch page {
	case 0x00:
		return CDBResult{DataIn: []byte{devType, 0x00, 0x00, 3, 0x00, 0x80, 0x83}}
	case 0x80:
		b := append([]byte{devType, 0x80, 0x00, byte(len(serial))}, serial...)
		return CDBResult{DataIn: b}
	case 0x83:
		id := append(padded(Vendor, 8), serial...)
		d := append([]byte{0x02, 0x01, 0x00, byte(len(id))}, id...) // ASCII, T10 vendor ID
		b := append([]byte{devType, 0x83, 0x00, byte(len(d))}, d...)
		return CDBResult{DataIn: b}
	}
	return check(senseInvalidField)
}

// modeSense wraps mode pages in a MODE SENSE(6) or (10) header. pages
// maps page codes to their bytes; blockDesc may be nil.
func modeSense(c []byte, pages map[byte][]byte, devSpecific byte, blockDesc []byte) CDBResult {
	ten := c[0] == 0x5A
	dbd := c[1]&0x08 != 0
	pc := c[2] >> 6
	code := c[2] & 0x3F
	if pc == 3 {
		return check(senseSavingNotSupp)
	}
	var body []byte
	if code == 0x3F {
		keys := make([]int, 0, len(pages))
		for k := range pages {
			keys = append(keys, int(k))
		}
		sort.Ints(keys)
		for _, k := range keys {
			body = append(body, pages[byte(k)]...)
		}
	} else {
		p, ok := pages[code]
		if !ok {
			return check(senseInvalidField)
		}
		body = append(body, p...)
	}
	if pc == 1 { // changeable values: nothing is changeable
		body = zeroParams(body)
	}
	if dbd {
		blockDesc = nil
	}
	var hdr []byte
	if ten {
		hdr = make([]byte, 8)
		hdr[3] = devSpecific
		put16(hdr[6:], len(blockDesc))
		put16(hdr[0:], 6+len(blockDesc)+len(body))
	} else {
		hdr = make([]byte, 4)
		hdr[2] = devSpecific
		hdr[3] = byte(len(blockDesc))
		hdr[0] = byte(3 + len(blockDesc) + len(body))
	}
	return CDBResult{DataIn: append(append(hdr, blockDesc...), body...)}
}

// zeroParams zeroes the parameter bytes of a sequence of mode pages.
func zeroParams(b []byte) []byte {
	out := append([]byte(nil), b...)
	for i := 0; i+1 < len(out); {
		n := int(out[i+1])
		for j := i + 2; j < i+2+n && j < len(out); j++ {
			out[j] = 0
		}
		i += 2 + n
	}
	return out
}

// ExecuteCDB runs a SCSI command addressed to the library's medium
// changer (SMC-3) and returns its status, data-in and sense. Supported:
// TEST UNIT READY, REQUEST SENSE, INQUIRY (with VPD pages 00h, 80h, 83h),
// MODE SENSE(6/10) pages 1Dh, 1Eh, 1Fh and 3Fh, READ ELEMENT STATUS,
// MOVE MEDIUM, INITIALIZE ELEMENT STATUS (and WITH RANGE, 37h or E7h),
// POSITION TO ELEMENT, PREVENT/ALLOW MEDIUM REMOVAL and REPORT LUNS.
// Any other opcode gets ILLEGAL REQUEST 20/00.
func (l *Library) ExecuteCDB(req CDB) CDBResult {
	c := req.CDB
	if len(c) == 0 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return finish(check(senseInvalidOpcode), req, -1, &l.sense)
	}
	if len(c) < cdbLen(c[0]) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return finish(check(senseInvalidField), req, -1, &l.sense)
	}
	// A pending unit attention (cartridges imported or exported) is
	// reported once, to any command but INQUIRY, REQUEST SENSE and
	// REPORT LUNS.
	if c[0] != 0x12 && c[0] != 0x03 && c[0] != 0xA0 {
		l.mu.Lock()
		if l.ua.key != 0 {
			r := check(l.ua)
			l.ua = senseData{}
			defer l.mu.Unlock()
			return finish(r, req, -1, &l.sense)
		}
		l.mu.Unlock()
	}
	if c[0] == 0xA5 { // MOVE MEDIUM takes the drive locks first
		r := l.moveMedium(c)
		l.mu.Lock()
		defer l.mu.Unlock()
		return finish(r, req, -1, &l.sense)
	}
	if c[0] == 0x1E {
		var r CDBResult
		switch c[4] & 3 {
		case 0, 1:
			if err := l.SetPrevent(c[4]&1 == 1); err != nil {
				r = check(senseInternal)
			}
		default:
			r = check(senseInvalidField)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		return finish(r, req, -1, &l.sense)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var r CDBResult
	switch c[0] {
	case 0x00: // TEST UNIT READY
	case 0x03: // REQUEST SENSE
		r = CDBResult{DataIn: l.sense.fixed()}
		l.sense = senseData{}
		return finish(r, req, int(c[4]), &senseData{})
	case 0x12:
		r = inquiry(c, 0x08, false, ChangerProduct, l.st.Config.Serial, true)
	case 0x1A, 0x5A:
		r = modeSense(c, l.modePages(), 0, nil)
	case 0xB8:
		limit := be24(c[7:])
		if req.DataInLen >= 0 && req.DataInLen < limit {
			limit = req.DataInLen
		}
		r = l.readElementStatus(c, limit)
	case 0x07: // INITIALIZE ELEMENT STATUS
	case 0x37, 0xE7: // INITIALIZE ELEMENT STATUS WITH RANGE
		if c[1]&1 == 1 {
			if _, _, err := l.slot(uint16(be16(c[2:]))); err != nil && uint16(be16(c[2:])) != TransportAddr {
				r = check(senseInvalidElement)
			}
		}
	case 0x2B: // POSITION TO ELEMENT
		if _, _, err := l.slot(uint16(be16(c[4:]))); err != nil {
			r = check(senseInvalidElement)
		}
	case 0xA0: // REPORT LUNS
		if c[2] > 2 {
			r = check(senseInvalidField)
			break
		}
		b := make([]byte, 16)
		put16(b[2:], 8)
		r = CDBResult{DataIn: b}
	default:
		r = check(senseInvalidOpcode)
	}
	return finish(r, req, allocLen(c), &l.sense)
}

// modePages returns the changer's mode pages. Call with l.mu held.
func (l *Library) modePages() map[byte][]byte {
	s := &l.st
	eaa := make([]byte, 20)
	eaa[0], eaa[1] = 0x1D, 0x12
	put16(eaa[2:], int(TransportAddr))
	put16(eaa[4:], 1)
	put16(eaa[6:], int(SlotBase))
	put16(eaa[8:], len(s.Slots))
	put16(eaa[10:], int(IEBase))
	put16(eaa[12:], len(s.IE))
	put16(eaa[14:], int(DriveBase))
	put16(eaa[16:], len(s.Drives))
	geo := []byte{0x1E, 0x02, 0x00, 0x00}
	caps := make([]byte, 20)
	caps[0], caps[1] = 0x1F, 0x12
	caps[2] = 0x0E // media can be stored in DT, I/E and ST elements
	// Moves allowed: from ST, I/E and DT to ST, I/E or DT (bits 1-3).
	caps[5], caps[6], caps[7] = 0x0E, 0x0E, 0x0E
	return map[byte][]byte{0x1D: eaa, 0x1E: geo, 0x1F: caps}
}

func (l *Library) moveMedium(c []byte) CDBResult {
	if t := uint16(be16(c[2:])); t != TransportAddr {
		return check(senseInvalidElement)
	}
	if c[10]&1 != 0 {
		return check(senseInvalidField) // no medium can be inverted
	}
	err := l.Move(uint16(be16(c[4:])), uint16(be16(c[6:])))
	switch {
	case err == nil:
		return CDBResult{}
	case errors.Is(err, ErrBadElement):
		return check(senseInvalidElement)
	case errors.Is(err, ErrSourceEmpty):
		return check(senseSourceEmpty)
	case errors.Is(err, ErrDestFull):
		return check(senseDestFull)
	case errors.Is(err, ErrPrevented):
		return check(senseRemovalPrev)
	}
	return check(senseInternal)
}

// readElementStatus builds the READ ELEMENT STATUS report (SMC-3 6.10).
// When limit (the allocation length) is too small for the report, only
// whole descriptors are sent; the header still gives the report's full
// size. Call with l.mu held.
func (l *Library) readElementStatus(c []byte, limit int) CDBResult {
	voltag := c[1]&0x10 != 0
	typ := ElementType(c[1] & 0x0F)
	start := uint16(be16(c[2:]))
	count := be16(c[4:])
	dvcid := c[6]&0x01 != 0
	if typ > TypeDrive {
		return check(senseInvalidField)
	}
	all := l.inventory()
	sort.Slice(all, func(i, j int) bool { return all[i].Addr < all[j].Addr })
	var sel []ElementStatus
	for _, e := range all {
		if (typ == TypeAll || e.Type == typ) && e.Addr >= start && len(sel) < count {
			sel = append(sel, e)
		}
	}
	if len(sel) == 0 && count > 0 {
		if _, _, err := l.slot(start); err != nil && start != TransportAddr {
			return check(senseInvalidElement)
		}
	}
	var body []byte
	cut := 8 // the longest prefix of whole descriptors within limit
	mark := func() {
		if 8+len(body) <= limit {
			cut = 8 + len(body)
		}
	}
	for i := 0; i < len(sel); {
		j := i
		for j < len(sel) && sel[j].Type == sel[i].Type {
			j++
		}
		withID := dvcid && sel[i].Type == TypeDrive
		dlen := 12 + 4
		if voltag {
			dlen += 36
		}
		if withID {
			dlen += 32
		}
		ph := make([]byte, 8)
		ph[0] = byte(sel[i].Type)
		if voltag {
			ph[1] = 0x80
		}
		put16(ph[2:], dlen)
		put24(ph[5:], dlen*(j-i))
		body = append(body, ph...)
		for _, e := range sel[i:j] {
			body = append(body, descriptor(e, dlen, voltag, withID)...)
			mark()
		}
		i = j
	}
	hdr := make([]byte, 8)
	if len(sel) > 0 {
		put16(hdr[0:], int(sel[0].Addr))
	}
	put16(hdr[2:], len(sel))
	put24(hdr[5:], len(body))
	out := append(hdr, body...)
	if limit < len(out) && limit >= 8 {
		out = out[:cut]
	}
	return CDBResult{DataIn: out}
}

// descriptor encodes one element status descriptor.
func descriptor(e ElementStatus, dlen int, voltag, withID bool) []byte {
	d := make([]byte, dlen)
	put16(d[0:], int(e.Addr))
	var flags byte
	if e.Full {
		flags |= 0x01
	}
	switch e.Type {
	case TypeSlot, TypeDrive:
		flags |= 0x08 // access
	case TypeIE:
		flags |= 0x08 | 0x10 | 0x20 // access, export and import enabled
	}
	d[2] = flags
	if e.Full {
		d[9] = 0x01 // data medium
		if e.SourceValid {
			d[9] |= 0x80
			put16(d[10:], int(e.Source))
		}
	}
	off := 12
	if voltag {
		if e.Full {
			copy(d[off:], padded(e.Barcode, 32))
		}
		off += 36
	}
	if withID {
		d[off] = 0x02   // code set: ASCII
		d[off+1] = 0x00 // identifier type: vendor specific (serial number)
		d[off+3] = 32
		copy(d[off+4:], padded(e.Serial, 32))
	}
	return d
}
