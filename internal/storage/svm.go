package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// SVMType tells the admin SVM (the cluster itself) from data SVMs.
type SVMType string

// SVM types.
const (
	SVMAdmin SVMType = "admin"
	SVMData  SVMType = "data"
)

// SVMState is running or stopped.
type SVMState string

// SVM states.
const (
	SVMRunning SVMState = "running"
	SVMStopped SVMState = "stopped"
)

// protocols are the protocol names an SVM can allow or disallow.
var protocols = [...]string{"cifs", "fcp", "iscsi", "ndmp", "nfs", "nvme", "s3"}

// Protocols returns the protocol names an SVM can allow or disallow, as in
// vserver modify -allowed-protocols, sorted.
func Protocols() []string { return slices.Clone(protocols[:]) }

// ProtocolNDMP is the protocol whose presence on the disallowed list stops
// NDMP sessions on the SVM's LIFs (N5).
const ProtocolNDMP = "ndmp"

// SVM is a storage virtual machine (Vserver).
type SVM struct {
	Name  string   `json:"vserver"`
	UUID  string   `json:"uuid"`
	Type  SVMType  `json:"type"`
	State SVMState `json:"state"`
	// AllowedProtocols and DisallowedProtocols partition Protocols.
	AllowedProtocols    []string  `json:"allowed-protocols"`
	DisallowedProtocols []string  `json:"disallowed-protocols"`
	Comment             string    `json:"comment"`
	RootVolume          string    `json:"rootvolume,omitempty"`
	CreatedAt           time.Time `json:"create-time"`
}

// Allows reports whether protocol is on the SVM's allowed list.
func (v SVM) Allows(protocol string) bool {
	return slices.Contains(v.AllowedProtocols, strings.ToLower(protocol))
}

// SVMSpec describes a new data SVM.
type SVMSpec struct {
	Name    string
	Comment string
	// DisallowedProtocols starts on the disallowed list; everything else
	// is allowed.
	DisallowedProtocols []string
}

// SVMChange is a modification of an SVM; nil fields are left alone.
// Setting AllowedProtocols moves every other protocol to the disallowed
// list and setting DisallowedProtocols does the reverse; setting both
// requires them to partition Protocols().
type SVMChange struct {
	Comment             *string
	AllowedProtocols    *[]string
	DisallowedProtocols *[]string
	// RootVolume names a volume of the SVM as its root volume; "" clears
	// it.
	RootVolume *string
}

