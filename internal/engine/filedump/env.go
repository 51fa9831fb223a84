package filedump

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/tapestry-ndmp/tapestry/internal/engine"
)

// Env holds NDMP environment variables (name -> value).
type Env map[string]string

// Bool reads a Y/N variable: Y or T mean true, N or F false (N16), any case.
// A missing or empty variable gives def; anything else is an error.
func (e Env) Bool(name string, def bool) (bool, error) {
	v, ok := e[name]
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "Y", "T", "YES", "TRUE":
		return true, nil
	case "N", "F", "NO", "FALSE":
		return false, nil
	}
	return false, fmt.Errorf("environment variable %s: %q is not Y or N", name, v)
}

// Int reads an integer variable in [lo, hi]; a missing variable gives def.
func (e Env) Int(name string, def, lo, hi int) (int, error) {
	v, ok := e[name]
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("environment variable %s: %q is not a number from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// Messages of the dump engine as the ONTAP documentation words them (D6,
// D13, D14).
const (
	MsgRecordTooSmall   = "Tape record size is too small. Try a larger size."
	MsgRecordRange      = "Tape record size must be in the range between 4KB and 256KB"
	MsgReadOnlyVolume   = engine.MsgReadOnlyVolume
	MsgReadOnlyQtree    = "Destination qtree is read-only"
	MsgDumpsDisabled    = engine.MsgDumpsDisabled
	MsgSecurityLabels   = "Error: Aborting: dump encountered NFS security labels in the file system"
	MsgNoFilesCreated   = "No files were created"
	MsgSnapshotLock     = "Unable to lock a snapshot needed by dump"
	MsgNoBitmaps        = "Unable to locate bitmap files"
	MsgTransitional     = engine.MsgTransitional
	msgRecordShouldBe   = "Tape record size should be %d and not %d"
	msgRestoreFailed    = "Restore of the file %s failed"
	msgTruncationFailed = "Truncation failed for src inode %d. Error %d. Skipping inode."
)

// Error is an engine error whose Msg is the exact text the ONTAP
// documentation gives; it is the error type shared by the engines.
type Error = engine.Error

// withOp prefixes err with the operation, unless it carries a documented
// message (an *Error), which is reported as it is.
func withOp(op string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Message returns the documented message of err when it is (or wraps) an
// *Error, else err's text.
func Message(err error) string { return engine.Message(err) }

// CheckRecordSize validates a tape record size in bytes for a backup (D6):
// a multiple of 1,024 from 4 KB to 256 KB. It returns the blocking factor.
func CheckRecordSize(size int) (int, error) {
	if size <= 0 || size > 256<<10 || size%1024 != 0 || size < 4<<10 {
		return 0, &Error{Msg: MsgRecordRange}
	}
	return size / 1024, nil
}

// CheckRestoreRecordSize validates the record size of a restore against the
// blocking factor the image was written with (imageNTREC records per block).
// A local restore (local=true) must use exactly the image's size.
func CheckRestoreRecordSize(size, imageNTREC int, local bool) error {
	if _, err := CheckRecordSize(size); err != nil {
		return err
	}
	want := imageNTREC * 1024
	if size < want {
		return &Error{Msg: MsgRecordTooSmall}
	}
	if local && size != want {
		return &Error{Msg: fmt.Sprintf(msgRecordShouldBe, want, size)}
	}
	return nil
}

// ErrorRecordShouldBe returns the D6 error for a local restore that used the
// record size got instead of want (bytes).
func ErrorRecordShouldBe(want, got int) error {
	return &Error{Msg: fmt.Sprintf(msgRecordShouldBe, want, got)}
}

// ErrorRestoreFailed returns the D14 error for a file that could not be
// restored.
func ErrorRestoreFailed(name string, cause error) error {
	return &Error{Msg: fmt.Sprintf(msgRestoreFailed, name), Err: cause}
}

// ErrorTruncationFailed returns the D14 error for a restored file whose
// size could not be set: ino is the file's inode number on the image and
// cause the error of the truncation, whose errno the message gives (0 when
// cause carries none).
func ErrorTruncationFailed(ino uint32, cause error) error {
	var errno syscall.Errno
	n := 0
	if errors.As(cause, &errno) {
		n = int(errno)
	}
	return &Error{Msg: fmt.Sprintf(msgTruncationFailed, ino, n), Err: cause}
}

// MaxExcludeNames is the largest number of names an EXCLUDE list may have.
const MaxExcludeNames = 32

// Exclude is a parsed EXCLUDE list (D7).
type Exclude struct {
	pats []excludePat
}

type excludePat struct {
	s             string
	prefix, suffx bool // "*" at the end / at the start
}

// ParseExclude parses an EXCLUDE value: a comma-separated list of names,
// "\," standing for a comma in a name. A "*" may only be the first or the
// last character (so at most two per name); at most 32 names.
func ParseExclude(v string) (*Exclude, error) {
	ex := &Exclude{}
	if strings.TrimSpace(v) == "" {
		return ex, nil
	}
	var names []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) && v[i+1] == ',' {
			cur.WriteByte(',')
			i++
			continue
		}
		if c == ',' {
			names = append(names, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	names = append(names, cur.String())
	if len(names) > MaxExcludeNames {
		return nil, fmt.Errorf("EXCLUDE: %d names; at most %d are allowed", len(names), MaxExcludeNames)
	}
	for _, n := range names {
		if n == "" {
			return nil, errors.New("EXCLUDE: empty name in the list")
		}
		p := excludePat{s: n}
		if strings.HasPrefix(p.s, "*") {
			p.suffx = true
			p.s = p.s[1:]
		}
		if strings.HasSuffix(p.s, "*") {
			p.prefix = true
			p.s = p.s[:len(p.s)-1]
		}
		if strings.Contains(p.s, "*") {
			return nil, fmt.Errorf("EXCLUDE: %q: an asterisk must be the first or the last character", n)
		}
		if strings.Contains(p.s, "/") {
			return nil, fmt.Errorf("EXCLUDE: %q: give a file or directory name, not a path", n)
		}
		ex.pats = append(ex.pats, p)
	}
	return ex, nil
}

// Len returns the number of names.
func (x *Exclude) Len() int {
	if x == nil {
		return 0
	}
	return len(x.pats)
}

// Match reports whether a file or directory name is excluded.
func (x *Exclude) Match(name string) bool {
	if x == nil {
		return false
	}
	for _, p := range x.pats {
		switch {
		case p.prefix && p.suffx:
			if strings.Contains(name, p.s) {
				return true
			}
		case p.prefix:
			if strings.HasPrefix(name, p.s) {
				return true
			}
		case p.suffx:
			if strings.HasSuffix(name, p.s) {
				return true
			}
		default:
			if name == p.s {
				return true
			}
		}
	}
	return false
}

// ParseMultiSubtree parses MULTI_SUBTREE_NAMES: newline-separated subtree
// names relative to their common root, the root being the last element
// (a trailing NUL is allowed). It returns the root and the subtrees.
func ParseMultiSubtree(v string) (root string, subtrees []string, err error) {
	v = strings.TrimRight(v, "\x00\n")
	var parts []string
	for _, l := range strings.Split(v, "\n") {
		l = strings.TrimSpace(l)
		if l != "" {
			parts = append(parts, l)
		}
	}
	if len(parts) < 2 {
		return "", nil, errors.New("MULTI_SUBTREE_NAMES: needs at least one subtree and the common root as the last element")
	}
	root = parts[len(parts)-1]
	for _, s := range parts[:len(parts)-1] {
		c, ok := cleanRel(s)
		if !ok || c == "" {
			return "", nil, fmt.Errorf("MULTI_SUBTREE_NAMES: %q is not a path below the common root", s)
		}
		subtrees = append(subtrees, c)
	}
	return root, subtrees, nil
}
