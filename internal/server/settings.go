package server

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/engine/filedump"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// Authentication method names as ONTAP's -authtype option spells them (N3).
const (
	AuthPlaintext = "plaintext"
	AuthChallenge = "challenge"
)

// SVMSettings are the NDMP options of one SVM (vserver services ndmp
// show/modify, N2, N3, N7, N8, N9). The JSON names are ONTAP's field names.
type SVMSettings struct {
	// Enabled is the NDMP service state of the SVM (vserver services ndmp
	// on|off).
	Enabled bool `json:"enable"`
	// AuthTypes lists the accepted authentication methods, "plaintext"
	// and/or "challenge". Default: challenge only.
	AuthTypes []string `json:"authtype"`
	// SecureControlConnection accepts NDMP over TLS on port 30000 (N8).
	SecureControlConnection bool `json:"is-secure-control-connection-enabled"`
	// DataPortRange restricts the ports of data connection listeners:
	// "all" (any port) or "LOW-HIGH" within 1024-65535.
	DataPortRange string `json:"data-port-range"`
	// PreferredInterfaceRole lists, in order, the LIF roles a data
	// connection may use (N7). Empty means the default of the SVM's type
	// (DefaultPreferredRoles).
	PreferredInterfaceRole []storage.LIFRole `json:"preferred-interface-role"`
	// DebugEnable turns on debug logging of the SVM's sessions.
	DebugEnable bool `json:"debug-enable"`
	// DebugFilter selects what debug logging records ("all" by default).
	DebugFilter string `json:"debug-filter"`
	// ExtensionsEnabled offers the NetApp extensions (0x2050, 0x2051,
	// 0x2052) in CONFIG_GET_EXT_LIST (vserver services ndmp extensions
	// modify, N9).
	ExtensionsEnabled bool `json:"is-extension-enabled"`
	// BackupLogEnable writes backup event log lines for the SVM's dumps.
	BackupLogEnable bool `json:"backup-log-enable"`

	// The SVM's restore mapping (issue 10, docs/security.md): what a
	// restore asked for by the SVM's users (or by cluster users other than
	// admin and backup) may create in the SVM's volumes. Only cluster
	// administrators may change these fields.

	// RestoreUIDs lists the user ids ("1000-1999,2500") whose files keep
	// their owner; other files go to RestoreDefaultUID. Empty: none. 0
	// (root) is never allowed here.
	RestoreUIDs string `json:"restore-uid-range,omitempty"`
	// RestoreGIDs is the same for group ids.
	RestoreGIDs string `json:"restore-gid-range,omitempty"`
	// RestoreDefaultUID and RestoreDefaultGID own the files whose ids are
	// outside the ranges; 0 (unset) means 65534 (nobody, nogroup). Root
	// cannot be chosen.
	RestoreDefaultUID uint32 `json:"restore-default-uid,omitempty"`
	RestoreDefaultGID uint32 `json:"restore-default-gid,omitempty"`
	// RestoreAnyOwner keeps every owner of the image, root included: off
	// by default.
	RestoreAnyOwner bool `json:"restore-allow-any-owner,omitempty"`
	// DataConnectAllow lists the addresses or prefixes ("192.0.2.7",
	// "198.51.100.0/24") outside this cluster's LIFs that DATA_CONNECT and
	// MOVER_CONNECT of the SVM's users may dial. Empty: none.
	DataConnectAllow []string `json:"data-connect-allow,omitempty"`
}

// NobodyID is the user and group id of files a tenant's restore gives to
// nobody: the default of RestoreDefaultUID and RestoreDefaultGID.
const NobodyID = 65534

// RestoreOwner returns the default owner and group of the SVM's restores.
func (s SVMSettings) RestoreOwner() (uid, gid uint32) {
	uid, gid = s.RestoreDefaultUID, s.RestoreDefaultGID
	if uid == 0 {
		uid = NobodyID
	}
	if gid == 0 {
		gid = NobodyID
	}
	return uid, gid
}

// DefaultSVMSettings returns the settings an SVM has until modified.
func DefaultSVMSettings() SVMSettings {
	return SVMSettings{
		Enabled:           true,
		AuthTypes:         []string{AuthChallenge},
		DataPortRange:     "all",
		DebugFilter:       "all",
		ExtensionsEnabled: true,
		BackupLogEnable:   true,
	}
}

