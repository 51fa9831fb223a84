package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// VolumeType is RW (read/write) or DP (data protection, read-only).
type VolumeType string

// Volume types.
const (
	TypeRW VolumeType = "RW"
	TypeDP VolumeType = "DP"
)

// VolumeState is the volume's state.
type VolumeState string

// Volume states. A restricted volume serves no data but accepts an SMTape
// baseline restore; an offline volume can be deleted.
const (
	StateOnline     VolumeState = "online"
	StateRestricted VolumeState = "restricted"
	StateOffline    VolumeState = "offline"
)

// SecurityStyle is the permission model of a volume or qtree.
type SecurityStyle string

// Security styles.
const (
	StyleUNIX  SecurityStyle = "unix"
	StyleNTFS  SecurityStyle = "ntfs"
	StyleMixed SecurityStyle = "mixed"
)

func parseStyle(s SecurityStyle, def SecurityStyle) (SecurityStyle, error) {
	switch s {
	case "":
		return def, nil
	case StyleUNIX, StyleNTFS, StyleMixed:
		return s, nil
	}
	return "", errf(ErrInvalidArgument, "%q is not a valid security style; use unix, ntfs or mixed", s)
}

func parseType(t VolumeType) (VolumeType, error) {
	switch strings.ToUpper(string(t)) {
	case "", "RW":
		return TypeRW, nil
	case "DP":
		return TypeDP, nil
	}
	return "", errf(ErrInvalidArgument, "%q is not a valid volume type; use RW or DP", t)
}

// Volume is a directory tree on a host file system registered in an SVM.
type Volume struct {
	Name string `json:"volume"`
	SVM  string `json:"vserver"`
	UUID string `json:"uuid"`
	// HostPath is the absolute, symlink-free path of the volume's root
	// directory on the host.
	HostPath      string        `json:"host-path"`
	Type          VolumeType    `json:"type"`
	State         VolumeState   `json:"state"`
	SecurityStyle SecurityStyle `json:"security-style"`
	// SnapshotProvider names the provider ("btrfs", "reflink", "copy")
	// that makes the volume's snapshot copies.
	SnapshotProvider string `json:"snapshot-provider"`
	// JunctionPath is where the volume appears in the SVM namespace ("" when
	// not mounted).
	JunctionPath string `json:"junction-path,omitempty"`
	// Node owns the volume (the node that serves its data).
	Node      string    `json:"node"`
	Comment   string    `json:"comment,omitempty"`
	CreatedAt time.Time `json:"create-time"`
	// TypeGeneration counts the changes of Type since the volume was
	// created, and TypeChangedAt is the time of the last one (zero when
	// none). A backup engine that recorded the generation with a backup
	// must make the next backup a baseline when it differs (D15).
	TypeGeneration uint64    `json:"type-generation"`
	TypeChangedAt  time.Time `json:"type-changed-time,omitzero"`
}

// ReadOnly reports whether the volume is read-only, which is the case for
// DP volumes.
func (v Volume) ReadOnly() bool { return v.Type == TypeDP }

// VolumeSpec describes a new volume. HostPath must be an existing
// directory; Node may be empty on a one-node cluster.
type VolumeSpec struct {
	Name          string
	SVM           string
	HostPath      string
	Type          VolumeType    // default RW
	State         VolumeState   // default online
	SecurityStyle SecurityStyle // default unix
	// SnapshotProvider is "auto" (or "") to pick the best one for the host
	// file system, or "btrfs", "reflink" or "copy".
	SnapshotProvider string
	JunctionPath     string
	Node             string
	Comment          string
}

// VolumeChange is a modification of a volume (volume modify); nil fields
// are left alone.
type VolumeChange struct {
	// Type changes between RW and DP; it bumps TypeGeneration.
	Type             *VolumeType
	SecurityStyle    *SecurityStyle
	JunctionPath     *string
	Comment          *string
	SnapshotProvider *string
	// Node moves the volume to another node of the cluster (the volume's
	// host path must be reachable there).
	Node *string
}

