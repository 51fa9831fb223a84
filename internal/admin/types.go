package admin

import (
	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// PrivilegeHeader carries the privilege level (admin or advanced) of a
// request.
const PrivilegeHeader = "X-Tapestry-Privilege"

// Privilege levels.
const (
	PrivAdmin    = "admin"
	PrivAdvanced = "advanced"
)

// ClusterInfo is the answer of GET /api/cluster.
type ClusterInfo struct {
	storage.Cluster
	Version string `json:"version"`
	// Node is the node that serves the API.
	Node  string         `json:"node"`
	Nodes []storage.Node `json:"nodes"`
}

// SVMCreate is the body of POST /api/svm/svms.
type SVMCreate struct {
	Name                string   `json:"vserver"`
	Comment             string   `json:"comment,omitempty"`
	AllowedProtocols    []string `json:"allowed-protocols,omitempty"`
	DisallowedProtocols []string `json:"disallowed-protocols,omitempty"`
}

// SVMModify is the body of PATCH /api/svm/svms/{name}; nil fields stay.
type SVMModify struct {
	// State "running" or "stopped" implements vserver start and stop.
	State               *string   `json:"state,omitempty"`
	Comment             *string   `json:"comment,omitempty"`
	AllowedProtocols    *[]string `json:"allowed-protocols,omitempty"`
	DisallowedProtocols *[]string `json:"disallowed-protocols,omitempty"`
}

// NFSModify is the body of PATCH /api/protocols/nfs/services/{svm}
// (vserver nfs modify).
type NFSModify struct {
	// V42SecLabel is -v4.2-seclabel: "enabled" or "disabled".
	V42SecLabel *string `json:"v4.2-seclabel,omitempty"`
}

// LIFCreate is the body of POST /api/network/ip/interfaces.
type LIFCreate struct {
	SVM      string `json:"vserver"`
	Name     string `json:"lif"`
	Role     string `json:"role"`
	Address  string `json:"address"`
	Netmask  string `json:"netmask,omitempty"`
	Port     int    `json:"port,omitempty"`
	HomeNode string `json:"home-node,omitempty"`
}

// VolumeCreate is the body of POST /api/storage/volumes.
type VolumeCreate struct {
	SVM              string `json:"vserver"`
	Name             string `json:"volume"`
	Path             string `json:"path"`
	Type             string `json:"type,omitempty"`
	State            string `json:"state,omitempty"`
	SecurityStyle    string `json:"security-style,omitempty"`
	SnapshotProvider string `json:"snapshot-provider,omitempty"`
	JunctionPath     string `json:"junction-path,omitempty"`
	Comment          string `json:"comment,omitempty"`
}

// VolumeModify is the body of PATCH /api/storage/volumes/{uuid}; nil fields
// stay. State implements volume online, offline and restrict.
type VolumeModify struct {
	State            *string `json:"state,omitempty"`
	Type             *string `json:"type,omitempty"`
	SecurityStyle    *string `json:"security-style,omitempty"`
	SnapshotProvider *string `json:"snapshot-provider,omitempty"`
	JunctionPath     *string `json:"junction-path,omitempty"`
	Comment          *string `json:"comment,omitempty"`
}

// QtreeCreate is the body of POST /api/storage/qtrees.
type QtreeCreate struct {
	SVM           string `json:"vserver"`
	Volume        string `json:"volume"`
	Name          string `json:"qtree"`
	SecurityStyle string `json:"security-style,omitempty"`
}

// QtreeModify is the body of PATCH /api/storage/qtrees/{volume-uuid}/{name}.
type QtreeModify struct {
	SecurityStyle string `json:"security-style"`
}

// RoleModify is the body of PATCH /api/security/roles/{svm}/{name}: the new
// access level of one command directory of the role.
type RoleModify struct {
	CmdDir string `json:"cmddirname"`
	Access string `json:"access"`
}

// SnapshotCreate is the body of POST /api/storage/volumes/{uuid}/snapshots.
type SnapshotCreate struct {
	Name string `json:"snapshot"`
}

// SnapshotLock is the body of POST /api/private/cli/volume/snapshot/lock and
// .../unlock.
type SnapshotLock struct {
	SVM      string `json:"vserver"`
	Volume   string `json:"volume"`
	Snapshot string `json:"snapshot"`
	Owner    string `json:"owner"`
}

// AccountCreate is the body of POST /api/security/accounts. An empty SVM
// means the admin SVM (a cluster user).
type AccountCreate struct {
	SVM      string `json:"vserver,omitempty"`
	Name     string `json:"user-or-group-name"`
	Role     string `json:"role"`
	Password string `json:"password,omitempty"`
}

// AccountModify is the body of PATCH /api/security/accounts/{svm}/{name}.
type AccountModify struct {
	Password *string `json:"password,omitempty"`
	Role     *string `json:"role,omitempty"`
	Locked   *bool   `json:"locked,omitempty"`
}

// RoleCreate is the body of POST /api/security/roles.
type RoleCreate struct {
	SVM    string `json:"vserver,omitempty"`
	Name   string `json:"role"`
	CmdDir string `json:"cmddirname"`
	Access string `json:"access"`
}

// NDMPPasswordRequest is the body of
// POST /api/private/cli/vserver/services/ndmp/generate-password.
type NDMPPasswordRequest struct {
	SVM  string `json:"vserver"`
	User string `json:"user"`
}

// NDMPPassword is its answer.
type NDMPPassword struct {
	SVM      string `json:"vserver"`
	User     string `json:"user"`
	Password string `json:"password"`
}

// OptionSet is the body of POST /api/private/cli/options.
type OptionSet struct {
	Name  string `json:"option-name"`
	Value string `json:"option-value"`
}

// Records is the envelope of every list answer, as in ONTAP's REST API.
type Records[T any] struct {
	Records    []T `json:"records"`
	NumRecords int `json:"num_records"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// ErrorInfo is the error of an ErrorBody.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Type aliases so that clients need not import storage and auth for the
// records they receive.
type (
	// SVM is a storage virtual machine record.
	SVM = storage.SVM
	// LIF is a logical interface record.
	LIF = storage.LIF
	// Volume is a volume record.
	Volume = storage.Volume
	// Qtree is a qtree record.
	Qtree = storage.Qtree
	// Snapshot is a snapshot copy record.
	Snapshot = storage.Snapshot
	// User is a login account record.
	User = auth.User
	// Role is a role record.
	Role = auth.Role
)
