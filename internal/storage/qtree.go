package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
)

// Qtree is a top-level directory of a volume registered as a qtree.
type Qtree struct {
	Name          string        `json:"qtree"`
	SVM           string        `json:"vserver"`
	Volume        string        `json:"volume"`
	ID            int           `json:"id"`
	SecurityStyle SecurityStyle `json:"security-style"`
	CreatedAt     time.Time     `json:"create-time"`
}

// MaxQtreeID is the highest qtree id; ids start at 1 (0 is the volume).
const MaxQtreeID = 4994

// QtreeSpec describes a new qtree.
type QtreeSpec struct {
	Name   string
	SVM    string
	Volume string
	// SecurityStyle defaults to the volume's.
	SecurityStyle SecurityStyle
	// Existing registers an existing top-level directory instead of
	// creating a new one.
	Existing bool
}

func qtreeKey(svm, vol, name string) string { return catalog.Key(ns, prefixQtree, svm, vol, name) }

// writableVolume returns the volume when it is online and of type RW.
func writableVolume(tx catalog.Tx, svm, vol string) (Volume, error) {
	v, err := getVolume(tx, svm, vol)
	if err != nil {
		return v, err
	}
	if v.State != StateOnline {
		return v, errf(ErrInvalidState, "volume %q in Vserver %q is %s", vol, svm, v.State)
	}
	if v.ReadOnly() {
		return v, errf(ErrReadOnly, "volume %q in Vserver %q is read-only (type DP)", vol, svm)
	}
	return v, nil
}

// CreateQtree creates the directory of a new qtree at the volume's top
// level (mode 0755) and registers it; with Existing it registers a
// directory that is already there. The volume must be online and RW.
//
// The directory is made outside the catalog transaction (catalog.Store's
// contract): the request is checked first, then the directory is made,
// then the qtree is registered after the same checks; a directory it made
// is removed again when the registration fails.
func (s *Service) CreateQtree(ctx context.Context, spec QtreeSpec) (Qtree, error) {
	if err := validQtreeName(spec.Name); err != nil {
		return Qtree{}, err
	}
	if spec.Name == snapshot.Dir {
		return Qtree{}, errf(ErrInvalidArgument, "qtree name %q is reserved", spec.Name)
	}
	v, err := catalog.Read(ctx, s.store, func(tx catalog.Tx) (Volume, error) {
		_, v, err := newQtree(tx, spec, time.Time{})
		return v, err
	})
	if err != nil {
		return Qtree{}, fmt.Errorf("create qtree: %w", err)
	}
	dir := filepath.Join(v.HostPath, spec.Name)
	if err := qtreeDir(dir, spec); err != nil {
		return Qtree{}, fmt.Errorf("create qtree: %w", err)
	}
	var q Qtree
	now := s.now()
	err = s.store.Update(ctx, func(tx catalog.Tx) error {
		var err error
		if q, _, err = newQtree(tx, spec, now); err != nil {
			return err
		}
		return catalog.PutJSON(tx, qtreeKey(spec.SVM, spec.Volume, spec.Name), q)
	})
	if err != nil {
		if !spec.Existing {
			_ = os.Remove(dir)
		}
		return Qtree{}, fmt.Errorf("create qtree: %w", err)
	}
	return q, nil
}

// newQtree checks that spec can be registered and returns its record,
// with the first free id, and the volume.
func newQtree(tx catalog.Tx, spec QtreeSpec, now time.Time) (Qtree, Volume, error) {
	q := Qtree{Name: spec.Name, SVM: spec.SVM, Volume: spec.Volume, CreatedAt: now}
	v, err := writableVolume(tx, spec.SVM, spec.Volume)
	if err != nil {
		return q, v, err
	}
	if q.SecurityStyle, err = parseStyle(spec.SecurityStyle, v.SecurityStyle); err != nil {
		return q, v, err
	}
	all, err := catalog.ListJSON[Qtree](tx, catalog.Prefix(ns, prefixQtree, spec.SVM, spec.Volume))
	if err != nil {
		return q, v, err
	}
	used := make(map[int]bool, len(all))
	for _, o := range all {
		if o.Name == spec.Name {
			return q, v, errf(ErrExists, "qtree %q in volume %q of Vserver %q already exists", spec.Name, spec.Volume, spec.SVM)
		}
		used[o.ID] = true
	}
	for id := 1; id <= MaxQtreeID && q.ID == 0; id++ {
		if !used[id] {
			q.ID = id
		}
	}
	if q.ID == 0 {
		return q, v, errf(ErrLimit, "volume %q in Vserver %q already has %d qtrees", spec.Volume, spec.SVM, MaxQtreeID)
	}
	return q, v, nil
}

