//go:build linux

package sim

import (
	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst"
)

// mtop runs one MTIOCTOP as st_int_ioctl does.
func (h *Host) mtop(p *Path, m *linuxst.Mtop) error {
	st, d := &p.st, p.drive
	count := int(m.Count)
	st.resid = 0
	switch m.Op {
	case linuxst.MTNOP:
		return nil
	case linuxst.MTSETDRVBUF:
		return nil
	case linuxst.MTRESET:
		// A device reset loses RESERVE(6) reservations, not persistent
		// ones, and leaves the tape where it is.
		d.resv.holder = ""
		*st = stState{open: st.open}
		return nil
	case linuxst.MTLOAD:
		if d.cart == nil {
			return unix.EIO
		}
		d.threaded, d.head = true, 0
		return nil
	}
	if d.resv.busy(p.initiator()) {
		return unix.EIO
	}
	if s, ok := d.ready(); !ok {
		d.sense = s
		return unix.EIO
	}
	switch m.Op {
	case linuxst.MTSETBLK, linuxst.MTSETDENSITY, linuxst.MTCOMPRESSION:
		return h.modeSelect(p, m)
	case linuxst.MTWEOF:
		return h.weof(p, count)
	}
	// Moving the tape after writes writes the file mark first (st does so
	// for rewind and unload).
	if st.writing && (m.Op == linuxst.MTREW || m.Op == linuxst.MTOFFL || m.Op == linuxst.MTUNLOAD) {
		if s, ok := d.writeMark(); !ok {
			d.sense = s
			return unix.EIO
		}
	}
	st.writing, st.eof, st.eod, st.eodRead, st.eom = false, false, false, false, 0
	switch m.Op {
	case linuxst.MTREW:
		d.head = 0
		return nil
	case linuxst.MTOFFL, linuxst.MTUNLOAD:
		d.unload()
		return nil
	case linuxst.MTEOM:
		d.head = len(d.cart.entries)
		st.eod = true
		return nil
	case linuxst.MTFSF:
		return h.spaced(p, d.spaceMarksOf(count))
	case linuxst.MTBSF:
		return h.spaced(p, d.spaceMarksOf(-count))
	case linuxst.MTFSR:
		return h.spaced(p, d.spaceBlocksOf(count))
	case linuxst.MTBSR:
		return h.spaced(p, d.spaceBlocksOf(-count))
	}
	return unix.EINVAL
}

type spaceResult struct {
	resid int
	sense Sense
}

func (d *Drive) spaceMarksOf(n int) spaceResult {
	r, s := d.spaceMarks(n)
	return spaceResult{r, s}
}

func (d *Drive) spaceBlocksOf(n int) spaceResult {
	r, s := d.spaceBlocks(n)
	return spaceResult{r, s}
}

// spaced turns the outcome of a SPACE into st's: EIO with the residual
// count and GMT_EOF, GMT_EOD or GMT_BOT when the movement stopped early.
func (h *Host) spaced(p *Path, r spaceResult) error {
	st := &p.st
	st.resid = int32(r.resid)
	switch {
	case r.sense == senseNone:
		return nil
	case r.sense.Filemark:
		st.eof = true
	case r.sense.Key == KeyBlankCheck:
		st.eod = true
	}
	return unix.EIO
}

// weof writes count file marks.
func (h *Host) weof(p *Path, count int) error {
	st, d := &p.st, p.drive
	if d.cart.WriteProtect {
		return unix.EACCES
	}
	st.writing, st.eof, st.eod, st.eodRead = false, false, false, false
	for i := 0; i < count; i++ {
		s, ok := d.writeMark()
		if !ok {
			d.sense = s
			st.resid = int32(count - i)
			if s.Key == KeyVolumeOverflow {
				return unix.ENOSPC
			}
			return unix.EIO
		}
	}
	return nil
}

// modeSelect applies MTSETBLK, MTSETDENSITY and MTCOMPRESSION, which st
// sends to the drive with MODE SELECT; a cartridge the drive cannot use
// refuses them.
func (h *Host) modeSelect(p *Path, m *linuxst.Mtop) error {
	d := p.drive
	if d.cart.Incompatible {
		d.sense = SenseIncompatible
		return unix.EIO
	}
	switch m.Op {
	case linuxst.MTSETBLK:
		p.st.blksize = m.Count
	case linuxst.MTSETDENSITY:
		if m.Count < 0 || m.Count > 0xFF {
			return unix.EINVAL
		}
		d.density = byte(m.Count)
	case linuxst.MTCOMPRESSION:
		d.compress = m.Count != 0
	}
	return nil
}
