package snapmgmt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/tapestry-ndmp/tapestry/internal/fsattr"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
	"github.com/tapestry-ndmp/tapestry/ndmp"
	"golang.org/x/sys/unix"
)

// RecoverRequest is a SNAP_RECOVER on resolved volumes.
type RecoverRequest struct {
	SVM, Volume, Snapshot string
	Flags                 uint32        // the request's flags; DIR_ONLY and DIR_DATA are refused
	Files                 []FileRecover // none: the whole volume returns to the snapshot
	Owner                 string        // who holds the snapshot's lock meanwhile (e.g. "snap-recover:7")
}

// FileRecover is one regular file to recover.
type FileRecover struct {
	Original            string // path of the file in the snapshot (from the volume's root)
	DestSVM, DestVolume string // the volume it is recovered into
	DestDir             string // directory in that volume, made when missing
	Name                string // the recovered file's name
}

// Result counts what a recovery wrote.
type Result struct {
	Files, Bytes uint64
}

// Recover recovers files, or the whole volume, from a snapshot. The
// snapshot is locked for the duration, so it cannot be deleted under the
// recovery. Only volumes and regular files are recovered, as in ONTAP.
func (m *Manager) Recover(ctx context.Context, req RecoverRequest) (Result, error) {
	if req.Flags&(ndmp.SnapRecoverDirOnly|ndmp.SnapRecoverDirData) != 0 {
		return Result{}, refuse(ndmp.ErrIllegalArgs, "directories are not recovered from a Snapshot copy: only volumes and regular files")
	}
	snap, err := m.storage.LockSnapshot(ctx, req.SVM, req.Volume, req.Snapshot, req.Owner)
	if err != nil {
		return Result{}, classify(err, ndmp.ErrSnapNotFound)
	}
	defer func() {
		_, _ = m.storage.UnlockSnapshot(context.WithoutCancel(ctx), req.SVM, req.Volume, req.Snapshot, req.Owner)
	}()
	src, err := os.OpenRoot(snap.HostPath)
	if err != nil {
		return Result{}, classify(err, ndmp.ErrSnapNotFound)
	}
	defer src.Close()
	if len(req.Files) == 0 {
		return m.recoverVolume(ctx, req, src, snap)
	}
	var res Result
	for _, f := range req.Files {
		if err := m.recoverFile(ctx, src, f, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// writableRoot opens the root of a volume a recovery may write.
func (m *Manager) writableRoot(ctx context.Context, svm, vol string) (*os.Root, error) {
	v, err := m.storage.GetVolume(ctx, svm, vol)
	if err != nil {
		return nil, classify(err, ndmp.ErrSnapInvalidPath)
	}
	switch {
	case v.ReadOnly():
		return nil, refuse(ndmp.ErrSnapReadOnlyFS, "volume %q in Vserver %q is read-only (type DP)", vol, svm)
	case v.State != storage.StateOnline:
		return nil, refuse(ndmp.ErrIllegalState, "volume %q in Vserver %q is %s", vol, svm, v.State)
	}
	r, err := os.OpenRoot(v.HostPath)
	if err != nil {
		return nil, classify(err, ndmp.ErrSnapInvalidPath)
	}
	return r, nil
}

// recoverFile copies one regular file out of the snapshot.
func (m *Manager) recoverFile(ctx context.Context, src *os.Root, f FileRecover, res *Result) error {
	orig, err := cleanRel(f.Original)
	if err != nil || orig == "." {
		return refuse(ndmp.ErrIllegalArgs, "%q names no file of the Snapshot copy", f.Original)
	}
	destDir, err := cleanRel(f.DestDir)
	if err != nil {
		return err
	}
	if first, _, _ := strings.Cut(destDir, "/"); first == snapshot.Dir {
		return refuse(ndmp.ErrSnapReadOnlyFS, "Snapshot copies are read-only: cannot recover into %q", f.DestDir)
	}
	if f.Name == "" || strings.ContainsAny(f.Name, "/\x00") || f.Name == "." || f.Name == ".." {
		return refuse(ndmp.ErrIllegalArgs, "%q is not a file name", f.Name)
	}
	dst, err := m.writableRoot(ctx, f.DestSVM, f.DestVolume)
	if err != nil {
		return err
	}
	defer dst.Close()
	sdir, sn, err := openIn(src, orig)
	if err != nil {
		return refuse(ndmp.ErrSnapNotFound, "%q is not in the Snapshot copy: %v", f.Original, err)
	}
	defer sdir.Close()
	defer sn.Close()
	if !sn.IsRegular() {
		return refuse(ndmp.ErrIllegalArgs, "%q is not a regular file: only volumes and regular files are recovered from a Snapshot copy", f.Original)
	}
	if err := dst.MkdirAll(destDir, 0o755); err != nil {
		return pathErr(fmt.Errorf("make %s: %w", f.DestDir, err))
	}
	ddir, err := dst.Open(destDir)
	if err != nil {
		return pathErr(fmt.Errorf("open %s: %w", f.DestDir, err))
	}
	defer ddir.Close()
	if dn, err := fsattr.Open(ddir, f.Name); err == nil {
		isDir := dn.IsDir()
		dn.Close()
		if isDir {
			return refuse(ndmp.ErrIllegalArgs, "%s/%s is a directory", f.DestDir, f.Name)
		}
	}
	return copyRegular(ctx, sdir, ddir, sn, path.Base(orig), f.Name, res)
}

// pathErr classifies a failure to reach a destination: INVALID_PATH unless
// the system said more (no space, no permission, ...), as when the path
// leaves the volume through a symbolic link.
func pathErr(err error) *Error {
	e := classify(err, ndmp.ErrSnapInvalidPath)
	if e.Code == ndmp.ErrSnapInternal {
		e.Code = ndmp.ErrSnapInvalidPath
	}
	return e
}

// openIn opens the directory holding rel in root and rel's node in it.
func openIn(root *os.Root, rel string) (*os.File, *fsattr.Node, error) {
	dir, err := root.Open(path.Dir(rel))
	if err != nil {
		return nil, nil, err
	}
	n, err := fsattr.Open(dir, path.Base(rel))
	if err != nil {
		dir.Close()
		return nil, nil, err
	}
	return dir, n, nil
}

// copyRegular copies regular file srcName of sdir to dstName of ddir
// through a temporary name, then gives it the source's attributes and
// renames it into place, so that a failure leaves the old file or none.
func copyRegular(ctx context.Context, sdir, ddir *os.File, sn *fsattr.Node, srcName, dstName string, res *Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	in, err := os.OpenFile(sn.Proc(), os.O_RDONLY, 0)
	if err != nil {
		return classify(fmt.Errorf("open %s: %w", srcName, err), ndmp.ErrSnapNotFound)
	}
	defer in.Close()
	tmp := ".tapestry-recover." + dstName
	if len(tmp) > 255 {
		tmp = tmp[:255]
	}
	_ = unix.Unlinkat(int(ddir.Fd()), tmp, 0)
	fd, err := unix.Openat(int(ddir.Fd()), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return classify(fmt.Errorf("create %s: %w", dstName, err), ndmp.ErrSnapInvalidPath)
	}
	out := os.NewFile(uintptr(fd), tmp)
	err = writeCopy(out, in, ddir, sn, tmp, res)
	if err == nil {
		err = unix.Renameat(int(ddir.Fd()), tmp, int(ddir.Fd()), dstName)
	}
	if err != nil {
		_ = unix.Unlinkat(int(ddir.Fd()), tmp, 0)
		return classify(fmt.Errorf("recover %s: %w", dstName, err), ndmp.ErrSnapInvalidPath)
	}
	res.Files++
	return nil
}

// writeCopy copies in to out (sharing extents where the file system can),
// syncs it and gives it sn's attributes; it closes out.
func writeCopy(out, in *os.File, ddir *os.File, sn *fsattr.Node, tmp string, res *Result) error {
	n, err := out.ReadFrom(in)
	res.Bytes += uint64(max(n, 0))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	dn, err := fsattr.Open(ddir, tmp)
	if err != nil {
		return err
	}
	defer dn.Close()
	xattrs, err := sn.Xattrs()
	if err != nil {
		return err
	}
	return fsattr.Apply(dn, fsattr.AttrsOf(sn, xattrs))
}

// errIsNotExist reports a missing entry.
func errIsNotExist(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrNotExist)
}
