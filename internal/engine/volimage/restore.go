package volimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"golang.org/x/sys/unix"
)

// entryRef is where an inode is linked: its directory and name.
type entryRef struct {
	Dir  uint64
	Name string
}

// State is what a restored volume's next incremental restore needs: the
// image chain it continues and the map from the image's inode numbers to
// the destination's entries.
type State struct {
	SetID    [16]byte
	Time     time.Time // the last image restored
	Sequence uint32
	Root     uint64
	Loc      map[uint64]entryRef          // inode -> its first entry
	Dirs     map[uint64]map[string]uint64 // directory -> entries
}

func newState() *State {
	return &State{Loc: map[uint64]entryRef{}, Dirs: map[uint64]map[string]uint64{}}
}

// extLoc is where the data of an extent was first written: a file of the
// live tree (by inode) until its snapshot is made, then a path in it.
type extLoc struct {
	ino  uint64
	path string
	off  uint64 // file offset of the extent's first byte
}

// restorer applies the records of an image to a destination volume.
type restorer struct {
	ctx     context.Context
	root    *os.Root
	st      *State
	attrs   map[uint64]*smtape.Inode // this snapshot's inode records
	pending *smtape.Extent           // the extent whose first Map comes next
	extLoc  map[uint64]extLoc
	snap    smtape.Snapshot
	// makeSnapshot, when set, makes the destination's snapshot of the
	// tree as each snapshot of the image ends.
	makeSnapshot func(name string, created time.Time) error
	nextTape     func() (io.Reader, error)
	file         *os.File // the data file being written
	fileIno      uint64
	stats        RestoreStats
}

// RestoreStats counts what a restore wrote.
type RestoreStats struct {
	Inodes, Bytes, ClonedBytes int64
	EncodedBytes               int64 // written as compressed extents (btrfs encoded writes)
}

// apply reads the image to its end and applies every record.
func (r *restorer) apply(rd *smtape.Reader) error {
	defer r.closeFile()
	for {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		c, err := rd.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil && rd.AtTapeEnd() && r.nextTape != nil {
			err = r.changeTape(rd)
			if err == nil {
				continue
			}
		}
		if err != nil {
			return err
		}
		rec, err := smtape.DecodeRecord(c)
		if err != nil {
			return err
		}
		if err := r.record(rec, c.Flags); err != nil {
			return err
		}
	}
}

// changeTape goes on with the image on the next tape.
func (r *restorer) changeTape(rd *smtape.Reader) error {
	next, err := r.nextTape()
	if err != nil {
		return err
	}
	return rd.NextTape(next)
}

func (r *restorer) record(rec smtape.Record, flags uint16) error {
	switch x := rec.(type) {
	case *smtape.SnapshotStart:
		r.snap, r.attrs = x.Snapshot, map[uint64]*smtape.Inode{}
		return nil
	case *smtape.Inode:
		return r.inode(x, flags&smtape.FlagData != 0)
	case *smtape.Dirent:
		return r.dirent(x)
	case *smtape.Extent:
		x.Data = append([]byte(nil), x.Data...) // the reader reuses its buffer
		r.pending = x
		return nil
	case *smtape.Map:
		return r.mapData(x)
	case *smtape.Delete:
		return r.delete(x)
	case *smtape.SnapshotEnd:
		return r.endSnapshot()
	}
	return fmt.Errorf("record %T: %w", rec, smtape.ErrInternal)
}

// inode keeps an inode's attributes for the end of the snapshot; the first
// inode of the first snapshot is the root. New data replaces the old.
func (r *restorer) inode(x *smtape.Inode, data bool) error {
	r.attrs[x.Ino] = x
	r.stats.Inodes++
	if r.st.Root == 0 {
		r.st.Root = x.Ino
		r.st.Loc[x.Ino] = entryRef{}
		r.st.Dirs[x.Ino] = map[string]uint64{}
		return nil
	}
	if _, ok := r.st.Loc[x.Ino]; ok && data && x.Mode&unix.S_IFMT == unix.S_IFREG {
		r.closeFile()
		return r.truncate(r.path(x.Ino), 0)
	}
	return nil
}