// NodeSettings are the node-scope NDMP options of a node (system services
// ndmp show/modify, node-scope-mode, N2, N3).
type NodeSettings struct {
	// Enabled is the node's NDMP service state (system services ndmp
	// on|off). On by default.
	Enabled bool `json:"enable"`
	// NodeScopeMode makes every session of the node use node-scope rules:
	// the node's NDMP account, both authentication methods and all of the
	// node's volumes and tape devices. Off by default.
	NodeScopeMode bool `json:"node-scope-mode"`
	// Plaintext allows plaintext authentication in node scope; challenge
	// is always allowed there and cannot be switched off (N3).
	Plaintext bool `json:"clear-text"`
	// DataPortRange is as in SVMSettings.
	DataPortRange string `json:"data-port-range"`
	// DebugEnable turns on debug logging of node-scope sessions.
	DebugEnable bool `json:"debug-enable"`
	// LogSessions names the sessions (by id) whose protocol log is on
	// (ndmp log start|stop).
	LogSessions []string `json:"log-sessions,omitempty"`
	// AuthTimeout is how many seconds a connection has to authenticate
	// before the server closes it (issue 10); 0 means DefaultAuthTimeout.
	AuthTimeout int `json:"auth-timeout,omitempty"`
	// MaxUnauthenticated caps the node's connections that have not
	// authenticated yet, apart from the session limit; when it is
	// reached the oldest of them is closed to make room for the new one.
	// 0 means DefaultMaxUnauthenticated.
	MaxUnauthenticated int `json:"max-unauthenticated,omitempty"`
	// MaxUnauthenticatedPerAddress caps the connections from one client
	// address that have not authenticated yet; a new one beyond it is
	// refused. 0 means DefaultMaxUnauthenticatedPerAddress.
	MaxUnauthenticatedPerAddress int `json:"max-unauthenticated-per-address,omitempty"`
}

// Defaults of the unauthenticated connection limits (issue 10).
const (
	DefaultAuthTimeout                  = 30 * time.Second
	DefaultMaxUnauthenticated           = 256
	DefaultMaxUnauthenticatedPerAddress = 32
)

// AuthDeadline returns the time a connection has to authenticate.
func (s NodeSettings) AuthDeadline() time.Duration {
	if s.AuthTimeout <= 0 {
		return DefaultAuthTimeout
	}
	return time.Duration(s.AuthTimeout) * time.Second
}

// UnauthenticatedLimits returns the caps on unauthenticated connections,
// in total and per client address.
func (s NodeSettings) UnauthenticatedLimits() (total, perAddr int) {
	total, perAddr = s.MaxUnauthenticated, s.MaxUnauthenticatedPerAddress
	if total <= 0 {
		total = DefaultMaxUnauthenticated
	}
	if perAddr <= 0 {
		perAddr = DefaultMaxUnauthenticatedPerAddress
	}
	return total, perAddr
}

// DefaultNodeSettings returns the settings a node has until modified.
func DefaultNodeSettings() NodeSettings {
	return NodeSettings{Enabled: true, Plaintext: true, DataPortRange: "all"}
}

// DefaultPreferredRoles returns ONTAP's default -preferred-interface-role:
// intercluster, cluster-mgmt, node-mgmt for the admin SVM and intercluster,
// data for data SVMs.
func DefaultPreferredRoles(adminSVM bool) []storage.LIFRole {
	if adminSVM {
		return []storage.LIFRole{storage.RoleIntercluster, storage.RoleClusterMgmt, storage.RoleNodeMgmt}
	}
	return []storage.LIFRole{storage.RoleIntercluster, storage.RoleData}
}

// ErrInvalidSettings is wrapped by the errors of settings that fail
// validation.
var ErrInvalidSettings = errors.New("invalid NDMP settings")

func svmKey(svm string) string   { return catalog.Key("ndmp", "svm", svm) }
func nodeKey(node string) string { return catalog.Key("ndmp", "node", node) }

// Validate checks s.
func (s SVMSettings) Validate() error {
	if len(s.AuthTypes) == 0 {
		return fmt.Errorf("%w: at least one authentication type is required", ErrInvalidSettings)
	}
	seen := map[string]bool{}
	for _, a := range s.AuthTypes {
		if a != AuthPlaintext && a != AuthChallenge {
			return fmt.Errorf("%w: authtype %q: must be plaintext or challenge", ErrInvalidSettings, a)
		}
		if seen[a] {
			return fmt.Errorf("%w: authtype %q listed twice", ErrInvalidSettings, a)
		}
		seen[a] = true
	}
	if _, _, err := ParsePortRange(s.DataPortRange); err != nil {
		return err
	}
	for _, r := range s.PreferredInterfaceRole {
		if _, err := storage.ParseLIFRole(string(r)); err != nil {
			return fmt.Errorf("%w: preferred-interface-role: %v", ErrInvalidSettings, err)
		}
	}
	return s.validateTenant()
}

// validateTenant checks the restore mapping and the data connection
// allow list.
func (s SVMSettings) validateTenant() error {
	for _, f := range []struct{ name, val string }{{"restore-uid-range", s.RestoreUIDs}, {"restore-gid-range", s.RestoreGIDs}} {
		r, err := filedump.ParseIDRanges(f.val)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidSettings, f.name, err)
		}
		if r.Contains(0) {
			return fmt.Errorf("%w: %s %q contains 0 (root); use -restore-allow-any-owner true to keep root's files", ErrInvalidSettings, f.name, f.val)
		}
	}
	if _, err := parseAllowList(s.DataConnectAllow); err != nil {
		return err
	}
	return nil
}

