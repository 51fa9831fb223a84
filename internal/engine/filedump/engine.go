package filedump

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// ButypeName is the backup type name of the dump engine.
const ButypeName = "dump"

// Config holds what the dump engine of a node shares between its
// operations.
type Config struct {
	// Storage resolves backup paths and destinations (required).
	Storage *storage.Service
	// Catalog keeps dump dates and inode maps and holds the option
	// ndmpd.offset_map.enable.
	Catalog catalog.Store
	// Host is the host name written into image headers.
	Host string
	// Limiter bounds the dumps and restores of the node (D13); nil means
	// no limit.
	Limiter *engine.Limiter
}

// Engine is the dump engine as an engine.Engine of the NDMP server. One
// Engine serves a node: it numbers the node's backup snapshots and shares
// the volumes' inode maps between concurrent backups.
type Engine struct {
	cfg       Config
	snapNames SnapshotNamer
	inodeMaps InodeMaps
}

var _ engine.Engine = (*Engine)(nil)

// New returns the dump engine of a node.
func New(cfg Config) *Engine { return &Engine{cfg: cfg} }

// Info describes the backup type dump (CONFIG_GET_BUTYPE_INFO).
func (e *Engine) Info() engine.Info {
	return engine.Info{
		Name: ButypeName,
		Attrs: ndmp.ButypeBackupFilelist | ndmp.ButypeRecoverFilelist | ndmp.ButypeBackupDirect |
			ndmp.ButypeRecoverDirect | ndmp.ButypeBackupIncremental | ndmp.ButypeRecoverIncremental |
			ndmp.ButypeBackupUTF8 | ndmp.ButypeRecoverUTF8 | ndmp.ButypeBackupFHFile | ndmp.ButypeBackupFHDir |
			ndmp.ButypeRecoverFilehist | ndmp.ButypeRecoverFHFile | ndmp.ButypeRecoverFHDir,
		DefaultEnv: []engine.Var{
			{Name: "FILESYSTEM", Value: ""},
			{Name: "LEVEL", Value: "0"},
			{Name: "HIST", Value: "N"},
			{Name: "UPDATE", Value: "Y"},
			{Name: "DIRECT", Value: "N"},
			{Name: "RECURSIVE", Value: "Y"},
			{Name: "EXTRACT", Value: "N"},
			{Name: "ENHANCED_DAR_ENABLED", Value: "N"},
			{Name: "VERBOSE", Value: "N"},
			{Name: "DEBUG", Value: "N"},
			{Name: "PATHNAME_SEPARATOR", Value: "/"},
		},
	}
}

// Failure reports a dump error with the ONTAP message it carries (Message).
func (e *Engine) Failure(err error) engine.Failure {
	f := engine.DefaultFailure(err)
	var pe *engine.PanicError
	if !errors.As(err, &pe) {
		f.Message = Message(err)
	}
	return f
}

// Backup makes a dump backup of job.Path.
func (e *Engine) Backup(ctx context.Context, job *engine.BackupJob) (engine.Result, error) {
	req := BackupRequest{
		Storage:    e.cfg.Storage,
		Path:       job.Path,
		Catalog:    e.cfg.Catalog,
		Env:        Env(job.Env),
		Output:     job.Output,
		RecordSize: job.RecordSize,
		Host:       e.cfg.Host,
		Limiter:    e.cfg.Limiter,
		Snapshots:  &e.snapNames,
		InodeMaps:  &e.inodeMaps,
	}
	if job.History != nil {
		req.History = backupHistory{job.History}
	}
	if job.Events != nil {
		req.Log = job.Events
	}
	res, err := Backup(ctx, req)
	return engine.Result{Env: res.Env}, err
}

// Recover restores or lists a dump image.
func (e *Engine) Recover(ctx context.Context, job *engine.RecoverJob) (engine.Result, error) {
	req := RestoreRequest{
		Env:     Env(job.Env),
		Input:   job.Input,
		InputAt: job.InputAt,
		Names:   restoreNames(job.Names),
		Policy:  (*RestorePolicy)(job.Policy),
		Limiter: e.cfg.Limiter,
		// The engine reads ndmpd.offset_map.enable from it.
		Catalog: e.cfg.Catalog,
	}
	if job.OnName != nil {
		req.OnName = func(nr NameResult) { job.OnName(engine.NameResult{Path: nr.Path, Err: nr.Err}) }
	}
	if job.ListOnly {
		return e.list(ctx, job, req)
	}
	req.Storage, req.Path, req.StateDir = e.cfg.Storage, job.Path, job.StateDir
	if job.Events != nil {
		req.Log = job.Events
	}
	res, err := Restore(ctx, req)
	return engine.Result{Errors: res.Errors}, err
}

// list lists the image to job.History (LIST=Y into a scratch directory
// that nothing is written to).
func (e *Engine) list(ctx context.Context, job *engine.RecoverJob, req RestoreRequest) (engine.Result, error) {
	tmp, err := os.MkdirTemp("", "tapestry-list-")
	if err != nil {
		return engine.Result{}, fmt.Errorf("list: %w", err)
	}
	defer os.RemoveAll(tmp)
	env := Env{}
	for k, v := range req.Env {
		env[k] = v
	}
	env["LIST"] = "Y"
	req.Env, req.Dest = env, tmp
	var herr error
	req.OnList = func(le ListEntry) {
		if herr == nil && le.Inode != nil {
			herr = job.History.AddFile(listFile(le))
		}
	}
	res, err := Restore(ctx, req)
	if err == nil {
		err = herr
	}
	return engine.Result{Errors: res.Errors}, err
}

// restoreNames converts a name list.
func restoreNames(names []engine.Name) []RestoreName {
	if names == nil {
		return nil
	}
	out := make([]RestoreName, len(names))
	for i, n := range names {
		out[i] = RestoreName{Original: n.Original, Dest: n.Dest, FHInfo: n.FHInfo}
	}
	return out
}

// listFile is a listed name with the attributes and position the image
// holds for its inode.
func listFile(le ListEntry) engine.File {
	return engine.File{Path: "/" + strings.TrimPrefix(le.Path, "/"), Node: uint64(le.Ino), Stat: Stat(le.Inode), FHInfo: le.Offset}
}

// backupHistory gives a backup's file history to an engine.History.
type backupHistory struct{ h engine.History }

// AddDir implements FileHistory.
func (b backupHistory) AddDir(d DirHistory) error {
	return b.h.AddDir(engine.Dir{Name: d.Name, Node: uint64(d.Ino), Parent: uint64(d.Parent)})
}

// AddNode implements FileHistory.
func (b backupHistory) AddNode(n NodeHistory) error {
	return b.h.AddNode(engine.Node{Node: uint64(n.Inode.Ino), Stat: Stat(&n.Inode), FHInfo: uint64(n.FHInfo)})
}

// Stat converts the attributes of a dump inode to file history's.
func Stat(i *dump.Inode) engine.Stat {
	return engine.Stat{
		Type:  i.FileMode().Type(),
		Perm:  i.Mode & 0o7777,
		UID:   i.UID,
		GID:   i.GID,
		Size:  uint64(i.Size),
		Links: uint32(i.Nlink),
		Mtime: i.Mtime,
		Atime: i.Atime,
		Ctime: i.Ctime,
	}
}
