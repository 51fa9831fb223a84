package filedump

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// RestorePolicy is engine.RestorePolicy with the methods the dump restore
// applies it with (issue 10, docs/security.md).
type RestorePolicy engine.RestorePolicy

// IDRange and IDRanges are engine's.
type (
	IDRange  = engine.IDRange
	IDRanges = engine.IDRanges
)

// ErrDeviceRefused is engine.ErrDeviceRefused.
var ErrDeviceRefused = engine.ErrDeviceRefused

// ErrBadIDRanges is engine.ErrBadIDRanges.
var ErrBadIDRanges = engine.ErrBadIDRanges

// ParseIDRanges is engine.ParseIDRanges.
func ParseIDRanges(s string) (IDRanges, error) { return engine.ParseIDRanges(s) }

// The set-ID bits of Inode.Mode.
const (
	modeSetUID = 0o4000
	modeSetGID = 0o2000
)

// admit applies the policy to the inode in of a non-directory before it
// is created: a device is refused, the set-ID bits and the owner are
// changed in place. A nil policy admits everything as it is.
func (p *RestorePolicy) admit(in *dump.Inode) error {
	if p == nil {
		return nil
	}
	switch in.Mode & dump.ModeFmt {
	case dump.ModeBlk, dump.ModeChr:
		kind := "character"
		if in.Mode&dump.ModeFmt == dump.ModeBlk {
			kind = "block"
		}
		return fmt.Errorf("%s device %d,%d (inode %d) not created for %s: %w",
			kind, unix.Major(uint64(in.Rdev)), unix.Minor(uint64(in.Rdev)), in.Ino, p.Who, ErrDeviceRefused)
	}
	in.Mode &^= modeSetUID | modeSetGID
	p.owner(in)
	return nil
}

// dirInode returns the inode of a directory as the policy restores it.
func (p *RestorePolicy) dirInode(in dump.Inode) dump.Inode {
	if p == nil {
		return in
	}
	in.Mode &^= modeSetUID
	p.owner(&in)
	return in
}

// owner maps the owner and group of in.
func (p *RestorePolicy) owner(in *dump.Inode) {
	if p.AnyOwner {
		return
	}
	if !p.UIDs.Contains(in.UID) {
		in.UID = p.DefaultUID
	}
	if !p.GIDs.Contains(in.GID) {
		in.GID = p.DefaultGID
	}
}

// xattrAllowed reports whether an extended attribute called name is
// restored.
func (p *RestorePolicy) xattrAllowed(name string) bool {
	if p == nil {
		return true
	}
	switch {
	case strings.HasPrefix(name, "user."),
		name == "system.posix_acl_access", name == "system.posix_acl_default",
		name == xattrNTACL, name == storage.LUNXattrTrusted:
		return true
	}
	return false
}
