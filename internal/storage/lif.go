package storage

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// LIFRole is the role of a logical interface.
type LIFRole string

// LIF roles (N6). Node-management, cluster-management and intercluster
// LIFs belong to the admin SVM; data LIFs to a data SVM.
const (
	RoleNodeMgmt     LIFRole = "node-mgmt"
	RoleClusterMgmt  LIFRole = "cluster-mgmt"
	RoleIntercluster LIFRole = "intercluster"
	RoleData         LIFRole = "data"
)

// DefaultNDMPPort is the port a LIF serves NDMP on when LIFSpec.Port is 0.
const DefaultNDMPPort = 10000

// ParseLIFRole accepts the role names above and ONTAP's long spellings
// (node-management, cluster-management).
func ParseLIFRole(s string) (LIFRole, error) {
	switch s {
	case "node-mgmt", "node-management":
		return RoleNodeMgmt, nil
	case "cluster-mgmt", "cluster-management":
		return RoleClusterMgmt, nil
	case "intercluster":
		return RoleIntercluster, nil
	case "data":
		return RoleData, nil
	}
	return "", errf(ErrInvalidArgument, "%q is not a valid LIF role; use node-mgmt, cluster-mgmt, intercluster or data", s)
}

// LIF is a logical interface: an address on which a node serves NDMP.
type LIF struct {
	Name      string     `json:"lif"`
	SVM       string     `json:"vserver"`
	Role      LIFRole    `json:"role"`
	Address   netip.Addr `json:"address"`
	Port      int        `json:"port"`
	HomeNode  string     `json:"home-node"`
	UUID      string     `json:"lif-uuid"`
	CreatedAt time.Time  `json:"create-time"`
}

// AddrPort is the LIF's listen address.
func (l LIF) AddrPort() netip.AddrPort { return netip.AddrPortFrom(l.Address, uint16(l.Port)) }

// LIFSpec describes a new LIF. HomeNode may be empty on a one-node
// cluster; Port 0 means DefaultNDMPPort.
type LIFSpec struct {
	Name     string
	SVM      string
	Role     LIFRole
	Address  string
	Port     int
	HomeNode string
}

// CreateLIF creates a LIF. A data LIF must belong to a data SVM, every other
// role to the admin SVM; no two LIFs share an address and port.
func (s *Service) CreateLIF(ctx context.Context, spec LIFSpec) (LIF, error) {
	if err := validLIFName(spec.Name); err != nil {
		return LIF{}, err
	}
	role, err := ParseLIFRole(string(spec.Role))
	if err != nil {
		return LIF{}, err
	}
	addr, err := parseLIFAddr(spec.Address)
	if err != nil {
		return LIF{}, err
	}
	port, err := lifPort(spec.Port)
	if err != nil {
		return LIF{}, err
	}
	l := LIF{Name: spec.Name, SVM: spec.SVM, Role: role, Address: addr, Port: port, UUID: newUUID(), CreatedAt: s.now()}
	err = s.store.Update(ctx, func(tx catalog.Tx) error {
		v, err := getSVM(tx, spec.SVM)
		if err != nil {
			return err
		}
		if role == RoleData && v.Type != SVMData {
			return errf(ErrInvalidArgument, "a data LIF must belong to a data Vserver, not the admin Vserver %q", v.Name)
		}
		if role != RoleData && v.Type != SVMAdmin {
			return errf(ErrInvalidArgument, "a %s LIF must belong to the admin Vserver, not to %q", role, v.Name)
		}
		if l.HomeNode, err = defaultNode(tx, spec.HomeNode); err != nil {
			return err
		}
		k := catalog.Key(ns, prefixLIF, spec.SVM, spec.Name)
		ok, err := catalog.Exists(tx, k)
		if err != nil {
			return err
		}
		if ok {
			return errf(ErrExists, "LIF %q in Vserver %q already exists", spec.Name, spec.SVM)
		}
		if err := addrFree(tx, l); err != nil {
			return err
		}
		return catalog.PutJSON(tx, k, l)
	})
	if err != nil {
		return LIF{}, fmt.Errorf("create LIF: %w", err)
	}
	return l, nil
}

// GetLIF returns one LIF.
func (s *Service) GetLIF(ctx context.Context, svm, name string) (LIF, error) {
	var l LIF
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		var err error
		l, err = catalog.GetJSON[LIF](tx, catalog.Key(ns, prefixLIF, svm, name))
		if errors.Is(err, catalog.ErrNotFound) {
			return errf(ErrNotFound, "LIF %q in Vserver %q does not exist", name, svm)
		}
		return err
	})
	return l, err
}

