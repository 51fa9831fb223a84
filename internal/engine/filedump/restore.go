package filedump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
)

// RestoreName is one entry of the list of names to restore (the NDMP nlist).
type RestoreName struct {
	// Original is the path in the image, relative to the image root
	// ("" or "/" for everything).
	Original string
	// Dest is where it goes, relative to the destination; "" means the
	// same path as Original.
	Dest string
	// FHInfo is the byte offset of the inode's header from file history,
	// -1 when unknown; DIRECT=Y restores use it.
	FHInfo int64
}

// NameResult reports the outcome for one restored name (for LOG_FILE).
type NameResult struct {
	Path string
	Ino  uint32
	Err  error
}

// ListEntry is one name listed by LIST=Y or LIST_QTREES=Y.
type ListEntry struct {
	Path  string
	Ino   uint32
	Qtree *dump.QtreeInfo
	// Inode holds the inode's attributes as the image has them (LIST=Y);
	// nil when the image does not hold the inode (a name that a directory
	// of an incremental image lists for a file it did not dump).
	Inode *dump.Inode
	// Offset is the byte offset of the inode's header in the image (with
	// Inode).
	Offset int64
}

// RestoreEvents is the part of an event log a restore writes to;
// *eventlog.RestoreLog implements it.
type RestoreEvents interface {
	Start(level int, kind string) error
	PhaseChange(phase string) error
	End(files, bytes int64) error
	Abort(files, bytes int64) error
	Error(msg string) error
}

// RestoreRequest describes one restore.
type RestoreRequest struct {
	// Input is the image, read from its start.
	Input io.Reader
	// NextVolume opens volume n >= 2 of a multi-volume image; a nil reader
	// says there is none (the image is then truncated).
	NextVolume func(n int) (io.Reader, error)
	// InputAt is the image for direct access recovery (DIRECT=Y).
	InputAt io.ReaderAt
	// Dest is the destination directory on the host. Alternatively Storage
	// and Path name a destination /svm/volume[/path].
	Dest    string
	Storage *storage.Service
	Path    string
	// StateDir holds restore_symboltable; Dest when empty.
	StateDir string
	// Env: EXTRACT, EXTRACT_ACL, FORCE, LIST, LIST_QTREES, NOWRITE,
	// IGNORE_QTREES, DIRECT, ENHANCED_DAR_ENABLED, RECURSIVE,
	// RECOVER_FULL_PATHS, ACL_START (for enhanced DAR).
	Env Env
	// RecordSize, when set, is the tape record size of the restore in
	// bytes; it is checked against the image's blocking factor (D6), and
	// with LocalTape it must be exactly the image's.
	RecordSize int
	LocalTape  bool
	// Catalog is the node's catalog, read for the option
	// ndmpd.offset_map.enable: with it off, enhanced DAR is not done (a
	// directory DAR gives MsgNoFilesCreated). Nil: the option is on.
	Catalog catalog.Store
	// Names restricts the restore; empty restores everything.
	Names []RestoreName
	// Policy limits what the restore creates for the one who asks for it
	// (devices, set-ID bits, owners, privileged xattrs); nil restores the
	// image as it is, for a trusted caller.
	Policy   *RestorePolicy
	Limiter  *Limiter
	Log      RestoreEvents
	Progress func(Progress)
	OnName   func(NameResult)
	OnList   func(ListEntry)
}

// RestoreResult is what a finished restore reports.
type RestoreResult struct {
	Level  int
	Date   time.Time
	Files  int64 // inodes restored
	Bytes  int64 // image bytes read
	Errors int   // names that could not be restored
	Listed []ListEntry
	Qtrees []ListEntry
}

type restoreOpts struct {
	extract       string
	extractACL    bool
	force         bool
	list          bool
	listQtrees    bool
	nowrite       bool
	ignoreQtrees  bool
	direct        bool
	enhanced      bool
	recursive     bool
	fullPaths     bool
	aclStart      int64
	aclStartKnown bool
}

func parseRestoreEnv(env Env) (*restoreOpts, error) {
	o := &restoreOpts{}
	var err error
	o.extract = strings.ToUpper(strings.TrimSpace(env["EXTRACT"]))
	switch o.extract {
	case "", "N", "F":
		o.extract = "N"
	case "Y", "T":
		o.extract = "Y"
	case "E":
	default:
		return nil, fmt.Errorf("environment variable EXTRACT: %q is not Y, N or E", env["EXTRACT"])
	}
	if o.direct, err = env.Bool("DIRECT", false); err != nil {
		return nil, err
	}
	for _, b := range []struct {
		name string
		def  bool
		p    *bool
	}{{"EXTRACT_ACL", !o.direct, &o.extractACL}, {"FORCE", false, &o.force}, {"LIST", false, &o.list},
		{"LIST_QTREES", false, &o.listQtrees}, {"NOWRITE", false, &o.nowrite}, {"IGNORE_QTREES", false, &o.ignoreQtrees},
		{"ENHANCED_DAR_ENABLED", false, &o.enhanced}, {"RECURSIVE", true, &o.recursive}, {"RECOVER_FULL_PATHS", false, &o.fullPaths}} {
		if *b.p, err = env.Bool(b.name, b.def); err != nil {
			return nil, err
		}
	}
	if v := strings.TrimSpace(env["ACL_START"]); v != "" {
		if o.aclStart, err = strconv.ParseInt(v, 10, 64); err != nil || o.aclStart < 0 {
			return nil, fmt.Errorf("ACL_START %q is not a byte offset", v)
		}
		o.aclStartKnown = true
	}
	return o, nil
}

type countReader struct {
	r io.Reader
	n int64
}

// Read implements io.Reader.
func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// meta collects what an image says about one inode.
type meta struct {
	in      dump.Inode
	xattrs  []dump.Xattr
	dos     *dump.DOSInfo
	qtree   *dump.QtreeInfo
	streams []dump.Xattr
}