// qtreeDir makes the directory of a new qtree, or checks that the one to
// register (spec.Existing) is there.
func qtreeDir(dir string, spec QtreeSpec) error {
	if spec.Existing {
		st, err := os.Lstat(dir)
		if err != nil {
			return errf(ErrNotFound, "directory %q does not exist in volume %q", spec.Name, spec.Volume)
		}
		if !st.IsDir() {
			return errf(ErrInvalidArgument, "%q in volume %q is not a directory", spec.Name, spec.Volume)
		}
		return nil
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return errf(ErrExists, "a file or directory named %q already exists in volume %q of Vserver %q", spec.Name, spec.Volume, spec.SVM)
		}
		return fmt.Errorf("create qtree directory: %w", err)
	}
	return nil
}

// GetQtree returns one qtree.
func (s *Service) GetQtree(ctx context.Context, svm, vol, name string) (Qtree, error) {
	return catalog.Read(ctx, s.store, func(tx catalog.Tx) (Qtree, error) {
		return getQtree(tx, svm, vol, name)
	})
}

func getQtree(tx catalog.Tx, svm, vol, name string) (Qtree, error) {
	q, err := catalog.GetJSON[Qtree](tx, qtreeKey(svm, vol, name))
	if errors.Is(err, catalog.ErrNotFound) {
		if _, err := getVolume(tx, svm, vol); err != nil {
			return q, err
		}
		return q, errf(ErrNotFound, "qtree %q in volume %q of Vserver %q does not exist", name, vol, svm)
	}
	return q, err
}

// ListQtrees lists the qtrees of a volume in name order.
func (s *Service) ListQtrees(ctx context.Context, svm, vol string) ([]Qtree, error) {
	var out []Qtree
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		if _, err := getVolume(tx, svm, vol); err != nil {
			return err
		}
		var err error
		out, err = catalog.ListJSON[Qtree](tx, catalog.Prefix(ns, prefixQtree, svm, vol))
		return err
	})
	return out, err
}

// ModifyQtree changes a qtree's security style.
func (s *Service) ModifyQtree(ctx context.Context, svm, vol, name string, style SecurityStyle) (Qtree, error) {
	var q Qtree
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		var err error
		if q, err = getQtree(tx, svm, vol, name); err != nil {
			return err
		}
		if style == "" {
			return errf(ErrInvalidArgument, "a security style is required")
		}
		if q.SecurityStyle, err = parseStyle(style, q.SecurityStyle); err != nil {
			return err
		}
		return catalog.PutJSON(tx, qtreeKey(svm, vol, name), q)
	})
	if err != nil {
		return Qtree{}, fmt.Errorf("modify qtree: %w", err)
	}
	return q, nil
}

// DeleteQtree deletes a qtree and its directory. A qtree whose directory
// is not empty is refused unless force is set, in which case its contents
// are deleted too. A directory that is already gone only loses its
// registration.
//
// The directory is removed outside the catalog transaction (catalog.Store's
// contract), before the registration: a removal that fails half way leaves
// the qtree registered, and deleting it again finishes the job.
func (s *Service) DeleteQtree(ctx context.Context, svm, vol, name string, force bool) error {
	v, err := catalog.Read(ctx, s.store, func(tx catalog.Tx) (Volume, error) {
		return deletableQtree(tx, svm, vol, name)
	})
	if err != nil {
		return fmt.Errorf("delete qtree: %w", err)
	}
	if err := removeQtreeDir(filepath.Join(v.HostPath, name), svm, vol, name, force); err != nil {
		return fmt.Errorf("delete qtree: %w", err)
	}
	err = s.store.Update(ctx, func(tx catalog.Tx) error {
		if _, err := deletableQtree(tx, svm, vol, name); err != nil {
			return err
		}
		return tx.Delete(qtreeKey(svm, vol, name))
	})
	if err != nil {
		return fmt.Errorf("delete qtree: %w", err)
	}
	return nil
}

// deletableQtree checks that the qtree exists in a writable volume and
// returns the volume.
func deletableQtree(tx catalog.Tx, svm, vol, name string) (Volume, error) {
	if _, err := getQtree(tx, svm, vol, name); err != nil {
		return Volume{}, err
	}
	return writableVolume(tx, svm, vol)
}

// removeQtreeDir removes the directory of a qtree: an empty one, or with
// force one with contents. A directory that is not there is no error.
func removeQtreeDir(dir, svm, vol, name string, force bool) error {
	empty, err := emptyDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("qtree directory: %w", err)
	case !empty && !force:
		return errf(ErrInUse, "qtree %q in volume %q of Vserver %q is not empty; use -force true to delete it with its contents", name, vol, svm)
	case force:
		err = os.RemoveAll(dir)
	default:
		err = os.Remove(dir) // fails if a file appeared meanwhile
	}
	if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		return errf(ErrInUse, "qtree %q in volume %q of Vserver %q is not empty; use -force true to delete it with its contents", name, vol, svm)
	}
	if err != nil {
		return fmt.Errorf("delete qtree directory: %w", err)
	}
	return nil
}

func emptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return false, err
}
