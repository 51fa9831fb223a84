//go:build linux

package linuxst

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// SCSI peripheral device types (sysfs "type").
const (
	typeTape    = 1
	typeChanger = 8
)

// HCTL is a Linux SCSI address host:channel:target:lun.
type HCTL struct {
	Host, Channel, Target, LUN int
}

// String returns "H:C:T:L".
func (a HCTL) String() string {
	return fmt.Sprintf("%d:%d:%d:%d", a.Host, a.Channel, a.Target, a.LUN)
}

// PPN returns the physical path name Tapestry gives the address: the host
// adapter is the host number followed by a letter for the channel
// (channel 0 is a, 24 is y; from 25 on z and the number: z25), then the target as device id and the LUN when it is
// not 0, for example 2a.3L1 for 2:0:3:1.
func (a HCTL) PPN() string {
	ch := string(rune('a' + a.Channel))
	if a.Channel >= 25 {
		ch = "z" + strconv.Itoa(a.Channel)
	}
	s := fmt.Sprintf("%d%s.%d", a.Host, ch, a.Target)
	if a.LUN != 0 {
		s += "L" + strconv.Itoa(a.LUN)
	}
	return s
}

// ParseHCTL parses "H:C:T:L" (decimal, non-negative, each below 2^31).
func ParseHCTL(s string) (HCTL, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 4 {
		return HCTL{}, fmt.Errorf("linuxst: SCSI address %q: want host:channel:target:lun", s)
	}
	var v [4]int
	for i, p := range parts {
		if p == "" || len(p) > 10 {
			return HCTL{}, fmt.Errorf("linuxst: SCSI address %q: bad number %q", s, p)
		}
		n, err := strconv.ParseUint(p, 10, 31)
		if err != nil {
			return HCTL{}, fmt.Errorf("linuxst: SCSI address %q: bad number %q", s, p)
		}
		v[i] = int(n)
	}
	return HCTL{v[0], v[1], v[2], v[3]}, nil
}

// ParseVPD80 extracts the product serial number from a Unit Serial Number
// VPD page (80h): a 4-byte header (peripheral byte, page code 80h, 16-bit
// page length) then the serial number, blank padded.
func ParseVPD80(b []byte) (string, error) {
	if len(b) < 4 {
		return "", fmt.Errorf("linuxst: VPD page 80h of %d bytes, shorter than its header", len(b))
	}
	if b[1] != 0x80 {
		return "", fmt.Errorf("linuxst: VPD page code %#02x, want 0x80", b[1])
	}
	n := int(b[2])<<8 | int(b[3])
	if 4+n > len(b) {
		return "", fmt.Errorf("linuxst: VPD page 80h says %d bytes, has %d", n, len(b)-4)
	}
	sn := string(bytes.Trim(b[4:4+n], " \x00"))
	for i := 0; i < len(sn); i++ {
		if sn[i] < 0x20 || sn[i] > 0x7e {
			return "", fmt.Errorf("linuxst: VPD page 80h serial number has byte %#02x", sn[i])
		}
	}
	return sn, nil
}

// Found is a tape drive or medium changer found in sysfs.
type Found struct {
	Kind     tape.DeviceKind
	Addr     HCTL
	Vendor   string // INQUIRY vendor, blanks trimmed
	Product  string // INQUIRY product, blanks trimmed
	Revision string
	Serial   string // from vpd_pg80; "" if the kernel did not read it
	Tape     string // the no-rewind st node, /dev/nstN (drives)
	Generic  string // the SCSI generic node, /dev/sgN ("" if sg is not loaded)
}

var (
	nstName = regexp.MustCompile(`^nst[0-9]+$`)
	sgName  = regexp.MustCompile(`^sg[0-9]+$`)
)