// restorer holds the state of one restore.
type restorer struct {
	ctx   context.Context
	req   *RestoreRequest
	opt   *restoreOpts
	fs    *destFS
	dest  string
	res   RestoreResult
	space int // files since the last space check
	// loc is the destination when it is a registered volume.
	loc       *storage.Location
	qtrees    map[string]bool // top-level qtree directories of loc's volume
	newQtrees map[string]bool // qtrees of the image restored to loc's root
	wbuf      []byte          // gathers a file's contiguous data records
	// workers create small files in parallel during stage 3 (nil
	// otherwise); mu guards res and OnName while they run.
	workers *fileWorkers
	mu      sync.Mutex
	creds   creds
	// damaged counts the names and inodes the image promises and does not
	// deliver (each reported through OnName); the restore then fails.
	damaged int
	// lost holds the paths of files that could not be written; the state
	// saved for the next incremental does not count them as restored.
	lost map[string]bool
}

// restoreWriteBuffer is how much contiguous file data restore gathers
// before one write: a 4 KB file is one write, not four of 1 KB.
const restoreWriteBuffer = 256 << 10

// lunAllowed reports whether a LUN restored at rel stays a LUN: only at the
// volume root or directly in a qtree (D8). Outside registered volumes every
// LUN flag is kept.
func (rs *restorer) lunAllowed(rel string) bool {
	if rs.loc == nil {
		return true
	}
	vp := strings.Trim(path.Join(rs.loc.RelPath, rel), "/")
	dir := path.Dir(vp)
	return dir == "." || !strings.Contains(dir, "/") && (rs.qtrees[dir] || rs.newQtrees[dir])
}

func (rs *restorer) nameResult(p string, ino uint32, err error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if err != nil {
		rs.res.Errors++
	}
	if rs.req.OnName != nil {
		rs.req.OnName(NameResult{Path: p, Ino: ino, Err: err})
	}
}

// Restore restores an image (D8-D11). Damage to the image ends it with an
// error wrapping one of format/dump's sentinel errors; a name that cannot be
// restored is reported through OnName and counted in Errors, and the restore
// goes on.
func Restore(ctx context.Context, req RestoreRequest) (res RestoreResult, err error) {
	opt, err := parseRestoreEnv(req.Env)
	if err != nil {
		return res, err
	}
	if opt.enhanced {
		if opt.enhanced, err = offsetMapOn(ctx, req.Catalog); err != nil {
			return res, err
		}
	}
	dest := req.Dest
	var loc *storage.Location
	if req.Storage != nil {
		l, err := req.Storage.Resolve(ctx, req.Path)
		if err != nil {
			return res, fmt.Errorf("restore: %w", err)
		}
		loc = &l
		if loc.Snapshot != nil || loc.Volume.ReadOnly() {
			return res, &Error{Msg: MsgReadOnlyVolume}
		}
		if loc.Volume.State != storage.StateOnline {
			return res, &Error{Msg: MsgTransitional, Err: fmt.Errorf("volume %s is %s", loc.Volume.Name, loc.Volume.State)}
		}
		dest = loc.HostPath
	}
	if dest == "" {
		return res, errors.New("restore: no destination")
	}
	release, err := req.Limiter.Acquire()
	if err != nil {
		return res, err
	}
	defer release()
	rs := &restorer{ctx: ctx, req: &req, opt: opt, dest: dest, loc: loc}
	if loc != nil {
		rs.qtrees = map[string]bool{}
		qs, err := req.Storage.ListQtrees(ctx, loc.Volume.SVM, loc.Volume.Name)
		if err != nil {
			return res, fmt.Errorf("restore: %w", err)
		}
		for _, q := range qs {
			rs.qtrees[q.Name] = true
		}
	}
	if !opt.list && !opt.listQtrees && !opt.nowrite {
		if err := checkWritable(dest); err != nil {
			// Only the qtree is read-only (a read-only mount on its
			// directory) when the volume's root can be written (D14).
			if rs.loc != nil && rs.loc.Qtree != nil && Message(err) == MsgReadOnlyVolume && checkWritable(rs.loc.Root) == nil {
				err = &Error{Msg: MsgReadOnlyQtree, Err: fmt.Errorf("qtree %s of volume %s", rs.loc.Qtree.Name, rs.loc.Volume.Name)}
			}
			return res, err
		}
		if rs.fs, err = openDestFS(dest); err != nil {
			return res, err
		}
		defer rs.fs.Close()
	}
	defer func() {
		if req.Log != nil {
			if err != nil {
				_ = req.Log.Error(Message(err))
				_ = req.Log.Abort(rs.res.Files, rs.res.Bytes)
			} else {
				_ = req.Log.End(rs.res.Files, rs.res.Bytes)
			}
		}
	}()
	if opt.direct {
		if req.InputAt == nil {
			return res, errors.New("restore: DIRECT=Y needs random access to the image")
		}
		err = rs.restoreDAR()
		return rs.res, err
	}
	if req.Input == nil {
		return res, errors.New("restore: no input")
	}
	if err = rs.restoreStream(); err != nil {
		return rs.res, err
	}
	if err = rs.registerQtrees(); err == nil {
		err = rs.damageError()
	}
	return rs.res, err
}

// listAttr is what a listing knows of an inode: its attributes and header
// offset (off < 0: not on the image).
type listAttr struct {
	in  dump.Inode
	off int64
}

// list reports the names of targets (LIST=Y), sorted, with the attributes
// the image holds for their inodes.
func (rs *restorer) list(targets map[string]uint32, attrs map[uint32]listAttr) {
	if !rs.opt.list {
		return
	}
	for p, ino := range targets {
		le := ListEntry{Path: p, Ino: ino, Offset: -1}
		if a, ok := attrs[ino]; ok && a.off >= 0 {
			le.Inode, le.Offset = &a.in, a.off
		}
		rs.res.Listed = append(rs.res.Listed, le)
	}
	sort.Slice(rs.res.Listed, func(i, j int) bool { return rs.res.Listed[i].Path < rs.res.Listed[j].Path })
	if rs.req.OnList != nil {
		for _, le := range rs.res.Listed {
			rs.req.OnList(le)
		}
	}
}

