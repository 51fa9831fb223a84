package filedump

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
)

// A stream restore reads the image once, from its start, in the stages of
// D8, logged as I (catalog), II (directories), III (files) and IV
// (directory attributes):
//
//  1. catalogImage reads the inode maps and the directories;
//  2. the namespace, the name list and the plan (restoreplan.go) say what
//     to do, and applyPlan removes, stages and makes the names;
//  3. restoreFiles writes the files the image holds;
//  4. restoreDirAttrs sets the directories' attributes, deepest first, and
//     saveState keeps the namespace for the next incremental.

// stream is the image a stream restore reads.
type stream struct {
	r   *dump.Reader
	cr  *countReader
	vol dump.Volume
}

// imageIndex is what stage 1 reads from the image: its inode maps and its
// directories.
type imageIndex struct {
	used, dumped *dump.Bitmap
	dirs         map[uint32]*meta
	// entries holds each directory's entries without "." and "..".
	entries map[uint32][]dump.DirEntry
	dirOff  map[uint32]int64 // header offsets of the directories
	// damaged are the directories whose data is damaged, reported once
	// paths are known.
	damaged []dirDamage
	// next is the header stage 1 stopped at: the first file's, TS_END, or
	// nil at the end of the image.
	next *dump.Header
}

func (rs *restorer) restoreStream() error {
	in, err := rs.openStream()
	if err != nil {
		return err
	}
	idx, err := rs.catalogImage(in.r)
	if err != nil {
		return err
	}
	rs.progress(in, PhaseDirs)
	full := len(rs.req.Names) == 0
	old, err := rs.previousState(in.vol, full)
	if err != nil {
		return err
	}
	if _, ok := idx.dirs[dump.RootIno]; !ok && old == nil {
		return fmt.Errorf("restore: %w: the image has no root directory", dump.ErrFormat)
	}
	ns := buildNamespace(idx.dirs, idx.entries, idx.used, idx.dumped, old)
	rs.refuse(ns.refused)
	rs.reportDirDamage(idx.damaged, ns.paths)
	rs.listQtrees(ns.paths, idx.dirs)
	targets, parents, refused := selectNames(ns, rs.req.Names)
	rs.refuse(refused)
	if rs.listing() {
		return rs.listOnly(in, idx, targets)
	}
	rs.reserveStateNames(targets, rs.stateDir())
	rs.noteNewQtrees(targets, idx.dirs)
	plan := planRestore(planInput{old: old, targets: targets, isDir: ns.isDir, dumped: idx.dumped, parents: parents, level: in.vol.Level})
	if err := rs.applyPlan(plan); err != nil {
		return err
	}
	rs.progress(in, PhaseFiles)
	seen, err := rs.restoreFiles(in, idx.next, idx.dirs, plan.write)
	if err != nil {
		return err
	}
	rs.checkDelivered(plan.write, targets, seen, ns.named, idx.dirs, ns.visited)
	rs.progress(in, PhaseRestoreEnd)
	rs.restoreDirAttrs(targets, idx.dirs, full)
	if !full {
		return nil
	}
	return rs.saveState(in.vol, targets, ns.isDir)
}

// listing reports whether the restore only lists or reads the image
// (LIST, LIST_QTREES, NOWRITE).
func (rs *restorer) listing() bool { return rs.opt.list || rs.opt.listQtrees || rs.opt.nowrite }

// stateDir is where the restore keeps its state (restore_symboltable).
func (rs *restorer) stateDir() string {
	if rs.req.StateDir != "" {
		return rs.req.StateDir
	}
	return rs.dest
}

// refuse reports the names that are not restored.
func (rs *restorer) refuse(names []nameProblem) {
	for _, n := range names {
		rs.nameResult(n.path, n.ino, n.err)
	}
}

// openStream reads the image's volume header and checks it.
func (rs *restorer) openStream() (*stream, error) {
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
		return nil, fmt.Errorf("restore: %w", err)
	}
	if h.Kind != dump.KindVolume {
		return nil, fmt.Errorf("restore: %w: the image does not start with a volume header", dump.ErrFormat)
	}
	vol := h.Dump
	rs.res.Level, rs.res.Date = vol.Level, vol.Date
	if rs.req.RecordSize != 0 {
		if err := CheckRestoreRecordSize(rs.req.RecordSize, vol.NTREC, rs.req.LocalTape); err != nil {
			return nil, err
		}
	}
	if rs.req.Log != nil {
		_ = rs.req.Log.Start(vol.Level, "NDMP")
		_ = rs.req.Log.PhaseChange("I")
	}
	return &stream{r: r, cr: cr, vol: vol}, nil
}

