package vtl

import (
	"encoding/binary"
	"errors"

	"github.com/tapestry-ndmp/tapestry/format/simtap"
)

// Density code reported for the emulated drive (LTO-6).
const densityCode = 0x5A

// ExecuteCDB runs a SCSI command addressed to the tape drive (SSC) and
// returns its status, data-in and sense. Supported: TEST UNIT READY,
// REQUEST SENSE, INQUIRY (with VPD pages 00h, 80h, 83h), READ BLOCK
// LIMITS, MODE SENSE(6/10) pages 0Fh, 10h and 3Fh, READ POSITION (short
// and long forms), and in variable-block mode REWIND, READ(6), WRITE(6),
// WRITE FILEMARKS(6), SPACE(6) (blocks, file marks, end of data) and
// LOAD/UNLOAD. These follow SSC, not NDMP: a READ or SPACE that meets a
// file mark passes it and reports FILEMARK sense; writes made here do not
// count for NDMP's implicit file mark. Any other opcode gets ILLEGAL
// REQUEST 20/00.
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
		r = inquiry(c, 0x01, true, DriveProduct, d.serial, false)
	case 0x05: // READ BLOCK LIMITS
		b := make([]byte, 6)
		put24(b[1:], 0xFFFFFF)
		put16(b[4:], 1)
		r = CDBResult{DataIn: b}
	case 0x1A, 0x5A:
		r = d.modeSense(c)
	case 0x34:
		r = d.readPosition(c)
	case 0x01, 0x08, 0x0A, 0x10, 0x11, 0x1B:
		r = d.ssc(c, req)
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
		return check(senseData{key: KeyMediumError, asc: 0x30, ascq: 0x00})
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

// Sense conditions of the SSC data commands.
var (
	senseBlank     = senseData{key: KeyBlankCheck, asc: 0x00, ascq: 0x05}                       // end of data
	senseFilemark  = senseData{key: KeyNoSense, asc: 0x00, ascq: 0x01, bits: 0x80}              // file mark met
	senseBOP       = senseData{key: KeyNoSense, asc: 0x00, ascq: 0x04, bits: 0x40}              // beginning of medium
	senseEW        = senseData{key: KeyNoSense, asc: 0x00, ascq: 0x02, bits: 0x40}              // early warning
	senseOverflow  = senseData{key: 0x0D, asc: 0x00, ascq: 0x02, bits: 0x40}                    // volume overflow
	senseWORM      = senseData{key: KeyDataProtect, asc: 0x30, ascq: 0x0C}                      // WORM overwrite
	senseMediumErr = senseData{key: KeyMediumError, asc: 0x11, ascq: 0x00}                      // unrecovered read
	senseWriteErr  = senseData{key: KeyMediumError, asc: 0x0C, ascq: 0x00}                      // write error
	senseILI       = senseData{key: KeyNoSense, asc: 0x00, ascq: 0x00, bits: 0x20, valid: true} // length mismatch
)

func withInfo(s senseData, info int64) senseData {
	s.valid, s.info = true, int32(info)
	return s
}

// ssc runs the data and movement commands. Call with d.mu held.
func (d *Drive) ssc(c []byte, req CDB) CDBResult {
	if c[0] == 0x1B { // LOAD/UNLOAD
		if c[4]&1 == 1 {
			if d.barcode() == "" {
				return check(senseNoMedium)
			}
			d.loaded = true
			if err := d.ensureCart(); err != nil {
				return check(senseMediumErr)
			}
			_ = d.cart.Rewind()
			return CDBResult{}
		}
		if d.cart != nil {
			_ = d.cart.Rewind()
		}
		if err := d.unloadLocked(); err != nil {
			if errors.Is(err, simtap.ErrMediumGone) {
				return check(senseWriteErr)
			}
			return check(senseInternal)
		}
		return CDBResult{}
	}
	if !d.loaded {
		return check(senseNoMedium)
	}
	if err := d.ensureCart(); err != nil {
		return check(senseMediumErr)
	}
	if (c[0] == 0x08 || c[0] == 0x0A) && c[1]&1 == 1 {
		return check(senseInvalidField) // fixed-block mode is not emulated
	}
	n := int64(be24(c[2:]))
	switch c[0] {
	case 0x01: // REWIND
		_ = d.cart.Rewind()
		d.updateEW()
	case 0x08:
		return d.sscRead(int(n), c[1]&2 != 0)
	case 0x0A:
		return d.sscWrite(int(n), req)
	case 0x10: // WRITE FILEMARKS(6)
		if n > MaxMarksPerOp {
			return check(senseInvalidField)
		}
		if r, ok := d.sscWritable(); !ok {
			return r
		}
		for i := int64(0); i < n; i++ {
			if d.room("write file mark", 4) != nil {
				return check(withInfo(senseOverflow, n-i))
			}
			if err := d.cart.WriteMark(); err != nil {
				return check(senseWriteErr)
			}
			d.stats.MarksWritten++
		}
	case 0x11: // SPACE(6)
		if n&0x800000 != 0 {
			n -= 1 << 24
		}
		return d.sscSpace(c[1]&0x0F, n)
	}
	return CDBResult{}
}