// registerQtrees makes the qtrees of the image qtrees of the destination
// volume again when the restore went to the volume root (D8).
func (rs *restorer) registerQtrees() error {
	if rs.loc == nil || rs.loc.RelPath != "" || rs.opt.ignoreQtrees || rs.opt.list || rs.opt.listQtrees || rs.opt.nowrite {
		return nil
	}
	for _, q := range rs.res.Qtrees {
		if rs.qtrees[q.Path] {
			continue
		}
		spec := storage.QtreeSpec{Name: q.Path, SVM: rs.loc.Volume.SVM, Volume: rs.loc.Volume.Name, Existing: true}
		switch q.Qtree.SecurityStyle {
		case "unix", "ntfs", "mixed":
			spec.SecurityStyle = storage.SecurityStyle(q.Qtree.SecurityStyle)
		}
		if _, err := rs.req.Storage.CreateQtree(rs.ctx, spec); err != nil && !errors.Is(err, storage.ErrExists) {
			rs.nameResult(q.Path, q.Ino, fmt.Errorf("qtree information: %w", err))
		}
	}
	return nil
}

// checkWritable refuses a read-only destination (D14).
func checkWritable(dest string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dest, &st); err != nil {
		return fmt.Errorf("restore destination %s: %w", dest, err)
	}
	if st.Flags&unix.ST_RDONLY != 0 {
		return &Error{Msg: MsgReadOnlyVolume}
	}
	return nil
}

// validName reports whether an image name is a single safe path component.
func validName(n string) bool {
	return n != "" && n != "." && n != ".." && len(n) <= 255 && !strings.ContainsAny(n, "/\x00")
}

