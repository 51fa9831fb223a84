package filedump

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"golang.org/x/sys/unix"
)

// darJob is one direct access recovery: the image as it reads it, the
// offset map and inode extents (enhanced DAR), and the first restored name
// of every inode (hard links).
type darJob struct {
	rs      *restorer
	in      *darInput
	offsets map[uint32]int64
	ext     *extents
	mapErr  error // why the offset map could not be read
	links   map[uint32]string
	after   []func() // RECOVER_FULL_PATHS work for the end
}

// restoreDAR restores the names of the request from their file history
// positions (D11): a file reads only its own records; a directory (with
// ENHANCED_DAR_ENABLED=Y) reads the offset map and then each inode below it.
// Names are restored in the order of their positions, so that the image is
// read forwards.
func (rs *restorer) restoreDAR() error {
	if len(rs.req.Names) == 0 {
		return errors.New("restore: DIRECT=Y needs the names to restore with their positions")
	}
	if err := rs.checkLongestPath(); err != nil {
		return err
	}
	j := &darJob{rs: rs, in: &darInput{ra: rs.req.InputAt}, links: map[uint32]string{}}
	// The bytes a DAR read are its amount (issue 17 item 5: its End said
	// 0 KB).
	defer func() { rs.res.Bytes = j.in.read }()
	names := slices.Clone(rs.req.Names)
	sort.SliceStable(names, func(a, b int) bool { return names[a].FHInfo < names[b].FHInfo })
	if rs.opt.enhanced && rs.opt.aclStartKnown {
		// The offset map lies at the end of the image: read it first, then
		// everything else forwards.
		j.offsets, j.mapErr = rs.loadOffsetMap(j.in)
		if j.mapErr == nil {
			j.ext = newExtents(j.offsets, rs.opt.aclStart)
			offs := make([]int64, 0, len(names))
			for _, n := range names {
				offs = append(offs, n.FHInfo)
			}
			j.in.addPlan(j.ext.plan(offs))
		}
	}
	for _, n := range names {
		if err := rs.ctx.Err(); err != nil {
			return err
		}
		if err := j.restoreName(n); err != nil {
			return err
		}
	}
	for i := len(j.after) - 1; i >= 0; i-- {
		j.after[i]()
	}
	if rs.res.Files == 0 && rs.res.Errors > 0 {
		return &Error{Msg: MsgNoFilesCreated}
	}
	return nil
}

// checkLongestPath refuses, with RECURSIVE=N, names whose recovery paths do
// not all lie within the longest one.
func (rs *restorer) checkLongestPath() error {
	if rs.opt.recursive || len(rs.req.Names) < 2 {
		return nil
	}
	longest := ""
	for _, n := range rs.req.Names {
		if d := darDest(n); len(d) > len(longest) {
			longest = d
		}
	}
	for _, n := range rs.req.Names {
		if d := darDest(n); d != longest && !strings.HasPrefix(longest, d+"/") && d != "" {
			return fmt.Errorf("restore: with RECURSIVE=N every recovery path must lie within the longest one (%q is not within %q)", d, longest)
		}
	}
	return nil
}

// offsetMap returns the offset map, or why it cannot be had.
func (j *darJob) offsetMap() (map[uint32]int64, error) {
	if j.offsets == nil && j.mapErr == nil {
		j.offsets, j.mapErr = j.rs.loadOffsetMap(j.in)
	}
	return j.offsets, j.mapErr
}

