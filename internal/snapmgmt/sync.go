package snapmgmt

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/fsattr"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
	"github.com/tapestry-ndmp/tapestry/ndmp"
	"golang.org/x/sys/unix"
)

// recoverVolume brings the whole volume back to the snapshot: entries the
// snapshot lacks are removed, the others made equal to it (content, type,
// owner, mode, extended attributes, times, hard links). A file unchanged
// since the snapshot (same size and modification time, and a change time
// before the snapshot was taken) is not copied again.
func (m *Manager) recoverVolume(ctx context.Context, req RecoverRequest, src *os.Root, snap storage.Snapshot) (Result, error) {
	dst, err := m.writableRoot(ctx, req.SVM, req.Volume)
	if err != nil {
		return Result{}, err
	}
	defer dst.Close()
	s := &syncer{ctx: ctx, src: src, dst: dst, since: snap.CreatedAt, links: map[uint64]string{}}
	if err := s.dir("."); err != nil {
		return s.res, classify(err, ndmp.ErrSnapInvalidPath)
	}
	if err := s.rootAttrs(); err != nil {
		return s.res, classify(err, ndmp.ErrSnapInvalidPath)
	}
	return s.res, nil
}

// syncer makes a destination tree equal to a source tree.
type syncer struct {
	ctx      context.Context
	src, dst *os.Root
	since    time.Time         // when the snapshot was taken
	links    map[uint64]string // source inode of a hard-linked file -> its first destination path
	res      Result
}

// dir makes directory rel of the destination equal to the source's,
// children first.
func (s *syncer) dir(rel string) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	sd, err := s.src.Open(rel)
	if err != nil {
		return err
	}
	defer sd.Close()
	dd, err := s.dst.Open(rel)
	if err != nil {
		return err
	}
	defer dd.Close()
	want, err := names(sd, rel)
	if err != nil {
		return err
	}
	have, err := names(dd, rel)
	if err != nil {
		return err
	}
	for _, name := range have {
		if _, ok := slices.BinarySearch(want, name); !ok {
			if err := s.dst.RemoveAll(path.Join(rel, name)); err != nil {
				return err
			}
		}
	}
	for _, name := range want {
		if err := s.entry(sd, dd, rel, name); err != nil {
			return fmt.Errorf("%s: %w", path.Join(rel, name), err)
		}
	}
	return nil
}

// names lists a directory sorted, without the volume's .snapshot.
func names(d *os.File, rel string) ([]string, error) {
	all, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	if rel == "." {
		all = slices.DeleteFunc(all, func(n string) bool { return n == snapshot.Dir })
	}
	slices.Sort(all)
	return all, nil
}

// entry makes entry name of dd equal to the one of sd.
func (s *syncer) entry(sd, dd *os.File, rel, name string) error {
	sn, err := fsattr.Open(sd, name)
	if err != nil {
		return err
	}
	defer sn.Close()
	dn, err := fsattr.Open(dd, name)
	if err == nil && dn.Kind() != sn.Kind() {
		dn.Close()
		if err := s.dst.RemoveAll(path.Join(rel, name)); err != nil {
			return err
		}
		dn, err = nil, unix.ENOENT
	}
	if err != nil && !errIsNotExist(err) {
		return err
	}
	if dn != nil {
		defer dn.Close()
	}
	switch {
	case sn.IsDir():
		return s.subdir(dd, rel, name, sn, dn)
	case sn.IsRegular():
		return s.file(sd, dd, rel, name, sn, dn)
	}
	return s.special(sd, dd, name, sn, dn)
}

// subdir makes the directory, fills it, then sets its attributes.
func (s *syncer) subdir(dd *os.File, rel, name string, sn, dn *fsattr.Node) error {
	if dn == nil {
		if err := unix.Mkdirat(int(dd.Fd()), name, 0o700); err != nil {
			return err
		}
	}
	if err := s.dir(path.Join(rel, name)); err != nil {
		return err
	}
	return syncAttrs(dd, name, sn)
}

