package snapmgmt

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// A cursor is the volume's state token in its upper 32 bits and the offset
// of the next entry in its lower 32. The token hashes what a browse depends
// on (the volume's identity and node and its snapshots with their creation
// times), so creating or deleting a snapshot, or moving the volume, makes
// every earlier cursor of the volume invalid without any state kept here.

// DirListRequest is one SNAP_DIR_LIST page request on a resolved volume.
type DirListRequest struct {
	SVM, Volume string
	Snapshot    string // "": list the snapshots
	Dir         string // directory in the snapshot, "" for its root
	Cursor      uint64 // 0 for the first page
	Max         int    // entries at most, 0 for the manager's page size
}

// DirList returns one page of a browse and the cursor of the next page (0
// when the listing is complete).
func (m *Manager) DirList(ctx context.Context, req DirListRequest) ([]ndmp.SnapDirEntry, uint64, error) {
	v, err := m.storage.GetVolume(ctx, req.SVM, req.Volume)
	if err != nil {
		return nil, 0, classify(err, ndmp.ErrSnapInvalidPath)
	}
	snaps, err := m.storage.ListSnapshots(ctx, req.SVM, req.Volume)
	if err != nil {
		return nil, 0, classify(err, ndmp.ErrSnapInvalidPath)
	}
	token := stateToken(v, snaps)
	off, err := cursorOffset(req.Cursor, token)
	if err != nil {
		return nil, 0, err
	}
	var all []ndmp.SnapDirEntry
	if req.Snapshot == "" {
		all = snapshotEntries(snaps)
	} else if all, err = dirEntries(snaps, req.Snapshot, req.Dir); err != nil {
		return nil, 0, err
	}
	return m.page(all, off, req.Max, token)
}

// page cuts entries [off, off+max) and makes the next cursor.
func (m *Manager) page(all []ndmp.SnapDirEntry, off, max int, token uint32) ([]ndmp.SnapDirEntry, uint64, error) {
	if max <= 0 {
		max = m.pageSize
	}
	max = min(max, maxPageEntries)
	if off > len(all) {
		return nil, 0, refuse(ndmp.ErrIllegalArgs, "browse cursor at entry %d of a listing of %d entries", off, len(all))
	}
	end := min(off+max, len(all))
	var next uint64
	if end < len(all) {
		next = uint64(token)<<32 | uint64(end)
	}
	return all[off:end], next, nil
}

// cursorOffset checks a cursor against the volume's state and returns its
// offset.
func cursorOffset(cursor uint64, token uint32) (int, error) {
	if cursor == 0 {
		return 0, nil
	}
	if uint32(cursor>>32) != token {
		return 0, refuse(ndmp.ErrIllegalState, "the volume changed during the browse (a Snapshot copy was created or deleted, or the volume moved): start the browse again")
	}
	return int(uint32(cursor)), nil
}

// stateToken hashes what a browse of volume v depends on.
func stateToken(v storage.Volume, snaps []storage.Snapshot) uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", v.UUID, v.Node, v.HostPath)
	for _, p := range snaps {
		fmt.Fprintf(h, "%s\x00%d\x00", p.Name, p.CreatedAt.UnixNano())
	}
	return h.Sum32()
}

// snapshotEntries lists the snapshots as directories.
func snapshotEntries(snaps []storage.Snapshot) []ndmp.SnapDirEntry {
	out := make([]ndmp.SnapDirEntry, len(snaps))
	for i, p := range snaps {
		t := uint32(p.CreatedAt.Unix())
		out[i] = ndmp.SnapDirEntry{Name: p.Name, Fstat: ndmp.FileStat{
			FSType: ndmp.FSUnix, Ftype: ndmp.FileDir, Mtime: t, Atime: t, Ctime: t, Fattr: 0o555, Links: 2,
		}}
	}
	return out
}

// dirEntries lists directory dir of snapshot name, sorted by name, without
// following a symbolic link out of the snapshot.
func dirEntries(snaps []storage.Snapshot, name, dir string) ([]ndmp.SnapDirEntry, error) {
	i := slices.IndexFunc(snaps, func(p storage.Snapshot) bool { return p.Name == name })
	if i < 0 {
		return nil, refuse(ndmp.ErrSnapNotFound, "Snapshot copy %q does not exist", name)
	}
	rel, err := cleanRel(dir)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(snaps[i].HostPath)
	if err != nil {
		return nil, classify(err, ndmp.ErrSnapNotFound)
	}
	defer root.Close()
	f, err := root.Open(rel)
	if err != nil {
		return nil, refuse(ndmp.ErrSnapInvalidPath, "%q is not a directory of Snapshot copy %q: %v", dir, name, err)
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, refuse(ndmp.ErrSnapInvalidPath, "%q is not a directory of Snapshot copy %q: %v", dir, name, err)
	}
	slices.SortFunc(ents, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	out := make([]ndmp.SnapDirEntry, 0, len(ents))
	for _, e := range ents {
		fi, err := root.Lstat(path.Join(rel, e.Name()))
		if err != nil {
			continue // gone between the listing and the stat: not in a snapshot
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		out = append(out, ndmp.SnapDirEntry{Name: e.Name(), Fstat: fileStat(st), Node: st.Ino})
	}
	return out, nil
}

// cleanRel turns a DMA's directory into a path relative to a root: "."
// for the root; a path that leaves the root is refused.
func cleanRel(dir string) (string, error) {
	rel := strings.Trim(dir, "/")
	if rel == "" {
		return ".", nil
	}
	if strings.ContainsRune(rel, 0) || path.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", refuse(ndmp.ErrIllegalArgs, "path %q must be plain: no \".\" or \"..\" components", dir)
	}
	return rel, nil
}

// fileStat converts a stat result to NDMP file attributes.
func fileStat(st *syscall.Stat_t) ndmp.FileStat {
	return ndmp.FileStat{
		FSType: ndmp.FSUnix, Ftype: fileType(st.Mode),
		Mtime: uint32(st.Mtim.Sec), Atime: uint32(st.Atim.Sec), Ctime: uint32(st.Ctim.Sec),
		Owner: st.Uid, Group: st.Gid, Fattr: st.Mode & 0o7777, Size: uint64(st.Size), Links: uint32(st.Nlink),
	}
}

func fileType(mode uint32) ndmp.FileType {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		return ndmp.FileDir
	case syscall.S_IFREG:
		return ndmp.FileReg
	case syscall.S_IFLNK:
		return ndmp.FileSlink
	case syscall.S_IFIFO:
		return ndmp.FileFifo
	case syscall.S_IFSOCK:
		return ndmp.FileSock
	case syscall.S_IFBLK:
		return ndmp.FileBspec
	case syscall.S_IFCHR:
		return ndmp.FileCspec
	}
	return ndmp.FileOther
}
