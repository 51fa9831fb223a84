package filedump

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
)

// Phase is a stage of a backup (D3) or restore (D8); its String gives the
// Roman numerals of the backup phases.
type Phase = engine.Phase

// Backup phases I to V.
const (
	PhaseTraverse   Phase = 1 // I: traverse for subtrees
	PhaseIdentify   Phase = 2 // II: identify directories
	PhaseDirs       Phase = 3 // III: write directories
	PhaseFiles      Phase = 4 // IV: write files
	PhaseACLs       Phase = 5 // V: write ACLs
	PhaseRestoreEnd Phase = 6 // restore: set directory attributes
)

// Progress reports how far a backup or restore is.
type Progress = engine.Progress

// DirHistory is one directory entry for file history (NDMP FH_ADD_DIR).
type DirHistory struct {
	Name   string // raw name bytes
	Ino    uint32 // dump inode of the entry
	Parent uint32 // dump inode of the directory holding it
}

// NodeHistory is one inode for file history (NDMP FH_ADD_NODE).
type NodeHistory struct {
	Inode dump.Inode
	// FHInfo is the byte offset of the inode's TS_INODE header in the image.
	FHInfo int64
}

// FileHistory receives file history. Its methods are called from the backup
// goroutine; an error ends the backup.
type FileHistory interface {
	AddDir(DirHistory) error
	AddNode(NodeHistory) error
}

// DumpEvents is the part of an event log a backup writes to (the engines'
// BackupEvents); *eventlog.DumpLog implements it.
type DumpEvents = engine.BackupEvents

// SnapshotNamer hands out the names snapshot_for_backup.<n> (D1); it is the
// engines' namer.
type SnapshotNamer = engine.SnapshotNamer

// BackupRequest describes one backup.
type BackupRequest struct {
	// Storage and Path name a backup path /svm/volume[/path] of a registered
	// volume; Path may go through .snapshot/<name> to back up that snapshot.
	Storage *storage.Service
	Path    string
	// Dir is used instead of Storage and Path: a plain directory dumped
	// directly, without a snapshot (local dumps). VolumeKey, when set, names
	// it for the dump dates and the inode map (default: Dir).
	Dir       string
	VolumeKey string
	// Catalog keeps dump dates and inode maps; nil allows only level 0
	// backups that record nothing.
	Catalog catalog.Store
	// Env holds the NDMP environment: LEVEL, UPDATE, BASE_DATE, DMP_NAME,
	// EXCLUDE, MULTI_SUBTREE_NAMES, NON_QUOTA_TREE, IGNORE_CTIME, NO_ACLS,
	// HIST.
	Env Env
	// Output receives the image.
	Output io.Writer
	// VolumeSize ends a volume after this many bytes and NextVolume gives
	// the writer of volume n >= 2 (multi-volume images); 0 means no limit.
	VolumeSize int64
	NextVolume func(n int) (io.Writer, error)
	// RecordSize is the tape record size in bytes (D6); 0 means 10 KB.
	RecordSize int
	// DisableOffsetMap leaves out the offset map that enhanced DAR needs,
	// as the option ndmpd.offset_map.enable off in Catalog does.
	DisableOffsetMap bool
	// Snapshots names the snapshots the backup creates; nil uses a private
	// namer (numbers then start at 0 for every backup).
	Snapshots *SnapshotNamer
	Limiter   *engine.Limiter
	Log       DumpEvents
	History   FileHistory
	Progress  func(Progress)
	Host      string
	// Now gives the dump date; time.Now when nil.
	Now func() time.Time
	// InodeMaps shares the volumes' inode maps between concurrent backups;
	// share one per catalog. Nil gives the backup a map of its own, which
	// is right only when no other backup of the volume can run meanwhile.
	InodeMaps *InodeMaps

	hooks *backupHooks
}

// backupHooks are test seams that order concurrent backups.
type backupHooks struct {
	mapLoaded func() // the inode map is loaded; the walk has not started
}

