package volimage

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"github.com/tapestry-ndmp/tapestry/internal/fsattr"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
	"golang.org/x/sys/unix"
)

// pieceSize bounds the data of one extent record: a longer extent of the
// file system travels as several pieces, each stored once.
const pieceSize = 1 << 20

// tree is what an image holds of one snapshot: every inode by its
// canonical number (the live volume's inode number, so that the same file
// has the same number in every snapshot of the volume).
type tree struct {
	root   uint64
	inodes map[uint64]*inodeState
}

// inodeState is how an inode looked in a snapshot.
type inodeState struct {
	attrs   [16]byte          // digest of the attributes
	data    [16]byte          // digest of a regular file's extents
	entries map[string]uint64 // a directory's entries
}

// recordWriter is where a scanner writes its records: an image, or nothing
// while it reads the base snapshot of an incremental.
type recordWriter interface {
	WriteRecord(rec smtape.Record) error
	WriteRecordFlags(rec smtape.Record, flags uint16) error
}

// discard is a recordWriter that keeps nothing.
type discard struct{}

func (discard) WriteRecord(smtape.Record) error              { return nil }
func (discard) WriteRecordFlags(smtape.Record, uint16) error { return nil }

// pieceKey names a piece of data by where the file system stores it.
type pieceKey struct{ physical, length uint64 }

// scanner writes the records of the snapshots of one image.
type scanner struct {
	ctx       context.Context
	w         recordWriter
	ids       snapshot.IdentityMap // snapshot inode -> canonical number; nil: the same
	prev      *tree                // the previous snapshot of the image; nil for the first
	cur       *tree
	pieces    map[pieceKey]uint64 // data already in the image
	encPieces map[encKey]uint64   // compressed extents already in the image
	encBuf    []byte
	nextExt   uint64
	deletes   []smtape.Delete
	stats     *Stats
	dry       bool // reading the base of an incremental: no data is read
	buf       []byte
}

// Stats counts what a backup read and wrote.
type Stats struct {
	Inodes, Extents, SharedPieces int64
	DataBytes                     int64 // file data read from the snapshots
}

// scanSnapshot writes the records of the snapshot rooted at dir: all of it
// for the first snapshot of the image, what changed since the previous one
// otherwise.
func (s *scanner) scanSnapshot(dir string, snap smtape.Snapshot) error {
	s.cur = &tree{inodes: map[uint64]*inodeState{}}
	s.deletes = nil
	if err := s.w.WriteRecord(&smtape.SnapshotStart{Snapshot: snap}); err != nil {
		return err
	}
	root, err := s.lstat(dir)
	if err != nil {
		return err
	}
	s.cur.root = s.canonical(root.Ino)
	if _, err := s.visit(dir, root); err != nil {
		return err
	}
	if err := s.dir(dir, root); err != nil {
		return err
	}
	for i := range s.deletes {
		if err := s.w.WriteRecord(&s.deletes[i]); err != nil {
			return err
		}
	}
	if err := s.w.WriteRecord(&smtape.SnapshotEnd{Snapshot: snap}); err != nil {
		return err
	}
	s.prev = s.cur
	return nil
}

func (s *scanner) lstat(p string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", p, err)
	}
	return &st, nil
}

// canonical returns the number an inode of the snapshot has in the image.
func (s *scanner) canonical(ino uint64) uint64 {
	if s.ids == nil {
		return ino
	}
	if live, ok := s.ids.Live(ino); ok {
		return live
	}
	return ino | 1<<63
}

// dir writes the entries of directory p (canonical number from st), then
// the directories below it, depth first.
func (s *scanner) dir(p string, st *unix.Stat_t) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	ino := s.canonical(st.Ino)
	names, err := readNames(p, ino == s.cur.root)
	if err != nil {
		return err
	}
	state := s.cur.inodes[ino]
	var subdirs []string
	for _, name := range names {
		child := filepath.Join(p, name)
		cst, err := s.lstat(child)
		if err != nil {
			return err
		}
		cino := s.canonical(cst.Ino)
		state.entries[name] = cino
		fd, err := s.visit(child, cst)
		if err != nil {
			return err
		}
		if s.newEntry(ino, name, cino) {
			if err := s.w.WriteRecord(&smtape.Dirent{Dir: ino, Name: name, Ino: cino}); err != nil {
				return err
			}
		}
		if cst.Mode&unix.S_IFMT == unix.S_IFDIR {
			subdirs = append(subdirs, child)
		}
		if fd != nil {
			err := s.writeData(child, fd, cst, cino)
			fd.f.Close()
			if err != nil {
				return err
			}
		}
	}
	s.noteDeletes(ino, state)
	for _, sub := range subdirs {
		cst, err := s.lstat(sub)
		if err != nil {
			return err
		}
		if err := s.dir(sub, cst); err != nil {
			return err
		}
	}
	return nil
}

// readNames lists a directory sorted; at the root, the volume's own
// .snapshot directory is not part of it.
func readNames(p string, root bool) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", p, err)
	}
	if root {
		names = slices.DeleteFunc(names, func(n string) bool { return n == snapshot.Dir })
	}
	slices.Sort(names)
	return names, nil
}

