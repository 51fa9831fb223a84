//go:build linux

package sim

import (
	"fmt"
)

// Element addresses of the changer (mhVTL's default SMC personality).
const (
	TransportAddr = 0x2F0
	DriveBase     = 0x001
	IEBase        = 0x300
	SlotBase      = 0x400
)

// Element types of READ ELEMENT STATUS.
const (
	elemAll       = 0
	elemTransport = 1
	elemSlot      = 2
	elemIE        = 3
	elemDrive     = 4
)

type element struct {
	typ    byte
	addr   int
	cart   *Cartridge
	source int // element the cartridge came from, 0: unknown
	drive  *Drive
}

// Changer is a simulated SCSI medium changer (SMC). Its state is guarded
// by the Host's lock.
type Changer struct {
	host    *Host
	id      Identity
	elems   []*element // transport, drives, I/E, slots, in address order
	prevent bool
	resv    reservations
	sense   Sense
	paths   []*Path
}

// Identity returns the changer's INQUIRY identity.
func (c *Changer) Identity() Identity { return c.id }

func (c *Changer) elem(addr int) *element {
	for _, e := range c.elems {
		if e.addr == addr {
			return e
		}
	}
	return nil
}

// Put places a cartridge in storage slot n (0-based).
func (c *Changer) Put(slot int, cart *Cartridge) error {
	c.host.mu.Lock()
	defer c.host.mu.Unlock()
	e := c.elem(SlotBase + slot)
	if e == nil || e.typ != elemSlot {
		return fmt.Errorf("sim: changer %s has no slot %d", c.id.Serial, slot)
	}
	if e.cart != nil {
		return fmt.Errorf("sim: slot %d is full", slot)
	}
	e.cart = cart
	return nil
}

// Slot returns the cartridge in storage slot n (0-based), nil if empty.
func (c *Changer) Slot(slot int) *Cartridge {
	c.host.mu.Lock()
	defer c.host.mu.Unlock()
	if e := c.elem(SlotBase + slot); e != nil {
		return e.cart
	}
	return nil
}

// move runs MOVE MEDIUM from src to dst.
func (c *Changer) move(src, dst int) Sense {
	s, d := c.elem(src), c.elem(dst)
	switch {
	case s == nil || d == nil || s.typ == elemTransport || d.typ == elemTransport:
		return senseInvalidElement
	case s.cart == nil:
		return senseSourceEmpty
	case d.cart != nil:
		return senseDestFull
	case s.typ == elemDrive && c.prevent:
		return senseRemovalPrev
	}
	cart := s.cart
	if s.typ == elemDrive {
		s.drive.cart, s.drive.threaded, s.drive.head = nil, false, 0
	}
	s.cart = nil
	d.cart = cart
	d.source = src
	if s.typ != elemDrive && s.source != 0 && d.typ != elemDrive {
		d.source = src
	}
	if s.typ == elemDrive {
		d.source = 0
	}
	if d.typ == elemDrive {
		d.drive.insert(cart)
	}
	return senseNone
}

// scsi runs a command sent to the changer's sg node by initiator.
func (c *Changer) scsi(initiator string, cdb, out []byte, inLen int) cmdResult {
	if len(cdb) < cdbLen(cdb[0]) {
		return check(senseInvalidField)
	}
	if c.resv.conflicts(initiator, cdb) {
		return cmdResult{status: statusConflict}
	}
	if r, ok := c.resv.command(initiator, cdb, out); ok {
		return r
	}
	switch cdb[0] {
	case 0x00: // TEST UNIT READY
		return good(nil)
	case 0x03:
		b := c.sense.Fixed()
		c.sense = Sense{}
		return good(b)
	case 0x12:
		return inquiry(cdb, 0x08, c.id, true)
	case 0x1A, 0x5A:
		return c.modeSense(cdb)
	case 0xB8:
		return c.readElementStatus(cdb)
	case 0xA5: // MOVE MEDIUM
		if t := be16(cdb[2:]); t != TransportAddr && t != 0 {
			return check(senseInvalidElement)
		}
		if s := c.move(be16(cdb[4:]), be16(cdb[6:])); s != senseNone {
			return check(s)
		}
		return good(nil)
	case 0x07: // INITIALIZE ELEMENT STATUS
		return good(nil)
	case 0x37, 0xE7: // INITIALIZE ELEMENT STATUS WITH RANGE
		if cdb[1]&1 == 1 && c.elem(be16(cdb[2:])) == nil {
			return check(senseInvalidElement)
		}
		return good(nil)
	case 0x1E: // PREVENT ALLOW MEDIUM REMOVAL
		c.prevent = cdb[4]&1 == 1
		return good(nil)
	case 0x2B: // POSITION TO ELEMENT
		if c.elem(be16(cdb[4:])) == nil {
			return check(senseInvalidElement)
		}
		return good(nil)
	}
	return check(senseInvalidOpcode)
}

