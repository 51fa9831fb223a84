package eventlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
)

// ValidName reports whether name is one of the log files: "backup" or
// "backup.0" ... "backup.5". Only these names can be read.
func ValidName(name string) error {
	if name == FileName {
		return nil
	}
	if rest, ok := strings.CutPrefix(name, FileName+"."); ok && len(rest) == 1 && rest[0] >= '0' && rest[0] < '0'+MaxOld {
		return nil
	}
	return fmt.Errorf("eventlog: %q is not a backup log file name (backup, backup.0 ... backup.%d)", short(name), MaxOld-1)
}

// NameFromPath maps a path as a user types it for rdfile, such as
// "/etc/log/backup", "etc/log/backup.2" or "/mroot/etc/log/backup", to the
// log file name ("backup", "backup.2"). Anything else is refused.
func NameFromPath(p string) (string, error) {
	clean := path.Clean("/" + p)
	if clean != "/"+strings.TrimPrefix(p, "/") {
		return "", fmt.Errorf("eventlog: path %q is not a backup log file", short(p))
	}
	dir, name := path.Split(clean)
	if dir != "/etc/log/" && dir != "/mroot/etc/log/" {
		return "", fmt.Errorf("eventlog: path %q is not in /etc/log", short(p))
	}
	if err := ValidName(name); err != nil {
		return "", err
	}
	return name, nil
}

// Names returns the log files present in dir, newest first: "backup" (if
// present), then "backup.0" to "backup.5".
func Names(dir string) ([]string, error) {
	var names []string
	for i := -1; i < MaxOld; i++ {
		name := FileName
		if i >= 0 {
			name += "." + strconv.Itoa(i)
		}
		_, err := os.Lstat(dir + "/" + name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("eventlog: %w", err)
		}
		names = append(names, name)
	}
	return names, nil
}

// openFile opens dir/name for reading after checking the name. The file is
// opened through an os.Root so that a symbolic link cannot lead outside dir.
func openFile(dir, name string) (*os.File, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("eventlog: %s is not a regular file", name)
	}
	return f, nil
}

// Read returns the contents of the log file name ("backup" or
// "backup.0" ... "backup.5") in dir.
func Read(dir, name string) ([]byte, error) {
	f, err := openFile(dir, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("eventlog: read %s: %w", name, err)
	}
	return b, nil
}

// Lines splits the contents of a log file into lines without their
// newlines. A last line without a newline is included.
func Lines(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// tailChunk is how much Tail reads from the end of the file at a time.
const tailChunk = 64 << 10

// Tail returns the last n lines of the log file name in dir, oldest first,
// reading the file from its end.
func Tail(dir, name string, n int) ([]string, error) {
	if n < 0 {
		return nil, fmt.Errorf("eventlog: tail: negative line count %d", n)
	}
	f, err := openFile(dir, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if n == 0 {
		return nil, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("eventlog: tail %s: %w", name, err)
	}
	end := fi.Size()
	var buf []byte // the end of the file read so far
	for end > 0 {
		size := int64(tailChunk)
		if size > end {
			size = end
		}
		chunk := make([]byte, size)
		if _, err := f.ReadAt(chunk, end-size); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("eventlog: tail %s: %w", name, err)
		}
		end -= size
		buf = append(chunk, buf...)
		// n lines need n newlines before the last line's end (the final
		// newline of the file does not count).
		if bytes.Count(bytes.TrimSuffix(buf, []byte("\n")), []byte("\n")) >= n {
			break
		}
	}
	lines := Lines(buf)
	if end > 0 {
		lines = lines[1:] // the first line may be partial
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

// Tail returns the last n lines of the current log file.
func (l *Log) Tail(n int) ([]string, error) {
	return Tail(l.dir, FileName, n)
}