// Discover lists the tape drives and medium changers of the host, sorted
// by SCSI address. sysRoot is normally "/sys" and devRoot "/dev". Drives
// are found through sysRoot/class/scsi_tape/nstN, changers (and the
// generic nodes of drives) through sysRoot/class/scsi_generic/sgN; each
// entry's device link leads to sysRoot/bus/scsi/devices/H:C:T:L, whose
// type, vendor, model, rev and vpd_pg80 files describe it. A device whose
// files cannot be read is skipped and reported in the returned error,
// which does not stop the others from being listed.
func Discover(sysRoot, devRoot string) ([]Found, error) {
	byAddr := map[HCTL]*Found{}
	var errs []error
	get := func(addr HCTL) (*Found, error) {
		if f := byAddr[addr]; f != nil {
			return f, nil
		}
		dir := filepath.Join(sysRoot, "bus", "scsi", "devices", addr.String())
		f, err := readDevice(dir, addr)
		if err != nil {
			return nil, err
		}
		byAddr[addr] = f
		return f, nil
	}
	scan := func(class string, match *regexp.Regexp, set func(f *Found, node string)) {
		dir := filepath.Join(sysRoot, "class", class)
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("linuxst: discover: %w", err))
			return
		}
		for _, e := range ents {
			if !match.MatchString(e.Name()) {
				continue
			}
			link, err := filepath.EvalSymlinks(filepath.Join(dir, e.Name(), "device"))
			if err != nil {
				errs = append(errs, fmt.Errorf("linuxst: discover %s: %w", e.Name(), err))
				continue
			}
			addr, err := ParseHCTL(filepath.Base(link))
			if err != nil {
				errs = append(errs, fmt.Errorf("linuxst: discover %s: %w", e.Name(), err))
				continue
			}
			f, err := get(addr)
			if err != nil {
				errs = append(errs, fmt.Errorf("linuxst: discover %s: %w", e.Name(), err))
				continue
			}
			if f == nil {
				continue
			}
			if _, err := tape.ParseMapping(addr.PPN()); err != nil {
				errs = append(errs, fmt.Errorf("linuxst: discover %s: address %s has no physical path name: %w", e.Name(), addr, err))
				continue
			}
			set(f, filepath.Join(devRoot, e.Name()))
		}
	}
	scan("scsi_tape", nstName, func(f *Found, node string) { f.Tape = node })
	scan("scsi_generic", sgName, func(f *Found, node string) { f.Generic = node })

	var out []Found
	for _, f := range byAddr {
		if f == nil {
			continue
		}
		if f.Kind == tape.KindDrive && f.Tape == "" {
			continue // a tape device without st: not usable as a drive
		}
		if f.Kind == tape.KindChanger && f.Generic == "" {
			continue
		}
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Addr, out[j].Addr
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		if a.Channel != b.Channel {
			return a.Channel < b.Channel
		}
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.LUN < b.LUN
	})
	return out, errors.Join(errs...)
}

// readDevice reads a SCSI device's sysfs directory. Devices that are
// neither tapes nor changers give nil, nil.
func readDevice(dir string, addr HCTL) (*Found, error) {
	t, err := readAttr(dir, "type")
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return nil, fmt.Errorf("%s/type: %q is not a number", dir, t)
	}
	f := &Found{Addr: addr}
	switch n {
	case typeTape:
		f.Kind = tape.KindDrive
	case typeChanger:
		f.Kind = tape.KindChanger
	default:
		return nil, nil
	}
	if f.Vendor, err = readAttr(dir, "vendor"); err != nil {
		return nil, err
	}
	if f.Product, err = readAttr(dir, "model"); err != nil {
		return nil, err
	}
	f.Revision, _ = readAttr(dir, "rev")
	raw, err := os.ReadFile(filepath.Join(dir, "vpd_pg80"))
	switch {
	case err == nil:
		if f.Serial, err = ParseVPD80(raw); err != nil {
			return nil, fmt.Errorf("%s/vpd_pg80: %w", dir, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if f.Serial != "" && !validSerial(f.Serial) {
		f.Serial = "" // not usable in an SN[...] mapping; aliased by path
	}
	return f, nil
}

func validSerial(s string) bool {
	_, err := tape.SerialMapping(s, 0)
	return err == nil
}

func readAttr(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	if len(b) > 256 {
		return "", fmt.Errorf("%s/%s: %d bytes, too long for an attribute", dir, name, len(b))
	}
	return strings.TrimSpace(string(b)), nil
}

// Attachment returns the registry attachment of a found device, using sys
// for its device nodes.
func (f Found) Attachment(sys Sys) tape.Attachment {
	a := tape.Attachment{Kind: f.Kind, Path: f.Addr.PPN(), Serial: f.Serial, Vendor: f.Vendor, Product: f.Product, Revision: f.Revision}
	var sg *SG
	if f.Generic != "" {
		sg = NewSG(sys, f.Generic)
	}
	switch f.Kind {
	case tape.KindDrive:
		a.Drive = NewDrive(sys, f.Tape, sg)
	case tape.KindChanger:
		a.Changer = sg
	}
	return a
}

// InquirySerial asks a device for its serial number with INQUIRY, VPD
// page 80h, for devices whose vpd_pg80 sysfs file is missing.
func InquirySerial(ctx context.Context, dev tape.Changer) (string, error) {
	const alloc = 255
	res, err := dev.ExecuteCDB(ctx, tape.CDB{CDB: []byte{0x12, 0x01, 0x80, 0, alloc, 0}, Dir: tape.DirIn, DataInLen: alloc})
	if err != nil {
		return "", fmt.Errorf("linuxst: INQUIRY page 80h: %w", err)
	}
	if res.Status != tape.StatusGood {
		return "", fmt.Errorf("linuxst: INQUIRY page 80h: SCSI status %#02x, sense % x", res.Status, res.Sense)
	}
	return ParseVPD80(res.DataIn)
}
