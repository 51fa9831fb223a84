package vtl

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// This file talks to the emulated changer as a changer client (mtx,
// ndmjob's robot code) does, decoding the replies by the SMC-3 layout
// written out here, not with the encoder's helpers.

type rawElem struct {
	typ     byte
	addr    uint16
	full    bool
	svalid  bool
	source  uint16
	barcode string
	ident   string
}

func run(t *testing.T, exec func(CDB) CDBResult, cdb []byte, alloc int) CDBResult {
	t.Helper()
	return exec(CDB{CDB: cdb, Dir: DirIn, DataInLen: alloc})
}

func good(t *testing.T, r CDBResult) []byte {
	t.Helper()
	if r.Status != StatusGood {
		t.Fatalf("status %#x sense %x", r.Status, r.Sense)
	}
	return r.DataIn
}

func wantSense(t *testing.T, r CDBResult, key, asc, ascq byte) {
	t.Helper()
	if r.Status != StatusCheckCondition || len(r.Sense) < 14 {
		t.Fatalf("status %#x sense %x, want check condition %x/%02x/%02x", r.Status, r.Sense, key, asc, ascq)
	}
	if r.Sense[0]&0x7F != 0x70 || r.Sense[2]&0x0F != key || r.Sense[12] != asc || r.Sense[13] != ascq {
		t.Fatalf("sense %x, want %x/%02x/%02x", r.Sense, key, asc, ascq)
	}
}

// readElements issues READ ELEMENT STATUS the way clients do: an 8-byte
// probe for the report size, then the full report, then decodes it.
func readElements(t *testing.T, l *Library, typ byte, start, count uint16, dvcid bool) []rawElem {
	t.Helper()
	cdb := make([]byte, 12)
	cdb[0] = 0xB8
	cdb[1] = 0x10 | typ // VolTag
	binary.BigEndian.PutUint16(cdb[2:], start)
	binary.BigEndian.PutUint16(cdb[4:], count)
	if dvcid {
		cdb[6] = 0x01
	}
	cdb[9] = 8
	probe := good(t, run(t, l.ExecuteCDB, cdb, 8))
	if len(probe) != 8 {
		t.Fatalf("probe returned %d bytes", len(probe))
	}
	total := 8 + (int(probe[5])<<16 | int(probe[6])<<8 | int(probe[7]))
	cdb[7], cdb[8], cdb[9] = byte(total>>16), byte(total>>8), byte(total)
	data := good(t, run(t, l.ExecuteCDB, cdb, total))
	if len(data) != total {
		t.Fatalf("report %d bytes, header promised %d", len(data), total)
	}
	nElems := int(binary.BigEndian.Uint16(data[2:]))
	var out []rawElem
	p := data[8:]
	for len(p) > 0 {
		if len(p) < 8 {
			t.Fatalf("truncated page header")
		}
		etype := p[0]
		pvol := p[1]&0x80 != 0
		avol := p[1]&0x40 != 0
		dlen := int(binary.BigEndian.Uint16(p[2:]))
		bytesN := int(p[5])<<16 | int(p[6])<<8 | int(p[7])
		if dlen == 0 || bytesN%dlen != 0 || len(p) < 8+bytesN {
			t.Fatalf("page type %d: descriptor length %d, byte count %d, %d left", etype, dlen, bytesN, len(p))
		}
		for d := p[8 : 8+bytesN]; len(d) > 0; d = d[dlen:] {
			e := rawElem{typ: etype, addr: binary.BigEndian.Uint16(d[0:]), full: d[2]&1 == 1,
				svalid: d[9]&0x80 != 0, source: binary.BigEndian.Uint16(d[10:])}
			off := 12
			if pvol {
				e.barcode = strings.TrimRight(string(d[off:off+32]), " \x00")
				off += 36
			}
			if avol {
				off += 36
			}
			if off+4 <= dlen {
				idLen := int(d[off+3])
				if off+4+idLen > dlen {
					t.Fatalf("identifier of %d bytes overflows descriptor", idLen)
				}
				e.ident = strings.TrimRight(string(d[off+4:off+4+idLen]), " ")
			}
			out = append(out, e)
		}
		p = p[8+bytesN:]
	}
	if len(out) != nElems {
		t.Fatalf("header says %d elements, pages hold %d", nElems, len(out))
	}
	return out
}