func volKey(svm, vol string) string { return catalog.Key(ns, prefixVolume, svm, vol) }

func getVolume(tx catalog.Tx, svm, vol string) (Volume, error) {
	v, err := catalog.GetJSON[Volume](tx, volKey(svm, vol))
	if errors.Is(err, catalog.ErrNotFound) {
		if _, err := getSVM(tx, svm); err != nil {
			return v, err
		}
		return v, volNotFound(svm, vol)
	}
	return v, err
}

// overlaps reports whether a and b are equal or one contains the other.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, strings.TrimSuffix(b, "/")+"/") || strings.HasPrefix(b, strings.TrimSuffix(a, "/")+"/")
}

// hostDir checks that p is an absolute path to an existing directory and
// returns it without symbolic links.
func hostDir(p string) (string, error) {
	if p == "" || !filepath.IsAbs(p) {
		return "", errf(ErrInvalidArgument, "host path %q must be an absolute path", p)
	}
	real, err := filepath.EvalSymlinks(filepath.Clean(p))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", errf(ErrNotFound, "host path %q does not exist", p)
		}
		return "", errf(ErrInvalidArgument, "host path %q: %v", p, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", errf(ErrInvalidArgument, "host path %q: %v", p, err)
	}
	if !st.IsDir() {
		return "", errf(ErrInvalidArgument, "host path %q is not a directory", p)
	}
	return real, nil
}

func validJunction(j string) (string, error) {
	if j == "" {
		return "", nil
	}
	if !strings.HasPrefix(j, "/") || path.Clean(j) != j || strings.ContainsRune(j, 0) {
		return "", errf(ErrInvalidArgument, "junction path %q must be a clean absolute path such as /vol1", j)
	}
	return j, nil
}

func checkJunctionFree(tx catalog.Tx, svm, vol, j string) error {
	if j == "" {
		return nil
	}
	vols, err := catalog.ListJSON[Volume](tx, catalog.Prefix(ns, prefixVolume, svm))
	if err != nil {
		return err
	}
	for _, o := range vols {
		if o.Name != vol && o.JunctionPath == j {
			return errf(ErrExists, "junction path %q is already used by volume %q in Vserver %q", j, o.Name, svm)
		}
	}
	return nil
}

// providerName checks that the provider called name can snapshot hostPath
// and returns its name; for "auto" or "" that of the provider Auto picks.
func (s *Service) providerName(name, hostPath string) (string, error) {
	p, err := s.opts.Providers(name, hostPath)
	if err != nil {
		return "", errf(ErrInvalidArgument, "snapshot provider %q for %s: %v", name, hostPath, err)
	}
	if err := p.Supported(hostPath); err != nil {
		return "", errf(ErrInvalidArgument, "snapshot provider %q cannot snapshot %s: %v", p.Name(), hostPath, err)
	}
	return p.Name(), nil
}

