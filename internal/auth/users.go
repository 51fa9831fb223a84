package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// User is a login account of an SVM (or, in the admin SVM, of the
// cluster).
type User struct {
	Name   string `json:"user-or-group-name"`
	SVM    string `json:"vserver"`
	Role   string `json:"role"`
	Locked bool   `json:"is-account-locked"`
	// HasPassword is false until a login password is set.
	HasPassword       bool      `json:"has-password"`
	PasswordChangedAt time.Time `json:"password-change-time,omitzero"`
	CreatedAt         time.Time `json:"create-time"`
}

// userRecord is what the catalog holds: the user and the password hash.
type userRecord struct {
	User
	Hash string `json:"password-hash,omitempty"`
}

// UserSpec describes a new user. Password may be empty: the user then has
// no login password (and no NDMP password) until SetPassword.
type UserSpec struct {
	SVM      string
	Name     string
	Role     string
	Password string
}

func userKey(svm, name string) string { return catalog.Key(ns, prefixUser, svm, name) }

func validUserName(name string) error {
	if name == "" || len(name) > 64 {
		return errf(ErrInvalidArgument, "user name %q must have 1 to 64 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' || r == '@') {
			return errf(ErrInvalidArgument, "user name %q contains the invalid character %q", name, r)
		}
	}
	return nil
}

func getUser(tx catalog.Tx, svm, name string) (userRecord, error) {
	u, err := catalog.GetJSON[userRecord](tx, userKey(svm, name))
	if errors.Is(err, catalog.ErrNotFound) {
		return u, errf(ErrNotFound, "user %q does not exist in Vserver %q", name, svm)
	}
	return u, err
}

// Bootstrap creates the cluster user "admin" with role admin and the given
// password when the catalog has no user at all, and reports whether it did.
// The daemon calls it on every start.
func (s *Service) Bootstrap(ctx context.Context, adminPassword string) (bool, error) {
	if err := CheckPasswordRules(adminPassword); err != nil {
		return false, fmt.Errorf("bootstrap: %w", err)
	}
	var created bool
	hash := HashPassword(adminPassword, s.opts.Hash)
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		created = false // a rerun finds what another process made meanwhile
		kvs, err := tx.List(catalog.Prefix(ns, prefixUser))
		if err != nil || len(kvs) > 0 {
			return err
		}
		if _, err := secret(tx); err != nil {
			return err
		}
		now := s.now()
		u := userRecord{User: User{Name: "admin", SVM: s.opts.AdminSVM, Role: RoleAdmin, HasPassword: true,
			PasswordChangedAt: now, CreatedAt: now}, Hash: hash}
		created = true
		return catalog.PutJSON(tx, userKey(u.SVM, u.Name), u)
	})
	if err != nil {
		return false, fmt.Errorf("bootstrap: %w", err)
	}
	return created, nil
}

// CreateUser creates a user (security login create). The role must be a
// built-in role of the SVM's scope or a custom role of the SVM.
func (s *Service) CreateUser(ctx context.Context, spec UserSpec) (User, error) {
	if err := validUserName(spec.Name); err != nil {
		return User{}, err
	}
	if err := s.checkSVM(ctx, spec.SVM); err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	var hash string
	if spec.Password != "" {
		if err := CheckPasswordRules(spec.Password); err != nil {
			return User{}, err
		}
		hash = HashPassword(spec.Password, s.opts.Hash)
	}
	now := s.now()
	u := userRecord{User: User{Name: spec.Name, SVM: spec.SVM, Role: spec.Role, HasPassword: hash != "", CreatedAt: now}, Hash: hash}
	if hash != "" {
		u.PasswordChangedAt = now
	}
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		if _, err := s.lookupRole(tx, spec.SVM, spec.Role); err != nil {
			return err
		}
		ok, err := catalog.Exists(tx, userKey(spec.SVM, spec.Name))
		if err != nil {
			return err
		}
		if ok {
			return errf(ErrExists, "user %q already exists in Vserver %q", spec.Name, spec.SVM)
		}
		if _, err := secret(tx); err != nil {
			return err
		}
		return catalog.PutJSON(tx, userKey(spec.SVM, spec.Name), u)
	})
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	return u.User, nil
}

// GetUser returns one user.
func (s *Service) GetUser(ctx context.Context, svm, name string) (User, error) {
	var u userRecord
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		var err error
		u, err = getUser(tx, svm, name)
		return err
	})
	return u.User, err
}

// ListUsers lists the users of svm, or of every SVM when svm is "", in
// SVM and name order.
func (s *Service) ListUsers(ctx context.Context, svm string) ([]User, error) {
	p := catalog.Prefix(ns, prefixUser)
	if svm != "" {
		p = catalog.Prefix(ns, prefixUser, svm)
	}
	var out []User
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		recs, err := catalog.ListJSON[userRecord](tx, p)
		for _, r := range recs {
			out = append(out, r.User)
		}
		return err
	})
	return out, err
}

func (s *Service) updateUser(ctx context.Context, what, svm, name string, fn func(tx catalog.Tx, u *userRecord) error) (User, error) {
	var u userRecord
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		var err error
		if u, err = getUser(tx, svm, name); err != nil {
			return err
		}
		if err := fn(tx, &u); err != nil {
			return err
		}
		return catalog.PutJSON(tx, userKey(svm, name), u)
	})
	if err != nil {
		return User{}, fmt.Errorf("%s: %w", what, err)
	}
	return u.User, nil
}

// SetUserRole gives a user another role (security login modify -role).
func (s *Service) SetUserRole(ctx context.Context, svm, name, role string) (User, error) {
	return s.updateUser(ctx, "modify user", svm, name, func(tx catalog.Tx, u *userRecord) error {
		if _, err := s.lookupRole(tx, svm, role); err != nil {
			return err
		}
		u.Role = role
		return nil
	})
}