func normProtocols(list []string) ([]string, error) {
	var out []string
	for _, p := range list {
		p = strings.ToLower(strings.TrimSpace(p))
		if !slices.Contains(protocols[:], p) {
			return nil, errf(ErrInvalidArgument, "%q is not a valid protocol; valid protocols are %s", p, strings.Join(protocols[:], ", "))
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

func complement(list []string) []string {
	out := []string{}
	for _, p := range protocols {
		if !slices.Contains(list, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// CreateSVM creates a data SVM in the running state.
func (s *Service) CreateSVM(ctx context.Context, spec SVMSpec) (SVM, error) {
	if err := validSVMName(spec.Name); err != nil {
		return SVM{}, err
	}
	dis, err := normProtocols(spec.DisallowedProtocols)
	if err != nil {
		return SVM{}, err
	}
	if dis == nil {
		dis = []string{}
	}
	v := SVM{
		Name: spec.Name, UUID: newUUID(), Type: SVMData, State: SVMRunning,
		AllowedProtocols: complement(dis), DisallowedProtocols: dis,
		Comment: spec.Comment, CreatedAt: s.now(),
	}
	err = s.store.Update(ctx, func(tx catalog.Tx) error {
		if _, err := getCluster(tx); err != nil {
			return err
		}
		k := catalog.Key(ns, prefixSVM, spec.Name)
		ok, err := catalog.Exists(tx, k)
		if err != nil {
			return err
		}
		if ok {
			return errf(ErrExists, "Vserver %q already exists", spec.Name)
		}
		return catalog.PutJSON(tx, k, v)
	})
	if err != nil {
		return SVM{}, fmt.Errorf("create Vserver: %w", err)
	}
	return v, nil
}

// GetSVM returns one SVM.
func (s *Service) GetSVM(ctx context.Context, name string) (SVM, error) {
	return catalog.Read(ctx, s.store, func(tx catalog.Tx) (SVM, error) {
		return getSVM(tx, name)
	})
}

func getSVM(tx catalog.Tx, name string) (SVM, error) {
	v, err := catalog.GetJSON[SVM](tx, catalog.Key(ns, prefixSVM, name))
	if errors.Is(err, catalog.ErrNotFound) {
		return v, svmNotFound(name)
	}
	return v, err
}

// ListSVMs lists every SVM, the admin SVM included, in name order.
func (s *Service) ListSVMs(ctx context.Context) ([]SVM, error) {
	return catalog.Read(ctx, s.store, func(tx catalog.Tx) ([]SVM, error) {
		return catalog.ListJSON[SVM](tx, catalog.Prefix(ns, prefixSVM))
	})
}

// ModifySVM changes an SVM (vserver modify).
func (s *Service) ModifySVM(ctx context.Context, name string, ch SVMChange) (SVM, error) {
	var v SVM
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		var err error
		v, err = getSVM(tx, name)
		if err != nil {
			return err
		}
		if ch.Comment != nil {
			v.Comment = *ch.Comment
		}
		switch {
		case ch.AllowedProtocols != nil && ch.DisallowedProtocols != nil:
			al, err := normProtocols(*ch.AllowedProtocols)
			if err != nil {
				return err
			}
			dis, err := normProtocols(*ch.DisallowedProtocols)
			if err != nil {
				return err
			}
			if !slices.Equal(complement(al), dis) {
				return errf(ErrInvalidArgument, "the allowed and disallowed protocol lists must together name every protocol exactly once")
			}
			v.AllowedProtocols, v.DisallowedProtocols = complement(dis), complement(al)
		case ch.AllowedProtocols != nil:
			al, err := normProtocols(*ch.AllowedProtocols)
			if err != nil {
				return err
			}
			v.DisallowedProtocols = complement(al)
			v.AllowedProtocols = complement(v.DisallowedProtocols)
		case ch.DisallowedProtocols != nil:
			dis, err := normProtocols(*ch.DisallowedProtocols)
			if err != nil {
				return err
			}
			v.AllowedProtocols = complement(dis)
			v.DisallowedProtocols = complement(v.AllowedProtocols)
		}
		if ch.RootVolume != nil && *ch.RootVolume != v.RootVolume {
			if *ch.RootVolume != "" {
				if v.Type != SVMData {
					return errf(ErrInvalidArgument, "the admin Vserver %q has no root volume", name)
				}
				if _, err := getVolume(tx, name, *ch.RootVolume); err != nil {
					return err
				}
			}
			v.RootVolume = *ch.RootVolume
		}
		return catalog.PutJSON(tx, catalog.Key(ns, prefixSVM, name), v)
	})
	if err != nil {
		return SVM{}, fmt.Errorf("modify Vserver %q: %w", name, err)
	}
	return v, nil
}

// StartSVM and StopSVM set the SVM's state (vserver start, vserver stop).
// A stopped SVM serves no NDMP sessions.
func (s *Service) StartSVM(ctx context.Context, name string) error {
	return s.setSVMState(ctx, name, SVMRunning)
}

// StopSVM stops a data SVM; see StartSVM.
func (s *Service) StopSVM(ctx context.Context, name string) error {
	return s.setSVMState(ctx, name, SVMStopped)
}

func (s *Service) setSVMState(ctx context.Context, name string, st SVMState) error {
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		v, err := getSVM(tx, name)
		if err != nil {
			return err
		}
		if v.Type == SVMAdmin {
			return errf(ErrInvalidArgument, "the admin Vserver %q cannot be started or stopped", name)
		}
		if v.State == st {
			return errf(ErrInvalidState, "Vserver %q is already %s", name, st)
		}
		v.State = st
		return catalog.PutJSON(tx, catalog.Key(ns, prefixSVM, name), v)
	})
	if err != nil {
		return fmt.Errorf("set Vserver %q %s: %w", name, st, err)
	}
	return nil
}

// DeleteSVM deletes a data SVM. It refuses while the SVM owns LIFs or
// volumes other than its root volume; the root volume's record goes with
// the SVM (its host directory is never touched).
func (s *Service) DeleteSVM(ctx context.Context, name string) error {
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		v, err := getSVM(tx, name)
		if err != nil {
			return err
		}
		if v.Type == SVMAdmin {
			return errf(ErrInvalidArgument, "the admin Vserver %q cannot be deleted", name)
		}
		lifs, err := tx.List(catalog.Prefix(ns, prefixLIF, name))
		if err != nil {
			return err
		}
		if len(lifs) > 0 {
			return errf(ErrInUse, "Vserver %q still has %d LIFs; delete them first", name, len(lifs))
		}
		vols, err := catalog.ListJSON[Volume](tx, catalog.Prefix(ns, prefixVolume, name))
		if err != nil {
			return err
		}
		for _, vol := range vols {
			if vol.Name != v.RootVolume {
				return errf(ErrInUse, "Vserver %q still has volume %q; delete its volumes other than the root volume first", name, vol.Name)
			}
		}
		snaps, err := tx.List(catalog.Prefix(ns, prefixSnap, name))
		if err != nil {
			return err
		}
		if len(snaps) > 0 {
			return errf(ErrInUse, "Vserver %q still has %d Snapshot copies; delete them first", name, len(snaps))
		}
		if err := tx.Delete(nfsKey(name)); err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return err
		}
		for _, p := range []string{prefixVolume, prefixQtree} {
			kvs, err := tx.List(catalog.Prefix(ns, p, name))
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				if err := tx.Delete(kv.Key); err != nil {
					return err
				}
			}
		}
		return tx.Delete(catalog.Key(ns, prefixSVM, name))
	})
	if err != nil {
		return fmt.Errorf("delete Vserver %q: %w", name, err)
	}
	return nil
}

// NDMPAllowed reports, with an ErrDisallowed or ErrInvalidState error,
// whether NDMP sessions may be opened on the LIFs of svm: the SVM must be
// running and must not have ndmp on its disallowed protocols list (N5).
func (s *Service) NDMPAllowed(ctx context.Context, svm string) error {
	v, err := s.GetSVM(ctx, svm)
	if err != nil {
		return err
	}
	if v.State != SVMRunning {
		return errf(ErrInvalidState, "Vserver %q is %s", svm, v.State)
	}
	if !v.Allows(ProtocolNDMP) {
		return errf(ErrDisallowed, "NDMP is on the disallowed protocols list of Vserver %q", svm)
	}
	return nil
}

// listInSVM lists the records of one kind (prefixLIF, prefixVolume, ...)
// in key order: those of svm, which must exist, or of every SVM when svm
// is "".
func listInSVM[T any](tx catalog.Tx, kind, svm string) ([]T, error) {
	if svm == "" {
		return catalog.ListJSON[T](tx, catalog.Prefix(ns, kind))
	}
	if _, err := getSVM(tx, svm); err != nil {
		return nil, err
	}
	return catalog.ListJSON[T](tx, catalog.Prefix(ns, kind, svm))
}
