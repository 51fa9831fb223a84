package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// Access is the access level a role grants to a command directory.
type Access string

// Access levels.
const (
	AccessAll      Access = "all"
	AccessReadonly Access = "readonly"
	AccessNone     Access = "none"
)

// ParseAccess accepts all, readonly and none.
func ParseAccess(s string) (Access, error) {
	switch a := Access(strings.ToLower(strings.TrimSpace(s))); a {
	case AccessAll, AccessReadonly, AccessNone:
		return a, nil
	}
	return "", errf(ErrInvalidArgument, "%q is not a valid access level; use all, readonly or none", s)
}

// DefaultDir is the command directory that covers every command no other
// entry of the role names.
const DefaultDir = "DEFAULT"

// NDMPDir is the command directory that, granted at a level other than
// none, lets a custom role's users authenticate to NDMP (N4).
const NDMPDir = "vserver services ndmp"

// Built-in role names.
const (
	RoleAdmin           = "admin"
	RoleBackup          = "backup"
	RoleReadonly        = "readonly"
	RoleVsadmin         = "vsadmin"
	RoleVsadminBackup   = "vsadmin-backup"
	RoleVsadminReadonly = "vsadmin-readonly"
)

// RoleEntry is one command directory of a role with its access level.
type RoleEntry struct {
	CmdDir string `json:"cmddirname"`
	Access Access `json:"access"`
}

// Role is a built-in or custom role. Cluster roles (admin, backup,
// readonly and custom roles of the admin SVM) are for cluster users; SVM
// roles (vsadmin, vsadmin-backup, vsadmin-readonly and custom roles of a
// data SVM) for that SVM's users. SVM is empty for a built-in role.
type Role struct {
	Name    string      `json:"role"`
	SVM     string      `json:"vserver,omitempty"`
	Builtin bool        `json:"builtin"`
	Cluster bool        `json:"cluster-scope"`
	Entries []RoleEntry `json:"entries"`
}

var builtinRoles = []Role{
	{Name: RoleAdmin, Builtin: true, Cluster: true, Entries: []RoleEntry{{DefaultDir, AccessAll}}},
	{Name: RoleBackup, Builtin: true, Cluster: true, Entries: []RoleEntry{
		{DefaultDir, AccessReadonly},
		{"security login password", AccessAll},
		{"storage tape", AccessAll},
		{"system services ndmp", AccessAll},
		{"system smtape", AccessAll},
		{NDMPDir, AccessAll},
		{"volume snapshot", AccessAll},
	}},
	{Name: RoleReadonly, Builtin: true, Cluster: true, Entries: []RoleEntry{
		{DefaultDir, AccessReadonly},
		{"security login password", AccessAll},
	}},
	{Name: RoleVsadmin, Builtin: true, Entries: []RoleEntry{
		{DefaultDir, AccessAll},
		{"cluster", AccessNone},
		{"storage", AccessNone},
		{"system", AccessNone},
		{"vserver create", AccessNone},
		{"vserver delete", AccessNone},
	}},
	{Name: RoleVsadminBackup, Builtin: true, Entries: []RoleEntry{
		{DefaultDir, AccessNone},
		{"event log", AccessReadonly},
		{"network interface", AccessReadonly},
		{"security login password", AccessAll},
		{"volume", AccessReadonly},
		{"volume snapshot", AccessAll},
		{"vserver", AccessReadonly},
		{NDMPDir, AccessAll},
	}},
	{Name: RoleVsadminReadonly, Builtin: true, Entries: []RoleEntry{
		{DefaultDir, AccessReadonly},
		{"cluster", AccessNone},
		{"security login password", AccessAll},
		{"storage", AccessNone},
		{"system", AccessNone},
	}},
}

func builtinRole(name string) (Role, bool) {
	for _, r := range builtinRoles {
		if r.Name == name {
			r.Entries = slices.Clone(r.Entries)
			return r, true
		}
	}
	return Role{}, false
}

// NormalizeCmdDir lower-cases a command directory and collapses its white
// space ("DEFAULT" stays as it is). Words are letters, digits and "-".
func NormalizeCmdDir(dir string) (string, error) {
	f := strings.Fields(dir)
	if len(f) == 1 && f[0] == DefaultDir {
		return DefaultDir, nil
	}
	if len(f) == 0 {
		return "", errf(ErrInvalidArgument, "a command directory is required")
	}
	if len(f) > 12 {
		return "", errf(ErrInvalidArgument, "command directory %q has too many words", dir)
	}
	for i, w := range f {
		w = strings.ToLower(w)
		if len(w) > 64 {
			return "", errf(ErrInvalidArgument, "command directory %q has a word longer than 64 characters", dir)
		}
		for _, r := range w {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return "", errf(ErrInvalidArgument, "command directory %q contains the invalid character %q", dir, r)
			}
		}
		f[i] = w
	}
	return strings.Join(f, " "), nil
}

