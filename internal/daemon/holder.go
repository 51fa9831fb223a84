package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	berrors "go.etcd.io/bbolt/errors"
)

// inUseError explains a catalog that another process holds locked (issue
// 17 item 5: a second tapestryd on the same data directory said only
// "timeout"): it names the process that holds the lock when /proc/locks
// shows it.
func inUseError(dir, catalogPath string, err error) error {
	if !errors.Is(err, berrors.ErrTimeout) {
		return err
	}
	pid, ok := lockHolder(catalogPath, "/proc/locks")
	if !ok {
		return fmt.Errorf("data directory %s is in use: another process holds the lock on %s; stop it or give another --data-dir", dir, catalogPath)
	}
	return fmt.Errorf("data directory %s is in use by process %d (%s), which holds the lock on %s; stop it or give another --data-dir", dir, pid, processName(pid), catalogPath)
}

// lockHolder returns the process that holds a lock on the file at path,
// read from the kernel's lock table (locksFile, /proc/locks).
func lockHolder(path, locksFile string) (int, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	f, err := os.Open(locksFile)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if pid, ok := lockLine(sc.Text(), st.Ino); ok {
			return pid, true
		}
	}
	return 0, false
}

// lockLine parses one line of /proc/locks ("1: FLOCK ADVISORY WRITE 4242
// 00:2b:1234 0 EOF") and returns its process when it is a granted lock on
// inode ino. The device is not compared: btrfs reports a subvolume's own
// device to stat but the file system's in the lock table.
func lockLine(line string, ino uint64) (int, bool) {
	f := strings.Fields(line)
	if len(f) < 6 || f[1] == "->" {
		return 0, false
	}
	id := strings.Split(f[5], ":")
	if len(id) != 3 {
		return 0, false
	}
	n, err := strconv.ParseUint(id[2], 10, 64)
	if err != nil || n != ino {
		return 0, false
	}
	pid, err := strconv.Atoi(f[4])
	return pid, err == nil && pid > 0
}

// processName returns the command line of process pid, or "unknown".
func processName(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return "unknown command"
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