// path returns an inode's path below the destination's root.
func (r *restorer) path(ino uint64) string {
	var parts []string
	for ino != r.st.Root {
		ref, ok := r.st.Loc[ino]
		if !ok || len(parts) > 4096 {
			return "\x00lost" // no entry: every use of it fails
		}
		parts = append(parts, ref.Name)
		ino = ref.Dir
	}
	slices.Reverse(parts)
	if len(parts) == 0 {
		return "."
	}
	return path.Join(parts...)
}

// dirent links inode x.Ino as x.Name in directory x.Dir: a new inode is
// made, a known directory moved, a known file linked.
func (r *restorer) dirent(x *smtape.Dirent) error {
	entries, ok := r.st.Dirs[x.Dir]
	if !ok {
		return fmt.Errorf("entry %q in inode %d, which is no directory: %w", x.Name, x.Dir, smtape.ErrReadImage)
	}
	if !validName(x.Name) {
		return fmt.Errorf("entry name %q: %w", x.Name, smtape.ErrReadImage)
	}
	p := path.Join(r.path(x.Dir), x.Name)
	if old, taken := entries[x.Name]; taken {
		if err := r.unlink(x.Dir, x.Name, old); err != nil {
			return err
		}
	}
	if err := r.place(x, p); err != nil {
		return err
	}
	entries[x.Name] = x.Ino
	return nil
}

func validName(n string) bool {
	return n != "" && n != "." && n != ".." && len(n) <= 255 && !slices.Contains([]byte(n), '/') && !slices.Contains([]byte(n), 0)
}

// place makes entry p of inode x.Ino.
func (r *restorer) place(x *smtape.Dirent, p string) error {
	if ref, known := r.st.Loc[x.Ino]; known {
		old := r.path(x.Ino)
		if _, isDir := r.st.Dirs[x.Ino]; isDir {
			delete(r.st.Dirs[ref.Dir], ref.Name)
			r.st.Loc[x.Ino] = entryRef{Dir: x.Dir, Name: x.Name}
			return r.root.Rename(old, p)
		}
		return r.root.Link(old, p)
	}
	a, ok := r.attrs[x.Ino]
	if !ok {
		return fmt.Errorf("entry %q of inode %d without its inode record: %w", x.Name, x.Ino, smtape.ErrReadImage)
	}
	if err := r.create(p, a); err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	r.st.Loc[x.Ino] = entryRef{Dir: x.Dir, Name: x.Name}
	if a.Mode&unix.S_IFMT == unix.S_IFDIR {
		r.st.Dirs[x.Ino] = map[string]uint64{}
	}
	return nil
}

// create makes a new entry of the inode's type.
func (r *restorer) create(p string, a *smtape.Inode) error {
	switch a.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return r.root.Mkdir(p, 0o700)
	case unix.S_IFREG:
		f, err := r.root.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		return f.Close()
	case unix.S_IFLNK:
		return r.root.Symlink(a.Target, p)
	}
	dir, err := r.root.Open(path.Dir(p))
	if err != nil {
		return err
	}
	defer dir.Close()
	return unix.Mknodat(int(dir.Fd()), path.Base(p), a.Mode, int(a.Rdev))
}

// unlink removes entry name of directory dir, which holds inode ino.
func (r *restorer) unlink(dir uint64, name string, ino uint64) error {
	p := path.Join(r.path(dir), name)
	if err := r.root.RemoveAll(p); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	delete(r.st.Dirs[dir], name)
	if r.st.Loc[ino] == (entryRef{Dir: dir, Name: name}) {
		r.forget(ino)
	}
	return nil
}

// forget drops an inode, and a directory's whole subtree, from the state.
func (r *restorer) forget(ino uint64) {
	for _, child := range r.st.Dirs[ino] {
		if r.st.Loc[child].Dir == ino {
			r.forget(child)
		}
	}
	delete(r.st.Dirs, ino)
	delete(r.st.Loc, ino)
	if r.fileIno == ino {
		r.closeFile()
	}
}