func depth(p string) int { return strings.Count(p, "/") }

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// cleanRel turns a name of the nlist into a clean relative path; ok is
// false when it would leave the tree.
func cleanRel(p string) (string, bool) {
	p = strings.Trim(p, "/")
	if p == "" || p == "." {
		return "", true
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	for _, part := range strings.Split(c, "/") {
		if !validName(part) {
			return "", false
		}
	}
	return c, true
}

func (rs *restorer) restoreStream() error {
	cr := &countReader{r: rs.req.Input}
	r := dump.NewReader(cr)
	if rs.req.NextVolume != nil {
		r.SetNextVolume(func(n int) (io.Reader, error) {
			v, err := rs.req.NextVolume(n)
			if err != nil || v == nil {
				return nil, err // nil: no volume n, the image is truncated
			}
			cr.r = v
			return cr, nil
		})
	}
	h, err := r.Next()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if h.Kind != dump.KindVolume {
		return fmt.Errorf("restore: %w: the image does not start with a volume header", dump.ErrFormat)
	}
	vol := h.Dump
	rs.res.Level, rs.res.Date = vol.Level, vol.Date
	if rs.req.RecordSize != 0 {
		if err := CheckRestoreRecordSize(rs.req.RecordSize, vol.NTREC, rs.req.LocalTape); err != nil {
			return err
		}
	}
	if rs.req.Log != nil {
		_ = rs.req.Log.Start(vol.Level, "NDMP")
	}
	// Stages of D8, logged as I (catalog), II (directories), III (files)
	// and IV (directory attributes).
	stage := map[Phase]string{PhaseDirs: "II", PhaseFiles: "III", PhaseRestoreEnd: "IV"}
	progress := func(p Phase) {
		rs.res.Bytes = cr.n
		if rs.req.Log != nil && stage[p] != "" && !rs.opt.list && !rs.opt.listQtrees && !rs.opt.nowrite {
			_ = rs.req.Log.PhaseChange(stage[p])
		}
		if rs.req.Progress != nil {
			rs.req.Progress(Progress{Phase: p, Bytes: cr.n, Files: rs.res.Files})
		}
	}
	if rs.req.Log != nil {
		_ = rs.req.Log.PhaseChange("I")
	}
	var used, dumped *dump.Bitmap
	var damagedDirs []dirDamage // reported once paths are known
	dirs := map[uint32]*meta{}
	entries := map[uint32][]dump.DirEntry{}
	dirOff := map[uint32]int64{} // header offsets of the directories
	var cur *meta
	// Stage 1: catalog the image (maps and directories).
	for {
		if err := rs.ctx.Err(); err != nil {
			return err
		}
		h, err = r.Next()
		if err == io.EOF {
			h = nil
			break
		}
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if h.Kind == dump.KindUsedMap {
			if used, err = r.Bitmap(); err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			continue
		}
		if h.Kind == dump.KindDumpedMap {
			if dumped, err = r.Bitmap(); err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			continue
		}
		if h.Kind == dump.KindInode && !h.Inode.IsDir() || h.Kind == dump.KindEnd {
			break
		}
		if h.Kind == dump.KindInode {
			if _, dup := dirs[h.Ino]; dup {
				return fmt.Errorf("restore: %w: directory inode %d appears twice", dump.ErrFormat, h.Ino)
			}
			dirOff[h.Ino] = h.Offset
			ents, err := r.DirEntries()
			var dd *dump.DirDamageError
			if errors.As(err, &dd) {
				damagedDirs = append(damagedDirs, dirDamage{h.Ino, dd})
			} else if err != nil {
				return fmt.Errorf("restore: directory inode %d: %w", h.Ino, err)
			} else if len(ents) == 0 {
				damagedDirs = append(damagedDirs, dirDamage{h.Ino, fmt.Errorf("%w: directory inode %d holds no entries, not even \".\" and \"..\" (its data is missing)", dump.ErrFormat, h.Ino)})
			}
			cur = &meta{in: h.Inode}
			dirs[h.Ino] = cur
			var keep []dump.DirEntry
			for _, e := range ents {
				if e.Name != "." && e.Name != ".." {
					keep = append(keep, e)
				}
			}
			entries[h.Ino] = keep
			continue
		}
		if cur != nil {
			if err := rs.attach(r, h, cur); err != nil {
				return err
			}
		}
	}
	if used == nil || dumped == nil {
		return fmt.Errorf("restore: %w: the image has no inode maps", dump.ErrFormat)
	}
	progress(PhaseDirs)

	// The previous state, for incremental images.
	stateDir := rs.req.StateDir
	if stateDir == "" {
		stateDir = rs.dest
	}
	var old *symtab
	full := len(rs.req.Names) == 0
	if full && !rs.opt.list && !rs.opt.listQtrees && !rs.opt.nowrite && vol.Level > 0 {
		// A level 0 starts afresh: whatever holds the state's name then
		// does not stop it (issue 11).
		if old, err = loadSymtab(stateDir); err != nil {
			return err
		}
		if old == nil {
			return fmt.Errorf("restore: this is a level %d image; restore its level 0 image into %s first (no %s there)", vol.Level, stateDir, SymtabName)
		}
		if old.Date.Unix() != vol.BaseDate.Unix() {
			return fmt.Errorf("restore: level %d image is not the next of the chain: its base dump is from %s, the last image restored here is from %s",
				vol.Level, vol.BaseDate.UTC().Format(time.RFC3339), old.Date.UTC().Format(time.RFC3339))
		}
	}
	if _, ok := dirs[dump.RootIno]; !ok && (old == nil) {
		return fmt.Errorf("restore: %w: the image has no root directory", dump.ErrFormat)
	}
	// Directories of the old namespace that this image does not carry but
	// that still exist keep their entries (Linux dump's incrementals).
	isDir := map[uint32]bool{}
	for ino := range dirs {
		isDir[ino] = true
	}
	if old != nil {
		for p, ino := range old.Paths {
			parent := uint32(dump.RootIno)
			dir, base := path.Split(p)
			if dir != "" {
				parent = old.Paths[strings.TrimSuffix(dir, "/")]
			}
			if _, dumpedDir := dirs[parent]; dumpedDir || !used.Has(parent) || parent == 0 {
				continue
			}
			t := uint8(dump.DTReg)
			if old.Dirs[ino] {
				t = dump.DTDir
				if _, d := dirs[ino]; !d {
					isDir[ino] = true
				}
			}
			entries[parent] = append(entries[parent], dump.DirEntry{Ino: ino, Type: t, Name: base})
		}
		for d := range old.Dirs {
			if used.Has(d) {
				if _, ok := dirs[d]; !ok {
					isDir[d] = true
				}
			}
		}
	}
	// The new namespace: path -> inode. named holds every inode some
	// reachable entry names (even a name refused below).
	paths := map[string]uint32{"": dump.RootIno}
	visited := map[uint32]bool{dump.RootIno: true}
	named := map[uint32]bool{dump.RootIno: true}
	queue := []string{""}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		ents := entries[paths[p]]
		sort.SliceStable(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
		for i, e := range ents {
			named[e.Ino] = true
			cp := joinRel(p, e.Name)
			if i > 0 && ents[i-1].Name == e.Name {
				rs.nameResult(cp, e.Ino, fmt.Errorf("%w: directory inode %d holds the name %q twice (inodes %d and %d); only the first is restored",
					dump.ErrFormat, paths[p], e.Name, ents[i-1].Ino, e.Ino))
				continue
			}
			if !validName(e.Name) {
				rs.nameResult(cp, e.Ino, fmt.Errorf("%w: unsafe name %q in directory inode %d", dump.ErrFormat, e.Name, paths[p]))
				continue
			}
			if isDir[e.Ino] {
				if visited[e.Ino] {
					rs.nameResult(cp, e.Ino, fmt.Errorf("%w: directory inode %d has more than one name", dump.ErrFormat, e.Ino))
					continue
				}
				visited[e.Ino] = true
				queue = append(queue, cp)
			} else if e.Ino == dump.RootIno || e.Ino == 0 {
				continue
			}
			paths[cp] = e.Ino
		}
	}

	rs.reportDirDamage(damagedDirs, paths)

	// Lists.
	if rs.opt.listQtrees {
		for p, ino := range paths {
			if m := dirs[ino]; m != nil && m.qtree != nil {
				le := ListEntry{Path: p, Ino: ino, Qtree: m.qtree}
				rs.res.Qtrees = append(rs.res.Qtrees, le)
			}
		}
		sort.Slice(rs.res.Qtrees, func(i, j int) bool { return rs.res.Qtrees[i].Path < rs.res.Qtrees[j].Path })
		for _, le := range rs.res.Qtrees {
			if rs.req.OnList != nil {
				rs.req.OnList(le)
			}
		}
	}

	// Selection and renames (EXTRACT, nlist).
	targets := paths
	var plainDirs []string
	if !full {
		targets = map[string]uint32{}
		for _, n := range rs.req.Names {
			orig, ok1 := cleanRel(n.Original)
			dst, ok2 := cleanRel(n.Dest)
			if n.Dest == "" {
				dst = orig
			}
			if !ok1 || !ok2 {
				rs.nameResult(n.Original, 0, fmt.Errorf("restore: %q -> %q leaves the destination", n.Original, n.Dest))
				continue
			}
			ino, found := paths[orig]
			if !found {
				rs.nameResult(n.Original, 0, fmt.Errorf("restore: %q is not on the image", n.Original))
				continue
			}
			if isDir[ino] {
				for p, i := range paths {
					if p == orig || orig == "" || strings.HasPrefix(p, orig+"/") {
						rest := strings.TrimPrefix(strings.TrimPrefix(p, orig), "/")
						switch {
						case rest == "":
							targets[dst] = i
						default:
							targets[joinRel(dst, rest)] = i
						}
					}
				}
			} else {
				targets[dst] = ino
			}
			for d := path.Dir(dst); d != "." && d != "/" && dst != ""; d = path.Dir(d) {
				plainDirs = append(plainDirs, d)
			}
		}
	}
	if !rs.opt.list && !rs.opt.listQtrees && !rs.opt.nowrite {
		rs.reserveStateNames(targets, stateDir)
	}
	if rs.opt.list || rs.opt.listQtrees || rs.opt.nowrite {
		// A listing reports the attributes the image holds: directories'
		// from stage 1, the other inodes' as they are read here.
		var attrs map[uint32]listAttr
		if rs.opt.list {
			attrs = map[uint32]listAttr{}
			for _, ino := range targets {
				if m := dirs[ino]; m != nil {
					attrs[ino] = listAttr{m.in, dirOff[ino]}
				} else {
					attrs[ino] = listAttr{off: -1}
				}
			}
		}
		// h is the header stage 1 stopped at: the first file's, or TS_END.
		for h != nil && h.Kind != dump.KindEnd {
			if h.Kind == dump.KindInode {
				rs.res.Files++
				if a, ok := attrs[h.Ino]; ok && a.off < 0 {
					attrs[h.Ino] = listAttr{h.Inode, h.Offset}
				}
			}
			if h, err = r.Next(); err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
		}
		rs.list(targets, attrs)
		progress(PhaseRestoreEnd)
		return nil
	}

	if rs.loc != nil && rs.loc.RelPath == "" && !rs.opt.ignoreQtrees {
		rs.newQtrees = map[string]bool{}
		for p, ino := range targets {
			if m := dirs[ino]; m != nil && m.qtree != nil && p != "" && !strings.Contains(p, "/") {
				rs.newQtrees[p] = true
			}
		}
	}

	// Stage 2: directories (and renames and deletions of an incremental).
	dumpedFile := func(ino uint32) bool { return dumped.Has(ino) && !isDir[ino] }
	writeList := map[uint32][]string{}
	var oldPaths map[string]uint32
	oldDirs := map[uint32]bool{}
	if old != nil {
		oldPaths, oldDirs = old.Paths, old.Dirs
	}
	// An entry (directory, name, inode) found in both namespaces stays
	// where it is, or moves along with its directory; only the other names
	// are removed, staged or added.
	oldDirPath := map[uint32]string{dump.RootIno: ""}
	for p, ino := range oldPaths {
		if oldDirs[ino] {
			oldDirPath[ino] = p
		}
	}
	newDirPath := map[uint32]string{dump.RootIno: ""}
	for p, ino := range targets {
		if isDir[ino] {
			newDirPath[ino] = p
		}
	}
	kept := map[string]bool{}      // old paths of kept entries
	keptNew := map[string]bool{}   // new paths of kept entries
	keptIno := map[uint32]string{} // inode -> new path of one of its kept entries
	for p, ino := range oldPaths {
		if p == "" {
			continue
		}
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		pino := uint32(dump.RootIno)
		if dir != "" {
			pino = oldPaths[dir]
		}
		np, ok := newDirPath[pino]
		if !ok || !oldDirs[pino] && pino != dump.RootIno {
			continue
		}
		q := joinRel(np, base)
		if t, ok := targets[q]; ok && t == ino && oldDirs[ino] == isDir[ino] {
			kept[p] = true
			keptNew[q] = true
			if cur, ok := keptIno[ino]; !ok || q < cur {
				keptIno[ino] = q
			}
		}
	}
	liveTarget := map[uint32]bool{}
	for _, ino := range targets {
		liveTarget[ino] = true
	}
	// The staging directory's name is one neither namespace uses.
	staging := ".tapestry-restore-staging"
	for i := 1; ; i++ {
		_, inNew := targets[staging]
		_, inOld := oldPaths[staging]
		if !inNew && !inOld {
			break
		}
		staging = ".tapestry-restore-staging." + strconv.Itoa(i)
	}
	stagingMade := false
	staged := map[uint32]string{}
	var removed []string
	for p := range oldPaths {
		if !kept[p] && p != "" {
			removed = append(removed, p)
		}
	}
	sort.Slice(removed, func(i, j int) bool {
		return depth(removed[i]) > depth(removed[j]) || depth(removed[i]) == depth(removed[j]) && removed[i] < removed[j]
	})
	for i, p := range removed {
		if err := rs.cancelled(i); err != nil {
			return err
		}
		ino := oldPaths[p]
		survives := liveTarget[ino] && oldDirs[ino] == isDir[ino] && !dumpedFile(ino)
		var err error
		switch {
		case survives && (oldDirs[ino] || (keptIno[ino] == "" && staged[ino] == "")):
			if !stagingMade {
				if err = rs.fs.mkdir(staging); err != nil {
					return fmt.Errorf("restore: %w", err)
				}
				stagingMade = true
			}
			sp := staging + "/" + strconv.FormatUint(uint64(ino), 10)
			if err = rs.fs.rename(p, sp); err == nil {
				staged[ino] = sp
			}
		default:
			err = rs.fs.remove(p)
		}
		if err != nil {
			rs.nameResult(p, ino, err)
		}
	}
	// Directories first, parents before children, so that every name
	// kept or staged is in its final place before files are linked to it.
	var addDirs, addFiles []string
	for p, ino := range targets {
		if p == "" || keptNew[p] {
			continue
		}
		switch {
		case isDir[ino]:
			addDirs = append(addDirs, p)
		case !dumpedFile(ino):
			// Files on this image are written in stage 3; only the
			// others are linked or moved here.
			addFiles = append(addFiles, p)
		}
	}
	for _, d := range plainDirs {
		if _, ok := targets[d]; !ok {
			addDirs = append(addDirs, d)
		}
	}
	byDepth := func(s []string) {
		sort.Slice(s, func(i, j int) bool {
			return depth(s[i]) < depth(s[j]) || depth(s[i]) == depth(s[j]) && s[i] < s[j]
		})
	}
	byDepth(addDirs)
	byDepth(addFiles)
	for i, p := range addDirs {
		if err := rs.cancelled(i); err != nil {
			return err
		}
		if i > 0 && addDirs[i-1] == p {
			continue
		}
		ino, inImage := targets[p]
		var err error
		if sp := staged[ino]; inImage && sp != "" {
			// A file or link in the way (planted after the last
			// restore) is replaced, as mkdir would (D10).
			if typ, lerr := rs.fs.lstat(p); lerr == nil && typ != 0 && typ != unix.S_IFDIR {
				_ = rs.fs.remove(p)
			}
			err = rs.fs.rename(sp, p)
			delete(staged, ino)
		} else {
			err = rs.fs.mkdir(p)
		}
		if err != nil {
			rs.nameResult(p, ino, err)
		}
	}
	for i, p := range addFiles {
		if err := rs.cancelled(i); err != nil {
			return err
		}
		ino := targets[p]
		var err error
		switch {
		case dumpedFile(ino):
			// written in stage 3
		case staged[ino] != "":
			err = rs.fs.rename(staged[ino], p)
			delete(staged, ino)
			keptIno[ino] = p
		case keptIno[ino] != "":
			err = rs.fs.link(keptIno[ino], p)
		case vol.Level == 0:
			// A level 0 holds every file it names.
			rs.damage(p, ino, fmt.Errorf("%w: inode %d is neither on this image nor restored before", dump.ErrFormat, ino))
		default:
			err = fmt.Errorf("inode %d is neither on this image nor restored before (an incremental image holds only what changed)", ino)
		}
		if err != nil {
			rs.nameResult(p, ino, err)
		}
	}
	for p, ino := range targets {
		if dumpedFile(ino) {
			writeList[ino] = append(writeList[ino], p)
		}
	}
	for _, ps := range writeList {
		sort.Strings(ps)
	}
	if stagingMade {
		if err := rs.fs.remove(staging); err != nil {
			rs.nameResult(staging, 0, err)
		}
	}
	progress(PhaseFiles)

	// Stage 3: files.
	var pend *pending
	seen := map[uint32]bool{} // inodes whose header stage 3 read
	rs.creds = currentCreds()
	rs.workers = rs.startWorkers(fileWorkerCount())
	// A cancelled or failed restore still closes the file it was writing,
	// and ends the file workers.
	defer func() {
		rs.finish(pend)
		rs.stopWorkers()
	}()
	for h != nil && h.Kind != dump.KindEnd {
		if err := rs.ctx.Err(); err != nil {
			return err
		}
		switch h.Kind {
		case dump.KindInode:
			rs.finish(pend)
			pend = nil
			seen[h.Ino] = true
			if ps := writeList[h.Ino]; len(ps) > 0 {
				pend = rs.writeInode(r, h, ps)
			}
		case dump.KindXattr, dump.KindExtension:
			if h.Kind == dump.KindExtension && (h.Ext == dump.ExtACLSection || h.Ext == dump.ExtNTACL) {
				if h.Ext == dump.ExtNTACL && (pend == nil || pend.m.in.Ino != h.Ino) {
					// The NT ACL of a file created before: wait
					// for the workers to create it.
					rs.workers.wait()
				}
				var err error
				if pend, err = rs.ntaclRecord(r, h, pend, dirs, writeList); err != nil {
					return err
				}
			} else if pend != nil {
				if err := rs.attach(r, h, &pend.m); err != nil {
					return err
				}
			}
		}
		var err error
		h, err = r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	rs.finish(pend)
	pend = nil
	rs.stopWorkers()
	rs.res.Bytes = cr.n
	rs.checkDelivered(writeList, targets, seen, named, dirs, visited)

	// Stage 4: directory attributes, deepest first.
	progress(PhaseRestoreEnd)
	var dps []string
	for p, ino := range targets {
		if dirs[ino] != nil && (p != "" || full) {
			dps = append(dps, p)
		}
	}
	sort.Slice(dps, func(i, j int) bool {
		return depth(dps[i]) > depth(dps[j]) || depth(dps[i]) == depth(dps[j]) && dps[i] > dps[j]
	})
	for _, p := range dps {
		m := dirs[targets[p]]
		if err := rs.setDirAttrs(p, m); err != nil {
			rs.nameResult(p, m.in.Ino, err)
		}
		if m.qtree != nil && !rs.opt.ignoreQtrees && !strings.Contains(p, "/") && p != "" {
			rs.res.Qtrees = append(rs.res.Qtrees, ListEntry{Path: p, Ino: m.in.Ino, Qtree: m.qtree})
		}
	}
	if full {
		dirsNew := map[uint32]bool{}
		for _, ino := range targets {
			if isDir[ino] {
				dirsNew[ino] = true
			}
		}
		for p := range rs.lost {
			delete(targets, p)
		}
		if err := saveSymtab(stateDir, &symtab{Level: vol.Level, Date: vol.Date, Paths: targets, Dirs: dirsNew}); err != nil {
			if n := rs.res.Errors; n > 0 {
				// Not only the state: the names that failed first.
				return fmt.Errorf("restore: %d names could not be restored (each is reported), and %w", n, err)
			}
			return fmt.Errorf("restore: %w", err)
		}
	}
	return nil
}

// cancelled returns the context's error every 256 steps of a loop (and at
// its first), so that a cancelled restore of many directories stops soon.
func (rs *restorer) cancelled(step int) error {
	if step%256 != 0 {
		return nil
	}
	return rs.ctx.Err()
}

// attach records an xattr or extension record of the inode m.
func (rs *restorer) attach(r *dump.Reader, h *dump.Header, m *meta) error {
	switch h.Kind {
	case dump.KindXattr:
		xs, err := r.Xattrs()
		if err != nil {
			return fmt.Errorf("restore: xattrs of inode %d: %w", h.Ino, err)
		}
		m.xattrs = append(m.xattrs, xs...)
	case dump.KindExtension:
		switch h.Ext {
		case dump.ExtXattrs:
			xs, err := r.Xattrs()
			if err != nil {
				return fmt.Errorf("restore: xattrs of inode %d: %w", h.Ino, err)
			}
			m.xattrs = append(m.xattrs, xs...)
		case dump.ExtDOS:
			b, err := r.Extension(1 << 10)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			var d dump.DOSInfo
			if err := d.UnmarshalBinary(b); err != nil {
				return fmt.Errorf("restore: DOS attributes of inode %d: %w", h.Ino, err)
			}
			m.dos = &d
		case dump.ExtQtree:
			b, err := r.Extension(4 << 10)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			var q dump.QtreeInfo
			if err := q.UnmarshalBinary(b); err != nil {
				return fmt.Errorf("restore: qtree of inode %d: %w", h.Ino, err)
			}
			m.qtree = &q
		case dump.ExtStream:
			name, err := r.ReadStream()
			if err != nil {
				return fmt.Errorf("restore: stream of inode %d: %w", h.Ino, err)
			}
			data, err := io.ReadAll(io.LimitReader(r, dump.MaxXattrValue+1))
			if err != nil {
				return fmt.Errorf("restore: stream of inode %d: %w", h.Ino, err)
			}
			if len(data) > dump.MaxXattrValue || !validName(name) {
				rs.nameResult(name, h.Ino, fmt.Errorf("NT stream %q of inode %d cannot be kept as an xattr", name, h.Ino))
				return nil
			}
			m.streams = append(m.streams, dump.Xattr{Name: xattrStreamPrefix + name, Value: data})
		}
	}
	return nil
}

// pending is a restored inode whose attributes are set once its last
// record has been read.
type pending struct {
	m    meta
	path string
	fd   int      // the open regular file, -1 when there is none
	job  *fileJob // a small regular file left to the file workers
}

// writeInode creates the inode at paths[0] (and links the other paths) and
// writes its data. With file workers running, a small regular file is only
// read here; a worker creates it once finish hands it over.
func (rs *restorer) writeInode(r *dump.Reader, h *dump.Header, paths []string) *pending {
	in := h.Inode
	if err := rs.req.Policy.admit(&in); err != nil {
		for _, lp := range paths {
			rs.nameResult(lp, in.Ino, err)
		}
		return nil
	}
	p := &pending{m: meta{in: in}, path: paths[0], fd: -1}
	var err error
	rs.space++
	if !rs.opt.force && (in.Size > 1<<20 || rs.space >= 256) {
		rs.space = 0
		if err = rs.checkSpace(in.Size); err != nil {
			rs.lose(paths[0])
			rs.nameResult(paths[0], in.Ino, err)
			return nil
		}
	}
	switch in.Mode & dump.ModeFmt {
	case dump.ModeReg:
		if rs.workers != nil && in.Size <= smallFileMax {
			j := rs.workers.job()
			j.paths = paths
			if err = j.read(r); err != nil {
				rs.workers.put(j)
				break
			}
			p.job = j
			return p
		}
		fd, _, err2 := rs.fs.create(paths[0], 0o600)
		if err2 != nil {
			err = err2
			break
		}
		p.fd = fd
		var end int64
		end, err = rs.writeData(r, fdWriter(fd))
		if err == nil && end != in.Size {
			// Holes at the end (or a short image) make the size; a file
			// whose data reached its size needs no truncate.
			if err2 := unix.Ftruncate(fd, in.Size); err2 != nil {
				// The file cannot take its size: skip the inode, leaving
				// no file of the wrong size behind (D14).
				err = ErrorTruncationFailed(in.Ino, err2)
				unix.Close(fd)
				p.fd = -1
				_ = rs.fs.remove(paths[0])
			}
		}
	case dump.ModeLnk:
		if in.Size > 64<<10 {
			err = fmt.Errorf("%w: symbolic link of %d bytes", dump.ErrCount, in.Size)
			break
		}
		var b []byte
		if b, err = io.ReadAll(io.LimitReader(r, in.Size)); err == nil {
			err = rs.fs.symlink(paths[0], string(b))
		}
	case dump.ModeChr, dump.ModeBlk, dump.ModeFifo, dump.ModeSock:
		err = rs.fs.mknod(paths[0], in.Mode&dump.ModeFmt|0o600, uint64(in.Rdev))
	default:
		err = fmt.Errorf("%w: inode %d has unknown type %#o", dump.ErrFormat, in.Ino, in.Mode)
	}
	if err != nil {
		if p.fd >= 0 {
			unix.Close(p.fd)
			err = rs.dropPartial(rs.fs, paths[0], err)
		}
		rs.lose(paths[0])
		rs.nameResult(paths[0], in.Ino, err)
		return nil
	}
	rs.nameResult(paths[0], in.Ino, nil)
	for _, lp := range paths[1:] {
		rs.nameResult(lp, in.Ino, rs.fs.link(paths[0], lp))
	}
	rs.fileDone()
	return p
}

// fileDone counts one restored inode.
func (rs *restorer) fileDone() {
	rs.mu.Lock()
	rs.res.Files++
	n := rs.res.Files
	rs.mu.Unlock()
	if rs.req.Progress != nil && n%1000 == 0 && rs.workers == nil {
		rs.req.Progress(Progress{Phase: PhaseFiles, Files: n})
	}
}

// fdWriter writes to a file descriptor at offsets.
type fdWriter int

// WriteAt implements io.WriterAt.
func (f fdWriter) WriteAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Pwrite(int(f), b[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.ErrShortWrite
		}
		n += m
	}
	return n, nil
}

// writeData copies the current entry's data records into f, one write per
// run of contiguous records (holes are skipped), and returns the end offset
// of the data written.
func (rs *restorer) writeData(r *dump.Reader, f io.WriterAt) (int64, error) {
	if rs.wbuf == nil {
		rs.wbuf = make([]byte, 0, restoreWriteBuffer)
	}
	buf := rs.wbuf[:0]
	var start, end int64
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		_, err := f.WriteAt(buf, start)
		buf = buf[:0]
		return err
	}
	for {
		off, data, hole, err := r.ReadChunk()
		if err == io.EOF {
			return end, flush()
		}
		if err != nil {
			return end, err
		}
		if hole {
			continue
		}
		if len(buf) > 0 && (off != start+int64(len(buf)) || len(buf)+len(data) > cap(buf)) {
			if err := flush(); err != nil {
				return end, err
			}
		}
		if len(buf) == 0 {
			start = off
		}
		buf = append(buf, data...)
		end = max(end, off+int64(len(data)))
	}
}

