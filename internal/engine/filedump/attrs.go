package filedump

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// Samba's extended attributes.
const (
	xattrDOSAttrib    = "user.DOSATTRIB"
	xattrNTACL        = "security.NTACL"
	xattrStreamPrefix = "user.DosStream."
	xattrSELinux      = "security.selinux"
)

// linkXattr reports whether an attribute of that name can be set on a
// symbolic link: Linux refuses user.* there (EPERM), while security.*
// (an SELinux label, which every link of an SELinux host has) and
// trusted.* are kept.
func linkXattr(name string) bool {
	return strings.HasPrefix(name, "security.") || strings.HasPrefix(name, "trusted.")
}

// xattrCapability holds a file's capabilities. The kernel removes it when
// the file changes owner, so a restore sets it after the owner.
const xattrCapability = "security.capability"

// fsetXattrs sets on fd those of xs that go after the owner (late) or
// before it, and returns errs with an error for each that failed.
func fsetXattrs(errs []error, fd int, xs []dump.Xattr, late bool) []error {
	for _, x := range xs {
		if (x.Name == xattrCapability) != late {
			continue
		}
		if err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err != nil {
			errs = append(errs, fmt.Errorf("xattr %s: %w", x.Name, err))
		}
	}
	return errs
}

// lsetXattrs is fsetXattrs on the path p, not following a link; on a
// symbolic link (link) only the attributes Linux allows there are set.
func lsetXattrs(errs []error, p string, xs []dump.Xattr, link, late bool) []error {
	for _, x := range xs {
		if (x.Name == xattrCapability) != late || link && !linkXattr(x.Name) {
			continue
		}
		if err := unix.Lsetxattr(p, x.Name, x.Value, 0); err != nil {
			errs = append(errs, fmt.Errorf("xattr %s: %w", x.Name, err))
		}
	}
	return errs
}

// listXattrs returns the extended attributes of p (not following links),
// sorted by name.
func listXattrs(p string) ([]dump.Xattr, error) {
	return readXattrs(p, func(buf []byte) (int, error) { return unix.Llistxattr(p, buf) },
		func(name string) ([]byte, error) { return getXattr(p, name) })
}

// listXattrsFd is listXattrs on an open file: no second path lookup.
func listXattrsFd(fd int, p string) ([]dump.Xattr, error) {
	return readXattrs(p, func(buf []byte) (int, error) { return unix.Flistxattr(fd, buf) },
		func(name string) ([]byte, error) { return fgetXattr(fd, p, name) })
}

// readXattrs lists the attribute names with list (one call when there are
// none) and reads each value with get.
func readXattrs(p string, list func([]byte) (int, error), get func(string) ([]byte, error)) ([]dump.Xattr, error) {
	sz, err := list(nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	if sz == 0 {
		return nil, nil
	}
	buf := make([]byte, sz)
	sz, err = list(buf)
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	var xs []dump.Xattr
	for _, name := range bytes.Split(buf[:sz], []byte{0}) {
		if len(name) == 0 {
			continue
		}
		v, err := get(string(name))
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return nil, err
		}
		xs = append(xs, dump.Xattr{Name: string(name), Value: v})
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].Name < xs[j].Name })
	return xs, nil
}

// fgetXattr is getXattr on an open file.
func fgetXattr(fd int, p, name string) ([]byte, error) {
	return xattrValue(p, name, func(buf []byte) (int, error) { return unix.Fgetxattr(fd, name, buf) })
}

// getXattr returns the value of the attribute name of p (not following links).
func getXattr(p, name string) ([]byte, error) {
	return xattrValue(p, name, func(buf []byte) (int, error) { return unix.Lgetxattr(p, name, buf) })
}

// xattrValue reads one attribute value with get, growing the buffer when
// the value is larger than it.
func xattrValue(p, name string, get func([]byte) (int, error)) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := get(buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err2 := get(nil)
			if err2 != nil {
				return nil, fmt.Errorf("get xattr %s of %s: %w", name, p, err2)
			}
			buf = make([]byte, sz+1)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get xattr %s of %s: %w", name, p, err)
		}
		return buf[:n], nil
	}
}