// newEntry reports whether the entry is not in the previous snapshot.
func (s *scanner) newEntry(dir uint64, name string, ino uint64) bool {
	if s.prev == nil {
		return true
	}
	var had uint64
	ok := false
	if old := s.prev.inodes[dir]; old != nil {
		had, ok = old.entries[name]
	}
	return !ok || had != ino
}

// noteDeletes queues the entries of the directory that the previous
// snapshot had and this one has not (or has for another inode).
func (s *scanner) noteDeletes(dir uint64, state *inodeState) {
	if s.prev == nil {
		return
	}
	old, ok := s.prev.inodes[dir]
	if !ok || old.entries == nil {
		return
	}
	for name, ino := range old.entries {
		if cur, ok := state.entries[name]; !ok || cur != ino {
			s.deletes = append(s.deletes, smtape.Delete{Ino: ino, Dir: dir, Name: name})
		}
	}
}

// fileData is a regular file whose data follows its records: open, with
// its extents.
type fileData struct {
	f    *os.File
	exts []extent
}

// visit records an inode the first time the snapshot meets it and writes
// its Inode record when it is new or changed. It returns the file whose
// data must follow (nil when none must), which the caller closes.
func (s *scanner) visit(p string, st *unix.Stat_t) (*fileData, error) {
	ino := s.canonical(st.Ino)
	if _, seen := s.cur.inodes[ino]; seen {
		return nil, nil
	}
	rec, err := inodeRecord(p, st, ino)
	if err != nil {
		return nil, err
	}
	state := &inodeState{attrs: attrDigest(rec)}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		state.entries = map[string]uint64{}
	}
	s.cur.inodes[ino] = state
	s.stats.Inodes++
	var old *inodeState
	if s.prev != nil {
		old = s.prev.inodes[ino]
	}
	var fd *fileData
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		if fd, err = readExtents(p); err != nil {
			return nil, err
		}
		if state.data, err = dataDigest(fd, st); err != nil {
			fd.f.Close()
			return nil, err
		}
		if s.dry || (old != nil && old.data == state.data) {
			fd.f.Close()
			fd = nil
		}
	}
	if old != nil && old.attrs == state.attrs && old.data == state.data {
		return nil, nil // unchanged since the previous snapshot
	}
	var flags uint16
	if fd != nil {
		flags = smtape.FlagData
	}
	if err := s.w.WriteRecordFlags(rec, flags); err != nil {
		if fd != nil {
			fd.f.Close()
		}
		return nil, err
	}
	return fd, nil
}

// readExtents opens a regular file of a snapshot and maps its extents.
func readExtents(p string) (*fileData, error) {
	f, err := openData(p)
	if err != nil {
		return nil, err
	}
	exts, err := fiemap(int(f.Fd()))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &fileData{f: f, exts: exts}, nil
}

// inodeRecord reads an inode's attributes.
func inodeRecord(p string, st *unix.Stat_t, ino uint64) (*smtape.Inode, error) {
	rec := &smtape.Inode{
		Ino: ino, Mode: st.Mode, UID: st.Uid, GID: st.Gid, Nlink: uint32(st.Nlink),
		Size: uint64(st.Size), Rdev: st.Rdev,
		Atime: tsTime(st.Atim), Mtime: tsTime(st.Mtim), Ctime: tsTime(st.Ctim),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		rec.Target = target
		return rec, nil
	}
	names, err := fsattr.ListXattrs(p)
	if err != nil {
		return nil, fmt.Errorf("list attributes of %s: %w", p, err)
	}
	slices.Sort(names)
	for _, n := range names {
		v, err := fsattr.GetXattr(p, n)
		if err != nil {
			return nil, fmt.Errorf("read attribute %s of %s: %w", n, p, err)
		}
		rec.Xattrs = append(rec.Xattrs, smtape.Xattr{Name: n, Value: v})
	}
	return rec, nil
}

func tsTime(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec).UTC() }

// attrDigest hashes what makes two Inode records of a number equal,
// leaving out the change time (a copy has its own).
func attrDigest(rec *smtape.Inode) [16]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%o %d %d %d %d %d %d %s\x00", rec.Mode, rec.UID, rec.GID, rec.Nlink, rec.Size, rec.Rdev, rec.Mtime.UnixNano(), rec.Target)
	for _, x := range rec.Xattrs {
		fmt.Fprintf(h, "%s\x00%d\x00", x.Name, len(x.Value))
		h.Write(x.Value)
	}
	var d [16]byte
	copy(d[:], h.Sum(nil))
	return d
}

// dataDigest hashes where a file's data is stored (its extents), and the
// data itself of extents that have no address of their own (inline).
func dataDigest(fd *fileData, st *unix.Stat_t) ([16]byte, error) {
	var d [16]byte
	h := sha256.New()
	binary.Write(h, binary.BigEndian, st.Size)
	for _, e := range fd.exts {
		binary.Write(h, binary.BigEndian, []uint64{e.Logical, e.Physical, e.Length, uint64(e.Flags)})
		if !e.shareable() && !e.hole() {
			if _, err := io.Copy(h, io.NewSectionReader(fd.f, int64(e.Logical), int64(e.Length))); err != nil {
				return d, err
			}
		}
	}
	copy(d[:], h.Sum(nil))
	return d, nil
}

// openData opens a file of a snapshot for reading its data.
func openData(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOATIME|unix.O_CLOEXEC, 0)
	if err == unix.EPERM {
		fd, err = unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}
