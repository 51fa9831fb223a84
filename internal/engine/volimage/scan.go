package volimage

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
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
	btrfs     bool                 // the snapshots are btrfs subvolumes
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
	s.btrfs = fsType(dir) == "btrfs"
	root := &probe{path: dir, done: make(chan struct{})}
	s.probeEntry(root)
	if root.err != nil {
		return root.err
	}
	s.cur.root = root.ino
	if _, err := s.visit(root); err != nil {
		return err
	}
	if err := s.dir(dir, root.ino); err != nil {
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

// dir writes the entries of directory p (canonical number ino), then the
// directories below it, depth first.
func (s *scanner) dir(p string, ino uint64) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	names, err := readNames(p, ino == s.cur.root)
	if err != nil {
		return err
	}
	w := s.prefetch(p, names)
	defer w.stop()
	state := s.cur.inodes[ino]
	type subdir struct {
		path string
		ino  uint64
	}
	var subdirs []subdir
	for _, name := range names {
		pr := w.take()
		err := s.entry(ino, name, pr)
		if err == nil && pr.st.Mode&unix.S_IFMT == unix.S_IFDIR {
			subdirs = append(subdirs, subdir{pr.path, pr.ino})
		}
		w.consumed(pr)
		if err != nil {
			return err
		}
	}
	s.noteDeletes(ino, state)
	w.stop()
	for _, sub := range subdirs {
		if err := s.dir(sub.path, sub.ino); err != nil {
			return err
		}
	}
	return nil
}

// entry writes the records of one entry of directory dir: its inode when
// new or changed, the entry when new, the data when the image needs it.
func (s *scanner) entry(dir uint64, name string, pr *probe) error {
	if pr.err != nil {
		return pr.err
	}
	s.cur.inodes[dir].entries[name] = pr.ino
	data, err := s.visit(pr)
	if err != nil {
		return err
	}
	if s.newEntry(dir, name, pr.ino) {
		if err := s.w.WriteRecord(&smtape.Dirent{Dir: dir, Name: name, Ino: pr.ino}); err != nil {
			return err
		}
	}
	if data {
		return s.writeData(pr)
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
	f    rawFile
	exts []extent
}

// visit records an inode the first time the snapshot meets it and writes
// its Inode record when it is new or changed. It reports whether the
// inode's data must follow.
func (s *scanner) visit(pr *probe) (bool, error) {
	if _, seen := s.cur.inodes[pr.ino]; seen {
		return false, nil
	}
	state := &inodeState{attrs: pr.attrs, data: pr.digest}
	if pr.st.Mode&unix.S_IFMT == unix.S_IFDIR {
		state.entries = map[string]uint64{}
	}
	s.cur.inodes[pr.ino] = state
	s.stats.Inodes++
	var old *inodeState
	if s.prev != nil {
		old = s.prev.inodes[pr.ino]
	}
	if old != nil && old.attrs == state.attrs && old.data == state.data {
		return false, nil // unchanged since the previous snapshot
	}
	var flags uint16
	if pr.fd != nil {
		flags = smtape.FlagData
	}
	return pr.fd != nil, s.w.WriteRecordFlags(pr.rec, flags)
}

// readExtents opens a regular file of a snapshot and maps its extents:
// from the btrfs tree on btrfs, with FIEMAP elsewhere.
func readExtents(p string, ino uint64, btrfs bool) (*fileData, error) {
	f, err := openData(p)
	if err != nil {
		return nil, err
	}
	var exts []extent
	if btrfs {
		exts, err = btrfsExtents(int(f.Fd()), ino)
	} else {
		exts, err = fiemap(int(f.Fd()))
	}
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
	b := make([]byte, 0, 128)
	b = binary.BigEndian.AppendUint32(b, rec.Mode)
	b = binary.BigEndian.AppendUint32(b, rec.UID)
	b = binary.BigEndian.AppendUint32(b, rec.GID)
	b = binary.BigEndian.AppendUint32(b, rec.Nlink)
	b = binary.BigEndian.AppendUint64(b, rec.Size)
	b = binary.BigEndian.AppendUint64(b, rec.Rdev)
	b = binary.BigEndian.AppendUint64(b, uint64(rec.Mtime.UnixNano()))
	b = appendString(b, rec.Target)
	for _, x := range rec.Xattrs {
		b = appendString(b, x.Name)
		b = appendString(b, string(x.Value))
	}
	return sum16(b)
}

func appendString(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
}

func sum16(b []byte) [16]byte {
	var d [16]byte
	h := sha256.Sum256(b)
	copy(d[:], h[:])
	return d
}

// dataDigest hashes where a file's data is stored (its extents), and the
// data itself of extents that have no address of their own (inline).
func dataDigest(fd *fileData, st *unix.Stat_t) ([16]byte, error) {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+32*len(fd.exts)), uint64(st.Size))
	inline := false
	for _, e := range fd.exts {
		for _, v := range []uint64{e.Logical, e.Physical, e.Length, uint64(e.Flags)} {
			b = binary.BigEndian.AppendUint64(b, v)
		}
		inline = inline || (!e.shareable() && !e.hole())
	}
	if !inline {
		return sum16(b), nil
	}
	h := sha256.New()
	h.Write(b)
	for _, e := range fd.exts {
		if !e.shareable() && !e.hole() {
			if _, err := io.Copy(h, io.NewSectionReader(fd.f, int64(e.Logical), int64(e.Length))); err != nil {
				return [16]byte{}, err
			}
		}
	}
	var d [16]byte
	copy(d[:], h.Sum(nil))
	return d, nil
}

// openData opens a file of a snapshot for reading its data.
func openData(p string) (rawFile, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOATIME|unix.O_CLOEXEC, 0)
	if err == unix.EPERM {
		fd, err = unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", p, err)
	}
	return rawFile(fd), nil
}

// rawFile is a descriptor read with pread, without the bookkeeping of the
// runtime's poller that an os.File costs for every small file.
type rawFile int

// ReadAt reads len(p) bytes at off, or up to the end of the file (io.EOF).
func (f rawFile) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Pread(int(f), p[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, io.EOF
		}
		done += n
	}
	return done, nil
}

// Close closes the descriptor.
func (f rawFile) Close() error { return unix.Close(int(f)) }

// Fd returns the descriptor.
func (f rawFile) Fd() uintptr { return uintptr(f) }
