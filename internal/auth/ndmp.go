package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// NDMPPasswordLength is the length of a generated NDMP password.
const NDMPPasswordLength = 16

const ndmpAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// deriveNDMP computes the NDMP password of a user from the cluster secret
// and the user's current password hash: HMAC-SHA256 over a label, the SVM,
// the user name and the hash, read as a stream of bytes that are mapped to
// letters and digits without bias (bytes >= 248 are skipped).
func deriveNDMP(secret []byte, svm, user, hash string) string {
	out := make([]byte, 0, NDMPPasswordLength)
	for block := uint32(0); len(out) < NDMPPasswordLength; block++ {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("tapestry ndmp password v1\x00"))
		for _, part := range []string{svm, user, hash} {
			var n [4]byte
			binary.BigEndian.PutUint32(n[:], uint32(len(part)))
			m.Write(n[:])
			m.Write([]byte(part))
		}
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], block)
		m.Write(b[:])
		for _, c := range m.Sum(nil) {
			if c < 248 && len(out) < NDMPPasswordLength {
				out = append(out, ndmpAlphabet[int(c)%len(ndmpAlphabet)])
			}
		}
	}
	return string(out)
}

func cannotGetPassword(user string) error {
	return errf(ErrNoPassword, "show failed: Cannot get password for user '%s'", user)
}

// accountLocked is the refusal of a request by (or for) a locked user.
func accountLocked(svm, name string) error {
	return errf(ErrLocked, "the account of user %q in Vserver %q is locked", name, svm)
}

// ndmpPassword reads the user and the secret (making the secret when there
// is none yet) and derives the NDMP password.
func (s *Service) ndmpPassword(ctx context.Context, svm, name string, refuseLocked bool) (string, error) {
	var u userRecord
	var sec []byte
	read := func(tx catalog.Tx) error {
		var err error
		if u, err = getUser(tx, svm, name); err != nil {
			return err
		}
		sec, err = secret(tx)
		return err
	}
	if err := s.store.View(ctx, read); err != nil {
		return "", err
	}
	if sec == nil {
		if err := s.store.Update(ctx, read); err != nil {
			return "", err
		}
	}
	if u.Hash == "" {
		return "", cannotGetPassword(name)
	}
	if refuseLocked && u.Locked {
		return "", accountLocked(svm, name)
	}
	return deriveNDMP(sec, svm, name, u.Hash), nil
}

// GenerateNDMPPassword returns the NDMP password of user name of svm
// (vserver services ndmp generate-password, N4): 16 letters and digits,
// the same on every call until the user's login password changes. A user
// without a login password gets the error
//
//	show failed: Cannot get password for user '<username>'
//
// (wrapping ErrNoPassword), which the command line prints after "Error: ".
func (s *Service) GenerateNDMPPassword(ctx context.Context, svm, name string) (string, error) {
	p, err := s.ndmpPassword(ctx, svm, name, false)
	if err != nil {
		return "", fmt.Errorf("generate NDMP password: %w", err)
	}
	return p, nil
}

// NDMPPassword returns the current NDMP password of user name of svm for
// the NDMP server, which needs it in clear to check an MD5 challenge
// response (N3). svm is the SVM that owns the LIF the session came in on:
// cluster LIFs belong to the admin SVM, whose users are the cluster users.
// Locked users are refused with ErrLocked, users without a password with
// ErrNoPassword.
func (s *Service) NDMPPassword(ctx context.Context, svm, name string) (string, error) {
	p, err := s.ndmpPassword(ctx, svm, name, true)
	if err != nil {
		return "", fmt.Errorf("NDMP password: %w", err)
	}
	return p, nil
}

// CheckNDMPPassword checks a cleartext NDMP password (NDMP text
// authentication) in constant time; a wrong one gives ErrAuthFailed.
func (s *Service) CheckNDMPPassword(ctx context.Context, svm, name, password string) error {
	want, err := s.NDMPPassword(ctx, svm, name)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(password)) != 1 {
		return errf(ErrAuthFailed, "NDMP authentication failed for user %q in Vserver %q", name, svm)
	}
	return nil
}

// LIF roles as CanUseNDMP takes them (the strings of storage.LIFRole).
const (
	LIFNodeMgmt     = "node-mgmt"
	LIFClusterMgmt  = "cluster-mgmt"
	LIFIntercluster = "intercluster"
	LIFData         = "data"
)

// CanUseNDMP applies N4's rules to user name of svm opening an NDMP
// session on a LIF of role lifRole owned by svm. On node-management,
// cluster-management and intercluster LIFs (which belong to the admin SVM)
// cluster users with role admin or backup may; on an SVM's data LIFs that
// SVM's users with role vsadmin or vsadmin-backup may. A custom role of the
// same scope may when it grants the "vserver services ndmp" command
// directory at a level other than none. Other users are refused with
// ErrDenied, locked ones with ErrLocked.
func (s *Service) CanUseNDMP(ctx context.Context, svm, name, lifRole string) error {
	var cluster bool
	switch lifRole {
	case LIFNodeMgmt, LIFClusterMgmt, LIFIntercluster:
		cluster = true
	case LIFData:
	default:
		return errf(ErrInvalidArgument, "%q is not a LIF role", lifRole)
	}
	if cluster != (svm == s.opts.AdminSVM) {
		if cluster {
			return errf(ErrInvalidArgument, "%s LIFs belong to the admin Vserver %q, not to %q", lifRole, s.opts.AdminSVM, svm)
		}
		return errf(ErrDenied, "the admin Vserver %q has no data LIFs for NDMP", svm)
	}
	var u userRecord
	var r Role
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		var err error
		if u, err = getUser(tx, svm, name); err != nil {
			return err
		}
		r, err = s.lookupRole(tx, svm, u.Role)
		return err
	})
	if err != nil {
		return fmt.Errorf("NDMP access: %w", err)
	}
	if u.Locked {
		return accountLocked(svm, name)
	}
	allowed := []string{RoleVsadmin, RoleVsadminBackup}
	if cluster {
		allowed = []string{RoleAdmin, RoleBackup}
	}
	if r.Builtin && slices.Contains(allowed, r.Name) || !r.Builtin && r.AccessFor(NDMPDir) != AccessNone {
		return nil
	}
	return errf(ErrDenied, "user %q with role %q cannot use NDMP on %s LIFs of Vserver %q", name, r.Name, lifRole, svm)
}

