package vtl

import "encoding/binary"

// Density code reported for the emulated drive (LTO-6).
const densityCode = 0x5A

// ExecuteCDB runs a SCSI command addressed to the tape drive (SSC) and
// returns its status, data-in and sense. Supported: TEST UNIT READY,
// REQUEST SENSE, INQUIRY (with VPD pages 00h, 80h, 83h), READ BLOCK
// LIMITS, MODE SENSE(6/10) pages 0Fh, 10h and 3Fh, and READ POSITION
// (short and long forms). Any other opcode gets ILLEGAL REQUEST 20/00.
// Data movement goes through Read, Write and MTIO, which keep the
// position NDMP_TAPE_GET_STATE reports.
func (d *Drive) ExecuteCDB(req CDB) CDBResult {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := req.CDB
	if len(c) == 0 {
		return finish(check(senseInvalidOpcode), req, -1, &d.sense)
	}
	if len(c) < cdbLen(c[0]) {
		return finish(check(senseInvalidField), req, -1, &d.sense)
	}
	var r CDBResult
	switch c[0] {
	case 0x00: // TEST UNIT READY
		if !d.loaded {
			r = check(senseNoMedium)
		}
	case 0x03: // REQUEST SENSE
		r = CDBResult{DataIn: d.sense.fixed()}
		d.sense = senseData{}
		return finish(r, req, int(c[4]), &senseData{})
	case 0x12:
		r = inquiry(c, 0x01, true, "VTL-TAPE", d.serial, false)
	case 0x05: // READ BLOCK LIMITS
		b := make([]byte, 6)
		put24(b[1:], 0xFFFFFF)
		put16(b[4:], 1)
		r = CDBResult{DataIn: b}
	case 0x1A, 0x5A:
		r = d.modeSense(c)
	case 0x34:
		r = d.readPosition(c)
	default:
		r = check(senseInvalidOpcode)
	}
	return finish(r, req, allocLen(c), &d.sense)
}

// modeSense answers MODE SENSE for the drive. Call with d.mu held.
func (d *Drive) modeSense(c []byte) CDBResult {
	var devSpecific byte = 0x10 // buffered mode 1
	if d.loaded && d.meta().WriteProtect {
		devSpecific |= 0x80
	}
	bd := make([]byte, 8)
	bd[0] = densityCode // block length 0: variable
	comp := make([]byte, 16)
	comp[0], comp[1] = 0x0F, 0x0E
	comp[2] = 0x80 | 0x40 // DCE (if enabled below), DCC: compression capable
	if d.open && d.opts.Compression == 0 {
		comp[2] = 0x40
	}
	comp[3] = 0x80 // DDE: decompression enabled
	binary.BigEndian.PutUint32(comp[4:], 0xFF)
	binary.BigEndian.PutUint32(comp[8:], 0xFF)
	conf := make([]byte, 16)
	conf[0], conf[1] = 0x10, 0x0E
	if d.open && d.opts.Compression != 0 {
		conf[14] = 1 // select data compression algorithm
	}
	return modeSense(c, map[byte][]byte{0x0F: comp, 0x10: conf}, devSpecific, bd)
}

// readPosition answers READ POSITION. Call with d.mu held.
func (d *Drive) readPosition(c []byte) CDBResult {
	sa := c[1] & 0x1F
	if sa != 0 && sa != 1 && sa != 6 {
		return check(senseInvalidField)
	}
	if !d.loaded {
		return check(senseNoMedium)
	}
	if err := d.ensureCart(); err != nil {
		return check(senseData{KeyMediumError, 0x30, 0x00})
	}
	p := d.cart.Position()
	var flags byte
	if p.Index == 0 {
		flags |= 0x80 // BOP
	}
	m := d.meta()
	if p.Offset > m.effCapacity()-m.effEarlyWarning() {
		flags |= 0x40 // EOP: in the early-warning zone
	}
	if sa == 6 {
		b := make([]byte, 32)
		b[0] = flags
		binary.BigEndian.PutUint64(b[8:], uint64(p.Index))
		binary.BigEndian.PutUint64(b[16:], uint64(p.File))
		return CDBResult{DataIn: b}
	}
	b := make([]byte, 20)
	b[0] = flags
	binary.BigEndian.PutUint32(b[4:], uint32(p.Index))
	binary.BigEndian.PutUint32(b[8:], uint32(p.Index))
	return CDBResult{DataIn: b}
}
