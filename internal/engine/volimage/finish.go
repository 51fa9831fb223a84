package volimage

import (
	"cmp"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"github.com/tapestry-ndmp/tapestry/internal/fsattr"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
	"golang.org/x/sys/unix"
)

// endSnapshot gives every inode of the snapshot its attributes (files
// first, then directories deepest first, so that making entries does not
// change a directory's times afterwards), makes the destination's
// snapshot, and points the extents written in the live tree at it.
func (r *restorer) endSnapshot() error {
	r.closeFile()
	type item struct {
		ino   uint64
		p     string
		depth int
		dir   bool
	}
	var items []item
	for ino, a := range r.attrs {
		if _, ok := r.st.Loc[ino]; !ok {
			continue // its entries are gone again
		}
		p := r.path(ino)
		items = append(items, item{ino, p, strings.Count(p, "/"), a.Mode&unix.S_IFMT == unix.S_IFDIR})
	}
	slices.SortFunc(items, func(a, b item) int {
		if a.dir != b.dir {
			if a.dir {
				return 1
			}
			return -1
		}
		return cmp.Compare(b.depth, a.depth)
	})
	for _, it := range items {
		if err := r.setAttrs(it.p, r.attrs[it.ino]); err != nil {
			return fmt.Errorf("%s: %w", it.p, err)
		}
	}
	if r.makeSnapshot == nil {
		return nil
	}
	if err := r.makeSnapshot(r.snap.Name, r.snap.Created); err != nil {
		return err
	}
	for id, loc := range r.extLoc {
		if loc.path == "" {
			loc.path = path.Join(snapshot.Dir, r.snap.Name, r.path(loc.ino))
			r.extLoc[id] = loc
		}
	}
	return nil
}

// setAttrs gives the entry at p the record's size and attributes.
func (r *restorer) setAttrs(p string, a *smtape.Inode) error {
	if a.Mode&unix.S_IFMT == unix.S_IFREG {
		if err := r.truncate(p, int64(a.Size)); err != nil {
			return err
		}
	}
	dir, err := r.root.Open(path.Dir(p))
	if err != nil {
		return err
	}
	defer dir.Close()
	name := path.Base(p)
	n, err := fsattr.Open(dir, name)
	if err != nil {
		return err
	}
	defer n.Close()
	xattrs := make(map[string][]byte, len(a.Xattrs))
	for _, x := range a.Xattrs {
		xattrs[x.Name] = x.Value
	}
	return fsattr.Apply(n, fsattr.Attrs{
		UID: a.UID, GID: a.GID, Mode: a.Mode & 0o7777, Xattrs: xattrs,
		Atime: timespec(a.Atime), Mtime: timespec(a.Mtime),
	})
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// truncate sets the size of the regular file at p.
func (r *restorer) truncate(p string, size int64) error {
	f, err := r.root.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