// attrs reads the extended attributes of n and splits off Samba's NT streams.
func (w *walker) attrs(n *node) (xs []dump.Xattr, streams []dump.Xattr, err error) {
	all, err := listXattrs(w.full(path.Join(w.src.rel, n.path)))
	if err != nil && errors.Is(err, os.ErrNotExist) && w.src.snapName == "" {
		return nil, nil, nil // removed from a live directory meanwhile
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dump backup: %w", err)
	}
	return w.splitAttrs(n, all)
}

// splitAttrs sorts the extended attributes of n into those dumped as
// attributes and Samba's NT streams. A security label (security.selinux,
// on every file of an SELinux host) is an attribute like the others,
// unless the SVM serves NFSv4.2 security labels: then, as ONTAP's dump
// does, it stops the backup with MsgSecurityLabels.
func (w *walker) splitAttrs(n *node, all []dump.Xattr) (xs []dump.Xattr, streams []dump.Xattr, err error) {
	for _, x := range all {
		switch {
		case x.Name == xattrSELinux && w.src.refuseLabels:
			return nil, nil, &Error{Msg: MsgSecurityLabels, Err: fmt.Errorf("%s has %s", n.path, x.Name)}
		case strings.HasPrefix(x.Name, xattrStreamPrefix):
			streams = append(streams, x)
		case w.opt.noACLs && (x.Name == xattrNTACL || strings.HasPrefix(x.Name, "system.posix_acl_")):
		case x.Name == xattrNTACL && w.takeNTACL(n, x.Value):
			// decoded: written in the ACL section (phase V)
		default:
			xs = append(xs, x)
		}
	}
	return xs, streams, nil
}

// parseDOSAttrib reads the DOS attributes from Samba's user.DOSATTRIB in its
// hex text form ("0x20"); the binary NDR forms are kept only as the xattr.
func parseDOSAttrib(v []byte) (uint32, bool) {
	s := strings.TrimRight(string(v), "\x00")
	if !strings.HasPrefix(s, "0x") {
		return 0, false
	}
	a, err := strconv.ParseUint(s[2:], 16, 32)
	if err != nil {
		return 0, false
	}
	return uint32(a), true
}

// writeExtras writes the extension records of the inode written last: DOS
// attributes, NT streams and the LUN flag.
func (w *walker) writeExtras(dw *dump.Writer, n *node, xs, streams []dump.Xattr) error {
	lun := false
	for _, x := range xs {
		switch x.Name {
		case xattrDOSAttrib:
			if a, ok := parseDOSAttrib(x.Value); ok {
				if err := dw.WriteDOS(&dump.DOSInfo{Attributes: a, Created: nsTime(n.btime)}); err != nil {
					return fmt.Errorf("dump backup: %w", err)
				}
			}
		case storage.LUNXattrTrusted, storage.LUNXattrUser:
			lun = n.mode&unix.S_IFMT == unix.S_IFREG && len(x.Value) > 0 && x.Value[0] != '0'
		}
	}
	for _, s := range streams {
		name := strings.TrimPrefix(s.Name, xattrStreamPrefix)
		if err := dw.WriteStream(name, int64(len(s.Value)), bytes.NewReader(s.Value)); err != nil {
			return fmt.Errorf("dump backup: stream %q of %s: %w", name, n.path, err)
		}
	}
	if lun {
		if err := dw.WriteLUN(&dump.LUNInfo{OSType: "linux"}); err != nil {
			return fmt.Errorf("dump backup: %w", err)
		}
	}
	return nil
}

// zeroReader reads zeros, to pad a file that shrank while it was read.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// readBuffer is the size of the reads from the files being dumped (the
// writer asks for 1 KB at a time).
const readBuffer = 256 << 10

func (w *walker) blockBuf() []byte {
	if w.bbuf == nil {
		w.bbuf = make([]byte, readBuffer)
	}
	return w.bbuf
}