func moveCDB(src, dst uint16) []byte {
	c := make([]byte, 12)
	c[0] = 0xA5
	binary.BigEndian.PutUint16(c[4:], src)
	binary.BigEndian.PutUint16(c[6:], dst)
	return c
}

type layout struct{ mte, st, ie, dt, nmte, nst, nie, ndt uint16 }

func elementAddresses(t *testing.T, l *Library) layout {
	t.Helper()
	data := good(t, run(t, l.ExecuteCDB, []byte{0x1A, 0x08, 0x1D, 0, 255, 0}, 255))
	if int(data[0]) != len(data)-1 || data[3] != 0 {
		t.Fatalf("mode header %x", data[:4])
	}
	pg := data[4:]
	if pg[0]&0x3F != 0x1D || pg[1] != 0x12 || len(pg) != 20 {
		t.Fatalf("page 1D: %x", pg)
	}
	u := func(i int) uint16 { return binary.BigEndian.Uint16(pg[i:]) }
	return layout{u(2), u(6), u(10), u(14), u(4), u(8), u(12), u(16)}
}

func find(es []rawElem, addr uint16) rawElem {
	for _, e := range es {
		if e.addr == addr {
			return e
		}
	}
	return rawElem{}
}

func TestChangerAsClient(t *testing.T) {
	l, err := CreateDefault(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	inq := good(t, run(t, l.ExecuteCDB, []byte{0x12, 0, 0, 0, 96, 0}, 96))
	if inq[0]&0x1F != 0x08 || string(inq[8:16]) != "TAPESTRY" || strings.TrimSpace(string(inq[16:32])) != "VTL" || inq[55]&1 != 1 {
		t.Fatalf("inquiry %q", inq)
	}
	sn := good(t, run(t, l.ExecuteCDB, []byte{0x12, 1, 0x80, 0, 64, 0}, 64))
	if string(sn[4:4+int(sn[3])]) != l.Serial() {
		t.Fatalf("unit serial page %q", sn)
	}
	lay := elementAddresses(t, l)
	if lay.nmte != 1 || lay.nst != 20 || lay.nie != 4 || lay.ndt != 4 {
		t.Fatalf("element counts %+v", lay)
	}
	good(t, run(t, l.ExecuteCDB, []byte{0x00, 0, 0, 0, 0, 0}, 0))
	good(t, run(t, l.ExecuteCDB, []byte{0x07, 0, 0, 0, 0, 0}, 0))

	all := readElements(t, l, 0, 0, 0xFFFF, true)
	if len(all) != 1+20+4+4 {
		t.Fatalf("%d elements", len(all))
	}
	for i := uint16(0); i < 4; i++ {
		d := find(all, lay.dt+i)
		if d.typ != 4 || !d.full || d.barcode != fmt.Sprintf("TAP%03dL8", i+1) || !d.svalid || d.source != lay.st+i {
			t.Fatalf("drive %d: %+v", i, d)
		}
		if d.ident != l.drives[i].Serial() {
			t.Fatalf("drive %d DVCID %q, want %q", i, d.ident, l.drives[i].Serial())
		}
	}
	for i := uint16(0); i < 20; i++ {
		s := find(all, lay.st+i)
		if s.typ != 2 || s.full != (i >= 4 && i < 10) {
			t.Fatalf("slot %d: %+v", i, s)
		}
	}
	// An allocation length too small for the report: whole descriptors
	// only, the header still gives the full size.
	short := good(t, run(t, l.ExecuteCDB, []byte{0xB8, 0x10, 0, 0, 0xFF, 0xFF, 0, 0, 0, 100, 0, 0}, 100))
	if len(short) != 8+8+52 || int(short[5])<<16|int(short[6])<<8|int(short[7]) <= 100 {
		t.Fatalf("short report %d bytes, header %x", len(short), short[:8])
	}
	// Per-type request with a starting address and count.
	some := readElements(t, l, 2, lay.st+5, 3, false)
	if len(some) != 3 || some[0].addr != lay.st+5 || some[0].barcode != "TAP006L8" {
		t.Fatalf("slots from 5: %+v", some)
	}

	// drive 0 back to its slot, slot 4 -> drive 0 -> I/E -> slot 4.
	steps := []struct{ src, dst uint16 }{
		{lay.dt, lay.st}, {lay.st + 4, lay.dt}, {lay.dt, lay.ie}, {lay.ie, lay.st + 4},
	}
	for _, s := range steps {
		good(t, run(t, l.ExecuteCDB, moveCDB(s.src, s.dst), 0))
		es := readElements(t, l, 0, 0, 0xFFFF, false)
		src, dst := find(es, s.src), find(es, s.dst)
		if src.full || !dst.full || !dst.svalid || dst.source != s.src {
			t.Fatalf("move %#x->%#x: source %+v destination %+v", s.src, s.dst, src, dst)
		}
	}
	if b := find(readElements(t, l, 2, lay.st+4, 1, false), lay.st+4).barcode; b != "TAP005L8" {
		t.Fatalf("slot 4 holds %q after the round trip", b)
	}
	drive0 := l.drives[0]
	if drive0.Barcode() != "" || drive0.Loaded() {
		t.Fatal("drive 0 should be empty")
	}

	// Wrong moves get the right sense.
	wantSense(t, run(t, l.ExecuteCDB, moveCDB(lay.st+15, lay.st+16), 0), 5, 0x3B, 0x0E)
	wantSense(t, run(t, l.ExecuteCDB, moveCDB(lay.st+5, lay.st+6), 0), 5, 0x3B, 0x0D)
	wantSense(t, run(t, l.ExecuteCDB, moveCDB(0x7777, lay.st+16), 0), 5, 0x21, 0x01)
	wantSense(t, run(t, l.ExecuteCDB, moveCDB(lay.st+5, lay.mte), 0), 5, 0x21, 0x01)
	inv := moveCDB(lay.st+5, lay.st+16)
	inv[10] = 1
	wantSense(t, run(t, l.ExecuteCDB, inv, 0), 5, 0x24, 0x00)
	// REQUEST SENSE returns the last sense once.
	rs := good(t, run(t, l.ExecuteCDB, []byte{0x03, 0, 0, 0, 18, 0}, 18))
	if rs[0] != 0x70 || rs[2] != 5 || rs[12] != 0x24 {
		t.Fatalf("request sense %x", rs)
	}
	rs = good(t, run(t, l.ExecuteCDB, []byte{0x03, 0, 0, 0, 18, 0}, 18))
	if rs[2] != 0 || rs[12] != 0 {
		t.Fatalf("second request sense %x", rs)
	}
	wantSense(t, run(t, l.ExecuteCDB, []byte{0xFF, 0, 0, 0, 0, 0}, 0), 5, 0x20, 0x00)
	wantSense(t, run(t, l.ExecuteCDB, []byte{0x1A, 0, 0x05, 0, 255, 0}, 255), 5, 0x24, 0x00)
	wantSense(t, run(t, l.ExecuteCDB, []byte{0x12, 0, 0x80, 0, 255, 0}, 255), 5, 0x24, 0x00)
	wantSense(t, run(t, l.ExecuteCDB, []byte{0xB8, 0x07, 0, 0, 0, 1, 0, 0, 0, 255, 0, 0}, 255), 5, 0x24, 0x00)
	wantSense(t, run(t, l.ExecuteCDB, []byte{0x12}, 255), 5, 0x24, 0x00)
	wantSense(t, run(t, l.ExecuteCDB, nil, 255), 5, 0x20, 0x00)

	// A drive that is open cannot give its cartridge up.
	d1 := l.drives[1]
	mustOpen(t, d1, OpenOptions{Mode: ReadMode})
	wantSense(t, run(t, l.ExecuteCDB, moveCDB(lay.dt+1, lay.st+16), 0), 5, 0x53, 0x02)
	_ = d1.Close()
	good(t, run(t, l.ExecuteCDB, moveCDB(lay.dt+1, lay.st+16), 0))

	// PREVENT MEDIUM REMOVAL keeps the operator from taking the I/E
	// cartridge out.
	good(t, run(t, l.ExecuteCDB, moveCDB(lay.st+16, lay.ie+1), 0))
	good(t, run(t, l.ExecuteCDB, []byte{0x1E, 0, 0, 0, 1, 0}, 0))
	wantErr(t, l.Export("TAP002L8"), ErrPrevented)
	good(t, run(t, l.ExecuteCDB, []byte{0x1E, 0, 0, 0, 0, 0}, 0))
	if err := l.Export("TAP002L8"); err != nil {
		t.Fatal(err)
	}
	// The operator's action is reported once as a unit attention.
	if inq := good(t, run(t, l.ExecuteCDB, []byte{0x12, 0, 0, 0, 96, 0}, 96)); inq[0] != 0x08 { // INQUIRY is not held up
		t.Fatalf("inquiry during unit attention %x", inq[:8])
	}
	wantSense(t, run(t, l.ExecuteCDB, []byte{0x00, 0, 0, 0, 0, 0}, 0), 6, 0x28, 0x00)
	good(t, run(t, l.ExecuteCDB, []byte{0x00, 0, 0, 0, 0, 0}, 0))
	if e := find(readElements(t, l, 3, lay.ie, 4, false), lay.ie+1); e.full {
		t.Fatalf("exported cartridge still reported: %+v", e)
	}
	if err := l.Import("TAP002L8"); err != nil {
		t.Fatal(err)
	}
	wantSense(t, run(t, l.ExecuteCDB, []byte{0x00, 0, 0, 0, 0, 0}, 0), 6, 0x28, 0x00)
	if e := find(readElements(t, l, 3, lay.ie, 4, false), lay.ie); !e.full || e.barcode != "TAP002L8" {
		t.Fatalf("imported cartridge: %+v", e)
	}

	// REPORT LUNS and INITIALIZE ELEMENT STATUS WITH RANGE.
	luns := good(t, run(t, l.ExecuteCDB, []byte{0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}, 64))
	if binary.BigEndian.Uint32(luns) != 8 || len(luns) != 16 {
		t.Fatalf("report luns %x", luns)
	}
	rng := []byte{0x37, 0x01, byte(lay.st >> 8), byte(lay.st), 0, 0, 0, 5, 0, 0}
	good(t, run(t, l.ExecuteCDB, rng, 0))
	rng[2], rng[3] = 0x77, 0x77
	wantSense(t, run(t, l.ExecuteCDB, rng, 0), 5, 0x21, 0x01)

	// Mode pages 1E and 1F through MODE SENSE(10).
	ms := good(t, run(t, l.ExecuteCDB, []byte{0x5A, 0x08, 0x3F, 0, 0, 0, 0, 0x01, 0x00, 0}, 256))
	if int(binary.BigEndian.Uint16(ms)) != len(ms)-2 {
		t.Fatalf("mode sense(10) length %x", ms[:2])
	}
	var codes []byte
	for p := ms[8:]; len(p) >= 2; p = p[2+int(p[1]):] {
		codes = append(codes, p[0]&0x3F)
	}
	if string(codes) != "\x1d\x1e\x1f" {
		t.Fatalf("pages %x", codes)
	}
}

func TestDriveCDBs(t *testing.T) {
	l, d := newLib(t, 0)
	inq := good(t, run(t, d.ExecuteCDB, []byte{0x12, 0, 0, 0, 96, 0}, 96))
	if inq[0] != 0x01 || inq[1]&0x80 == 0 || string(inq[8:16]) != "TAPESTRY" {
		t.Fatalf("drive inquiry %q", inq)
	}
	good(t, run(t, d.ExecuteCDB, []byte{0x00, 0, 0, 0, 0, 0}, 0))
	bl := good(t, run(t, d.ExecuteCDB, []byte{0x05, 0, 0, 0, 0, 0}, 6))
	if len(bl) != 6 || int(bl[1])<<16|int(bl[2])<<8|int(bl[3]) != 0xFFFFFF || binary.BigEndian.Uint16(bl[4:]) != 1 {
		t.Fatalf("block limits %x", bl)
	}
	rp := good(t, run(t, d.ExecuteCDB, []byte{0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 20))
	if rp[0]&0x80 == 0 || binary.BigEndian.Uint32(rp[4:]) != 0 {
		t.Fatalf("read position at BOT %x", rp)
	}
	mustOpen(t, d, OpenOptions{Mode: ReadWriteMode, NoRewind: true})
	for i := 0; i < 3; i++ {
		_, _ = d.Write([]byte("rec"))
	}
	mtio(t, d, MTEOF, 1)
	rp = good(t, run(t, d.ExecuteCDB, []byte{0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 20))
	if rp[0]&0x80 != 0 || binary.BigEndian.Uint32(rp[4:]) != 4 {
		t.Fatalf("read position after 3 records and a mark %x", rp)
	}
	rl := good(t, run(t, d.ExecuteCDB, []byte{0x34, 6, 0, 0, 0, 0, 0, 0, 0, 0}, 32))
	if binary.BigEndian.Uint64(rl[8:]) != 4 || binary.BigEndian.Uint64(rl[16:]) != 1 {
		t.Fatalf("long read position %x", rl)
	}
	wantSense(t, run(t, d.ExecuteCDB, []byte{0x34, 0x1F, 0, 0, 0, 0, 0, 0, 0, 0}, 32), 5, 0x24, 0x00)
	_ = d.Close()
	_ = l.SetWriteProtect("VOL001", true)
	ms := good(t, run(t, d.ExecuteCDB, []byte{0x1A, 0, 0x0F, 0, 255, 0}, 255))
	if ms[2]&0x80 == 0 || ms[3] != 8 || ms[4] != densityCode || ms[12] != 0x0F {
		t.Fatalf("drive mode sense %x", ms)
	}
	wantSense(t, run(t, d.ExecuteCDB, []byte{0x19, 0, 0, 0, 0, 0}, 0), 5, 0x20, 0x00)
	wantSense(t, d.ExecuteCDB(CDB{CDB: []byte{0x0A, 0, 0, 0, 1, 0}, Dir: DirOut, DataOut: []byte{1}}), 7, 0x27, 0x00)
	empty := l.drives[1]
	wantSense(t, run(t, empty.ExecuteCDB, []byte{0x00, 0, 0, 0, 0, 0}, 0), 2, 0x3A, 0x00)
	rs := good(t, run(t, empty.ExecuteCDB, []byte{0x03, 0, 0, 0, 18, 0}, 18))
	if rs[2] != 2 || rs[12] != 0x3A {
		t.Fatalf("drive request sense %x", rs)
	}
	wantSense(t, run(t, empty.ExecuteCDB, []byte{0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 20), 2, 0x3A, 0x00)
}

// info returns the information field of fixed sense data.
func info(s []byte) int32 { return int32(binary.BigEndian.Uint32(s[3:])) }

// TestDriveSSCDataCommands drives a tape with SSC commands only, as
// TAPE_EXECUTE_CDB clients do, checking the SSC sense conventions.
func TestDriveSSCDataCommands(t *testing.T) {
	_, d := newLib(t, 0)
	write := func(p []byte) CDBResult {
		n := len(p)
		return d.ExecuteCDB(CDB{CDB: []byte{0x0A, 0, byte(n >> 16), byte(n >> 8), byte(n), 0}, Dir: DirOut, DataOut: p})
	}
	read := func(n int, sili bool) CDBResult {
		var b1 byte
		if sili {
			b1 = 2
		}
		return d.ExecuteCDB(CDB{CDB: []byte{0x08, b1, byte(n >> 16), byte(n >> 8), byte(n), 0}, Dir: DirIn, DataInLen: n})
	}
	space := func(code byte, n int) CDBResult {
		v := uint32(n) & 0xFFFFFF
		return d.ExecuteCDB(CDB{CDB: []byte{0x11, code, byte(v >> 16), byte(v >> 8), byte(v), 0}})
	}
	for i := 0; i < 3; i++ {
		good(t, write(pattern(5, i, 1000)))
	}
	good(t, d.ExecuteCDB(CDB{CDB: []byte{0x10, 0, 0, 0, 2, 0}}))
	good(t, write([]byte("after")))
	wantSense(t, d.ExecuteCDB(CDB{CDB: []byte{0x0A, 0, 0, 0, 1, 0}, Dir: DirOut}), 5, 0x24, 0x00) // no data
	good(t, d.ExecuteCDB(CDB{CDB: []byte{0x01, 0, 0, 0, 0, 0}}))

	if got := good(t, read(1000, false)); string(got) != string(pattern(5, 0, 1000)) {
		t.Fatal("read(6) data")
	}
	// A longer request: ILI with residue = requested - actual, data kept.
	r := read(1500, false)
	wantSense(t, r, 0, 0, 0)
	if r.Sense[2]&0x20 == 0 || info(r.Sense) != 500 || len(r.DataIn) != 1000 {
		t.Fatalf("ILI sense %x, %d bytes", r.Sense, len(r.DataIn))
	}
	if got := good(t, read(1500, true)); len(got) != 1000 { // SILI suppresses it
		t.Fatalf("SILI read %d bytes", len(got))
	}
	// Reading the file mark: FILEMARK sense and the head passes it.
	r = read(1000, false)
	wantSense(t, r, 0, 0x00, 0x01)
	if r.Sense[2]&0x80 == 0 {
		t.Fatalf("no FILEMARK bit: %x", r.Sense)
	}
	if f, rec, _ := d.Position(); f != 1 || rec != 0 {
		t.Fatalf("after the mark at %d/%d", f, rec)
	}
	// SPACE blocks backward meets the mark: stops on its BOT side.
	r = space(0, -2)
	wantSense(t, r, 0, 0x00, 0x01)
	if info(r.Sense) != 2 {
		t.Fatalf("residue %d", info(r.Sense))
	}
	if f, rec, _ := d.Position(); f != 0 || rec != 3 {
		t.Fatalf("after SPACE -2 at %d/%d", f, rec)
	}
	// SPACE file marks forward past the end of data: blank check.
	r = space(1, 5)
	wantSense(t, r, 8, 0x00, 0x05)
	if info(r.Sense) != 3 {
		t.Fatalf("file mark residue %d", info(r.Sense))
	}
	wantSense(t, read(10, false), 8, 0x00, 0x05)
	good(t, d.ExecuteCDB(CDB{CDB: []byte{0x01, 0, 0, 0, 0, 0}}))
	r = space(0, -1)
	wantSense(t, r, 0, 0x00, 0x04)
	good(t, space(3, 0))
	good(t, write([]byte("appended")))
	// Unload and load.
	good(t, d.ExecuteCDB(CDB{CDB: []byte{0x1B, 0, 0, 0, 0, 0}}))
	wantSense(t, d.ExecuteCDB(CDB{CDB: []byte{0x00, 0, 0, 0, 0, 0}}), 2, 0x3A, 0x00)
	good(t, d.ExecuteCDB(CDB{CDB: []byte{0x1B, 0, 0, 0, 1, 0}}))
	good(t, space(1, 2))
	if got := good(t, read(100, true)); string(got) != "after" {
		t.Fatalf("after reload: %q", got)
	}
}
