package storage

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// isNameChar reports whether r may appear in an SVM, node, LIF or volume
// name after its first character.
func isNameChar(r rune, extra string) bool {
	return r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune(extra, r)
}

func validIdent(kind, name string, max int, extra string) error {
	if name == "" {
		return errf(ErrInvalidArgument, "%s name must not be empty", kind)
	}
	if len(name) > max {
		return errf(ErrInvalidArgument, "%s name %q is longer than %d characters", kind, name, max)
	}
	first := rune(name[0])
	if !(first == '_' || first >= 'a' && first <= 'z' || first >= 'A' && first <= 'Z') {
		return errf(ErrInvalidArgument, "%s name %q must begin with a letter or an underscore", kind, name)
	}
	for _, r := range name {
		if !isNameChar(r, extra) {
			return errf(ErrInvalidArgument, "%s name %q contains the invalid character %q", kind, name, r)
		}
	}
	return nil
}

// validSVMName: letters, digits, "_", "-" and "." (an SVM name is often a
// host name), at most 47 characters.
func validSVMName(name string) error { return validIdent("Vserver", name, 47, "-.") }

func validNodeName(name string) error { return validIdent("node", name, 47, "-.") }

// CheckNodeName says whether name is a valid node name (letters, digits,
// "_", "-" and ".", at most 47 characters), with ErrInvalidArgument if not.
func CheckNodeName(name string) error { return validNodeName(name) }

func validLIFName(name string) error { return validIdent("LIF", name, 63, "-.") }

// validVolumeName: letters, digits and "_", at most 203 characters, as
// ONTAP's FlexVol names.
func validVolumeName(name string) error { return validIdent("volume", name, 203, "") }

// validQtreeName: one path component, at most 64 characters, not "." or
// ".." or the snapshot directory, no control characters.
func validQtreeName(name string) error {
	if err := validComponent("qtree", name, 64); err != nil {
		return err
	}
	if strings.HasPrefix(name, ".") {
		return errf(ErrInvalidArgument, "qtree name %q must not begin with \".\"", name)
	}
	return nil
}

// ValidateSnapshotName checks a snapshot copy name: 1 to 240 bytes of
// valid UTF-8, no "/", no control or space characters, not beginning with
// ".".
func ValidateSnapshotName(name string) error {
	if err := validComponent("Snapshot copy", name, 240); err != nil {
		return err
	}
	if strings.HasPrefix(name, ".") {
		return errf(ErrInvalidArgument, "Snapshot copy name %q must not begin with \".\"", name)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || r == ',' || r == '\\' || r == '*' || r == '?' {
			return errf(ErrInvalidArgument, "Snapshot copy name %q contains the invalid character %q", name, r)
		}
	}
	return nil
}

func validComponent(kind, name string, max int) error {
	if name == "" {
		return errf(ErrInvalidArgument, "%s name must not be empty", kind)
	}
	if len(name) > max {
		return errf(ErrInvalidArgument, "%s name is longer than %d characters", kind, max)
	}
	if !utf8.ValidString(name) {
		return errf(ErrInvalidArgument, "%s name %q is not valid UTF-8", kind, name)
	}
	if name == "." || name == ".." {
		return errf(ErrInvalidArgument, "%s name %q is not allowed", kind, name)
	}
	for _, r := range name {
		if r == '/' || r == 0 || unicode.IsControl(r) {
			return errf(ErrInvalidArgument, "%s name %q contains the invalid character %q", kind, name, r)
		}
	}
	return nil
}