// fdFile reads a file through its raw descriptor: no poller registration
// and no fcntl calls, which matter when most files are a few KB.
type fdFile int

// openFile opens a regular file of the tree for reading, not following a
// link and without changing its access time where permitted.
func openFile(p string) (fdFile, error) {
	for {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOATIME|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EPERM) {
			fd, err = unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return fdFile(fd), nil
	}
}

// Read implements io.Reader.
func (f fdFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(int(f), p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// ReadAt implements io.ReaderAt.
func (f fdFile) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Pread(int(f), p[done:], off+int64(done))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return done, fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return done, io.EOF
		}
		done += n
	}
	return done, nil
}

// Close closes the descriptor.
func (f fdFile) Close() error { return unix.Close(int(f)) }

// blockReaderAt serves small ReadAt calls from one large read of the file,
// and reads zeros past the end of the file (it may have shrunk).
type blockReaderAt struct {
	f   io.ReaderAt
	buf []byte
	off int64 // file offset of buf[0]
	n   int   // valid bytes in buf
}

// ReadAt implements io.ReaderAt.
func (b *blockReaderAt) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		o := off + int64(done)
		if o < b.off || o >= b.off+int64(b.n) {
			n, err := b.f.ReadAt(b.buf, o)
			if n == 0 {
				if err == io.EOF || err == nil {
					clear(p[done:])
					return len(p), nil
				}
				return done, err
			}
			b.off, b.n = o, n
		}
		done += copy(p[done:], b.buf[o-b.off:b.n])
	}
	return len(p), nil
}

// dataExtents returns the data extents of the open file fd up to size with
// SEEK_DATA and SEEK_HOLE; ok is false when the file system cannot tell.
func dataExtents(fd int, size int64) (ext []dump.Extent, ok bool) {
	var off int64
	for off < size {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			if errors.Is(err, unix.ENXIO) {
				break
			}
			return nil, false
		}
		if d >= size {
			break
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return nil, false
		}
		h = min(h, size)
		ext = append(ext, dump.Extent{Offset: d, Length: h - d})
		off = h
	}
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		return nil, false
	}
	return ext, true
}

// writeFetched writes one non-directory inode the prefetcher prepared, and
// its extension records.
func (w *walker) writeFetched(dw *dump.Writer, it *fetched) (dump.Position, error) {
	n := it.n
	in := &w.in
	n.fillInode(in)
	var pos dump.Position
	var err error
	if n.vanished {
		if pos, err = dw.WriteFile(in, nil, nil); err != nil {
			return pos, fmt.Errorf("dump backup: write %s: %w", n.path, err)
		}
		return pos, nil
	}
	xs, streams, err := w.splitAttrs(n, it.xattrs)
	if err != nil {
		return pos, err
	}
	switch n.mode & unix.S_IFMT {
	case unix.S_IFREG:
		switch {
		case it.data != nil || it.f < 0:
			w.rd.Reset(it.data)
			pos, err = dw.WriteFile(in, xs, &w.rd)
			w.rd.Reset(nil)
		case it.sparse:
			pos, err = dw.WriteSparseFile(in, xs, &blockReaderAt{f: it.f, buf: w.blockBuf()}, it.ext)
		default:
			if w.br == nil {
				w.br = bufio.NewReaderSize(nil, readBuffer)
			}
			w.br.Reset(it.f)
			pos, err = dw.WriteFile(in, xs, io.LimitReader(io.MultiReader(w.br, zeroReader{}), in.Size))
			w.br.Reset(nil)
		}
	case unix.S_IFLNK:
		in.Size = int64(len(it.target))
		pos, err = dw.WriteFile(in, xs, strings.NewReader(it.target))
	default:
		in.Size = 0
		pos, err = dw.WriteFile(in, xs, nil)
	}
	if err != nil {
		return pos, fmt.Errorf("dump backup: write %s: %w", n.path, err)
	}
	if err := w.writeExtras(dw, n, xs, streams); err != nil {
		return pos, err
	}
	return pos, nil
}
