package snapmgmt

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// node is one file system object opened with O_PATH|O_NOFOLLOW: the entry
// itself, never what a symbolic link points to, so that nothing done
// through it leaves the tree it was opened in.
type node struct {
	fd int
	st unix.Stat_t
}

// openNode opens name in the directory dir (a file of an os.Root).
func openNode(dir *os.File, name string) (*node, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	n := &node{fd: fd}
	if err := unix.Fstat(fd, &n.st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat %s: %w", name, err)
	}
	return n, nil
}

func (n *node) close()              { unix.Close(n.fd) }
func (n *node) proc() string        { return "/proc/self/fd/" + strconv.Itoa(n.fd) }
func (n *node) kind() uint32        { return n.st.Mode & unix.S_IFMT }
func (n *node) isSymlink() bool     { return n.kind() == unix.S_IFLNK }
func (n *node) isDir() bool         { return n.kind() == unix.S_IFDIR }
func (n *node) isRegular() bool     { return n.kind() == unix.S_IFREG }
func (n *node) sameAs(o *node) bool { return n.st.Dev == o.st.Dev && n.st.Ino == o.st.Ino }

// xattrs reads the extended attributes of n (ACLs included); a symbolic
// link's are not read (Linux keeps only trusted and security ones there).
func (n *node) xattrs() (map[string][]byte, error) {
	if n.isSymlink() {
		return nil, nil
	}
	names, err := listXattrs(n.proc())
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(names))
	for _, name := range names {
		v, err := getXattr(n.proc(), name)
		if err != nil {
			return nil, fmt.Errorf("read attribute %s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

func listXattrs(p string) ([]string, error) {
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

func getXattr(p, name string) ([]byte, error) {
	sz, err := unix.Getxattr(p, name, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Getxattr(p, name, buf)
	return buf[:sz], err
}

// copyAttrs gives dst the owner, mode, extended attributes and times of
// src, in the order that keeps each: the owner first (a change of owner
// clears set-id bits and file capabilities), then the mode, then the
// attributes (ACLs after the mode, which rewrites their mask), the times
// last.
func copyAttrs(dst, src *node, xattrs map[string][]byte) error {
	if err := unix.Fchownat(dst.fd, "", int(src.st.Uid), int(src.st.Gid), unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("set owner: %w", err)
	}
	if !src.isSymlink() {
		if err := unix.Chmod(dst.proc(), src.st.Mode&0o7777); err != nil {
			return fmt.Errorf("set mode: %w", err)
		}
		if err := replaceXattrs(dst, xattrs); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{src.st.Atim, src.st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst.proc(), ts, 0); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// replaceXattrs makes dst's extended attributes exactly want.
func replaceXattrs(dst *node, want map[string][]byte) error {
	have, err := listXattrs(dst.proc())
	if err != nil {
		return fmt.Errorf("list attributes: %w", err)
	}
	for _, name := range have {
		if _, keep := want[name]; !keep {
			if err := unix.Removexattr(dst.proc(), name); err != nil && !errors.Is(err, unix.ENODATA) {
				return fmt.Errorf("remove attribute %s: %w", name, err)
			}
		}
	}
	for name, v := range want {
		if err := unix.Setxattr(dst.proc(), name, v, 0); err != nil {
			return fmt.Errorf("set attribute %s: %w", name, err)
		}
	}
	return nil
}
