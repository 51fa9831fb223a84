package dump

import (
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"golang.org/x/sys/unix"
)

// restoreDAR restores the names of the request from their file history
// positions (D11): a file reads only its own records; a directory (with
// ENHANCED_DAR_ENABLED=Y) reads the offset map and then each inode below it.
func (rs *restorer) restoreDAR() error {
	ra := rs.req.InputAt
	if len(rs.req.Names) == 0 {
		return errors.New("restore: DIRECT=Y needs the names to restore with their positions")
	}
	var offsets map[uint32]int64
	links := map[uint32]string{}
	if !rs.opt.recursive && len(rs.req.Names) > 1 {
		// Every recovery path must lie within the longest one.
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
	}
	for _, n := range rs.req.Names {
		if err := rs.ctx.Err(); err != nil {
			return err
		}
		dst, ok := cleanRel(n.Dest)
		if n.Dest == "" {
			dst, ok = cleanRel(n.Original)
		}
		if !ok || dst == "" && n.FHInfo >= 0 {
			if !ok {
				rs.nameResult(n.Original, 0, fmt.Errorf("restore: %q leaves the destination", n.Dest))
				continue
			}
		}
		if n.FHInfo < 0 {
			rs.nameResult(n.Original, 0, errors.New("restore: DIRECT=Y needs the file history position (fh_info) of every name"))
			continue
		}
		h, r, err := dump.ReadInodeAt(ra, n.FHInfo)
		if err == nil && h.Kind != dump.KindInode {
			err = fmt.Errorf("%w: no inode header at offset %d", dump.ErrFormat, n.FHInfo)
		}
		if err != nil {
			err = fmt.Errorf("restore: %s at offset %d: %w", n.Original, n.FHInfo, err)
			// A wrong position (mid-record, past the end, not a header)
			// fails that name only; a read error ends the restore.
			if errors.Is(err, dump.ErrFormat) || errors.Is(err, dump.ErrMagic) || errors.Is(err, dump.ErrChecksum) || errors.Is(err, dump.ErrCount) || errors.Is(err, dump.ErrTruncated) {
				rs.nameResult(n.Original, 0, err)
				continue
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
			continue
		}
		existed := rs.existingParents(dst)
		if err := rs.makeParents(dst); err != nil {
			rs.nameResult(dst, h.Ino, err)
			continue
		}
		if rs.opt.fullPaths && rs.opt.enhanced {
			if offsets == nil {
				if offsets, err = rs.loadOffsetMap(); err != nil {
					return err
				}
			}
			defer rs.recoverFullPath(orig, dst, existed, offsets)
		}
		if h.Inode.IsDir() {
			if !rs.opt.enhanced {
				return &Error{Msg: MsgNoFilesCreated}
			}
			if offsets == nil {
				if offsets, err = rs.loadOffsetMap(); err != nil {
					return err
				}
			}
			if err := rs.darDir(h, r, dst, offsets, links); err != nil {
				return err
			}
			continue
		}
		if err := rs.darFile(h, r, dst, links); err != nil {
			return err
		}
	}
	if rs.res.Files == 0 && rs.res.Errors > 0 {
		return &Error{Msg: MsgNoFilesCreated}
	}
	return nil
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
func (rs *restorer) darFile(h *dump.Header, r *dump.Reader, dst string, links map[uint32]string) error {
	if first, ok := links[h.Ino]; ok {
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
	links[h.Ino] = dst
	err := rs.attachFollowing(r, &p.m)
	rs.finish(p)
	return err
}

// attachFollowing reads the xattr and extension records after an inode.
func (rs *restorer) attachFollowing(r *dump.Reader, m *meta) error {
	for {
		h, err := r.Next()
		if err == io.EOF {
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

// darScanner reads inodes by header offset. Offsets close after the
// current position are reached by reading on; others by a new reader, so a
// directory's inodes, which lie together in the image, are read in one pass.
type darScanner struct {
	ra io.ReaderAt
	r  *dump.Reader
	la *dump.Header // header read ahead, not yet used
}

// darGap is how far ahead the scanner reads on instead of seeking.
const darGap = 128 << 10

func (s *darScanner) seek(off int64) (*dump.Header, *dump.Reader, error) {
	if s.r != nil && s.la != nil && s.la.Offset <= off && off-s.la.Offset <= darGap {
		for s.la.Offset < off {
			h, err := s.r.Next()
			if err != nil {
				break
			}
			s.la = h
		}
		if s.la.Offset == off {
			h := s.la
			s.la = nil
			return h, s.r, nil
		}
	}
	r, err := dump.NewReaderAt(s.ra, off)
	if err != nil {
		return nil, nil, err
	}
	h, err := r.Next()
	if err != nil {
		return nil, nil, err
	}
	s.r, s.la = r, nil
	return h, r, nil
}

// following attaches the xattr and extension records after an inode and
// keeps the next header for later.
func (s *darScanner) following(rs *restorer, m *meta) error {
	for {
		h, err := s.r.Next()
		if err == io.EOF {
			s.la = nil
			return nil
		}
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if h.Kind != dump.KindXattr && (h.Kind != dump.KindExtension || h.Ext == dump.ExtACLSection || h.Ext == dump.ExtOffsetMap) {
			s.la = h
			return nil
		}
		if err := rs.attach(s.r, h, m); err != nil {
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

// darDir restores the directory whose header r has just read, and with
// RECURSIVE=Y everything below it, level by level in image order.
func (rs *restorer) darDir(h *dump.Header, r *dump.Reader, dst string, offsets map[uint32]int64, links map[uint32]string) error {
	s := &darScanner{ra: rs.req.InputAt, r: r}
	type dirDone struct {
		path string
		m    *meta
	}
	var done []dirDone
	seen := map[uint32]bool{h.Ino: true}
	expand := func(h *dump.Header, r *dump.Reader, p string) ([]darItem, error) {
		ents, err := r.DirEntries()
		if err != nil {
			return nil, fmt.Errorf("restore: directory inode %d: %w", h.Ino, err)
		}
		m := &meta{in: h.Inode}
		if err := s.following(rs, m); err != nil {
			return nil, err
		}
		if p != "" {
			if err := rs.fs.mkdir(p); err != nil {
				rs.nameResult(p, h.Ino, err)
				return nil, nil
			}
		}
		rs.nameResult(p, h.Ino, nil)
		done = append(done, dirDone{p, m})
		if !rs.opt.recursive {
			return nil, nil
		}
		var items []darItem
		for _, e := range ents {
			if e.Name == "." || e.Name == ".." {
				continue
			}
			cp := joinRel(p, e.Name)
			if !validName(e.Name) || seen[e.Ino] && e.Type == dump.DTDir {
				rs.nameResult(cp, e.Ino, fmt.Errorf("%w: unsafe entry %q", dump.ErrFormat, e.Name))
				continue
			}
			off, ok := offsets[e.Ino]
			if !ok {
				rs.nameResult(cp, e.Ino, fmt.Errorf("inode %d is not in the offset map", e.Ino))
				continue
			}
			if e.Type == dump.DTDir {
				seen[e.Ino] = true
			}
			items = append(items, darItem{e.Ino, cp, off})
		}
		return items, nil
	}
	level, err := expand(h, r, dst)
	if err != nil {
		return err
	}
	total := 0
	for len(level) > 0 {
		total += len(level)
		if total > maxDARInodes {
			return fmt.Errorf("restore: %w: directory DAR of more than %d inodes", dump.ErrCount, maxDARInodes)
		}
		sort.Slice(level, func(i, j int) bool { return level[i].off < level[j].off })
		var next []darItem
		for _, it := range level {
			if err := rs.ctx.Err(); err != nil {
				return err
			}
			ch, cr, err := s.seek(it.off)
			if err != nil {
				return fmt.Errorf("restore: %s: %w", it.path, err)
			}
			if ch.Kind != dump.KindInode || ch.Ino != it.ino {
				return fmt.Errorf("restore: %w: offset map entry of inode %d points elsewhere", dump.ErrFormat, it.ino)
			}
			if ch.Inode.IsDir() {
				items, err := expand(ch, cr, it.path)
				if err != nil {
					return err
				}
				next = append(next, items...)
				continue
			}
			if first, ok := links[ch.Ino]; ok {
				rs.nameResult(it.path, ch.Ino, rs.fs.link(first, it.path))
				continue
			}
			p := rs.writeInode(cr, ch, []string{it.path})
			if p == nil {
				continue
			}
			links[ch.Ino] = it.path
			err = s.following(rs, &p.m)
			rs.finish(p)
			if err != nil {
				return err
			}
		}
		level = next
	}
	for i := len(done) - 1; i >= 0; i-- {
		if err := rs.setDirAttrs(done[i].path, done[i].m); err != nil {
			rs.nameResult(done[i].path, done[i].m.in.Ino, err)
		}
	}
	return nil
}

// loadOffsetMap reads the offset map that follows the ACL section, whose
// position the backup returned as ACL_START.
func (rs *restorer) loadOffsetMap() (map[uint32]int64, error) {
	if !rs.opt.aclStartKnown {
		return nil, errors.New("restore: enhanced DAR of a directory needs ACL_START from the backup")
	}
	r, err := dump.NewReaderAt(rs.req.InputAt, rs.opt.aclStart)
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
	}
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
func (rs *restorer) recoverFullPath(orig, dst string, existed map[string]bool, offsets map[uint32]int64) {
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
		h, r, err := dump.ReadInodeAt(rs.req.InputAt, off)
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
		dh, dr, err := dump.ReadInodeAt(rs.req.InputAt, off)
		if err != nil || !dh.Inode.IsDir() {
			return
		}
		m := &meta{in: dh.Inode}
		s := &darScanner{ra: rs.req.InputAt, r: dr}
		if _, err := dr.DirEntries(); err != nil {
			return
		}
		if err := s.following(rs, m); err != nil {
			return
		}
		if err := rs.setDirAttrs(target, m); err != nil {
			rs.nameResult(target, ino, err)
		}
	}
}