// BackupResult is what a finished backup reports.
type BackupResult struct {
	Level    int
	Date     time.Time
	BaseDate time.Time // zero for level 0
	Snapshot string
	Bytes    int64 // image bytes
	Files    int64 // inodes written
	// Env holds the variables returned to the DMA: DUMP_DATE, ACL_START,
	// NDMP_VERSION, PATHNAME_SEPARATOR, TYPE, LEVEL.
	Env Env
}

// node is one inode found by the walk.
type node struct {
	ino     uint32
	path    string // relative to the dump root, "" for the root
	mode    uint32
	nlink   uint32
	uid     uint32
	gid     uint32
	size    int64
	rdev    uint32
	atime   int64
	mtime   int64
	ctime   int64
	btime   int64
	entries []dump.DirEntry // directories
	qtree   *dump.QtreeInfo
	dump    bool
	dup     bool // another name of a hard-linked file already found
	// vanished: the file was removed between the walk and phase IV.
	vanished bool
}

// fileRef is a non-directory found by the walk; its attributes are read
// again when it is written, which keeps the walk's memory small.
type fileRef struct {
	path string
	ino  uint32
	typ  uint32 // file type bits of the mode the walk saw
	dump bool
}

func (n *node) inode() *dump.Inode {
	in := new(dump.Inode)
	n.fillInode(in)
	return in
}

// fillInode sets in to the inode of n.
func (n *node) fillInode(in *dump.Inode) {
	*in = dump.Inode{
		Ino: n.ino, Mode: n.mode, Nlink: int(n.nlink), UID: n.uid, GID: n.gid, Size: n.size,
		Atime: time.Unix(0, n.atime), Mtime: time.Unix(0, n.mtime), Ctime: time.Unix(0, n.ctime),
		Birthtime: nsTime(n.btime), Rdev: n.rdev,
	}
}

func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

type countWriter struct {
	w io.Writer
	n int64
}

// Write implements io.Writer.
func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// LendBlock implements dump.BlockLender when the writer counted does.
func (c *countWriter) LendBlock(n int) []byte {
	if l, ok := c.w.(dump.BlockLender); ok {
		return l.LendBlock(n)
	}
	return nil
}

// nextVolume wraps the writers of further volumes so that their bytes are
// counted too.
func nextVolume(f func(int) (io.Writer, error), cw *countWriter) func(int) (io.Writer, error) {
	if f == nil {
		return nil
	}
	return func(n int) (io.Writer, error) {
		w, err := f(n)
		if err != nil {
			return nil, err
		}
		cw.w = w
		return cw, nil
	}
}

// source is what a backup reads: a root directory and the subtree in it.
type source struct {
	root     string // host directory the walk starts from (snapshot root or dir)
	rel      string // subtree below root ("" whole)
	volKey   string
	ident    snapshot.IdentityMap
	qtrees   map[string]dump.QtreeInfo // top-level qtree dirs when the scope is a volume
	volume   *storage.Volume
	wholeVol bool
	cleanup  func()
	snapName string
	snapTime time.Time
	// stableBirth: the snapshot's files keep the birth times of the live
	// files (btrfs), so they can tell reused inode numbers apart.
	stableBirth bool
	backupKey   string // path used for dump dates
	// refuseLabels: the volume's SVM serves NFSv4.2 security labels
	// (vserver nfs -v4.2-seclabel enabled), so a file with one stops the
	// dump with MsgSecurityLabels, as on ONTAP; otherwise a label is
	// dumped and restored like any extended attribute.
	refuseLabels bool
}

