package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// RestorePolicy says what a restore may create for the one who asks for it
// (issue 10, docs/security.md). A restore without a policy (nil) restores
// the image as it is: device nodes, set-ID bits, every owner and every
// extended attribute; only callers acting for a fully trusted user (a
// cluster administrator or backup operator, root on the command line) pass
// nil. Every restore with a policy:
//
//   - creates no block or character device nodes: each name of one is
//     reported through OnName with an error wrapping ErrDeviceRefused
//     (fs.ErrPermission), and the rest of the image is restored;
//   - clears the set-user-ID bit of every inode and the set-group-ID bit of
//     every non-directory (a directory's set-group-ID bit only makes new
//     files inherit the directory's group, which the policy already
//     chose);
//   - keeps the image's user (group) id only when UIDs (GIDs) holds it, and
//     otherwise gives the inode to DefaultUID (DefaultGID), unless AnyOwner
//     is set;
//   - restores only the extended attributes that grant nothing beyond the
//     file itself: user.*, POSIX ACLs, Samba's security.NTACL and the LUN
//     flag; file capabilities (security.capability), other security.* and
//     trusted.* attributes are left out.
type RestorePolicy struct {
	// Who names the requester in error messages ("Vserver vs1", "user
	// 1000").
	Who string
	// UIDs and GIDs are the ids whose inodes keep their owner and group.
	UIDs, GIDs IDRanges
	// DefaultUID and DefaultGID own inodes whose ids are outside UIDs and
	// GIDs.
	DefaultUID, DefaultGID uint32
	// AnyOwner keeps every owner and group of the image (root included):
	// an explicit choice of the administrator (an SVM's
	// -restore-allow-any-owner).
	AnyOwner bool
}

// ErrDeviceRefused is wrapped by the error reported for a device node that
// a restore with a policy does not create. It wraps fs.ErrPermission, so
// NDMP reports it as NDMP_RECOVERY_FAILED_PERMISSION.
var ErrDeviceRefused = fmt.Errorf("device nodes are not restored for this user: %w", fs.ErrPermission)

// IDRange is an inclusive range of user or group ids.
type IDRange struct{ Lo, Hi uint32 }

// IDRanges is a set of user or group ids, written "1000-1999,2500".
type IDRanges []IDRange

// ErrBadIDRanges is wrapped by the errors of ParseIDRanges.
var ErrBadIDRanges = errors.New("invalid id ranges")

// ParseIDRanges parses a comma-separated list of ids and LOW-HIGH ranges;
// "" is the empty set.
func ParseIDRanges(s string) (IDRanges, error) {
	var out IDRanges
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 32)
		b, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 32)
		if err1 != nil || err2 != nil || a > b {
			return nil, fmt.Errorf("%w: %q is not an id or LOW-HIGH with LOW <= HIGH", ErrBadIDRanges, part)
		}
		out = append(out, IDRange{Lo: uint32(a), Hi: uint32(b)})
	}
	return out, nil
}

// Contains reports whether id is in the set.
func (r IDRanges) Contains(id uint32) bool {
	return slices.ContainsFunc(r, func(x IDRange) bool { return x.Lo <= id && id <= x.Hi })
}

// String writes the set as ParseIDRanges reads it.
func (r IDRanges) String() string {
	parts := make([]string, len(r))
	for i, x := range r {
		parts[i] = strconv.FormatUint(uint64(x.Lo), 10)
		if x.Hi != x.Lo {
			parts[i] += "-" + strconv.FormatUint(uint64(x.Hi), 10)
		}
	}
	return strings.Join(parts, ",")
}