func (c *Changer) count(typ byte) (first, n int) {
	for _, e := range c.elems {
		if e.typ == typ {
			if n == 0 {
				first = e.addr
			}
			n++
		}
	}
	return first, n
}

// modeSense answers MODE SENSE(6/10) for the element address assignment
// page (1Dh) and all pages (3Fh).
func (c *Changer) modeSense(cdb []byte) cmdResult {
	code := cdb[2] & 0x3F
	if code != 0x1D && code != 0x3F {
		return check(senseInvalidField)
	}
	p := make([]byte, 20)
	p[0], p[1] = 0x1D, 0x12
	for i, typ := range []byte{elemTransport, elemSlot, elemIE, elemDrive} {
		first, n := c.count(typ)
		put16(p[2+4*i:], first)
		put16(p[4+4*i:], n)
	}
	if cdb[0] == 0x5A {
		h := make([]byte, 8)
		put16(h, 6+len(p))
		return good(append(h, p...))
	}
	return good(append([]byte{byte(3 + len(p)), 0, 0, 0}, p...))
}

// readElementStatus builds the READ ELEMENT STATUS report (SMC-3): volume
// tags with VolTag, the drives' serial numbers with DVCID. An allocation
// length too small for the report gets the whole descriptors that fit;
// the header still gives the full size.
func (c *Changer) readElementStatus(cdb []byte) cmdResult {
	voltag := cdb[1]&0x10 != 0
	typ := cdb[1] & 0x0F
	start, count := be16(cdb[2:]), be16(cdb[4:])
	dvcid := cdb[6]&0x01 != 0
	limit := be24(cdb[7:])
	if typ > elemDrive {
		return check(senseInvalidField)
	}
	var sel []*element
	for _, e := range c.elems {
		if (typ == elemAll || e.typ == typ) && e.addr >= start && len(sel) < count {
			sel = append(sel, e)
		}
	}
	var body []byte
	cut := 8
	for i := 0; i < len(sel); {
		j := i
		for j < len(sel) && sel[j].typ == sel[i].typ {
			j++
		}
		withID := dvcid && sel[i].typ == elemDrive
		dlen := 16
		if voltag {
			dlen += 36
		}
		if withID {
			dlen += 4 + idLen
		}
		ph := make([]byte, 8)
		ph[0] = sel[i].typ
		if voltag {
			ph[1] = 0x80
		}
		put16(ph[2:], dlen)
		put24(ph[5:], dlen*(j-i))
		body = append(body, ph...)
		for _, e := range sel[i:j] {
			body = append(body, descriptor(e, dlen, voltag, withID)...)
			if 8+len(body) <= limit {
				cut = 8 + len(body)
			}
		}
		i = j
	}
	hdr := make([]byte, 8)
	if len(sel) > 0 {
		put16(hdr[0:], sel[0].addr)
	}
	put16(hdr[2:], len(sel))
	put24(hdr[5:], len(body))
	all := append(hdr, body...)
	if limit < len(all) {
		all = all[:min(cut, limit)]
	}
	return good(all)
}

// idLen is the room for a drive's identifier (T10 vendor identification:
// vendor, product and serial number) in an element descriptor.
const idLen = 40

func descriptor(e *element, dlen int, voltag, withID bool) []byte {
	d := make([]byte, dlen)
	put16(d[0:], e.addr)
	flags := byte(0x08) // access
	if e.cart != nil {
		flags |= 0x01
	}
	if e.typ == elemIE {
		flags |= 0x30
	}
	if e.typ == elemTransport {
		flags &^= 0x08
	}
	d[2] = flags
	if e.cart != nil {
		d[9] = 0x01
		if e.source != 0 {
			d[9] |= 0x80
			put16(d[10:], e.source)
		}
	}
	off := 12
	if voltag {
		if e.cart != nil {
			copy(d[off:], padded(e.cart.Barcode, 32))
		}
		off += 36
	}
	if withID {
		id := append(padded(e.drive.id.Vendor, 8), padded(e.drive.id.Product, 16)...)
		id = append(id, e.drive.id.Serial...)
		id = id[:min(len(id), idLen)]
		d[off] = 0x02   // ASCII
		d[off+1] = 0x01 // T10 vendor identification
		d[off+3] = byte(len(id))
		copy(d[off+4:], id)
	}
	return d
}