// Backup makes one dump backup. It refuses bad requests before writing
// anything; on error or cancellation the snapshot it made is deleted.
func Backup(ctx context.Context, req BackupRequest) (res BackupResult, err error) {
	if req.Output == nil {
		return res, errors.New("dump backup: no output")
	}
	ntrec := dump.DefaultNTREC
	if req.RecordSize != 0 {
		if ntrec, err = CheckRecordSize(req.RecordSize); err != nil {
			return res, err
		}
	}
	opt, err := parseBackupEnv(req.Env)
	if err != nil {
		return res, err
	}
	release, err := req.Limiter.Acquire()
	if err != nil {
		return res, err
	}
	defer release()
	now := time.Now
	if req.Now != nil {
		now = req.Now
	}
	date := now()
	var cw countWriter
	cw.w = req.Output
	logf := func(f func(DumpEvents) error) {
		if req.Log != nil {
			_ = f(req.Log)
		}
	}
	defer func() {
		if err != nil {
			logf(func(l DumpEvents) error { return l.Error(Message(err)) })
			logf(func(l DumpEvents) error { return l.Abort(cw.n) })
		}
	}()

	// Start comes before the snapshot is made (issue 17 item 5): with the
	// copy provider making it takes as long as copying the volume.
	logf(func(l DumpEvents) error { return l.Start(opt.level, "NDMP") })
	src, err := openSource(ctx, &req, opt)
	if err != nil {
		return res, err
	}
	defer src.cleanup()
	if src.snapName != "" {
		logf(func(l DumpEvents) error { return l.Snapshot(src.snapName, src.snapTime) })
	}
	b := &backupRun{ctx: ctx, req: &req, opt: opt, src: src, cw: &cw, date: date, logf: logf}
	if err := b.findBase(); err != nil {
		return res, err
	}
	maps := req.InodeMaps
	if maps == nil || req.Catalog == nil {
		// Without a catalog nothing is kept: the map is the backup's own
		// (the quick walk renumbers in it).
		maps = &InodeMaps{}
	}
	im, releaseMap, err := maps.acquire(ctx, req.Catalog, src.volKey)
	if err != nil {
		return res, err
	}
	defer releaseMap()
	if req.hooks != nil && req.hooks.mapLoaded != nil {
		req.hooks.mapLoaded()
	}
	if err := b.walk(im); err != nil {
		return res, err
	}
	defer b.abortOutput()
	if err := b.openImage(ntrec); err != nil {
		return res, err
	}
	if err := b.writeDirs(); err != nil {
		return res, err
	}
	if err := b.writeFiles(); err != nil {
		return res, err
	}
	return b.finish(im)
}

type backupOpts struct {
	level        int
	update       bool
	hist         bool
	ignoreCtime  bool
	noACLs       bool
	nonQuotaTree bool
	dmpName      string
	exclude      *Exclude
	multi        []string
	multiRoot    string
	baseDateSet  bool
	baseTokenStr string
}

func parseBackupEnv(env Env) (*backupOpts, error) {
	o := &backupOpts{}
	var err error
	if o.level, err = env.Int("LEVEL", 0, 0, 31); err != nil {
		return nil, err
	}
	if o.update, err = env.Bool("UPDATE", true); err != nil {
		return nil, err
	}
	if o.hist, err = env.Bool("HIST", false); err != nil {
		return nil, err
	}
	if o.ignoreCtime, err = env.Bool("IGNORE_CTIME", false); err != nil {
		return nil, err
	}
	if o.noACLs, err = env.Bool("NO_ACLS", false); err != nil {
		return nil, err
	}
	if o.nonQuotaTree, err = env.Bool("NON_QUOTA_TREE", false); err != nil {
		return nil, err
	}
	o.dmpName = env["DMP_NAME"]
	if o.exclude, err = ParseExclude(env["EXCLUDE"]); err != nil {
		return nil, err
	}
	if o.nonQuotaTree {
		o.exclude = nil // EXCLUDE is ignored with NON_QUOTA_TREE=Y
	}
	if v := env["MULTI_SUBTREE_NAMES"]; strings.TrimSpace(strings.Trim(v, "\x00")) != "" {
		if o.dmpName == "" {
			return nil, errors.New("MULTI_SUBTREE_NAMES needs DMP_NAME")
		}
		if o.multiRoot, o.multi, err = ParseMultiSubtree(v); err != nil {
			return nil, err
		}
	}
	if v, ok := env["BASE_DATE"]; ok && strings.TrimSpace(v) != "" && strings.TrimSpace(v) != "-1" {
		o.baseDateSet = true
		o.baseTokenStr = strings.TrimSpace(v)
		n, err := strconv.ParseInt(o.baseTokenStr, 10, 64)
		if err != nil {
			u, uerr := strconv.ParseUint(o.baseTokenStr, 10, 64)
			if uerr != nil {
				return nil, fmt.Errorf("BASE_DATE %q is not 0, -1 or a DUMP_DATE value", v)
			}
			n = int64(u >> 1)
		}
		if n < 0 {
			return nil, fmt.Errorf("BASE_DATE %q is not 0, -1 or a DUMP_DATE value", v)
		}
		if o.baseTokenStr == "0" && o.level != 0 {
			return nil, errors.New("BASE_DATE 0 starts a chain and needs LEVEL 0")
		}
	}
	return o, nil
}

