package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
)

// Location is a backup path resolved onto the host.
type Location struct {
	SVM    SVM
	Volume Volume
	// Snapshot is set when the path went through the volume's
	// .snapshot/<name> directory.
	Snapshot *Snapshot
	// Qtree is set when the path is a registered qtree or lies inside one.
	Qtree *Qtree
	// Root is the directory the relative path starts from: the volume's
	// host path, or the snapshot's host path.
	Root string
	// RelPath is the slash-separated path below Root ("" for Root itself).
	RelPath string
	// HostPath is Root joined with RelPath.
	HostPath string
}

// SplitBackupPath splits a backup path /svm/volume[/sub/path] (N15) into
// its parts. Repeated and trailing slashes are accepted; "." and ".."
// components, empty names and NUL bytes are not.
func SplitBackupPath(p string) (svm, vol, rel string, err error) {
	if !strings.HasPrefix(p, "/") {
		return "", "", "", errf(ErrInvalidArgument, "path %q is not of the form /vserver_name/volume_name[/path]", p)
	}
	if strings.ContainsRune(p, 0) {
		return "", "", "", errf(ErrInvalidArgument, "path %q contains a NUL byte", p)
	}
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "":
			continue
		case ".", "..":
			return "", "", "", errf(ErrInvalidArgument, "path %q must not contain \".\" or \"..\" components", p)
		}
		parts = append(parts, c)
	}
	if len(parts) < 2 {
		return "", "", "", errf(ErrInvalidArgument, "path %q is not of the form /vserver_name/volume_name[/path]", p)
	}
	return parts[0], parts[1], strings.Join(parts[2:], "/"), nil
}

// Resolve maps a backup path /svm/volume[/sub/path] (N15) to its SVM,
// volume and host path. A path below /svm/volume/.snapshot/<name> resolves
// into that snapshot copy. The path need not exist, but the part of it
// that exists must not leave the volume (or snapshot) through a symbolic
// link. Resolve does not look at the volume's state; callers check it.
func (s *Service) Resolve(ctx context.Context, backupPath string) (Location, error) {
	svm, vol, rel, err := SplitBackupPath(backupPath)
	if err != nil {
		return Location{}, err
	}
	var loc Location
	err = s.store.View(ctx, func(tx catalog.Tx) error {
		var err error
		if loc.SVM, err = getSVM(tx, svm); err != nil {
			return err
		}
		if loc.Volume, err = getVolume(tx, svm, vol); err != nil {
			return err
		}
		loc.Root, loc.RelPath = loc.Volume.HostPath, rel
		if first, rest, _ := strings.Cut(rel, "/"); first == snapshot.Dir && rel != snapshot.Dir {
			name, below, _ := strings.Cut(rest, "/")
			p, err := getSnapshot(tx, svm, vol, name)
			if err != nil {
				return err
			}
			loc.Snapshot = &p
			loc.Root, loc.RelPath = p.HostPath, below
		}
		if top, _, _ := strings.Cut(loc.RelPath, "/"); top != "" {
			q, err := catalog.GetJSON[Qtree](tx, qtreeKey(svm, vol, top))
			if err == nil {
				loc.Qtree = &q
			} else if !errors.Is(err, catalog.ErrNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Location{}, err
	}
	loc.HostPath = filepath.Join(loc.Root, filepath.FromSlash(loc.RelPath))
	if err := inside(loc.Root, loc.RelPath); err != nil {
		return Location{}, errf(ErrInvalidArgument, "path %q: %v", backupPath, err)
	}
	return loc, nil
}

// inside checks that following the existing prefix of rel below root,
// symbolic links included, stays below root.
func inside(root, rel string) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("the volume's directory does not exist on the host")
		}
		return err
	}
	cur := root
	for _, c := range strings.Split(rel, "/") {
		if c == "" {
			continue
		}
		next := filepath.Join(cur, c)
		if _, err := os.Lstat(next); err != nil {
			return nil // the rest does not exist yet
		}
		real, err := filepath.EvalSymlinks(next)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return errors.New("a symbolic link in the path points nowhere")
			}
			return err
		}
		if real != realRoot && !strings.HasPrefix(real, strings.TrimSuffix(realRoot, "/")+"/") {
			return errors.New("a symbolic link in the path leads out of the volume")
		}
		cur = next
	}
	return nil
}
