// Package auth keeps Tapestry's users, roles and passwords: the role-based
// access control that the command line, the admin API and the NDMP server
// (in SVM scope) share, and the node-scope NDMP credentials.
//
// A user belongs to one SVM, either a data SVM or the cluster's admin SVM
// (cluster users), and has one role. The built-in roles are admin, backup
// and readonly for cluster users and vsadmin, vsadmin-backup and
// vsadmin-readonly for SVM users; custom roles are lists of command
// directories with an access level (all, readonly, none), as made by
//
//	security login role create -role R -cmddirname "vserver services ndmp" -access all
//
// Authorize decides by the longest command directory of the role that is a
// prefix of the command.
//
// Login passwords are stored as argon2id hashes. The NDMP password of a
// user (vserver services ndmp generate-password) is derived from a secret
// of the cluster and the user's current password hash, so it stays the
// same until the login password changes and then stops working (N4).
//
// Everything is kept in a catalog.Store. Refused requests return an *Error
// wrapping one of the sentinel errors (ErrNotFound, ErrDenied, ...).
package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// Sentinel errors; every refusal wraps one of them.
var (
	// ErrNotFound: the user or role does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a user or role entry of that name already exists.
	ErrExists = errors.New("already exists")
	// ErrInvalidArgument: a malformed name, role, access level or password.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrAuthFailed: wrong user name or password.
	ErrAuthFailed = errors.New("authentication failed")
	// ErrLocked: the user account is locked.
	ErrLocked = errors.New("account locked")
	// ErrDenied: the user's role does not allow the request.
	ErrDenied = errors.New("not authorized")
	// ErrNoPassword: the user has no login password (or the node has no
	// NDMP password), so no NDMP password can be derived.
	ErrNoPassword = errors.New("password not set")
	// ErrInUse: the role is still assigned to users.
	ErrInUse = errors.New("in use")
)

// Error is a refused request: Kind is a sentinel error, Msg the message
// shown to the administrator.
type Error struct {
	Kind error
	Msg  string
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel kind.
func (e *Error) Unwrap() error { return e.Kind }

func errf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Message returns the administrator-facing message of err: the Msg of the
// first *Error in its chain, or err.Error().
func Message(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return err.Error()
}

// DefaultAdminSVM is the admin SVM's name when Options.AdminSVM is empty;
// it matches storage.DefaultClusterName.
const DefaultAdminSVM = "cluster1"

// Options configures a Service.
type Options struct {
	// AdminSVM is the name of the cluster's admin SVM (the cluster name);
	// its users are cluster users.
	AdminSVM string
	// CheckSVM, when set, is asked whether a data SVM exists before a user
	// or role is created in it (the daemon passes a function over
	// storage.Service.GetSVM).
	CheckSVM func(ctx context.Context, svm string) error
	// Hash sets the argon2id cost; the zero value means DefaultHashParams().
	Hash HashParams
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Service is the user and role store over one catalog. It is safe for
// concurrent use.
type Service struct {
	store catalog.Store
	opts  Options
	// dummyHash is verified against when the user does not exist, so that
	// an unknown user takes as long to refuse as a wrong password.
	dummyHash func() string
}

// New returns a Service over store.
func New(store catalog.Store, opts Options) *Service {
	if opts.AdminSVM == "" {
		opts.AdminSVM = DefaultAdminSVM
	}
	if opts.Hash == (HashParams{}) {
		opts.Hash = DefaultHashParams()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{store: store, opts: opts, dummyHash: sync.OnceValue(func() string {
		return HashPassword("tapestry-no-such-user-0", opts.Hash)
	})}
}

// AdminSVM returns the name of the admin SVM this Service was given.
func (s *Service) AdminSVM() string { return s.opts.AdminSVM }

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// Catalog key layout: everything lives below "auth/", for example
// "auth/user/<svm>/<name>" (parts escaped by catalog.Key).
const (
	ns          = "auth"
	prefixUser  = "user"
	prefixRole  = "role"
	prefixNodeN = "node-ndmp"
)

// secretKey is the key of the cluster secret.
func secretKey() string { return catalog.Key(ns, "secret") }

// secret returns the cluster secret used to derive NDMP passwords, making
// it in a writable transaction when there is none yet.
func secret(tx catalog.Tx) ([]byte, error) {
	b, err := tx.Get(secretKey())
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("auth: cluster secret has %d bytes, want 32", len(b))
		}
		return b, nil
	}
	if !errors.Is(err, catalog.ErrNotFound) {
		return nil, err
	}
	if !tx.Writable() {
		return nil, nil
	}
	b = make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	if err := tx.Put(secretKey(), b); err != nil {
		return nil, err
	}
	return b, nil
}