// ListLIFs lists the LIFs of svm, or of every SVM when svm is "", ordered by
// SVM and name.
func (s *Service) ListLIFs(ctx context.Context, svm string) ([]LIF, error) {
	return catalog.Read(ctx, s.store, func(tx catalog.Tx) ([]LIF, error) {
		return listInSVM[LIF](tx, prefixLIF, svm)
	})
}

// LIFByAddress returns the LIF that listens on ap (the local address of an
// accepted connection), matching an IPv4-mapped IPv6 address to its IPv4
// LIF.
func (s *Service) LIFByAddress(ctx context.Context, ap netip.AddrPort) (LIF, error) {
	want := netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
	all, err := s.ListLIFs(ctx, "")
	if err != nil {
		return LIF{}, err
	}
	for _, l := range all {
		if netip.AddrPortFrom(l.Address.WithZone(""), uint16(l.Port)) == want {
			return l, nil
		}
	}
	return LIF{}, errf(ErrNotFound, "no LIF has address %s", ap)
}

// DeleteLIF deletes a LIF.
func (s *Service) DeleteLIF(ctx context.Context, svm, name string) error {
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		k := catalog.Key(ns, prefixLIF, svm, name)
		ok, err := catalog.Exists(tx, k)
		if err != nil {
			return err
		}
		if !ok {
			return errf(ErrNotFound, "LIF %q in Vserver %q does not exist", name, svm)
		}
		return tx.Delete(k)
	})
	if err != nil {
		return fmt.Errorf("delete LIF: %w", err)
	}
	return nil
}

func parseLIFAddr(s string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, errf(ErrInvalidArgument, "%q is not a valid IP address", s)
	}
	addr = addr.Unmap()
	if addr.IsUnspecified() || addr.IsMulticast() {
		return netip.Addr{}, errf(ErrInvalidArgument, "%s cannot be a LIF address", addr)
	}
	return addr, nil
}

func lifPort(port int) (int, error) {
	if port == 0 {
		return DefaultNDMPPort, nil
	}
	if port < 1 || port > 65535 {
		return 0, errf(ErrInvalidArgument, "port %d is out of range 1-65535", port)
	}
	return port, nil
}

// addrFree checks that no LIF other than l itself listens on l's address.
func addrFree(tx catalog.Tx, l LIF) error {
	all, err := catalog.ListJSON[LIF](tx, catalog.Prefix(ns, prefixLIF))
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.AddrPort() == l.AddrPort() && (o.SVM != l.SVM || o.Name != l.Name) {
			return errf(ErrExists, "address %s is already used by LIF %q in Vserver %q", l.AddrPort(), o.Name, o.SVM)
		}
	}
	return nil
}

// LIFChange is a modification of a LIF (network interface modify); nil
// fields are left alone. Port 0 means DefaultNDMPPort.
type LIFChange struct {
	Address  *string
	Port     *int
	HomeNode *string
}

// ModifyLIF changes a LIF's address, port or home node.
func (s *Service) ModifyLIF(ctx context.Context, svm, name string, ch LIFChange) (LIF, error) {
	var l LIF
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		var err error
		l, err = catalog.GetJSON[LIF](tx, catalog.Key(ns, prefixLIF, svm, name))
		if errors.Is(err, catalog.ErrNotFound) {
			return errf(ErrNotFound, "LIF %q in Vserver %q does not exist", name, svm)
		}
		if err != nil {
			return err
		}
		if ch.Address != nil {
			if l.Address, err = parseLIFAddr(*ch.Address); err != nil {
				return err
			}
		}
		if ch.Port != nil {
			if l.Port, err = lifPort(*ch.Port); err != nil {
				return err
			}
		}
		if ch.HomeNode != nil {
			if _, err := getNode(tx, *ch.HomeNode); err != nil {
				return err
			}
			l.HomeNode = *ch.HomeNode
		}
		if err := addrFree(tx, l); err != nil {
			return err
		}
		return catalog.PutJSON(tx, catalog.Key(ns, prefixLIF, svm, name), l)
	})
	if err != nil {
		return LIF{}, fmt.Errorf("modify LIF: %w", err)
	}
	return l, nil
}