// LockUser locks an account: it can neither log in nor use NDMP.
func (s *Service) LockUser(ctx context.Context, svm, name string) (User, error) {
	return s.updateUser(ctx, "lock user", svm, name, func(_ catalog.Tx, u *userRecord) error {
		if u.Name == "admin" && svm == s.opts.AdminSVM {
			return errf(ErrInvalidArgument, "the cluster user \"admin\" cannot be locked")
		}
		u.Locked = true
		return nil
	})
}

// UnlockUser unlocks an account.
func (s *Service) UnlockUser(ctx context.Context, svm, name string) (User, error) {
	return s.updateUser(ctx, "unlock user", svm, name, func(_ catalog.Tx, u *userRecord) error {
		u.Locked = false
		return nil
	})
}

// DeleteUser deletes a user. The last cluster user with role admin cannot
// be deleted.
func (s *Service) DeleteUser(ctx context.Context, svm, name string) error {
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		u, err := getUser(tx, svm, name)
		if err != nil {
			return err
		}
		if svm == s.opts.AdminSVM && u.Role == RoleAdmin {
			all, err := catalog.ListJSON[userRecord](tx, catalog.Prefix(ns, prefixUser, svm))
			if err != nil {
				return err
			}
			admins := 0
			for _, o := range all {
				if o.Role == RoleAdmin {
					admins++
				}
			}
			if admins <= 1 {
				return errf(ErrInUse, "user %q is the last cluster user with role admin", name)
			}
		}
		return tx.Delete(userKey(svm, name))
	})
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	return nil
}

// SetPassword sets a user's login password (security login password). The
// user's NDMP password changes with it.
func (s *Service) SetPassword(ctx context.Context, svm, name, password string) error {
	if err := CheckPasswordRules(password); err != nil {
		return err
	}
	hash := HashPassword(password, s.opts.Hash)
	_, err := s.updateUser(ctx, "set password", svm, name, func(_ catalog.Tx, u *userRecord) error {
		u.Hash, u.HasPassword, u.PasswordChangedAt = hash, true, s.now()
		return nil
	})
	return err
}

// CheckPassword verifies a user's login password in constant time and
// returns the user. An unknown user, a user without a password and a wrong
// password all give ErrAuthFailed; a locked account gives ErrLocked (only
// after a correct password).
func (s *Service) CheckPassword(ctx context.Context, svm, name, password string) (User, error) {
	var u userRecord
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		var err error
		u, err = getUser(tx, svm, name)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, err
	}
	h := u.Hash
	if h == "" {
		h = s.dummyHash()
	}
	ok, err := verifyPassword(h, password)
	if err != nil {
		return User{}, fmt.Errorf("check password of user %q in Vserver %q: %w", name, svm, err)
	}
	if !ok || u.Hash == "" {
		return User{}, errf(ErrAuthFailed, "authentication failed for user %q in Vserver %q", name, svm)
	}
	if u.Locked {
		return User{}, accountLocked(svm, name)
	}
	return u.User, nil
}

// AccessFor returns the access a user's role grants to command directory
// cmd.
func (s *Service) AccessFor(ctx context.Context, svm, name, cmd string) (Access, error) {
	dir, err := NormalizeCmdDir(cmd)
	if err != nil {
		return "", err
	}
	var r Role
	err = s.store.View(ctx, func(tx catalog.Tx) error {
		u, err := getUser(tx, svm, name)
		if err != nil {
			return err
		}
		if u.Locked {
			return accountLocked(svm, name)
		}
		r, err = s.lookupRole(tx, svm, u.Role)
		return err
	})
	if err != nil {
		return "", err
	}
	return r.AccessFor(dir), nil
}

// Authorize allows or refuses (ErrDenied) user name of svm running the
// command cmd (such as "volume delete" or "vserver services ndmp
// generate-password"); write is true for a command that changes
// something. The role entry with the longest command directory covering
// cmd decides: all allows everything, readonly only commands that do not
// write, none nothing. A locked user is refused with ErrLocked.
func (s *Service) Authorize(ctx context.Context, svm, name, cmd string, write bool) error {
	acc, err := s.AccessFor(ctx, svm, name, cmd)
	if err != nil {
		return fmt.Errorf("authorize: %w", err)
	}
	if acc == AccessAll || acc == AccessReadonly && !write {
		return nil
	}
	dir, _ := NormalizeCmdDir(cmd)
	return errf(ErrDenied, "user %q of Vserver %q is not authorized for %q", name, svm, dir)
}

// InScope refuses (ErrDenied) a user of userSVM acting on targetSVM unless
// the user is a cluster user or the SVMs are the same: SVM users manage
// only their own SVM.
func (s *Service) InScope(userSVM, targetSVM string) error {
	if userSVM == s.opts.AdminSVM || userSVM == targetSVM {
		return nil
	}
	return errf(ErrDenied, "users of Vserver %q cannot act on Vserver %q", userSVM, targetSVM)
}

// PurgeSVM deletes every user and custom role of a data SVM; the daemon
// calls it after deleting the SVM. The admin SVM is refused.
func (s *Service) PurgeSVM(ctx context.Context, svm string) error {
	if svm == "" || svm == s.opts.AdminSVM {
		return errf(ErrInvalidArgument, "the users of the admin Vserver cannot be purged")
	}
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		for _, p := range []string{catalog.Prefix(ns, prefixUser, svm), catalog.Prefix(ns, prefixRole, svm)} {
			kvs, err := tx.List(p)
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				if err := tx.Delete(kv.Key); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("purge Vserver %q: %w", svm, err)
	}
	return nil
}