// delete removes an entry the image says is gone, if it still holds the
// inode it held (a later entry may have taken its name).
func (r *restorer) delete(x *smtape.Delete) error {
	if x.Name == "" {
		if ref, ok := r.st.Loc[x.Ino]; ok && x.Ino != r.st.Root {
			return r.unlink(ref.Dir, ref.Name, x.Ino)
		}
		return nil
	}
	if cur, ok := r.st.Dirs[x.Dir][x.Name]; ok && cur == x.Ino {
		return r.unlink(x.Dir, x.Name, x.Ino)
	}
	return nil
}

// closeFile closes the data file being written.
func (r *restorer) closeFile() {
	if r.file != nil {
		r.file.Close()
		r.file, r.fileIno = nil, 0
	}
}

// dataFile returns the open data file of inode ino.
func (r *restorer) dataFile(ino uint64) (*os.File, error) {
	if r.file != nil && r.fileIno == ino {
		return r.file, nil
	}
	r.closeFile()
	if _, ok := r.st.Loc[ino]; !ok {
		return nil, fmt.Errorf("data for inode %d, which has no entry: %w", ino, smtape.ErrReadImage)
	}
	f, err := r.root.OpenFile(r.path(ino), os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	r.file, r.fileIno = f, ino
	return f, nil
}

// mapData writes a file's range: the pending extent's data the first time,
// a clone of where it was first written afterwards.
func (r *restorer) mapData(m *smtape.Map) error {
	f, err := r.dataFile(m.Ino)
	if err != nil {
		return err
	}
	if p := r.pending; p != nil && p.ID == m.Extent {
		if err := r.writeExtent(f, m, p); err != nil {
			return err
		}
		r.stats.Bytes += int64(m.Length)
		r.extLoc[m.Extent] = extLoc{ino: m.Ino, off: m.Offset - m.ExtentOffset}
		return nil
	}
	loc, ok := r.extLoc[m.Extent]
	if !ok {
		return fmt.Errorf("map of extent %d, which the image has not held: %w", m.Extent, smtape.ErrReadImage)
	}
	return r.cloneRange(f, loc, m)
}

// writeExtent writes the first range mapped of an extent: a compressed one
// as it is where the file system takes it (btrfs), decoded elsewhere.
func (r *restorer) writeExtent(f *os.File, m *smtape.Map, x *smtape.Extent) error {
	if m.ExtentOffset+m.Length > x.Length || (x.Encoding == smtape.EncRaw && x.Length != uint64(len(x.Data))) {
		return fmt.Errorf("map of %d bytes beyond extent %d: %w", m.Length, m.Extent, smtape.ErrReadImage)
	}
	if x.Encoding != smtape.EncRaw {
		if err := encodedWrite(int(f.Fd()), m.Offset, m, x); err == nil {
			r.stats.EncodedBytes += int64(m.Length)
			return nil
		}
		plain, err := decode(x)
		if err != nil {
			return err
		}
		x = &smtape.Extent{ID: x.ID, Length: x.Length, Data: plain}
	}
	_, err := f.WriteAt(x.Data[m.ExtentOffset:m.ExtentOffset+m.Length], int64(m.Offset))
	return err
}

// cloneRange maps m's range from where its extent was first written.
func (r *restorer) cloneRange(dst *os.File, loc extLoc, m *smtape.Map) error {
	src := loc.path
	if src == "" {
		src = r.path(loc.ino)
	}
	in, err := r.root.Open(src)
	if err != nil {
		return fmt.Errorf("open %s for extent %d: %w", src, m.Extent, err)
	}
	defer in.Close()
	fcr := unix.FileCloneRange{Src_fd: int64(in.Fd()), Src_offset: loc.off + m.ExtentOffset, Src_length: m.Length, Dest_offset: m.Offset}
	if err := unix.IoctlFileCloneRange(int(dst.Fd()), &fcr); err == nil {
		r.stats.ClonedBytes += int64(m.Length)
		return nil
	}
	buf := make([]byte, m.Length)
	if _, err := in.ReadAt(buf, int64(fcr.Src_offset)); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read extent %d from %s: %w", m.Extent, src, err)
	}
	_, err = dst.WriteAt(buf, int64(m.Offset))
	r.stats.Bytes += int64(m.Length)
	return err
}
