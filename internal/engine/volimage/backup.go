package volimage

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"golang.org/x/sys/unix"
)

// backupPlan is what one SMTape backup sends.
type backupPlan struct {
	loc     storage.Location
	target  storage.Snapshot // the snapshot backed up
	created bool             // the engine made target itself
	base    *storage.Snapshot
	sources []storage.Snapshot // oldest first, target last
	owner   string
}

// Backup writes the image of a whole volume and its snapshots (S1-S3).
func (e *Engine) Backup(ctx context.Context, job *engine.BackupJob) (engine.Result, error) {
	if err := refuseUnsupported(job.Env); err != nil {
		return engine.Result{}, err
	}
	if err := checkRecordSize(job.RecordSize); err != nil {
		return engine.Result{}, err
	}
	release, err := e.cfg.Limiter.Acquire()
	if err != nil {
		return engine.Result{}, err
	}
	defer release()
	plan, err := e.plan(ctx, job)
	if err != nil {
		return engine.Result{}, err
	}
	defer e.release(plan, job.Env)
	hdr, err := e.header(ctx, plan, job)
	if err != nil {
		return engine.Result{}, err
	}
	if job.Events != nil {
		_ = job.Events.Start(int(hdr.Mode), "NDMP")
		_ = job.Events.Snapshot(plan.target.Name, plan.target.CreatedAt)
	}
	out := &counter{w: job.Output}
	base, sources, err := e.sources(ctx, plan)
	if err == nil {
		err = writeOut(ctx, out, hdr, base, sources)
	}
	if err != nil {
		if job.Events != nil {
			_ = job.Events.Error(err.Error())
			_ = job.Events.Abort(out.n)
		}
		return engine.Result{}, err
	}
	if job.Events != nil {
		_ = job.Events.End(out.n)
	}
	return engine.Result{Env: resultEnv(hdr, plan.target.Name)}, nil
}

// writeOut writes the image through a buffer, or straight to a writer that
// changes tapes itself (it buffers its records and must see every chunk).
func writeOut(ctx context.Context, out *counter, hdr *smtape.Header, base *Source, sources []Source) error {
	if tc, ok := out.w.(smtape.TapeChanger); ok {
		_, err := WriteImage(ctx, &changingCounter{counter: out, tc: tc}, hdr, base, sources)
		return err
	}
	buf := bufio.NewWriterSize(out, 1<<20)
	if _, err := WriteImage(ctx, buf, hdr, base, sources); err != nil {
		return err
	}
	return buf.Flush()
}

// changingCounter counts the bytes to a TapeChanger and passes its tape
// changes on.
type changingCounter struct {
	*counter
	tc smtape.TapeChanger
}

// NextTape asks the underlying writer (smtape.TapeChanger).
func (c *changingCounter) NextTape() (io.Writer, error) {
	next, err := c.tc.NextTape()
	if next == nil || err != nil {
		return nil, err
	}
	return c, nil
}