// restoreName restores one name of the request; the error ends the restore
// (a name that fails alone is reported through nameResult).
func (j *darJob) restoreName(n RestoreName) error {
	rs := j.rs
	dst, ok := cleanRel(n.Dest)
	if n.Dest == "" {
		dst, ok = cleanRel(n.Original)
	}
	if !ok {
		rs.nameResult(n.Original, 0, fmt.Errorf("restore: %q leaves the destination", n.Dest))
		return nil
	}
	if n.FHInfo < 0 {
		rs.nameResult(n.Original, 0, errors.New("restore: DIRECT=Y needs the file history position (fh_info) of every name"))
		return nil
	}
	h, r, err := j.readInode(n.FHInfo)
	if err == nil && h.Kind != dump.KindInode {
		err = fmt.Errorf("%w: no inode header at offset %d", dump.ErrFormat, n.FHInfo)
	}
	if err != nil {
		err = fmt.Errorf("restore: %s at offset %d: %w", n.Original, n.FHInfo, err)
		// A wrong position (mid-record, past the end, not a header)
		// fails that name only; a read error ends the restore.
		if errors.Is(err, dump.ErrFormat) || errors.Is(err, dump.ErrMagic) || errors.Is(err, dump.ErrChecksum) || errors.Is(err, dump.ErrCount) || errors.Is(err, dump.ErrTruncated) {
			rs.nameResult(n.Original, 0, err)
			return nil
		}
		return err
	}
	if rs.res.Level == 0 && rs.res.Date.IsZero() {
		rs.res.Level, rs.res.Date = h.Dump.Level, h.Dump.Date
		if rs.req.Log != nil {
			_ = rs.req.Log.Start(h.Dump.Level, "DAR")
		}
	}
	orig, _ := cleanRel(n.Original)
	if (!rs.opt.recursive || rs.opt.fullPaths) && orig != "" && dst != orig && !strings.HasSuffix(dst, "/"+orig) {
		rs.nameResult(dst, h.Ino, fmt.Errorf("restore: the recovery path %q must end with the original path %q", dst, orig))
		return nil
	}
	existed := rs.existingParents(dst)
	if err := rs.makeParents(dst); err != nil {
		rs.nameResult(dst, h.Ino, err)
		return nil
	}
	if rs.opt.fullPaths && rs.opt.enhanced {
		offsets, err := j.offsetMap()
		if err != nil {
			return err
		}
		j.after = append(j.after, func() { rs.recoverFullPath(j.in, orig, dst, existed, offsets) })
	}
	if !h.Inode.IsDir() {
		return j.darFile(h, r, dst)
	}
	if !rs.opt.enhanced {
		return &Error{Msg: MsgNoFilesCreated}
	}
	if _, err := j.offsetMap(); err != nil {
		return err
	}
	return j.darDir(h, r, dst)
}

// readInode reads the header at off. With the offset map, the reader ends
// at the end of that inode's records; without it, at ACL_START (after the
// last inode) when that is known; otherwise it reads on, header by header.
func (j *darJob) readInode(off int64) (*dump.Header, *dump.Reader, error) {
	var ra io.ReaderAt = j.in
	if r, ok := j.ext.of(off); ok {
		ra = boundedAt{ra: j.in, end: r.end}
	} else if o := j.rs.opt; o.aclStartKnown && off < o.aclStart {
		ra = boundedAt{ra: j.in, end: o.aclStart}
	}
	r, err := dump.NewReaderAt(ra, off)
	if err != nil {
		return nil, nil, err
	}
	h, err := r.Next()
	if err != nil {
		return nil, nil, err
	}
	return h, r, nil
}

// makeParents creates the missing directories above rel.
func (rs *restorer) makeParents(rel string) error {
	if rel == "" {
		return nil
	}
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	if err := rs.makeParents(dir); err != nil {
		return err
	}
	t, err := rs.fs.lstat(dir)
	if err != nil {
		return err
	}
	if t != 0 {
		return nil
	}
	return rs.fs.mkdir(dir)
}

// darFile restores the non-directory inode whose header r has just read.
func (j *darJob) darFile(h *dump.Header, r *dump.Reader, dst string) error {
	rs := j.rs
	if first, ok := j.links[h.Ino]; ok {
		rs.nameResult(dst, h.Ino, rs.fs.link(first, dst))
		return nil
	}
	// A LUN of that name on the destination is never replaced by a
	// direct access recovery (D14).
	if typ, err := rs.fs.lstat(dst); err == nil && typ == unix.S_IFREG {
		if lun, err := storage.IsLUN(filepath.Join(rs.dest, filepath.FromSlash(dst))); err == nil && lun {
			rs.nameResult(dst, h.Ino, ErrorRestoreFailed(dst, errors.New("a LUN of that name is on the destination volume")))
			return nil
		}
	}
	p := rs.writeInode(r, h, []string{dst})
	if p == nil {
		return nil
	}
	j.links[h.Ino] = dst
	err := rs.attachFollowing(r, &p.m)
	rs.finish(p)
	return err
}

// attachFollowing reads the xattr and extension records after an inode, up
// to the next inode or the end of the inode's records.
func (rs *restorer) attachFollowing(r *dump.Reader, m *meta) error {
	for {
		h, err := r.Next()
		if err == io.EOF || errors.Is(err, errExtentEnd) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if h.Kind != dump.KindXattr && (h.Kind != dump.KindExtension || h.Ext == dump.ExtACLSection || h.Ext == dump.ExtOffsetMap) {
			return nil
		}
		if err := rs.attach(r, h, m); err != nil {
			return err
		}
	}
}

// maxDARInodes bounds the inodes of one directory DAR (a crafted image could
// list entries without end).
const maxDARInodes = 1 << 28

type darItem struct {
	ino  uint32
	path string
	off  int64
}

// darTree is the work of one directory DAR: the directories still to read
// (a heap by offset), the files found in them, and the directories read,
// whose attributes are set at the end.
type darTree struct {
	dirs  darHeap
	files []darItem
	seen  map[uint32]bool
	done  []darDirDone
	total int
}

type darDirDone struct {
	path string
	m    *meta
}