// DefaultNodeNDMPUser is the node-scope NDMP user until it is changed.
const DefaultNodeNDMPUser = "root"

// NodeNDMPPasswordMax is the longest node-scope NDMP password: NDMP's MD5
// digest has room for 32 bytes of password.
const NodeNDMPPasswordMax = 32

// NodeNDMP is the node-scope NDMP account of a node (N3).
type NodeNDMP struct {
	Node string `json:"node"`
	User string `json:"user-id"`
	// PasswordSet is false until system services ndmp password has run.
	PasswordSet bool      `json:"password-set"`
	ChangedAt   time.Time `json:"password-change-time,omitzero"`
}

// nodeRecord is the catalog record. The password is kept in clear because
// MD5 challenge authentication needs it; the catalog file is readable by
// root only.
type nodeRecord struct {
	NodeNDMP
	Password string `json:"password,omitempty"`
}

func nodeKey(node string) string { return catalog.Key(ns, prefixNodeN, node) }

func getNodeRecord(tx catalog.Tx, node string) (nodeRecord, error) {
	r, err := catalog.GetJSON[nodeRecord](tx, nodeKey(node))
	if errors.Is(err, catalog.ErrNotFound) {
		return nodeRecord{NodeNDMP: NodeNDMP{Node: node, User: DefaultNodeNDMPUser}}, nil
	}
	return r, err
}

// NodeNDMPAccount returns the node-scope NDMP account of node (user root
// without a password until configured).
func (s *Service) NodeNDMPAccount(ctx context.Context, node string) (NodeNDMP, error) {
	var r nodeRecord
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		var err error
		r, err = getNodeRecord(tx, node)
		return err
	})
	return r.NodeNDMP, err
}

// SetNodeNDMPUser changes the node-scope NDMP user of node (system services
// ndmp modify -user-id). The password stays as it was.
func (s *Service) SetNodeNDMPUser(ctx context.Context, node, user string) error {
	if err := validUserName(user); err != nil {
		return err
	}
	return s.updateNode(ctx, node, func(r *nodeRecord) { r.User = user })
}

// SetNodeNDMPPassword sets the node-scope NDMP password of node (system
// services ndmp password): 8 to 32 characters.
func (s *Service) SetNodeNDMPPassword(ctx context.Context, node, password string) error {
	if len(password) < MinPasswordLength || len(password) > NodeNDMPPasswordMax {
		return errf(ErrInvalidArgument, "the NDMP password must have %d to %d characters", MinPasswordLength, NodeNDMPPasswordMax)
	}
	for _, c := range []byte(password) {
		if c < 0x20 || c >= 0x7f {
			return errf(ErrInvalidArgument, "the NDMP password must consist of printable ASCII characters")
		}
	}
	return s.updateNode(ctx, node, func(r *nodeRecord) {
		r.Password, r.PasswordSet, r.ChangedAt = password, true, s.now()
	})
}

func (s *Service) updateNode(ctx context.Context, node string, fn func(*nodeRecord)) error {
	if node == "" {
		return errf(ErrInvalidArgument, "a node name is required")
	}
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		r, err := getNodeRecord(tx, node)
		if err != nil {
			return err
		}
		fn(&r)
		return catalog.PutJSON(tx, nodeKey(node), r)
	})
	if err != nil {
		return fmt.Errorf("node NDMP account of %q: %w", node, err)
	}
	return nil
}

// NodeNDMPPassword returns the node-scope NDMP password for user on node,
// for checking an MD5 challenge response. It fails with ErrNoPassword
// until the password has been set, and with ErrAuthFailed for another user
// name.
func (s *Service) NodeNDMPPassword(ctx context.Context, node, user string) (string, error) {
	var r nodeRecord
	err := s.store.View(ctx, func(tx catalog.Tx) error {
		var err error
		r, err = getNodeRecord(tx, node)
		return err
	})
	if err != nil {
		return "", err
	}
	if !r.PasswordSet {
		return "", errf(ErrNoPassword, "the NDMP password of node %q has not been set; set it with \"system services ndmp password\" before using NDMP", node)
	}
	if subtle.ConstantTimeCompare([]byte(user), []byte(r.User)) != 1 {
		return "", errf(ErrAuthFailed, "NDMP authentication failed for user %q on node %q", user, node)
	}
	return r.Password, nil
}

// CheckNodeNDMP checks a node-scope NDMP user and cleartext password (text
// authentication) in constant time.
func (s *Service) CheckNodeNDMP(ctx context.Context, node, user, password string) error {
	want, err := s.NodeNDMPPassword(ctx, node, user)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(password)) != 1 {
		return errf(ErrAuthFailed, "NDMP authentication failed for user %q on node %q", user, node)
	}
	return nil
}