// parseAllowList parses DataConnectAllow: addresses or CIDR prefixes.
func parseAllowList(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, a := range list {
		if p, err := netip.ParsePrefix(a); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("%w: data-connect-allow: %q is not an IP address or prefix", ErrInvalidSettings, a)
		}
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

// Validate checks s.
func (s NodeSettings) Validate() error {
	if s.AuthTimeout < 0 || s.AuthTimeout > 3600 {
		return fmt.Errorf("%w: auth-timeout %d: must be 1-3600 seconds (0: default)", ErrInvalidSettings, s.AuthTimeout)
	}
	if s.MaxUnauthenticated < 0 || s.MaxUnauthenticated > 65536 {
		return fmt.Errorf("%w: max-unauthenticated %d: must be 1-65536 (0: default)", ErrInvalidSettings, s.MaxUnauthenticated)
	}
	if s.MaxUnauthenticatedPerAddress < 0 || s.MaxUnauthenticatedPerAddress > 65536 {
		return fmt.Errorf("%w: max-unauthenticated-per-address %d: must be 1-65536 (0: default)", ErrInvalidSettings, s.MaxUnauthenticatedPerAddress)
	}
	_, _, err := ParsePortRange(s.DataPortRange)
	return err
}

// ParsePortRange parses a data port range, "all" (returned as 0, 0) or
// "LOW-HIGH" with 1024 <= LOW <= HIGH <= 65535.
func ParsePortRange(s string) (lo, hi int, err error) {
	if s == "" || s == "all" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%w: data-port-range %q: must be \"all\" or LOW-HIGH", ErrInvalidSettings, s)
	}
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("%w: data-port-range %q: ports must be 1024-65535, low <= high", ErrInvalidSettings, s)
	}
	return lo, hi, nil
}

// LoadSVMSettings returns the NDMP settings of svm, the defaults when none
// were saved.
func LoadSVMSettings(ctx context.Context, st catalog.Store, svm string) (SVMSettings, error) {
	s, err := loadSettings(ctx, st, svmKey(svm), DefaultSVMSettings())
	if err != nil {
		return s, fmt.Errorf("load NDMP settings of %s: %w", svm, err)
	}
	return s, nil
}

// ModifySVMSettings applies fn to the settings of svm in one transaction
// and saves the result if it is valid; it returns the new settings.
func ModifySVMSettings(ctx context.Context, st catalog.Store, svm string, fn func(*SVMSettings) error) (SVMSettings, error) {
	s, err := modifySettings(ctx, st, svmKey(svm), DefaultSVMSettings(), fn)
	if err != nil {
		return s, fmt.Errorf("modify NDMP settings of %s: %w", svm, err)
	}
	return s, nil
}

// LoadNodeSettings returns the node-scope NDMP settings of node, the
// defaults when none were saved.
func LoadNodeSettings(ctx context.Context, st catalog.Store, node string) (NodeSettings, error) {
	s, err := loadSettings(ctx, st, nodeKey(node), DefaultNodeSettings())
	if err != nil {
		return s, fmt.Errorf("load NDMP settings of node %s: %w", node, err)
	}
	return s, nil
}

// ModifyNodeSettings applies fn to the settings of node in one transaction
// and saves the result if it is valid; it returns the new settings.
func ModifyNodeSettings(ctx context.Context, st catalog.Store, node string, fn func(*NodeSettings) error) (NodeSettings, error) {
	s, err := modifySettings(ctx, st, nodeKey(node), DefaultNodeSettings(), fn)
	if err != nil {
		return s, fmt.Errorf("modify NDMP settings of node %s: %w", node, err)
	}
	return s, nil
}

// settings is what SVMSettings and NodeSettings have in common.
type settings interface {
	SVMSettings | NodeSettings
	Validate() error
}

// loadSettings reads the settings stored under key, def when none are.
func loadSettings[T settings](ctx context.Context, st catalog.Store, key string, def T) (T, error) {
	s := def
	err := st.View(ctx, func(tx catalog.Tx) error {
		v, err := catalog.GetJSON[T](tx, key)
		if errors.Is(err, catalog.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		s = v
		return nil
	})
	return s, err
}

// modifySettings applies fn to the settings under key (def when none are
// stored) in one transaction and saves them if they are valid.
func modifySettings[T settings](ctx context.Context, st catalog.Store, key string, def T, fn func(*T) error) (T, error) {
	var out T
	err := st.Update(ctx, func(tx catalog.Tx) error {
		s, err := catalog.GetJSON[T](tx, key)
		if errors.Is(err, catalog.ErrNotFound) {
			s, err = def, nil
		}
		if err != nil {
			return err
		}
		if err := fn(&s); err != nil {
			return err
		}
		if err := s.Validate(); err != nil {
			return err
		}
		out = s
		return catalog.PutJSON(tx, key, s)
	})
	return out, err
}

// allowsAuth reports whether the session's scope accepts method m.
func allowsAuth(node bool, ns NodeSettings, ss SVMSettings, m string) bool {
	if node {
		return m == AuthChallenge || (m == AuthPlaintext && ns.Plaintext)
	}
	return slices.Contains(ss.AuthTypes, m)
}