// darHeap is a min-heap of items by image offset.
type darHeap []darItem

func (h darHeap) Len() int           { return len(h) }
func (h darHeap) Less(i, j int) bool { return h[i].off < h[j].off }
func (h darHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// Push implements heap.Interface.
func (h *darHeap) Push(x any) { *h = append(*h, x.(darItem)) }

// Pop implements heap.Interface.
func (h *darHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// darDir restores the directory whose header r has just read, and with
// RECURSIVE=Y everything below it: first every directory, in image order
// (the directories of an image come before its files), then every other
// inode in image order, so that the image is read forwards.
func (j *darJob) darDir(h *dump.Header, r *dump.Reader, dst string) error {
	t := &darTree{seen: map[uint32]bool{h.Ino: true}}
	if err := j.expand(t, h, r, dst); err != nil {
		return err
	}
	for t.dirs.Len() > 0 {
		it := heap.Pop(&t.dirs).(darItem)
		ch, cr, err := j.readItem(it)
		if err != nil {
			return err
		}
		if !ch.Inode.IsDir() {
			// The entry said directory; the inode is not one.
			if err := j.darTreeInode(it, ch, cr); err != nil {
				return err
			}
			continue
		}
		if err := j.expand(t, ch, cr, it.path); err != nil {
			return err
		}
	}
	sort.SliceStable(t.files, func(a, b int) bool { return t.files[a].off < t.files[b].off })
	offs := make([]int64, len(t.files))
	for i, it := range t.files {
		offs[i] = it.off
	}
	j.in.addPlan(j.ext.plan(offs))
	for _, it := range t.files {
		if err := j.rs.ctx.Err(); err != nil {
			return err
		}
		if err := j.darTreeFile(it); err != nil {
			return err
		}
	}
	for i := len(t.done) - 1; i >= 0; i-- {
		if err := j.rs.setDirAttrs(t.done[i].path, t.done[i].m); err != nil {
			j.rs.nameResult(t.done[i].path, t.done[i].m.in.Ino, err)
		}
	}
	return nil
}

// readItem reads the header of an inode found through the offset map and
// checks that it is that inode.
func (j *darJob) readItem(it darItem) (*dump.Header, *dump.Reader, error) {
	if err := j.rs.ctx.Err(); err != nil {
		return nil, nil, err
	}
	h, r, err := j.readInode(it.off)
	if err != nil {
		return nil, nil, fmt.Errorf("restore: %s: %w", it.path, err)
	}
	if h.Kind != dump.KindInode || h.Ino != it.ino {
		return nil, nil, fmt.Errorf("restore: %w: offset map entry of inode %d points elsewhere", dump.ErrFormat, it.ino)
	}
	return h, r, nil
}

// darTreeFile restores one non-directory inode of a directory DAR.
func (j *darJob) darTreeFile(it darItem) error {
	rs := j.rs
	ch, cr, err := j.readItem(it)
	if err != nil {
		return err
	}
	if ch.Inode.IsDir() {
		rs.nameResult(it.path, it.ino, fmt.Errorf("restore: %w: inode %d is a directory, its entry says otherwise", dump.ErrFormat, it.ino))
		return nil
	}
	return j.darTreeInode(it, ch, cr)
}

// darTreeInode restores the non-directory inode whose header cr has just
// read.
func (j *darJob) darTreeInode(it darItem, ch *dump.Header, cr *dump.Reader) error {
	rs := j.rs
	if first, ok := j.links[ch.Ino]; ok {
		rs.nameResult(it.path, ch.Ino, rs.fs.link(first, it.path))
		return nil
	}
	p := rs.writeInode(cr, ch, []string{it.path})
	if p == nil {
		return nil
	}
	j.links[ch.Ino] = it.path
	err := rs.attachFollowing(cr, &p.m)
	rs.finish(p)
	return err
}

// expand creates the directory whose header r has just read at p, keeps
// its attributes for the end and, with RECURSIVE=Y, queues its entries.
func (j *darJob) expand(t *darTree, h *dump.Header, r *dump.Reader, p string) error {
	rs := j.rs
	ents, err := r.DirEntries()
	if err != nil {
		return fmt.Errorf("restore: directory inode %d: %w", h.Ino, err)
	}
	m := &meta{in: h.Inode}
	if err := rs.attachFollowing(r, m); err != nil {
		return err
	}
	if p != "" {
		if err := rs.fs.mkdir(p); err != nil {
			rs.nameResult(p, h.Ino, err)
			return nil
		}
	}
	rs.nameResult(p, h.Ino, nil)
	t.done = append(t.done, darDirDone{p, m})
	if !rs.opt.recursive {
		return nil
	}
	var dirs []int64
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		cp := joinRel(p, e.Name)
		if !validName(e.Name) || t.seen[e.Ino] && e.Type == dump.DTDir {
			rs.nameResult(cp, e.Ino, fmt.Errorf("%w: unsafe entry %q", dump.ErrFormat, e.Name))
			continue
		}
		off, ok := j.offsets[e.Ino]
		if !ok {
			rs.nameResult(cp, e.Ino, fmt.Errorf("inode %d is not in the offset map", e.Ino))
			continue
		}
		if t.total++; t.total > maxDARInodes {
			return fmt.Errorf("restore: %w: directory DAR of more than %d inodes", dump.ErrCount, maxDARInodes)
		}
		it := darItem{e.Ino, cp, off}
		if e.Type != dump.DTDir {
			t.files = append(t.files, it)
			continue
		}
		t.seen[e.Ino] = true
		heap.Push(&t.dirs, it)
		dirs = append(dirs, off)
	}
	j.in.addPlan(j.ext.plan(dirs))
	return nil
}

// loadOffsetMap reads the offset map that follows the ACL section, whose
// position the backup returned as ACL_START.
func (rs *restorer) loadOffsetMap(in io.ReaderAt) (map[uint32]int64, error) {
	if !rs.opt.aclStartKnown {
		return nil, errors.New("restore: enhanced DAR of a directory needs ACL_START from the backup")
	}
	r, err := dump.NewReaderAt(in, rs.opt.aclStart)
	if err != nil {
		return nil, fmt.Errorf("restore: ACL_START %d: %w", rs.opt.aclStart, err)
	}
	for {
		h, err := r.Next()
		if err == io.EOF {
			return nil, errors.New("restore: the image has no offset map (backup without ndmpd.offset_map.enable)")
		}
		if err != nil {
			return nil, fmt.Errorf("restore: offset map: %w", err)
		}
		if h.Kind == dump.KindExtension && h.Ext == dump.ExtOffsetMap {
			return readOffsetMap(r)
		}
	}
}

// readOffsetMap reads the payload of the offset map record r is at.
func readOffsetMap(r *dump.Reader) (map[uint32]int64, error) {
	b, err := r.Extension(12*int64(1<<28) + 4)
	if err != nil {
		return nil, fmt.Errorf("restore: offset map: %w", err)
	}
	es, err := dump.DecodeOffsetMap(b)
	if err != nil {
		return nil, fmt.Errorf("restore: offset map: %w", err)
	}
	m := make(map[uint32]int64, len(es))
	for _, e := range es {
		m[e.Ino] = e.Offset
	}
	return m, nil
}

func darDest(n RestoreName) string {
	if n.Dest != "" {
		d, _ := cleanRel(n.Dest)
		return d
	}
	d, _ := cleanRel(n.Original)
	return d
}

// existingParents returns the directories above rel that exist already.
func (rs *restorer) existingParents(rel string) map[string]bool {
	out := map[string]bool{}
	for d := path.Dir(rel); d != "." && d != "/" && rel != ""; d = path.Dir(d) {
		if t, err := rs.fs.lstat(d); err == nil && t != 0 {
			out[d] = true
		}
	}
	return out
}

// recoverFullPath sets, after a DAR, the permissions of the directories of
// the original path that the DAR created (RECOVER_FULL_PATHS=Y): each is
// found from the image root through the offset map.
func (rs *restorer) recoverFullPath(in io.ReaderAt, orig, dst string, existed map[string]bool, offsets map[uint32]int64) {
	parts := strings.Split(orig, "/")
	dparts := strings.Split(dst, "/")
	if len(parts) < 2 || len(dparts) < len(parts) {
		return
	}
	base := strings.Join(dparts[:len(dparts)-len(parts)], "/")
	ino := uint32(dump.RootIno)
	for i := 0; i < len(parts)-1; i++ {
		off, ok := offsets[ino]
		if !ok {
			return
		}
		h, r, err := dump.ReadInodeAt(in, off)
		if err != nil || !h.Inode.IsDir() {
			return
		}
		ents, err := r.DirEntries()
		if err != nil {
			return
		}
		next := uint32(0)
		for _, e := range ents {
			if e.Name == parts[i] {
				next = e.Ino
			}
		}
		if next == 0 {
			return
		}
		ino = next
		target := joinRel(base, strings.Join(parts[:i+1], "/"))
		if existed[target] {
			continue
		}
		off, ok = offsets[ino]
		if !ok {
			return
		}
		dh, dr, err := dump.ReadInodeAt(in, off)
		if err != nil || !dh.Inode.IsDir() {
			return
		}
		m := &meta{in: dh.Inode}
		if _, err := dr.DirEntries(); err != nil {
			return
		}
		if err := rs.attachFollowing(dr, m); err != nil {
			return
		}
		if err := rs.setDirAttrs(target, m); err != nil {
			rs.nameResult(target, ino, err)
		}
	}
}
