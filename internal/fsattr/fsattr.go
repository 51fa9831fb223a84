// Package fsattr reads and sets the attributes of file system entries
// through O_PATH descriptors, so that nothing done through them follows a
// symbolic link out of the tree they were opened in: owner, mode,
// extended attributes (ACLs included) and times, set in the order that
// keeps each.
package fsattr

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Node is one file system entry opened with O_PATH|O_NOFOLLOW: the entry
// itself, never what a symbolic link points to.
type Node struct {
	fd int
	// St is the entry's status when it was opened.
	St unix.Stat_t
}

// Open opens entry name of directory dir (a directory of an os.Root, or any
// open directory); name is one path component.
func Open(dir *os.File, name string) (*Node, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	n := &Node{fd: fd}
	if err := unix.Fstat(fd, &n.St); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat %s: %w", name, err)
	}
	return n, nil
}

// Close closes the descriptor.
func (n *Node) Close() { unix.Close(n.fd) }

// Proc returns the /proc/self/fd path that reaches the entry itself.
func (n *Node) Proc() string { return "/proc/self/fd/" + strconv.Itoa(n.fd) }

// Kind returns the S_IFMT bits of the entry's mode.
func (n *Node) Kind() uint32 { return n.St.Mode & unix.S_IFMT }

// IsSymlink reports a symbolic link.
func (n *Node) IsSymlink() bool { return n.Kind() == unix.S_IFLNK }

// IsDir reports a directory.
func (n *Node) IsDir() bool { return n.Kind() == unix.S_IFDIR }

// IsRegular reports a regular file.
func (n *Node) IsRegular() bool { return n.Kind() == unix.S_IFREG }

// SameAs reports whether n and o are the same inode.
func (n *Node) SameAs(o *Node) bool { return n.St.Dev == o.St.Dev && n.St.Ino == o.St.Ino }

// Xattrs reads the extended attributes of n (ACLs included); a symbolic
// link's are not read (Linux keeps only trusted and security ones there).
func (n *Node) Xattrs() (map[string][]byte, error) {
	if n.IsSymlink() {
		return nil, nil
	}
	names, err := ListXattrs(n.Proc())
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(names))
	for _, name := range names {
		v, err := GetXattr(n.Proc(), name)
		if err != nil {
			return nil, fmt.Errorf("read attribute %s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

// ListXattrs lists the extended attribute names of path p (following a
// final symbolic link, as a /proc/self/fd path must).
func ListXattrs(p string) ([]string, error) {
	sz, err := unix.Listxattr(p, nil)
	if err != nil || sz == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	buf := make([]byte, sz)
	if sz, err = unix.Listxattr(p, buf); err != nil {
		return nil, err
	}
	var names []string
	for start, i := 0, 0; i < sz; i++ {
		if buf[i] == 0 {
			names = append(names, string(buf[start:i]))
			start = i + 1
		}
	}
	return names, nil
}

// GetXattr reads extended attribute name of path p.
func GetXattr(p, name string) ([]byte, error) {
	sz, err := unix.Getxattr(p, name, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Getxattr(p, name, buf)
	return buf[:sz], err
}

// Attrs are the attributes Apply sets.
type Attrs struct {
	UID, GID     uint32
	Mode         uint32 // permission and set-id bits; ignored for a symbolic link
	Xattrs       map[string][]byte
	Atime, Mtime unix.Timespec
}

// AttrsOf returns n's attributes with the extended attributes xattrs.
func AttrsOf(n *Node, xattrs map[string][]byte) Attrs {
	return Attrs{UID: n.St.Uid, GID: n.St.Gid, Mode: n.St.Mode & 0o7777, Xattrs: xattrs, Atime: n.St.Atim, Mtime: n.St.Mtim}
}

// Apply gives n the attributes a, in the order that keeps each: the owner
// first (a change of owner clears set-id bits and file capabilities), then
// the mode, then the extended attributes (ACLs after the mode, which
// rewrites their mask; exactly a.Xattrs remain), the times last. A
// symbolic link gets its owner and times only.
func Apply(n *Node, a Attrs) error {
	if err := unix.Fchownat(n.fd, "", int(a.UID), int(a.GID), unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("set owner: %w", err)
	}
	if !n.IsSymlink() {
		if err := unix.Chmod(n.Proc(), a.Mode&0o7777); err != nil {
			return fmt.Errorf("set mode: %w", err)
		}
		if err := replaceXattrs(n, a.Xattrs); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{a.Atime, a.Mtime}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, n.Proc(), ts, 0); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// replaceXattrs makes dst's extended attributes exactly want.
func replaceXattrs(dst *Node, want map[string][]byte) error {
	have, err := ListXattrs(dst.Proc())
	if err != nil {
		return fmt.Errorf("list attributes: %w", err)
	}
	for _, name := range have {
		if _, keep := want[name]; !keep {
			if err := unix.Removexattr(dst.Proc(), name); err != nil && !errors.Is(err, unix.ENODATA) {
				return fmt.Errorf("remove attribute %s: %w", name, err)
			}
		}
	}
	for name, v := range want {
		if err := unix.Setxattr(dst.Proc(), name, v, 0); err != nil {
			return fmt.Errorf("set attribute %s: %w", name, err)
		}
	}
	return nil
}
