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
	"github.com/tapestry-ndmp/tapestry/internal/engine"
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

// RestoreEvents is the part of an event log a restore writes to (the
// engines' RestoreEvents); *eventlog.RestoreLog implements it.
type RestoreEvents = engine.RestoreEvents

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
	Limiter  *engine.Limiter
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
		l, err := engine.Resolve(ctx, req.Storage, req.Path, engine.WriteFiles)
		if err != nil {
			return res, withOp("restore", err)
		}
		loc = &l
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
		if loc != nil && loc.RelPath != "" {
			if err := makeDestination(loc.Root, loc.RelPath); err != nil {
				return res, err
			}
		}
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
