package filedump

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/dump"
)

// backupRun is one backup once its source is open. Its methods are the
// stages of Backup: the base of an incremental (findBase), the walk (phases
// I and II), the directories (phase III), the files (phase IV) and the
// finish (phase V, the ACL section, and what is kept for the next level).
type backupRun struct {
	ctx  context.Context
	req  *BackupRequest
	opt  *backupOpts
	src  *source
	cw   *countWriter
	date time.Time
	logf func(func(DumpEvents) error)

	// The base (findBase).
	level    int
	base     time.Time
	typeGen  uint64 // the volume's type generation (D15)
	datesKey string // where the dump dates of the chain are kept

	w  *walker
	dw *dump.Writer
	// aw writes a single-volume image from a goroutine of its own while
	// the next chunk is read and encoded; nil for a multi-volume image.
	aw *asyncWriter
	// files counts the inodes written, of total.
	files, total int64
}

// progress reports p with the bytes written so far.
func (b *backupRun) progress(p Progress) {
	if b.req.Progress != nil {
		p.Bytes = b.cw.n
		b.req.Progress(p)
	}
}

// phase logs and reports that phase p begins.
func (b *backupRun) phase(p Phase) {
	b.logf(func(l DumpEvents) error { return l.PhaseChange(p.String()) })
	b.progress(Progress{Phase: p})
}

// findBase sets the level and the base date of the backup (D5): from
// BASE_DATE when the DMA gives it, from the catalog's dump dates for a
// level above 0.
func (b *backupRun) findBase() error {
	opt, src := b.opt, b.src
	b.datesKey = DatesKey(src.backupKey, opt.dmpName)
	b.level = opt.level
	if src.volume != nil {
		b.typeGen = src.volume.TypeGeneration
	}
	var err error
	switch {
	case opt.baseDateSet:
		err = b.baseFromToken()
	case b.level > 0:
		err = b.baseFromCatalog()
	}
	if err != nil {
		return err
	}
	if opt.nonQuotaTree && (b.level != 0 || !src.wholeVol || opt.multi != nil) {
		return errors.New("NON_QUOTA_TREE works only on a level 0 backup of a whole volume without MULTI_SUBTREE_NAMES")
	}
	return nil
}

// baseFromToken takes the base from BASE_DATE: 0 starts a chain, a
// DUMP_DATE value makes the next level of its chain.
func (b *backupRun) baseFromToken() error {
	if b.opt.baseTokenStr == "0" {
		b.level = 0
		return nil
	}
	bl, base, err := ParseDumpDateToken(b.opt.baseTokenStr)
	if err != nil {
		return err
	}
	b.base, b.level = base, bl+1
	if b.level > 31 {
		return errors.New("BASE_DATE: the increment chain is already at level 31")
	}
	return nil
}

// baseFromCatalog takes the base from the latest backup of the chain at a
// lower level, which must have seen the volume of the same type (D15).
func (b *backupRun) baseFromCatalog() error {
	level, key := b.level, b.src.backupKey
	if b.req.Catalog == nil {
		return fmt.Errorf("level %d backup of %s: no catalog of earlier backups; make a level 0 backup first", level, key)
	}
	recs, err := loadDates(b.ctx, b.req.Catalog, b.datesKey)
	if err != nil {
		return err
	}
	r, ok := FindBase(recs, level)
	if !ok {
		return fmt.Errorf("level %d backup of %s: no earlier backup at a lower level; make a level 0 backup first", level, key)
	}
	if r.TypeGeneration != b.typeGen {
		return fmt.Errorf("level %d backup of %s: the volume changed between read-only and read/write since the level %d backup; a baseline (level 0) backup is required (D15)", level, key, r.Level)
	}
	b.base = r.Date
	b.logf(func(l DumpEvents) error { return l.BaseDump(r.Level, r.Date) })
	return nil
}

