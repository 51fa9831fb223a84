//go:build linux

package linuxst

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// Element types of READ ELEMENT STATUS (SMC-3).
const (
	elemSlot  = 2
	elemDrive = 4
)

// Element is one element of a medium changer's READ ELEMENT STATUS report.
type Element struct {
	Type        byte
	Addr        uint16
	Full        bool
	Source      uint16 // where the cartridge came from, when SourceValid
	SourceValid bool
	Barcode     string // primary volume tag, with VolTag
	Identifier  string // device identifier (DVCID) of a drive, blanks trimmed
}

// ReadElementStatus asks a changer for the elements of one type (0: all)
// with volume tags and, for drives, their device identifiers.
func ReadElementStatus(ctx context.Context, ch tape.Changer, typ byte) ([]Element, error) {
	const alloc = 64 << 10
	cdb := []byte{0xB8, 0x10 | typ, 0, 0, 0xFF, 0xFF, 0x01, alloc >> 16 & 0xFF, alloc >> 8 & 0xFF, alloc & 0xFF, 0, 0}
	res, err := ch.ExecuteCDB(ctx, tape.CDB{CDB: cdb, Dir: tape.DirIn, DataInLen: alloc})
	if err != nil {
		return nil, fmt.Errorf("linuxst: READ ELEMENT STATUS: %w", err)
	}
	if res.Status != tape.StatusGood {
		return nil, fmt.Errorf("linuxst: READ ELEMENT STATUS: SCSI status %#02x, sense % x", res.Status, res.Sense)
	}
	return parseElementStatus(res.DataIn)
}

// parseElementStatus decodes a READ ELEMENT STATUS report: an 8-byte
// header, then pages of an 8-byte header (type, PVolTag/AVolTag flags,
// descriptor length, byte count) and descriptors.
func parseElementStatus(b []byte) ([]Element, error) {
	if len(b) < 8 {
		return nil, errors.New("linuxst: element status report shorter than its header")
	}
	end := min(len(b), 8+int(b[5])<<16|int(b[6])<<8|int(b[7]))
	var out []Element
	for p := 8; p+8 <= end; {
		typ, voltag := b[p]&0x0F, b[p+1]&0x80 != 0
		dlen := int(binary.BigEndian.Uint16(b[p+2:]))
		count := int(b[p+5])<<16 | int(b[p+6])<<8 | int(b[p+7])
		if dlen < 12 {
			return nil, fmt.Errorf("linuxst: element descriptor of %d bytes", dlen)
		}
		p += 8
		stop := min(end, p+count)
		for ; p+dlen <= stop; p += dlen {
			out = append(out, parseDescriptor(b[p:p+dlen], typ, voltag))
		}
		p = stop
	}
	return out, nil
}

func parseDescriptor(d []byte, typ byte, voltag bool) Element {
	e := Element{Type: typ, Addr: binary.BigEndian.Uint16(d), Full: d[2]&0x01 != 0}
	if d[9]&0x80 != 0 {
		e.Source, e.SourceValid = binary.BigEndian.Uint16(d[10:]), true
	}
	off := 12
	if voltag && len(d) >= off+36 {
		e.Barcode = strings.TrimRight(string(bytes.TrimRight(d[off:off+32], "\x00")), " ")
		off += 36
	}
	if typ == elemDrive && len(d) >= off+4 {
		n := int(d[off+3])
		if off+4+n <= len(d) {
			id := d[off+4 : off+4+n]
			if d[off+1]&0x0F == 1 && len(id) > 24 { // T10 vendor identification
				id = id[24:]
			}
			e.Identifier = strings.TrimSpace(string(bytes.TrimRight(id, "\x00")))
		}
	}
	return e
}

// changerLink is the changer that serves a drive and the drive's element
// address in it, read from the changer's device identifiers.
type changerLink struct {
	ch   tape.Changer
	addr uint16
}

// SetChanger tells the drive which changer serves it and its element
// address there; an unload-reload (ur) close then loads the next
// cartridge.
func (d *Drive) SetChanger(ch tape.Changer, addr uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.changer = &changerLink{ch: ch, addr: addr}
}

// Changer returns the changer and element address set with SetChanger.
func (d *Drive) Changer() (tape.Changer, uint16, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.changer == nil {
		return nil, 0, false
	}
	return d.changer.ch, d.changer.addr, true
}

// move sends MOVE MEDIUM (transport 0: the changer's default).
func move(ctx context.Context, ch tape.Changer, src, dst uint16) error {
	cdb := make([]byte, 12)
	cdb[0] = 0xA5
	binary.BigEndian.PutUint16(cdb[4:], src)
	binary.BigEndian.PutUint16(cdb[6:], dst)
	res, err := ch.ExecuteCDB(ctx, tape.CDB{CDB: cdb, Dir: tape.DirNone})
	if err != nil {
		return err
	}
	if res.Status != tape.StatusGood {
		return fmt.Errorf("MOVE MEDIUM %#x to %#x: SCSI status %#02x, sense % x", src, dst, res.Status, res.Sense)
	}
	return nil
}

// reload is the library's part of an unload-reload close: the cartridge
// the drive ejected goes back to the slot it came from, and the
// cartridge of the next full slot after it is loaded (the tape
// sequence), if there is one.
func (l *changerLink) reload(ctx context.Context) error {
	drives, err := ReadElementStatus(ctx, l.ch, elemDrive)
	if err != nil {
		return err
	}
	var src uint16
	found := false
	for _, e := range drives {
		if e.Addr == l.addr && e.Full && e.SourceValid {
			src, found = e.Source, true
		}
	}
	if !found {
		return nil
	}
	if err := move(ctx, l.ch, l.addr, src); err != nil {
		return fmt.Errorf("return the cartridge to element %#x: %w", src, err)
	}
	slots, err := ReadElementStatus(ctx, l.ch, elemSlot)
	if err != nil {
		return err
	}
	for _, e := range slots {
		if e.Addr > src && e.Full {
			if err := move(ctx, l.ch, e.Addr, l.addr); err != nil {
				return fmt.Errorf("load cartridge %s: %w", e.Barcode, err)
			}
			return nil
		}
	}
	return nil
}