// CreateVolume registers a volume. It refuses an unknown or admin SVM, a
// duplicate name, a host path that is missing, not a directory or overlaps
// (is equal to, inside or contains) another volume's host path in any SVM,
// and a junction path already in use. The host directory is not changed.
func (s *Service) CreateVolume(ctx context.Context, spec VolumeSpec) (Volume, error) {
	if err := validVolumeName(spec.Name); err != nil {
		return Volume{}, err
	}
	typ, err := parseType(spec.Type)
	if err != nil {
		return Volume{}, err
	}
	style, err := parseStyle(spec.SecurityStyle, StyleUNIX)
	if err != nil {
		return Volume{}, err
	}
	state := spec.State
	switch state {
	case "":
		state = StateOnline
	case StateOnline, StateRestricted, StateOffline:
	default:
		return Volume{}, errf(ErrInvalidArgument, "%q is not a valid volume state", state)
	}
	junction, err := validJunction(spec.JunctionPath)
	if err != nil {
		return Volume{}, err
	}
	host, err := hostDir(spec.HostPath)
	if err != nil {
		return Volume{}, err
	}
	prov, err := s.providerName(spec.SnapshotProvider, host)
	if err != nil {
		return Volume{}, err
	}
	v := Volume{
		Name: spec.Name, SVM: spec.SVM, UUID: newUUID(), HostPath: host, Type: typ, State: state,
		SecurityStyle: style, SnapshotProvider: prov, JunctionPath: junction, Comment: spec.Comment,
		CreatedAt: s.now(),
	}
	err = s.store.Update(ctx, func(tx catalog.Tx) error {
		sv, err := getSVM(tx, spec.SVM)
		if err != nil {
			return err
		}
		if sv.Type != SVMData {
			return errf(ErrInvalidArgument, "volumes cannot be created in the admin Vserver %q", sv.Name)
		}
		if v.Node, err = defaultNode(tx, spec.Node); err != nil {
			return err
		}
		ok, err := catalog.Exists(tx, volKey(spec.SVM, spec.Name))
		if err != nil {
			return err
		}
		if ok {
			return errf(ErrExists, "volume %q in Vserver %q already exists", spec.Name, spec.SVM)
		}
		all, err := catalog.ListJSON[Volume](tx, catalog.Prefix(ns, prefixVolume))
		if err != nil {
			return err
		}
		for _, o := range all {
			if overlaps(o.HostPath, host) {
				return errf(ErrExists, "host path %q overlaps %q of volume %q in Vserver %q", host, o.HostPath, o.Name, o.SVM)
			}
		}
		if err := checkJunctionFree(tx, spec.SVM, spec.Name, junction); err != nil {
			return err
		}
		return catalog.PutJSON(tx, volKey(spec.SVM, spec.Name), v)
	})
	if err != nil {
		return Volume{}, fmt.Errorf("create volume: %w", err)
	}
	return v, nil
}

// GetVolume returns one volume.
func (s *Service) GetVolume(ctx context.Context, svm, vol string) (Volume, error) {
	return catalog.Read(ctx, s.store, func(tx catalog.Tx) (Volume, error) {
		return getVolume(tx, svm, vol)
	})
}

// ListVolumes lists the volumes of svm, or of every SVM when svm is "",
// ordered by SVM and name.
func (s *Service) ListVolumes(ctx context.Context, svm string) ([]Volume, error) {
	return catalog.Read(ctx, s.store, func(tx catalog.Tx) ([]Volume, error) {
		return listInSVM[Volume](tx, prefixVolume, svm)
	})
}

// ModifyVolume changes a volume (volume modify). Changing the type between
// RW and DP (the way a volume becomes read-only or read/write) records the
// time and bumps TypeGeneration (D15).
func (s *Service) ModifyVolume(ctx context.Context, svm, vol string, ch VolumeChange) (Volume, error) {
	var v Volume
	var prov string
	if ch.SnapshotProvider != nil {
		cur, err := s.GetVolume(ctx, svm, vol)
		if err != nil {
			return Volume{}, fmt.Errorf("modify volume: %w", err)
		}
		if prov, err = s.providerName(*ch.SnapshotProvider, cur.HostPath); err != nil {
			return Volume{}, fmt.Errorf("modify volume: %w", err)
		}
	}
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		var err error
		v, err = getVolume(tx, svm, vol)
		if err != nil {
			return err
		}
		if ch.Type != nil {
			t, err := parseType(*ch.Type)
			if err != nil {
				return err
			}
			if t != v.Type {
				sv, err := getSVM(tx, svm)
				if err != nil {
					return err
				}
				if t == TypeDP && sv.RootVolume == vol {
					return errf(ErrInvalidArgument, "the root volume %q of Vserver %q cannot be of type DP", vol, svm)
				}
				v.Type = t
				v.TypeGeneration++
				v.TypeChangedAt = s.now()
			}
		}
		if ch.SecurityStyle != nil {
			if v.SecurityStyle, err = parseStyle(*ch.SecurityStyle, v.SecurityStyle); err != nil {
				return err
			}
		}
		if ch.JunctionPath != nil {
			j, err := validJunction(*ch.JunctionPath)
			if err != nil {
				return err
			}
			if err := checkJunctionFree(tx, svm, vol, j); err != nil {
				return err
			}
			v.JunctionPath = j
		}
		if ch.Comment != nil {
			v.Comment = *ch.Comment
		}
		if ch.SnapshotProvider != nil {
			v.SnapshotProvider = prov
		}
		if ch.Node != nil {
			if _, err := getNode(tx, *ch.Node); err != nil {
				return err
			}
			v.Node = *ch.Node
		}
		return catalog.PutJSON(tx, volKey(svm, vol), v)
	})
	if err != nil {
		return Volume{}, fmt.Errorf("modify volume: %w", err)
	}
	return v, nil
}