func (d *Drive) sscWritable() (CDBResult, bool) {
	m := d.meta()
	switch {
	case m.WriteProtect:
		return check(senseWriteProtected), false
	case m.WORM && !d.cart.AtEnd():
		return check(senseWORM), false
	}
	return CDBResult{}, true
}

func (d *Drive) sscRead(n int, sili bool) CDBResult {
	if n == 0 {
		return CDBResult{}
	}
	buf := make([]byte, n)
	got, err := d.cart.ReadRecord(buf)
	switch {
	case errors.Is(err, simtap.ErrEndOfData):
		return check(withInfo(senseBlank, int64(n)))
	case errors.Is(err, simtap.ErrTapeMark):
		return check(withInfo(senseFilemark, int64(n)))
	case err != nil && !errors.Is(err, simtap.ErrTruncated):
		d.stats.ReadErrors++
		return check(senseMediumErr)
	}
	d.stats.RecordsRead++
	d.stats.BytesRead += int64(got)
	o, _ := d.cart.ObjectAt(d.cart.Position().Index - 1)
	if o.Length != n && !(sili && o.Length < n) {
		r := check(withInfo(senseILI, int64(n-o.Length)))
		r.DataIn = buf[:got]
		return r
	}
	return CDBResult{DataIn: buf[:got]}
}

func (d *Drive) sscWrite(n int, req CDB) CDBResult {
	if n == 0 {
		return CDBResult{}
	}
	if req.Dir&DirOut == 0 || len(req.DataOut) != n || n > simtap.MaxRecordSize {
		return check(senseInvalidField)
	}
	if r, ok := d.sscWritable(); !ok {
		return r
	}
	if d.room("write", int64(n)+8) != nil {
		return check(withInfo(senseOverflow, int64(n)))
	}
	comp := simtap.None
	if d.open {
		comp = d.opts.Compression
	}
	if err := d.cart.WriteRecordCompressed(req.DataOut, comp); err != nil {
		d.stats.WriteErrors++
		return check(senseWriteErr)
	}
	d.stats.RecordsWritten++
	d.stats.BytesWritten += int64(n)
	m := d.meta()
	if d.cart.Position().Offset > m.effCapacity()-m.effEarlyWarning() {
		return check(senseEW)
	}
	return CDBResult{}
}

// sscSpace spaces as SSC says: over blocks (code 0; a file mark met is
// crossed and reported), over file marks (code 1) or to the end of data
// (code 3).
func (d *Drive) sscSpace(code byte, n int64) CDBResult {
	defer d.updateEW()
	switch code {
	case 0:
		resid, _ := d.cart.SpaceRecords(n)
		if resid == 0 {
			return CDBResult{}
		}
		if n > 0 {
			if d.cart.AtEnd() {
				return check(withInfo(senseBlank, resid))
			}
			_ = d.cart.Locate(d.cart.Position().Index + 1) // cross the mark
			return check(withInfo(senseFilemark, resid))
		}
		if d.cart.AtBOT() {
			return check(withInfo(senseBOP, resid))
		}
		_ = d.cart.Locate(d.cart.Position().Index - 1) // to the BOT side of the mark
		return check(withInfo(senseFilemark, resid))
	case 1:
		resid, _ := d.cart.SpaceFiles(n)
		switch {
		case resid == 0:
			return CDBResult{}
		case n > 0:
			return check(withInfo(senseBlank, resid))
		}
		return check(withInfo(senseBOP, resid))
	case 3:
		_ = d.cart.Locate(d.cart.Len())
		return CDBResult{}
	}
	return check(senseInvalidField)
}
