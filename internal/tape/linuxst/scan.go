//go:build linux

package linuxst

import (
	"context"
	"errors"
	"fmt"
	"sort"
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
	known map[string]bool // PPNs this scanner added
}

// NewScanner returns a scanner of sysRoot (normally "/sys") whose device
// nodes are under devRoot (normally "/dev").
func NewScanner(reg *tape.Registry, sys Sys, sysRoot, devRoot string) *Scanner {
	return &Scanner{reg: reg, sys: sys, sysRoot: sysRoot, devRoot: devRoot, known: map[string]bool{}}
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
		if s.known[ppn] {
			continue
		}
		if _, err := s.reg.Add(ctx, f.Attachment(s.sys)); err != nil {
			errs = append(errs, fmt.Errorf("linuxst: scan: %w", err))
			continue
		}
		s.known[ppn] = true
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
	return added, removed, errors.Join(errs...)
}