// SetVolumeState moves a volume to online, restricted or offline (volume
// online, volume restrict, volume offline). Asking for the current state is
// an ErrInvalidState error, as is taking an SVM's root volume out of the
// online state.
func (s *Service) SetVolumeState(ctx context.Context, svm, vol string, st VolumeState) (Volume, error) {
	var v Volume
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		var err error
		v, err = getVolume(tx, svm, vol)
		if err != nil {
			return err
		}
		switch st {
		case StateOnline, StateRestricted, StateOffline:
		default:
			return errf(ErrInvalidArgument, "%q is not a valid volume state", st)
		}
		if v.State == st {
			return errf(ErrInvalidState, "volume %q in Vserver %q is already %s", vol, svm, st)
		}
		if st != StateOnline {
			sv, err := getSVM(tx, svm)
			if err != nil {
				return err
			}
			if sv.RootVolume == vol {
				return errf(ErrInvalidState, "the root volume %q of Vserver %q cannot be made %s", vol, svm, st)
			}
		}
		v.State = st
		return catalog.PutJSON(tx, volKey(svm, vol), v)
	})
	if err != nil {
		return Volume{}, fmt.Errorf("set volume state: %w", err)
	}
	return v, nil
}

// DeleteVolume removes a volume's registration, its qtrees' registrations
// and its snapshot records. The volume must be offline, must not be its
// SVM's root volume and must have no snapshot copies (delete them first:
// they are removed through the provider while the volume is online). The
// host directory and its data are never deleted.
func (s *Service) DeleteVolume(ctx context.Context, svm, vol string) error {
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		v, err := getVolume(tx, svm, vol)
		if err != nil {
			return err
		}
		if v.State != StateOffline {
			return errf(ErrInvalidState, "volume %q in Vserver %q must be offline to be deleted; use \"volume offline -vserver %s -volume %s\" first", vol, svm, svm, vol)
		}
		sv, err := getSVM(tx, svm)
		if err != nil {
			return err
		}
		if sv.RootVolume == vol {
			return errf(ErrInUse, "volume %q is the root volume of Vserver %q and is deleted with the Vserver", vol, svm)
		}
		snaps, err := tx.List(catalog.Prefix(ns, prefixSnap, svm, vol))
		if err != nil {
			return err
		}
		if len(snaps) > 0 {
			return errf(ErrInUse, "volume %q in Vserver %q still has %d Snapshot copies; delete them first", vol, svm, len(snaps))
		}
		qs, err := tx.List(catalog.Prefix(ns, prefixQtree, svm, vol))
		if err != nil {
			return err
		}
		for _, kv := range qs {
			if err := tx.Delete(kv.Key); err != nil {
				return err
			}
		}
		return tx.Delete(volKey(svm, vol))
	})
	if err != nil {
		return fmt.Errorf("delete volume: %w", err)
	}
	return nil
}