// covers reports whether entry directory dir covers command cmd: equal, or
// a prefix ending at a word boundary.
func covers(dir, cmd string) bool {
	return dir == cmd || strings.HasPrefix(cmd, dir+" ")
}

// AccessFor returns the access the role grants to command cmd (already
// normalized): the entry with the longest command directory that covers
// cmd, else the DEFAULT entry, else none.
func (r Role) AccessFor(cmd string) Access {
	best, acc := -1, AccessNone
	for _, e := range r.Entries {
		if e.CmdDir == DefaultDir {
			if best < 0 {
				acc = e.Access
			}
			continue
		}
		if covers(e.CmdDir, cmd) && len(e.CmdDir) > best {
			best, acc = len(e.CmdDir), e.Access
		}
	}
	return acc
}

func validRoleName(name string) error {
	if name == "" || len(name) > 40 {
		return errf(ErrInvalidArgument, "role name %q must have 1 to 40 characters", name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '.')
		if !ok {
			return errf(ErrInvalidArgument, "role name %q contains the invalid character %q", name, r)
		}
	}
	return nil
}

func roleKey(svm, name string) string { return catalog.Key(ns, prefixRole, svm, name) }

// lookupRole finds the role called name for users of svm: a built-in role
// of the right scope, or a custom role of svm.
func (s *Service) lookupRole(tx catalog.Tx, svm, name string) (Role, error) {
	if r, ok := builtinRole(name); ok {
		if r.Cluster != (svm == s.opts.AdminSVM) {
			scope := "data Vservers"
			if r.Cluster {
				scope = "the admin Vserver"
			}
			return Role{}, errf(ErrInvalidArgument, "role %q can only be used in %s", name, scope)
		}
		return r, nil
	}
	r, err := catalog.GetJSON[Role](tx, roleKey(svm, name))
	if errors.Is(err, catalog.ErrNotFound) {
		return Role{}, errf(ErrNotFound, "role %q does not exist in Vserver %q", name, svm)
	}
	return r, err
}

func (s *Service) checkSVM(ctx context.Context, svm string) error {
	if svm == "" {
		return errf(ErrInvalidArgument, "a Vserver is required")
	}
	if svm == s.opts.AdminSVM || s.opts.CheckSVM == nil {
		return nil
	}
	return s.opts.CheckSVM(ctx, svm)
}

// CreateRole adds the entry (cmdDir, access) to the custom role name of
// svm, creating the role when it has no entries yet (security login role
// create). Built-in role names are refused, and so is an entry the role
// already has.
func (s *Service) CreateRole(ctx context.Context, svm, name, cmdDir string, access Access) (Role, error) {
	dir, access, err := s.checkRoleEntryArgs(ctx, svm, name, cmdDir, access)
	if err != nil {
		return Role{}, fmt.Errorf("create role: %w", err)
	}
	var r Role
	err = s.store.Update(ctx, func(tx catalog.Tx) error {
		r, err = catalog.GetJSON[Role](tx, roleKey(svm, name))
		if errors.Is(err, catalog.ErrNotFound) {
			r, err = Role{Name: name, SVM: svm, Cluster: svm == s.opts.AdminSVM}, nil
		}
		if err != nil {
			return err
		}
		for _, e := range r.Entries {
			if e.CmdDir == dir {
				return errf(ErrExists, "role %q in Vserver %q already has command directory %q", name, svm, dir)
			}
		}
		r.Entries = append(r.Entries, RoleEntry{CmdDir: dir, Access: access})
		slices.SortFunc(r.Entries, func(a, b RoleEntry) int { return strings.Compare(a.CmdDir, b.CmdDir) })
		return catalog.PutJSON(tx, roleKey(svm, name), r)
	})
	if err != nil {
		return Role{}, fmt.Errorf("create role: %w", err)
	}
	return r, nil
}