// walk is phases I and II: it finds the directories and files to dump.
func (b *backupRun) walk(im *InodeMap) error {
	if b.src.rel != "" || b.opt.multi != nil {
		b.phase(PhaseTraverse)
	}
	b.phase(PhaseIdentify)
	b.w = &walker{ctx: b.ctx, src: b.src, opt: b.opt, im: im, base: b.base, level: b.level,
		quick: b.req.Catalog == nil && b.level == 0 && b.base.IsZero() && b.src.ident == nil}
	return b.w.walk()
}

// openImage starts the image: its writer, its header and its two inode
// maps.
func (b *backupRun) openImage(ntrec int) error {
	req, w := b.req, b.w
	if req.NextVolume == nil {
		b.aw = newAsyncWriter(req.Output)
		b.cw.w = b.aw
	}
	offsetMap, err := offsetMapOn(b.ctx, req.Catalog)
	if err != nil {
		return err
	}
	b.dw, err = dump.NewWriter(b.cw, dump.Options{
		Date: b.date, BaseDate: b.base, Level: b.level, Label: "none",
		Filesys: b.src.backupKey, Device: b.src.backupKey, Host: req.Host, NTREC: ntrec,
		OffsetMap: offsetMap && !req.DisableOffsetMap, VolumeSize: req.VolumeSize,
		NextVolume: nextVolume(req.NextVolume, b.cw),
	})
	if err != nil {
		return fmt.Errorf("dump backup: %w", err)
	}
	used := dump.NewBitmap(w.maxIno)
	dumped := dump.NewBitmap(w.maxIno)
	for _, n := range w.dirs {
		used.Set(n.ino)
		dumped.Set(n.ino)
	}
	b.total = int64(len(w.dirs))
	for _, n := range w.files {
		used.Set(n.ino)
		if n.dump {
			dumped.Set(n.ino)
			b.total++
		}
	}
	if err := b.dw.WriteMaps(used, dumped); err != nil {
		return fmt.Errorf("dump backup: %w", err)
	}
	return nil
}

// abortOutput stops the image's writer goroutine, if any, when the backup
// ends without finishing it.
func (b *backupRun) abortOutput() {
	if b.aw != nil {
		b.aw.Abort()
	}
}

// history reports whether the DMA gets file history.
func (b *backupRun) history() bool { return b.req.History != nil && b.opt.hist }

// writeDirs is phase III: every directory with its entries, attributes and
// extension records, and its file history.
func (b *backupRun) writeDirs() error {
	b.phase(PhaseDirs)
	for _, n := range b.w.dirs {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		if err := b.writeDir(n); err != nil {
			return err
		}
		b.files++
		n.entries = nil
		if b.files%1000 == 0 {
			b.progress(Progress{Phase: PhaseDirs, Files: b.files, Total: b.total})
		}
	}
	return nil
}

// writeDir writes the directory n.
func (b *backupRun) writeDir(n *node) error {
	w, dw := b.w, b.dw
	xs, streams, err := w.attrs(n)
	if err != nil {
		return err
	}
	pos, err := dw.WriteDir(n.inode(), xs, n.entries)
	if err != nil {
		return fmt.Errorf("dump backup: write directory %q: %w", n.path, err)
	}
	if n.qtree != nil {
		if err := dw.WriteQtree(n.qtree); err != nil {
			return fmt.Errorf("dump backup: %w", err)
		}
	}
	if err := w.writeExtras(dw, n, xs, streams); err != nil {
		return err
	}
	if !b.history() {
		return nil
	}
	for _, e := range n.entries {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		if err := b.req.History.AddDir(DirHistory{Name: e.Name, Ino: e.Ino, Parent: n.ino}); err != nil {
			return fmt.Errorf("file history: %w", err)
		}
	}
	if err := b.req.History.AddNode(NodeHistory{Inode: *n.inode(), FHInfo: pos.Offset}); err != nil {
		return fmt.Errorf("file history: %w", err)
	}
	return nil
}