// restoreStages names the stages of D8 that begin with a phase.
var restoreStages = map[Phase]string{PhaseDirs: "II", PhaseFiles: "III", PhaseRestoreEnd: "IV"}

// progress reports that phase p begins: to the event log (a restore that
// writes) and to Progress.
func (rs *restorer) progress(in *stream, p Phase) {
	rs.res.Bytes = in.cr.n
	if rs.req.Log != nil && restoreStages[p] != "" && !rs.listing() {
		_ = rs.req.Log.PhaseChange(restoreStages[p])
	}
	if rs.req.Progress != nil {
		rs.req.Progress(Progress{Phase: p, Bytes: in.cr.n, Files: rs.res.Files})
	}
}

// catalogImage is stage 1: it reads the inode maps and the directories, up
// to the first non-directory inode.
func (rs *restorer) catalogImage(r *dump.Reader) (*imageIndex, error) {
	idx := &imageIndex{dirs: map[uint32]*meta{}, entries: map[uint32][]dump.DirEntry{}, dirOff: map[uint32]int64{}}
	var cur *meta
	for {
		if err := rs.ctx.Err(); err != nil {
			return nil, err
		}
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		switch {
		case h.Kind == dump.KindUsedMap:
			idx.used, err = readBitmap(r)
		case h.Kind == dump.KindDumpedMap:
			idx.dumped, err = readBitmap(r)
		case h.Kind == dump.KindInode && !h.Inode.IsDir() || h.Kind == dump.KindEnd:
			idx.next = h
		case h.Kind == dump.KindInode:
			cur, err = idx.addDir(r, h)
		case cur != nil:
			err = rs.attach(r, h, cur)
		}
		if err != nil {
			return nil, err
		}
		if idx.next != nil {
			break
		}
	}
	if idx.used == nil || idx.dumped == nil {
		return nil, fmt.Errorf("restore: %w: the image has no inode maps", dump.ErrFormat)
	}
	return idx, nil
}

// readBitmap reads the inode map of the current header.
func readBitmap(r *dump.Reader) (*dump.Bitmap, error) {
	b, err := r.Bitmap()
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return b, nil
}

// addDir reads the directory of header h.
func (idx *imageIndex) addDir(r *dump.Reader, h *dump.Header) (*meta, error) {
	if _, dup := idx.dirs[h.Ino]; dup {
		return nil, fmt.Errorf("restore: %w: directory inode %d appears twice", dump.ErrFormat, h.Ino)
	}
	idx.dirOff[h.Ino] = h.Offset
	ents, err := r.DirEntries()
	var dd *dump.DirDamageError
	if errors.As(err, &dd) {
		idx.damaged = append(idx.damaged, dirDamage{h.Ino, dd})
	} else if err != nil {
		return nil, fmt.Errorf("restore: directory inode %d: %w", h.Ino, err)
	} else if len(ents) == 0 {
		idx.damaged = append(idx.damaged, dirDamage{h.Ino, fmt.Errorf("%w: directory inode %d holds no entries, not even \".\" and \"..\" (its data is missing)", dump.ErrFormat, h.Ino)})
	}
	m := &meta{in: h.Inode}
	idx.dirs[h.Ino] = m
	var keep []dump.DirEntry
	for _, e := range ents {
		if e.Name != "." && e.Name != ".." {
			keep = append(keep, e)
		}
	}
	idx.entries[h.Ino] = keep
	return m, nil
}

// previousState loads the state the last restore left when the image is an
// incremental restored in full (D5), and checks that the image is the next
// of its chain.
func (rs *restorer) previousState(vol dump.Volume, full bool) (*symtab, error) {
	if !full || rs.listing() || vol.Level == 0 {
		// A level 0 starts afresh: whatever holds the state's name then
		// does not stop it (issue 11).
		return nil, nil
	}
	stateDir := rs.stateDir()
	old, err := loadSymtab(stateDir)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, fmt.Errorf("restore: this is a level %d image; restore its level 0 image into %s first (no %s there)", vol.Level, stateDir, SymtabName)
	}
	if old.Date.Unix() != vol.BaseDate.Unix() {
		return nil, fmt.Errorf("restore: level %d image is not the next of the chain: its base dump is from %s, the last image restored here is from %s",
			vol.Level, vol.BaseDate.UTC().Format(time.RFC3339), old.Date.UTC().Format(time.RFC3339))
	}
	return old, nil
}