// file makes a regular file equal: a link to an earlier path of the same
// source inode, the same file when unchanged, or a fresh copy.
func (s *syncer) file(sd, dd *os.File, rel, name string, sn, dn *fsattr.Node) error {
	p := path.Join(rel, name)
	if sn.St.Nlink > 1 {
		if first, ok := s.links[sn.St.Ino]; ok {
			return s.link(dd, first, p, name, dn)
		}
		s.links[sn.St.Ino] = p
	}
	if dn != nil && s.unchanged(dn, sn) {
		return syncAttrs(dd, name, sn)
	}
	return copyRegular(s.ctx, sd, dd, sn, name, name, &s.res)
}

// link makes p a hard link to first, unless it already is one.
func (s *syncer) link(dd *os.File, first, p, name string, dn *fsattr.Node) error {
	fd, fn, err := openIn(s.dst, first)
	if err != nil {
		return err
	}
	defer fd.Close()
	defer fn.Close()
	if dn != nil && dn.SameAs(fn) {
		return nil
	}
	if dn != nil {
		if err := unix.Unlinkat(int(dd.Fd()), name, 0); err != nil {
			return err
		}
	}
	return s.dst.Link(first, p)
}

// unchanged reports whether destination file dn still holds what the
// snapshot holds: the same size and modification time, and no change
// since the snapshot was taken.
func (s *syncer) unchanged(dn, sn *fsattr.Node) bool {
	ctime := time.Unix(dn.St.Ctim.Unix())
	return dn.St.Size == sn.St.Size && dn.St.Mtim == sn.St.Mtim && ctime.Before(s.since)
}

// special makes a symbolic link, device, FIFO or socket equal.
func (s *syncer) special(sd, dd *os.File, name string, sn, dn *fsattr.Node) error {
	if dn != nil && sn.IsSymlink() {
		a, _ := readlinkat(sd, name)
		b, _ := readlinkat(dd, name)
		if a == b {
			return syncAttrs(dd, name, sn)
		}
	}
	if dn != nil {
		if err := unix.Unlinkat(int(dd.Fd()), name, 0); err != nil {
			return err
		}
	}
	var err error
	if sn.IsSymlink() {
		var target string
		if target, err = readlinkat(sd, name); err == nil {
			err = unix.Symlinkat(target, int(dd.Fd()), name)
		}
	} else {
		err = unix.Mknodat(int(dd.Fd()), name, sn.St.Mode, int(sn.St.Rdev))
	}
	if err != nil {
		return err
	}
	s.res.Files++
	return syncAttrs(dd, name, sn)
}

func readlinkat(d *os.File, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(int(d.Fd()), name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// syncAttrs gives entry name of dd the attributes of sn where they differ.
func syncAttrs(dd *os.File, name string, sn *fsattr.Node) error {
	dn, err := fsattr.Open(dd, name)
	if err != nil {
		return err
	}
	defer dn.Close()
	want, err := sn.Xattrs()
	if err != nil {
		return err
	}
	have, err := dn.Xattrs()
	if err != nil {
		return err
	}
	same := dn.St.Uid == sn.St.Uid && dn.St.Gid == sn.St.Gid && dn.St.Mode == sn.St.Mode &&
		dn.St.Mtim == sn.St.Mtim && dn.St.Atim == sn.St.Atim && maps.EqualFunc(have, want, bytes.Equal)
	if same {
		return nil
	}
	return fsattr.Apply(dn, fsattr.AttrsOf(sn, want))
}

// rootAttrs gives the volume's root the snapshot root's attributes.
func (s *syncer) rootAttrs() error {
	sd, err := s.src.Open(".")
	if err != nil {
		return err
	}
	defer sd.Close()
	dd, err := s.dst.Open(".")
	if err != nil {
		return err
	}
	defer dd.Close()
	sn, err := fsattr.Open(sd, ".")
	if err != nil {
		return err
	}
	defer sn.Close()
	return syncAttrs(dd, ".", sn)
}