// writeFiles is phase IV: the files, read ahead by the prefetcher in
// batches.
func (b *backupRun) writeFiles() error {
	b.phase(PhaseFiles)
	pf := b.w.startPrefetch(b.ctx)
	defer pf.stop()
	for {
		batch, err := pf.next()
		if err != nil {
			return err
		}
		if batch == nil {
			break
		}
		err = b.writeBatch(batch)
		pf.recycle(batch) // clears it
		if err != nil {
			return err
		}
	}
	return b.ctx.Err()
}

// writeBatch writes the files of one batch of the prefetcher.
func (b *backupRun) writeBatch(batch *fetchBatch) error {
	for i := range batch.items {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		it := &batch.items[i]
		if err := it.err; err != nil {
			return err
		}
		if err := b.writeFile(it); err != nil {
			return err
		}
		b.files++
		if b.files%1000 == 0 {
			b.progress(Progress{Phase: PhaseFiles, Files: b.files, Total: b.total})
		}
	}
	return nil
}

// writeFile writes the file it, read ahead, and its file history.
func (b *backupRun) writeFile(it *fetched) error {
	n := it.n
	if n.vanished {
		b.logf(func(l DumpEvents) error { return l.Error("file removed during the backup: " + n.path) })
	}
	pos, err := b.w.writeFetched(b.dw, it)
	if it.f >= 0 {
		it.f.Close()
		it.f = -1
	}
	if err == nil && b.history() {
		if herr := b.req.History.AddNode(NodeHistory{Inode: *n.inode(), FHInfo: pos.Offset}); herr != nil {
			err = fmt.Errorf("file history: %w", herr)
		}
	}
	return err
}

// finish is phase V: the ACL section and the end of the image; then the
// inode map and the dump date are kept for the next level, and the result
// is what the DMA gets back.
func (b *backupRun) finish(im *InodeMap) (BackupResult, error) {
	b.phase(PhaseACLs)
	dw := b.dw
	aclStart := dw.Records() * dump.RecordSize
	if err := dw.BeginACLSection(); err != nil {
		return BackupResult{}, fmt.Errorf("dump backup: %w", err)
	}
	if err := b.w.writeACLs(dw); err != nil {
		return BackupResult{}, err
	}
	if err := dw.Close(); err != nil {
		return BackupResult{}, fmt.Errorf("dump backup: %w", err)
	}
	if b.aw != nil {
		// Everything is written before the dump counts as done.
		if err := b.aw.Close(); err != nil {
			return BackupResult{}, fmt.Errorf("dump backup: dump: writing volume 1: %w", err)
		}
	}
	if err := b.keep(im); err != nil {
		return BackupResult{}, err
	}
	b.progress(Progress{Phase: PhaseACLs, Files: b.files, Total: b.total})
	res := BackupResult{Level: b.level, Date: b.date, BaseDate: b.base, Snapshot: b.src.snapName, Bytes: b.cw.n, Files: b.files,
		Env: Env{
			"ACL_START":          strconv.FormatInt(aclStart, 10),
			"NDMP_VERSION":       "4",
			"PATHNAME_SEPARATOR": "/",
			"TYPE":               "dump",
			"LEVEL":              strconv.Itoa(b.level),
			"DUMP_DATE":          DumpDateToken(b.level, b.date),
		}}
	b.logf(func(l DumpEvents) error { return l.End(b.cw.n) })
	return res, nil
}

// keep saves the inode map and records the dump date (UPDATE=Y) for the
// next level.
func (b *backupRun) keep(im *InodeMap) error {
	if err := saveInodeMap(b.ctx, b.req.Catalog, b.src.volKey, im); err != nil {
		return err
	}
	if b.opt.update && b.req.Catalog != nil && !b.opt.baseDateSet {
		if err := recordDump(b.ctx, b.req.Catalog, b.datesKey, DumpRecord{Level: b.level, Date: b.date, TypeGeneration: b.typeGen}); err != nil {
			return fmt.Errorf("record dump date: %w", err)
		}
	}
	return nil
}