// listQtrees reports the qtrees of the image (LIST_QTREES=Y).
func (rs *restorer) listQtrees(paths map[string]uint32, dirs map[uint32]*meta) {
	if !rs.opt.listQtrees {
		return
	}
	for p, ino := range paths {
		if m := dirs[ino]; m != nil && m.qtree != nil {
			rs.res.Qtrees = append(rs.res.Qtrees, ListEntry{Path: p, Ino: ino, Qtree: m.qtree})
		}
	}
	sort.Slice(rs.res.Qtrees, func(i, j int) bool { return rs.res.Qtrees[i].Path < rs.res.Qtrees[j].Path })
	for _, le := range rs.res.Qtrees {
		if rs.req.OnList != nil {
			rs.req.OnList(le)
		}
	}
}

// listOnly reads the rest of the image for a restore that writes nothing:
// it counts the inodes and lists the names of targets (LIST=Y) with the
// attributes the image holds, directories' from stage 1, the other inodes'
// as they are read here.
func (rs *restorer) listOnly(in *stream, idx *imageIndex, targets map[string]uint32) error {
	var attrs map[uint32]listAttr
	if rs.opt.list {
		attrs = map[uint32]listAttr{}
		for _, ino := range targets {
			if m := idx.dirs[ino]; m != nil {
				attrs[ino] = listAttr{m.in, idx.dirOff[ino]}
			} else {
				attrs[ino] = listAttr{off: -1}
			}
		}
	}
	for h := idx.next; h != nil && h.Kind != dump.KindEnd; {
		if h.Kind == dump.KindInode {
			rs.res.Files++
			if a, ok := attrs[h.Ino]; ok && a.off < 0 {
				attrs[h.Ino] = listAttr{h.Inode, h.Offset}
			}
		}
		var err error
		if h, err = in.r.Next(); err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	rs.list(targets, attrs)
	rs.progress(in, PhaseRestoreEnd)
	return nil
}

// noteNewQtrees records the qtrees of the image restored to the root of a
// registered volume, where their LUNs stay LUNs (D8).
func (rs *restorer) noteNewQtrees(targets map[string]uint32, dirs map[uint32]*meta) {
	if rs.loc == nil || rs.loc.RelPath != "" || rs.opt.ignoreQtrees {
		return
	}
	rs.newQtrees = map[string]bool{}
	for p, ino := range targets {
		if m := dirs[ino]; m != nil && m.qtree != nil && p != "" && !strings.Contains(p, "/") {
			rs.newQtrees[p] = true
		}
	}
}

// planRun carries out a restore plan on the destination, and keeps where
// the staged inodes are: a step whose staging failed falls back as the plan
// says (planStep).
type planRun struct {
	rs     *restorer
	plan   *restorePlan
	made   bool              // the staging directory exists
	staged map[uint32]string // inode -> where it is staged
	broken map[uint32]bool   // files whose staging failed
}

// applyPlan is stage 2: it removes and stages the old names, then makes the
// directories and the names of the files the image does not hold.
func (rs *restorer) applyPlan(pl *restorePlan) error {
	run := &planRun{rs: rs, plan: pl, staged: map[uint32]string{}, broken: map[uint32]bool{}}
	for i, s := range pl.remove {
		if err := rs.cancelled(i); err != nil {
			return err
		}
		if err := run.removeOld(s); err != nil {
			return err
		}
	}
	for i, s := range pl.dirs {
		if err := rs.cancelled(i); err != nil {
			return err
		}
		run.makeDir(s)
	}
	for i, s := range pl.files {
		if err := rs.cancelled(i); err != nil {
			return err
		}
		run.placeFile(s)
	}
	if run.made {
		if err := rs.fs.remove(pl.staging); err != nil {
			rs.nameResult(pl.staging, 0, err)
		}
	}
	return nil
}

// removeOld removes or stages an old name (opRemove, opStage).
func (run *planRun) removeOld(s planStep) error {
	if s.op == opStage || s.spare && run.staged[s.ino] == "" {
		return run.stage(s)
	}
	if err := run.rs.fs.remove(s.path); err != nil {
		run.rs.nameResult(s.path, s.ino, err)
	}
	return nil
}

// stage moves an old name into the staging directory, which it makes
// first; only that failure ends the restore.
func (run *planRun) stage(s planStep) error {
	fs := run.rs.fs
	if !run.made {
		if err := fs.mkdir(run.plan.staging); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		run.made = true
	}
	sp := run.plan.staging + "/" + strconv.FormatUint(uint64(s.ino), 10)
	if err := fs.rename(s.path, sp); err != nil {
		run.rs.nameResult(s.path, s.ino, err)
		return nil
	}
	run.staged[s.ino] = sp
	return nil
}

// makeDir makes a directory (opMkdir), or moves it back from the staging
// directory (opUnstage) when it is staged there.
func (run *planRun) makeDir(s planStep) {
	fs := run.rs.fs
	var err error
	if sp := run.staged[s.ino]; sp != "" {
		// A file or link in the way (planted after the last restore) is
		// replaced, as mkdir would (D10).
		if typ, lerr := fs.lstat(s.path); lerr == nil && typ != 0 && typ != unix.S_IFDIR {
			_ = fs.remove(s.path)
		}
		err = fs.rename(sp, s.path)
		delete(run.staged, s.ino)
	} else {
		err = fs.mkdir(s.path)
	}
	if err != nil {
		run.rs.nameResult(s.path, s.ino, err)
	}
}

// errNotRestored says why a name of an incremental image is not restored.
func errNotRestored(ino uint32) error {
	return fmt.Errorf("inode %d is neither on this image nor restored before (an incremental image holds only what changed)", ino)
}

// placeFile gives a file the image does not hold its new name (opUnstage,
// opLink), or reports the name (opMissing, opDamaged).
func (run *planRun) placeFile(s planStep) {
	rs := run.rs
	var err error
	switch s.op {
	case opUnstage:
		sp := run.staged[s.ino]
		if sp == "" {
			run.broken[s.ino] = true
			err = errNotRestored(s.ino)
			break
		}
		err = rs.fs.rename(sp, s.path)
		delete(run.staged, s.ino)
	case opLink:
		if run.broken[s.ino] {
			err = errNotRestored(s.ino)
			break
		}
		err = rs.fs.link(s.other, s.path)
	case opDamaged:
		rs.damage(s.path, s.ino, fmt.Errorf("%w: inode %d is neither on this image nor restored before", dump.ErrFormat, s.ino))
	case opMissing:
		err = errNotRestored(s.ino)
	}
	if err != nil {
		rs.nameResult(s.path, s.ino, err)
	}
}

// restoreFiles is stage 3: it reads the image from h, the first file's
// header, to its end, and writes each inode of write to its names.
func (rs *restorer) restoreFiles(in *stream, h *dump.Header, dirs map[uint32]*meta, write map[uint32][]string) (map[uint32]bool, error) {
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
			return nil, err
		}
		var err error
		if pend, err = rs.fileRecord(in.r, h, pend, seen, dirs, write); err != nil {
			return nil, err
		}
		if h, err = in.r.Next(); err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	rs.finish(pend)
	pend = nil
	rs.stopWorkers()
	rs.res.Bytes = in.cr.n
	return seen, nil
}