func (rs *restorer) checkSpace(need int64) error {
	si, err := snapshot.Space(rs.dest)
	if err != nil {
		return err
	}
	const margin = 100 << 20
	if si.AvailableBytes < uint64(need)+margin && uint64(need)+margin > 0 {
		return fmt.Errorf("not enough space in %s: %d bytes free, %d needed (data + 100 MB); set FORCE=Y to restore what fits", rs.dest, si.AvailableBytes, need+margin)
	}
	if si.TotalInodes > 0 && si.FreeInodes == 0 {
		return fmt.Errorf("no free inodes in %s; set FORCE=Y to restore what fits", rs.dest)
	}
	return nil
}

// xattrsToSet returns the attributes to restore on an inode.
func (rs *restorer) xattrsToSet(m *meta) []dump.Xattr {
	var out []dump.Xattr
	hasDOS := false
	for _, x := range m.xattrs {
		if !rs.opt.extractACL && (x.Name == xattrNTACL || strings.HasPrefix(x.Name, "system.posix_acl_")) || !rs.req.Policy.xattrAllowed(x.Name) {
			continue
		}
		if x.Name == xattrDOSAttrib {
			hasDOS = true
		}
		out = append(out, x)
	}
	if m.dos != nil && !hasDOS {
		out = append(out, dump.Xattr{Name: xattrDOSAttrib, Value: []byte(fmt.Sprintf("0x%x", m.dos.Attributes))})
	}
	return append(out, m.streams...)
}