// plan resolves the volume, picks or makes the snapshot to back up and
// locks it, and finds the base of an incremental (S2, S3, S7).
func (e *Engine) plan(ctx context.Context, job *engine.BackupJob) (*backupPlan, error) {
	loc, err := e.wholeVolume(ctx, job.Path)
	if err != nil {
		return nil, err
	}
	if loc.Volume.State != storage.StateOnline {
		return nil, fail(errVolumeOffline, "volume %s is %s", loc.Volume.Name, loc.Volume.State)
	}
	p := &backupPlan{loc: loc, owner: "smtape:" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	if err := e.pickTarget(ctx, p, job.Env["SMTAPE_SNAPSHOT_NAME"]); err != nil {
		return nil, err
	}
	if err := e.pickSources(ctx, p, job.Env["BASE_DATE"]); err != nil {
		e.release(p, job.Env)
		return nil, err
	}
	return p, nil
}

// pickTarget names the snapshot to back up: the one named, or a new one of
// a read/write volume, or the newest of a read-only one; it is locked.
func (e *Engine) pickTarget(ctx context.Context, p *backupPlan, name string) error {
	st, v := e.cfg.Storage, p.loc.Volume
	switch {
	case name != "":
		if _, err := st.GetSnapshot(ctx, v.SVM, v.Name, name); err != nil {
			return fail(errFindSnapshot, "%v", err)
		}
	case !v.ReadOnly():
		name = "smtape." + time.Now().UTC().Format("2006-01-02_150405.000000")
		if _, err := st.CreateSnapshotWith(ctx, v.SVM, v.Name, name, storage.SnapshotOptions{Owner: p.owner}); err != nil {
			return fail(errCreateSnapshot, "%v", err)
		}
		p.created = true
	default:
		snaps, err := st.ListSnapshots(ctx, v.SVM, v.Name)
		if err != nil || len(snaps) == 0 {
			return fail(errLatestSnapshot, "read-only volume %s has no Snapshot copy to send", v.Name)
		}
		name = snaps[len(snaps)-1].Name
	}
	t, err := st.LockSnapshot(ctx, v.SVM, v.Name, name, p.owner)
	if err != nil {
		return fail(errLockSnapshot, "%v", err)
	}
	p.target = t
	return nil
}

// pickSources lists the snapshots the image carries: for a baseline the
// target and every older one (at most 255, the newest); for an
// incremental (BASE_DATE set) those after the base, which must still exist.
func (e *Engine) pickSources(ctx context.Context, p *backupPlan, baseDate string) error {
	v := p.loc.Volume
	snaps, err := e.cfg.Storage.ListSnapshots(ctx, v.SVM, v.Name)
	if err != nil {
		return fail(errFindSnapshot, "%v", err)
	}
	var baseNS int64
	if baseDate != "" && baseDate != "0" {
		if baseNS, err = strconv.ParseInt(baseDate, 10, 64); err != nil {
			return refusal("BASE_DATE %q is not the DUMP_DATE of an SMTape backup", baseDate)
		}
	}
	for i := range snaps {
		s := snaps[i]
		ns := s.CreatedAt.UnixNano()
		switch {
		case baseNS != 0 && ns == baseNS:
			p.base = &snaps[i]
		case s.CreatedAt.After(p.target.CreatedAt) && s.Name != p.target.Name:
			// newer than the snapshot backed up
		case baseNS != 0 && ns < baseNS:
			// older than the base of an incremental
		default:
			p.sources = append(p.sources, s)
		}
	}
	if baseNS != 0 && p.base == nil {
		return fail(errFindSnapshot, "the Snapshot copy of the previous backup (BASE_DATE %s) is no longer on volume %s", baseDate, v.Name)
	}
	if n := len(p.sources); n > smtape.MaxSnapshots {
		p.sources = p.sources[n-smtape.MaxSnapshots:]
	}
	return nil
}

// release unlocks the target and deletes it when the engine made it and
// SMTAPE_DELETE_SNAPSHOT asks so (S7).
func (e *Engine) release(p *backupPlan, env map[string]string) {
	if p.target.Name == "" {
		return
	}
	ctx := context.Background()
	v := p.loc.Volume
	_, _ = e.cfg.Storage.UnlockSnapshot(ctx, v.SVM, v.Name, p.target.Name, p.owner)
	if p.created && env["SMTAPE_DELETE_SNAPSHOT"] != "N" {
		_ = e.cfg.Storage.DeleteSnapshot(ctx, v.SVM, v.Name, p.target.Name)
	}
}

// header describes the image.
func (e *Engine) header(ctx context.Context, p *backupPlan, job *engine.BackupJob) (*smtape.Header, error) {
	v := p.loc.Volume
	h := &smtape.Header{
		Time: p.target.CreatedAt, Node: e.cfg.Node, SVM: v.SVM, Volume: v.Name,
		FSType: fsType(v.HostPath), VolumeType: smtape.VolumeRW, BlockSize: uint32(job.RecordSize),
	}
	if v.ReadOnly() {
		h.VolumeType = smtape.VolumeDP
	}
	if sp, err := e.cfg.Storage.VolumeSpace(ctx, v.SVM, v.Name); err == nil {
		h.Capacity, h.Used = sp.Total, sp.Total-sp.Free
	}
	var err error
	if p.base == nil {
		h.Mode = smtape.Baseline
		h.SetID, err = newSetID()
		return h, err
	}
	h.Mode, h.Sequence, h.BaseTime, h.BaseSnapshot = smtape.Incremental, 1, p.base.CreatedAt, p.base.Name
	if h.SetID, err = parseSetID(job.Env["SMTAPE_BACKUP_SET_ID"]); err != nil {
		return nil, err
	}
	return h, nil
}

// sources opens the snapshots of the plan as image sources.
func (e *Engine) sources(ctx context.Context, p *backupPlan) (*Source, []Source, error) {
	var base *Source
	if p.base != nil {
		b, err := e.source(ctx, *p.base)
		if err != nil {
			return nil, nil, err
		}
		base = &b
	}
	var out []Source
	for _, s := range p.sources {
		src, err := e.source(ctx, s)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, src)
	}
	return base, out, nil
}

func (e *Engine) source(ctx context.Context, s storage.Snapshot) (Source, error) {
	ids, err := e.cfg.Storage.SnapshotIdentity(ctx, s.SVM, s.Volume, s.Name)
	if err != nil {
		return Source{}, fail(errFindSnapshot, "%v", err)
	}
	return Source{Snapshot: smtape.Snapshot{Name: s.Name, Created: s.CreatedAt}, Dir: s.HostPath, IDs: ids}, nil
}

// fsType names the file system a path is on.
func fsType(p string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return ""
	}
	switch st.Type {
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	}
	return fmt.Sprintf("0x%x", st.Type)
}
