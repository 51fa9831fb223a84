//go:build linux

package sim

import (
	"fmt"

	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst"
)

// Identities of the standard library's devices.
var (
	// HPDrive is drive 0: an HP LTO-5 drive (the spec's example tape
	// configuration file qualifies it).
	HPDrive = Identity{Vendor: "HP", Product: "Ultrium 5-SCSI", Revision: "Z39W", Serial: "HU1951SIM0"}
	// IBMDrive is drive 1: an IBM LTO-5 drive no file qualifies.
	IBMDrive = Identity{Vendor: "IBM", Product: "ULT3580-TD5", Revision: "D8D5", Serial: "1013SIM001"}
	// SMCChanger is the library's medium changer.
	SMCChanger = Identity{Vendor: "STK", Product: "L700", Revision: "0106", Serial: "XYZZYSIMA0"}
)

// SCSI addresses of the standard library: the changer and drive 0 are on
// host adapters 2 and 3 (two paths, drive 0 on both), drive 1 on host 2
// only.
var (
	ChangerAddr = linuxst.HCTL{Host: 2, Target: 0}
	Drive0Addr  = linuxst.HCTL{Host: 2, Target: 1}
	Drive0Alt   = linuxst.HCTL{Host: 3, Target: 1}
	Drive1Addr  = linuxst.HCTL{Host: 2, Target: 2}
)

// LibraryOptions size the standard library.
type LibraryOptions struct {
	Slots        int   // storage slots, all filled; default 8
	Capacity     int64 // bytes per cartridge; default 64 MiB
	EarlyWarning int64 // early-warning zone; default 1/16 of Capacity
}

// Library is the standard simulated host of the tests: an SMC changer with
// two LTO-5 drives and a slot of cartridges, drive 0 reachable over two
// paths.
type Library struct {
	Host        *Host
	Changer     *Changer
	ChangerPath *Path
	Drives      [2]*Drive
	// Paths[i] are drive i's paths, the primary first.
	Paths      [2][]*Path
	Cartridges []*Cartridge
}

// NewLibrary builds the standard library under root. Cartridge i is in
// slot i with barcode SIM00iL5; both drives are empty.
func NewLibrary(root string, o LibraryOptions) (*Library, error) {
	if o.Slots <= 0 {
		o.Slots = 8
	}
	if o.Capacity <= 0 {
		o.Capacity = 64 << 20
	}
	if o.EarlyWarning <= 0 {
		o.EarlyWarning = o.Capacity / 16
	}
	h, err := New(root)
	if err != nil {
		return nil, err
	}
	l := &Library{Host: h}
	l.Drives[0], l.Drives[1] = h.NewDrive(HPDrive), h.NewDrive(IBMDrive)
	l.Changer = h.NewChanger(SMCChanger, l.Drives[:], 2, o.Slots)
	for i := 0; i < o.Slots; i++ {
		c := NewCartridge(fmt.Sprintf("SIM%03dL5", i), o.Capacity, o.EarlyWarning)
		l.Cartridges = append(l.Cartridges, c)
		if err := l.Changer.Put(i, c); err != nil {
			return nil, err
		}
	}
	if l.ChangerPath, err = h.AttachChanger(l.Changer, ChangerAddr); err != nil {
		return nil, err
	}
	for i, addrs := range [][]linuxst.HCTL{{Drive0Addr, Drive0Alt}, {Drive1Addr}} {
		for _, a := range addrs {
			p, err := h.AttachDrive(l.Drives[i], a)
			if err != nil {
				return nil, err
			}
			l.Paths[i] = append(l.Paths[i], p)
		}
	}
	return l, nil
}