func (m *meta) timespecs() []unix.Timespec {
	a, mt := m.in.Atime, m.in.Mtime
	return []unix.Timespec{unix.NsecToTimespec(a.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
}

// finish sets owner, mode, xattrs and times of a restored non-directory;
// a small file read for the workers is handed over to them instead.
func (rs *restorer) finish(p *pending) {
	if p == nil {
		return
	}
	if p.job != nil {
		rs.workers.submit(p)
		return
	}
	rs.setAttrs(rs.fs, p, nil)
}

// attrsOf returns the xattrs to set on the non-directory p.
func (rs *restorer) attrsOf(p *pending) []dump.Xattr {
	xs := rs.xattrsToSet(&p.m)
	if len(xs) > 0 && !rs.lunAllowed(p.path) {
		kept := xs[:0]
		for _, x := range xs {
			if x.Name != storage.LUNXattrTrusted && x.Name != storage.LUNXattrUser {
				kept = append(kept, x)
			}
		}
		xs = kept
	}
	return xs
}

// setAttrs sets the attributes of p through fs. skip, when set, says which
// of owner and mode the new file already has.
func (rs *restorer) setAttrs(fs *destFS, p *pending, skip *ownerMode) {
	m := &p.m
	var errs []error
	xs := rs.attrsOf(p)
	typ := m.in.Mode & dump.ModeFmt
	wasOpen := p.fd >= 0
	if wasOpen {
		errs = fsetXattrs(errs, p.fd, xs, false)
		if skip == nil || !skip.owner {
			if err := unix.Fchown(p.fd, int(m.in.UID), int(m.in.GID)); err != nil {
				errs = append(errs, err)
			}
		}
		errs = fsetXattrs(errs, p.fd, xs, true)
		if skip == nil || !skip.mode {
			if err := unix.Fchmod(p.fd, m.in.Mode&0o7777); err != nil {
				errs = append(errs, err)
			}
		}
		// The times last, on the open file: no path lookup.
		timesErr := unix.UtimesNanoAt(p.fd, "", m.timespecs(), unix.AT_EMPTY_PATH)
		if err := unix.Close(p.fd); err != nil {
			errs = append(errs, err)
		}
		p.fd = -1
		if timesErr == nil {
			if len(errs) > 0 {
				rs.nameResult(p.path, m.in.Ino, fmt.Errorf("set attributes: %w", errors.Join(errs...)))
			}
			return
		}
		// Older kernels: the times go through the parent below.
	}
	pfd, base, err := fs.parent(p.path)
	if err != nil {
		rs.nameResult(p.path, m.in.Ino, err)
		return
	}
	if !wasOpen {
		link := typ == dump.ModeLnk
		errs = lsetXattrs(errs, procPath(pfd, base), xs, link, false)
		if err := unix.Fchownat(pfd, base, int(m.in.UID), int(m.in.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			errs = append(errs, err)
		}
		errs = lsetXattrs(errs, procPath(pfd, base), xs, link, true)
		if typ != dump.ModeLnk {
			if err := chmodNoFollow(pfd, base, m.in.Mode&0o7777); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := unix.UtimesNanoAt(pfd, base, m.timespecs(), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		rs.nameResult(p.path, m.in.Ino, fmt.Errorf("set attributes: %w", errors.Join(errs...)))
	}
}

// setDirAttrs sets the attributes of a restored directory.
func (rs *restorer) setDirAttrs(p string, m *meta) error {
	fd, err := rs.fs.openDir(p)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var errs []error
	for _, x := range rs.xattrsToSet(m) {
		if err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err != nil {
			errs = append(errs, fmt.Errorf("xattr %s: %w", x.Name, err))
		}
	}
	in := rs.req.Policy.dirInode(m.in)
	if err := unix.Fchown(fd, int(in.UID), int(in.GID)); err != nil {
		errs = append(errs, err)
	}
	if err := unix.Fchmod(fd, in.Mode&0o7777); err != nil {
		errs = append(errs, err)
	}
	if err := unix.UtimesNanoAt(fd, "", m.timespecs(), unix.AT_EMPTY_PATH); err != nil {
		// Older kernels: go through the parent.
		if p == "" {
			err = unix.UtimesNanoAt(unix.AT_FDCWD, rs.dest, m.timespecs(), 0)
		} else if pfd, base, perr := rs.fs.parent(p); perr == nil {
			err = unix.UtimesNanoAt(pfd, base, m.timespecs(), unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