// checkRoleEntryArgs is checkRoleArgs for a request that names one entry
// of the role: it also returns the normalized command directory and the
// parsed access level.
func (s *Service) checkRoleEntryArgs(ctx context.Context, svm, name, cmdDir string, access Access) (string, Access, error) {
	if err := s.checkRoleArgs(ctx, svm, name); err != nil {
		return "", "", err
	}
	dir, err := NormalizeCmdDir(cmdDir)
	if err != nil {
		return "", "", err
	}
	if access, err = ParseAccess(string(access)); err != nil {
		return "", "", err
	}
	return dir, access, nil
}

// checkRoleArgs refuses a malformed or built-in role name and an SVM that
// does not exist.
func (s *Service) checkRoleArgs(ctx context.Context, svm, name string) error {
	if err := validRoleName(name); err != nil {
		return err
	}
	if _, ok := builtinRole(name); ok {
		return errf(ErrInvalidArgument, "%q is a built-in role and cannot be changed", name)
	}
	return s.checkSVM(ctx, svm)
}

// ModifyRole changes the access level of an existing entry of a custom
// role (security login role modify).
func (s *Service) ModifyRole(ctx context.Context, svm, name, cmdDir string, access Access) (Role, error) {
	dir, access, err := s.checkRoleEntryArgs(ctx, svm, name, cmdDir, access)
	if err != nil {
		return Role{}, fmt.Errorf("modify role: %w", err)
	}
	var r Role
	err = s.store.Update(ctx, func(tx catalog.Tx) error {
		if r, err = s.lookupRole(tx, svm, name); err != nil {
			return err
		}
		for i, e := range r.Entries {
			if e.CmdDir == dir {
				r.Entries[i].Access = access
				return catalog.PutJSON(tx, roleKey(svm, name), r)
			}
		}
		return errf(ErrNotFound, "role %q in Vserver %q has no command directory %q", name, svm, dir)
	})
	if err != nil {
		return Role{}, fmt.Errorf("modify role: %w", err)
	}
	return r, nil
}

// DeleteRole removes the entry cmdDir of a custom role, or the whole role
// when cmdDir is "" (security login role delete). A role is removed only
// while no user has it.
func (s *Service) DeleteRole(ctx context.Context, svm, name, cmdDir string) error {
	if err := s.checkRoleArgs(ctx, svm, name); err != nil {
		return fmt.Errorf("delete role: %w", err)
	}
	dir := ""
	if cmdDir != "" {
		var err error
		if dir, err = NormalizeCmdDir(cmdDir); err != nil {
			return err
		}
	}
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		r, err := s.lookupRole(tx, svm, name)
		if err != nil {
			return err
		}
		if dir != "" {
			i := slices.IndexFunc(r.Entries, func(e RoleEntry) bool { return e.CmdDir == dir })
			if i < 0 {
				return errf(ErrNotFound, "role %q in Vserver %q has no command directory %q", name, svm, dir)
			}
			r.Entries = slices.Delete(r.Entries, i, i+1)
			if len(r.Entries) > 0 {
				return catalog.PutJSON(tx, roleKey(svm, name), r)
			}
		}
		users, err := catalog.ListJSON[userRecord](tx, catalog.Prefix(ns, prefixUser, svm))
		if err != nil {
			return err
		}
		for _, u := range users {
			if u.Role == name {
				return errf(ErrInUse, "role %q in Vserver %q is assigned to user %q", name, svm, u.Name)
			}
		}
		return tx.Delete(roleKey(svm, name))
	})
	if err != nil {
		return fmt.Errorf("delete role: %w", err)
	}
	return nil
}

// GetRole returns the role called name as users of svm see it: a built-in
// role of the SVM's scope or a custom role of svm.
func (s *Service) GetRole(ctx context.Context, svm, name string) (Role, error) {
	return catalog.Read(ctx, s.store, func(tx catalog.Tx) (Role, error) {
		return s.lookupRole(tx, svm, name)
	})
}

// ListRoles lists the roles usable in svm: the built-in roles of its scope,
// then its custom roles in name order.
func (s *Service) ListRoles(ctx context.Context, svm string) ([]Role, error) {
	var out []Role
	for _, r := range builtinRoles {
		if r.Cluster == (svm == s.opts.AdminSVM) {
			r.Entries = slices.Clone(r.Entries)
			out = append(out, r)
		}
	}
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		custom, err := catalog.ListJSON[Role](tx, catalog.Prefix(ns, prefixRole, svm))
		out = append(out, custom...)
		return err
	})
	return out, err
}