func openSource(ctx context.Context, req *BackupRequest, opt *backupOpts) (*source, error) {
	src := &source{cleanup: func() {}}
	if req.Dir != "" {
		if req.Storage != nil || req.Path != "" {
			return nil, errors.New("dump backup: give Dir or Storage and Path, not both")
		}
		abs, err := filepath.Abs(req.Dir)
		if err != nil {
			return nil, err
		}
		fi, err := os.Lstat(abs)
		if err != nil {
			return nil, fmt.Errorf("dump backup: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("dump backup: %s is not a directory", abs)
		}
		src.root = abs
		src.volKey = req.VolumeKey
		if src.volKey == "" {
			src.volKey = abs
		}
		src.backupKey = src.volKey
		src.wholeVol = true
	} else {
		if req.Storage == nil || req.Path == "" {
			return nil, errors.New("dump backup: no source: give Dir, or Storage and Path")
		}
		if err := openStorageSource(ctx, req, src); err != nil {
			return nil, err
		}
	}
	if opt.multi != nil {
		// The common root: the backup path itself, a path below it, or a
		// path relative to it.
		base := strings.TrimSuffix(req.Path, "/")
		if req.Dir != "" {
			base = src.root
		}
		r := strings.TrimSuffix(opt.multiRoot, "/")
		switch {
		case r == "" || r == "." || r == base:
		case strings.HasPrefix(r, base+"/"):
			src.rel = path.Join(src.rel, r[len(base)+1:])
		case strings.HasPrefix(r, "/"):
			src.cleanup()
			return nil, fmt.Errorf("MULTI_SUBTREE_NAMES: the common root %q is not below the backup path %q", r, base)
		default:
			c, ok := cleanRel(r)
			if !ok {
				src.cleanup()
				return nil, fmt.Errorf("MULTI_SUBTREE_NAMES: bad common root %q", r)
			}
			src.rel = path.Join(src.rel, c)
		}
		src.backupKey = strings.TrimSuffix(src.backupKey, "/") + "/" + opt.dmpName
	}
	return src, nil
}

func openStorageSource(ctx context.Context, req *BackupRequest, src *source) error {
	s := req.Storage
	loc, err := engine.Resolve(ctx, s, req.Path, engine.ReadFiles)
	if err != nil {
		return withOp("dump backup", err)
	}
	vol := loc.Volume
	src.volume = &vol
	nfs, err := s.GetNFS(ctx, vol.SVM)
	if err != nil {
		return fmt.Errorf("dump backup: %w", err)
	}
	src.refuseLabels = nfs.V42SecLabel
	src.volKey = vol.SVM + "/" + vol.Name + "@" + vol.UUID
	src.rel = loc.RelPath
	src.wholeVol = loc.RelPath == ""
	owner := "dump:" + req.Path
	if loc.Snapshot != nil {
		// Back up the named snapshot: lock it while in use, create none.
		lease, err := engine.Hold(ctx, s, *loc.Snapshot, owner)
		if err != nil {
			return &Error{Msg: MsgSnapshotLock, Err: err}
		}
		src.cleanup = func() { _ = lease.Release(ctx) }
		src.root = loc.Snapshot.HostPath
		src.snapName = loc.Snapshot.Name
		src.snapTime = loc.Snapshot.CreatedAt
		src.backupKey = "/" + vol.SVM + "/" + vol.Name
		if loc.RelPath != "" {
			src.backupKey += "/" + loc.RelPath
		}
		ident, err := s.SnapshotIdentity(ctx, vol.SVM, vol.Name, src.snapName)
		if err != nil {
			src.cleanup()
			return &Error{Msg: MsgSnapshotLock, Err: err}
		}
		src.ident = ident
		src.stableBirth = loc.Snapshot.Provider == "btrfs"
	} else {
		namer := req.Snapshots
		if namer == nil {
			namer = &SnapshotNamer{}
		}
		lease, err := engine.Acquire(ctx, s, vol, namer, owner)
		if err != nil {
			return &Error{Msg: MsgSnapshotLock, Err: err}
		}
		src.cleanup = func() { _ = lease.Release(ctx) }
		snap := lease.Snapshot()
		src.root = snap.HostPath
		src.snapName = snap.Name
		src.snapTime = snap.CreatedAt
		src.backupKey = strings.TrimSuffix(req.Path, "/")
		ident, err := s.SnapshotIdentity(ctx, vol.SVM, vol.Name, snap.Name)
		if err != nil {
			src.cleanup()
			return fmt.Errorf("dump backup: %w", err)
		}
		src.ident = ident
		src.stableBirth = snap.Provider == "btrfs"
	}
	if src.wholeVol {
		qs, err := s.ListQtrees(ctx, vol.SVM, vol.Name)
		if err != nil {
			src.cleanup()
			return fmt.Errorf("dump backup: %w", err)
		}
		src.qtrees = map[string]dump.QtreeInfo{}
		for _, q := range qs {
			if q.Name == "" {
				continue
			}
			src.qtrees[q.Name] = dump.QtreeInfo{ID: uint32(q.ID), Name: q.Name, SecurityStyle: string(q.SecurityStyle)}
		}
	}
	return nil
}

// walker collects the inodes of a backup (phases I and II).
type walker struct {
	ctx    context.Context
	src    *source
	opt    *backupOpts
	im     *InodeMap
	base   time.Time
	level  int
	dirs   []*node
	files  []fileRef
	found  [][]fileRef       // files found so far by the walk, see addFile
	byLive map[uint64]uint32 // hard-linked files already found
	maxIno uint32
	dev    uint64
	// quick: the walk statx'es only directories and takes the type and
	// the inode number of other files from their directory entries. It
	// is enough when every file is dumped (level 0) and the inode map is
	// neither kept nor was loaded (no catalog): nothing then needs the
	// times, link counts or birth times before phase IV reads them.
	quick bool
	br    *bufio.Reader
	bbuf  []byte
	rd    bytes.Reader // data of the file being written
	in    dump.Inode   // inode of the file being written
	// ntacls are the decoded security.NTACL of the inodes written so far,
	// written in the ACL section (phase V).
	ntacls []inodeACL
}

func (w *walker) full(rel string) string {
	return filepath.Join(w.src.root, filepath.FromSlash(rel))
}

func (w *walker) walk() error {
	w.byLive = make(map[uint64]uint32)
	top := w.src.rel
	var st unix.Stat_t
	if err := unix.Lstat(w.full(top), &st); err != nil {
		return fmt.Errorf("dump backup: %s: %w", w.full(top), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if w.opt.multi != nil || top == "" {
			return fmt.Errorf("dump backup: %s is not a directory", w.full(top))
		}
		// A single file (issue 17 item 5: ndmpcopy of a file): the image's
		// root is its directory, holding only the file, as with
		// MULTI_SUBTREE_NAMES.
		file := top
		if top = path.Dir(file); top == "." {
			top = ""
		}
		w.src.rel = top
		w.opt.multi = []string{path.Base(file)}
		if err := unix.Lstat(w.full(top), &st); err != nil {
			return fmt.Errorf("dump backup: %s: %w", w.full(top), err)
		}
	}
	w.dev = st.Dev
	root, err := w.stat(top, dump.RootIno)
	if err != nil {
		return err
	}
	root.path = ""              // paths are relative to the dump root
	var include map[string]bool // MULTI_SUBTREE_NAMES: subtrees and their ancestors
	var subtrees []string
	if w.opt.multi != nil {
		include = map[string]bool{}
		for _, s := range w.opt.multi {
			subtrees = append(subtrees, s)
			for d := s; d != "." && d != ""; d = path.Dir(d) {
				include[d] = true
			}
		}
	}
	l := w.startLister(include, subtrees)
	err = w.walkDir(l, root, "")
	l.stop()
	if err != nil {
		return err
	}
	// One slice of the exact size for the files found.
	n := 0
	for _, c := range w.found {
		n += len(c)
	}
	w.files = make([]fileRef, 0, n)
	for _, c := range w.found {
		w.files = append(w.files, c...)
	}
	w.found = nil
	w.maxIno = dump.RootIno
	for _, n := range w.dirs {
		w.maxIno = max(w.maxIno, n.ino)
	}
	for _, n := range w.files {
		w.maxIno = max(w.maxIno, n.ino)
	}
	// Usually in order already: the walk hands out new numbers in its own
	// order.
	byIno := func(a, b fileRef) int { return cmp.Compare(a.ino, b.ino) }
	if !slices.IsSortedFunc(w.files, byIno) {
		slices.SortFunc(w.files, byIno)
	}
	dirIno := func(a, b *node) int { return cmp.Compare(a.ino, b.ino) }
	if !slices.IsSortedFunc(w.dirs, dirIno) {
		slices.SortFunc(w.dirs, dirIno)
	}
	w.byLive = nil
	return nil
}

// statxMask is what the backup asks statx for.
const statxMask = unix.STATX_BASIC_STATS | unix.STATX_BTIME

// stat reads the attributes of rel; ino 0 means "assign from the map".
func (w *walker) stat(rel string, ino uint32) (*node, error) {
	var sx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, w.full(rel), unix.AT_SYMLINK_NOFOLLOW, statxMask, &sx)
	if err != nil {
		return nil, fmt.Errorf("dump backup: stat %s: %w", w.full(rel), err)
	}
	return w.node(&sx, rel, ino)
}

// node makes the node of rel from its attributes sx; ino 0 means "assign
// from the map". Only the walk's goroutine may pass ino 0.
func (w *walker) node(sx *unix.Statx_t, rel string, ino uint32) (*node, error) {
	n := new(node)
	if err := w.fillNode(n, sx, rel, ino); err != nil {
		return nil, err
	}
	return n, nil
}

// fillNode sets n to the node of rel with attributes sx (see node).
func (w *walker) fillNode(n *node, sx *unix.Statx_t, rel string, ino uint32) error {
	*n = node{
		path: rel, mode: uint32(sx.Mode), nlink: sx.Nlink, uid: sx.Uid, gid: sx.Gid, size: int64(sx.Size),
		atime: sx.Atime.Sec*1e9 + int64(sx.Atime.Nsec),
		mtime: sx.Mtime.Sec*1e9 + int64(sx.Mtime.Nsec),
		ctime: sx.Ctime.Sec*1e9 + int64(sx.Ctime.Nsec),
	}
	if sx.Mask&unix.STATX_BTIME != 0 {
		n.btime = sx.Btime.Sec*1e9 + int64(sx.Btime.Nsec)
	}
	typ := n.mode & unix.S_IFMT
	if typ == unix.S_IFCHR || typ == unix.S_IFBLK {
		n.rdev = uint32(unix.Mkdev(sx.Rdev_major, sx.Rdev_minor))
	}
	if typ != unix.S_IFREG && typ != unix.S_IFLNK {
		n.size = 0
	}
	// A reflink or copy snapshot's files are new: their own ctime is the
	// time of the copy. The live file's ctime, recorded by the provider,
	// is the one that tells whether the file changed (D5).
	if lc, ok := w.src.ident.(snapshot.LiveCtimer); ok {
		if c, ok := lc.LiveCtime(sx.Ino); ok {
			n.ctime = c.UnixNano()
		}
	}
	if ino != 0 {
		n.ino = ino
		return nil
	}
	live := sx.Ino
	if w.quick && typ != unix.S_IFDIR {
		// A name whose inode number was seen before is another link of
		// that file, once the attributes of both say so.
		dev := unix.Mkdev(sx.Dev_major, sx.Dev_minor)
		fp := uint64(typ)<<48 ^ dev
		d, found, err := w.im.getNew(live, fp)
		if err == nil && found && !w.sameFile(rel, d) {
			found = false
			d, err = w.im.renew(live, fp)
		}
		if err != nil {
			return err
		}
		n.ino, n.dup = d, found
		return nil
	}
	if w.src.ident != nil {
		l, ok := w.src.ident.Live(sx.Ino)
		if !ok {
			// A file the provider does not know: give it an identity that
			// cannot collide with a live inode number.
			l = 1<<63 | sx.Ino
		}
		live = l
	}
	// Only a file with more than one link can have been found already.
	if typ != unix.S_IFDIR && n.nlink > 1 {
		if prev, ok := w.byLive[live]; ok {
			n.ino, n.dup = prev, true
			return nil
		}
	}
	// The fingerprint tells a reused inode number from the same file: the
	// type always, the birth time where it belongs to the file itself (a
	// plain directory or a btrfs snapshot, not a copy).
	fp := uint64(typ) << 48
	if w.src.ident == nil || w.src.stableBirth {
		fp ^= uint64(n.btime)
	}
	d, err := w.im.Get(live, fp)
	if err != nil {
		return err
	}
	n.ino = d
	if typ != unix.S_IFDIR && n.nlink > 1 {
		w.byLive[live] = d
	}
	return nil
}

// sameFile tells whether the file rel (below the dump root) is a hard link
// of the file that has dump inode d: the quick walk's test for a name whose
// directory entry gives an inode number seen before (the number of an entry
// can differ from the file's own, as on overlayfs). Only files with more
// than one link, of the same inode on the same device, are one.
func (w *walker) sameFile(rel string, d uint32) bool {
	first, ok := w.foundFile(d)
	if !ok {
		return false
	}
	var a, b unix.Statx_t
	const mask = unix.STATX_INO | unix.STATX_NLINK
	if unix.Statx(unix.AT_FDCWD, w.full(path.Join(w.src.rel, first.path)), unix.AT_SYMLINK_NOFOLLOW, mask, &a) != nil ||
		unix.Statx(unix.AT_FDCWD, w.full(path.Join(w.src.rel, rel)), unix.AT_SYMLINK_NOFOLLOW, mask, &b) != nil {
		return false
	}
	return a.Nlink > 1 && a.Ino == b.Ino && a.Dev_major == b.Dev_major && a.Dev_minor == b.Dev_minor
}

// foundChunk is the number of files in each chunk of walker.found.
const foundChunk = 8192

// addFile adds a file found by the walk. The walk keeps them in chunks,
// which it joins at the end: growing one slice would copy it over and over
// (and fault in new pages each time).
func (w *walker) addFile(f fileRef) {
	if k := len(w.found); k == 0 || len(w.found[k-1]) == cap(w.found[k-1]) {
		w.found = append(w.found, make([]fileRef, 0, foundChunk))
	}
	k := len(w.found) - 1
	w.found[k] = append(w.found[k], f)
}

// foundFile returns the file with dump inode d found so far by a walk
// that hands out numbers in the order it finds files (the quick walk).
func (w *walker) foundFile(d uint32) (fileRef, bool) {
	c, _ := slices.BinarySearchFunc(w.found, d, func(c []fileRef, d uint32) int { return cmp.Compare(c[len(c)-1].ino, d) })
	if c == len(w.found) {
		return fileRef{}, false
	}
	i, ok := slices.BinarySearchFunc(w.found[c], d, func(f fileRef, d uint32) int { return cmp.Compare(f.ino, d) })
	if !ok {
		return fileRef{}, false
	}
	return w.found[c][i], true
}

// baseSlack is how much earlier than its base date an incremental looks.
const baseSlack = 100 * time.Millisecond

func (w *walker) changed(n *node) bool {
	if w.level == 0 && w.base.IsZero() {
		return true
	}
	// The file system's clock is coarse (a jiffy behind the precise
	// clock), so a slack keeps a change made just before the base dump
	// started in this level too.
	b := w.base.UnixNano() - int64(baseSlack)
	if n.mtime >= b {
		return true
	}
	return !w.opt.ignoreCtime && n.ctime >= b
}

// walkDir walks directory dir (rel below the dump root): its entries come
// from the lister in walk order; subdirectories are walked as they come.
func (w *walker) walkDir(l *lister, dir *node, rel string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	dir.dump = true
	w.dirs = append(w.dirs, dir)
	dotdot := dump.DirEntry{Ino: dir.ino, Type: dump.DTDir, Name: ".."}
	if dir.ino != dump.RootIno {
		dotdot = dir.entries[1]
	}
	var ents []dump.DirEntry
	var scratch node // the node of a non-directory, kept only as a fileRef
	for {
		c, err := l.next()
		if err != nil {
			return err
		}
		if c.last {
			break
		}
		if ents == nil {
			ents = make([]dump.DirEntry, 2, c.entries+2)
			ents[0], ents[1] = dump.DirEntry{Ino: dir.ino, Type: dump.DTDir, Name: "."}, dotdot
		}
		for i := range c.names {
			name, crel := c.names[i].name(), c.names[i].path
			if err := c.stats[i].err; err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue
				}
				return fmt.Errorf("dump backup: stat %s: %w", w.full(path.Join(w.src.rel, crel)), err)
			}
			c2 := &scratch
			if c.stats[i].sx.Mode&unix.S_IFMT == unix.S_IFDIR {
				c2 = new(node)
			}
			if err := w.fillNode(c2, &c.stats[i].sx, crel, 0); err != nil {
				return err
			}
			ents = append(ents, dump.DirEntry{Ino: c2.ino, Type: dump.DTFromMode(c2.mode), Name: name})
			if c2.mode&unix.S_IFMT == unix.S_IFDIR {
				if rel == "" && w.src.qtrees != nil {
					if q, ok := w.src.qtrees[name]; ok {
						c2.qtree = &q
					}
				}
				c2.entries = []dump.DirEntry{{}, {Ino: dir.ino, Type: dump.DTDir, Name: ".."}}
				if err := w.walkDir(l, c2, crel); err != nil {
					return err
				}
				continue
			}
			if !c2.dup {
				w.addFile(fileRef{path: crel, ino: c2.ino, dump: w.changed(c2), typ: c2.mode & unix.S_IFMT})
			}
		}
	}
	if ents == nil {
		ents = []dump.DirEntry{{Ino: dir.ino, Type: dump.DTDir, Name: "."}, dotdot}
	}
	dir.entries = ents
	return nil
}

func underAny(p string, subtrees []string) bool {
	for _, s := range subtrees {
		if strings.HasPrefix(p, s+"/") {
			return true
		}
	}
	return false
}
