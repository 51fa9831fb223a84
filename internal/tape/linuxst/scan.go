//go:build linux

package linuxst

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// Scanner keeps a Registry in step with the host's devices (T9): each Scan
// adds the drives and changers that appeared since the last one and removes
// those that disappeared. It only removes paths it added itself, so
// devices from other sources (a virtual library) are left alone.
type Scanner struct {
	reg              *tape.Registry
	sys              Sys
	sysRoot, devRoot string

	mu    sync.Mutex
	known map[string]tape.Attachment // paths this scanner added, by PPN
}

// NewScanner returns a scanner of sysRoot (normally "/sys") whose device
// nodes are under devRoot (normally "/dev").
func NewScanner(reg *tape.Registry, sys Sys, sysRoot, devRoot string) *Scanner {
	return &Scanner{reg: reg, sys: sys, sysRoot: sysRoot, devRoot: devRoot, known: map[string]tape.Attachment{}}
}

// Scan discovers the devices and updates the registry. It returns the
// paths added and removed. Errors of single devices (unreadable sysfs
// entries, devices beyond the node limits, paths in use) are returned
// joined; the other devices are still handled.
func (s *Scanner) Scan(ctx context.Context) (added, removed []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	found, derr := Discover(s.sysRoot, s.devRoot)
	errs := []error{}
	if derr != nil {
		errs = append(errs, derr)
	}
	now := map[string]bool{}
	for _, f := range found {
		ppn := f.Addr.PPN()
		now[ppn] = true
		if _, ok := s.known[ppn]; ok {
			continue
		}
		if f.Serial == "" && f.Generic != "" {
			f.Serial = s.inquirySerial(ctx, f.Generic)
		}
		a := f.Attachment(s.sys)
		if _, err := s.reg.Add(ctx, a); err != nil {
			errs = append(errs, fmt.Errorf("linuxst: scan: %w", err))
			continue
		}
		s.known[ppn] = a
		added = append(added, ppn)
	}
	gone := []string{}
	for ppn := range s.known {
		if !now[ppn] {
			gone = append(gone, ppn)
		}
	}
	sort.Strings(gone)
	for _, ppn := range gone {
		if err := s.reg.Remove(ctx, ppn); err != nil && !errors.Is(err, tape.ErrNoDevice) {
			errs = append(errs, fmt.Errorf("linuxst: scan: %w", err))
			continue
		}
		delete(s.known, ppn)
		removed = append(removed, ppn)
	}
	if len(added) > 0 {
		errs = append(errs, s.link(ctx))
	}
	return added, removed, errors.Join(errs...)
}

// inquirySerial asks a device without a vpd_pg80 sysfs file for its
// serial number (INQUIRY, VPD page 80h, through its sg node); "" when it
// has none usable in an SN[...] mapping.
func (s *Scanner) inquirySerial(ctx context.Context, generic string) string {
	sg := NewSG(s.sys, generic)
	defer sg.Close()
	sn, err := InquirySerial(ctx, sg)
	if err != nil || !validSerial(sn) {
		return ""
	}
	return sn
}

// link asks every changer for the device identifiers of its drives
// (READ ELEMENT STATUS with DVCID) and tells each drive found with that
// serial number which changer and element serve it (Drive.SetChanger), so
// that unload-reload devices and DMAs agree which drive is which. Call
// with s.mu held.
func (s *Scanner) link(ctx context.Context) error {
	var errs []error
	for ppn, c := range s.known {
		if c.Kind != tape.KindChanger || c.Changer == nil {
			continue
		}
		elems, err := ReadElementStatus(ctx, c.Changer, elemDrive)
		if err != nil {
			errs = append(errs, fmt.Errorf("linuxst: scan: changer %s: %w", ppn, err))
			continue
		}
		for _, e := range elems {
			for _, a := range s.known {
				d, ok := a.Drive.(*Drive)
				if ok && a.Serial != "" && sameDevice(e.Identifier, a.Serial) {
					d.SetChanger(c.Changer, e.Addr)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// sameDevice tells whether a changer's device identifier names the drive
// with serial number serial: the identifier is the serial number, or ends
// with it after a blank (vendor and product first).
func sameDevice(identifier, serial string) bool {
	id, sn := strings.ToUpper(strings.TrimSpace(identifier)), strings.ToUpper(serial)
	return id != "" && (id == sn || strings.HasSuffix(id, " "+sn))
}