// fileRecord handles one header of stage 3 and returns the inode whose
// records follow.
func (rs *restorer) fileRecord(r *dump.Reader, h *dump.Header, pend *pending, seen map[uint32]bool,
	dirs map[uint32]*meta, write map[uint32][]string) (*pending, error) {
	switch h.Kind {
	case dump.KindInode:
		rs.finish(pend)
		seen[h.Ino] = true
		if ps := write[h.Ino]; len(ps) > 0 {
			return rs.writeInode(r, h, ps), nil
		}
		return nil, nil
	case dump.KindXattr, dump.KindExtension:
		if h.Kind == dump.KindExtension && (h.Ext == dump.ExtACLSection || h.Ext == dump.ExtNTACL) {
			if h.Ext == dump.ExtNTACL && (pend == nil || pend.m.in.Ino != h.Ino) {
				// The NT ACL of a file created before: wait for the
				// workers to create it.
				rs.workers.wait()
			}
			return rs.ntaclRecord(r, h, pend, dirs, write)
		}
		if pend != nil {
			return pend, rs.attach(r, h, &pend.m)
		}
	}
	return pend, nil
}

// restoreDirAttrs is stage 4: it sets the attributes of the restored
// directories, deepest first (the root only in a full restore), and notes
// the qtrees among them.
func (rs *restorer) restoreDirAttrs(targets map[string]uint32, dirs map[uint32]*meta, full bool) {
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
}

// saveState keeps the restored namespace for the next incremental: every
// path restored (not the files lost) and which inodes are directories.
func (rs *restorer) saveState(vol dump.Volume, targets map[string]uint32, isDir map[uint32]bool) error {
	dirsNew := map[uint32]bool{}
	for _, ino := range targets {
		if isDir[ino] {
			dirsNew[ino] = true
		}
	}
	for p := range rs.lost {
		delete(targets, p)
	}
	if err := saveSymtab(rs.stateDir(), &symtab{Level: vol.Level, Date: vol.Date, Paths: targets, Dirs: dirsNew}); err != nil {
		if n := rs.res.Errors; n > 0 {
			// Not only the state: the names that failed first.
			return fmt.Errorf("restore: %d names could not be restored (each is reported), and %w", n, err)
		}
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}
