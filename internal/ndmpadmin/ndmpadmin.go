// Package ndmpadmin adapts the NDMP server (internal/server) to the admin
// API (admin.NDMPService): it turns the server's sessions and settings into
// the admin package's wire types and back. The daemon wires it in, so that
// the admin package and the command line that links it do not link the NDMP
// server.
package ndmpadmin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/server"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// Service is the NDMP server srv, with its settings in store, as an
// admin.NDMPService.
type Service struct {
	srv   *server.Server
	store catalog.Store
}

var _ admin.NDMPService = (*Service)(nil)

// New returns srv, whose settings are in store, as an admin.NDMPService.
func New(srv *server.Server, store catalog.Store) *Service {
	return &Service{srv: srv, store: store}
}

// Serving reports whether the server listens on any address.
func (s *Service) Serving() bool { return len(s.srv.Addrs()) > 0 }

// Sessions lists the running sessions, oldest first.
func (s *Service) Sessions() []admin.NDMPSession {
	all := s.srv.Sessions()
	out := make([]admin.NDMPSession, len(all))
	for i, si := range all {
		out[i] = session(si)
	}
	return out
}

// Session returns one session.
func (s *Service) Session(id uint64) (admin.NDMPSession, error) {
	si, err := s.srv.Session(id)
	if err != nil {
		return admin.NDMPSession{}, notActive(err)
	}
	return session(si), nil
}

// Kill ends a session.
func (s *Service) Kill(id uint64) error { return notActive(s.srv.Kill(id)) }

// SetSessionLog switches a session's protocol log.
func (s *Service) SetSessionLog(id uint64, on bool) error {
	return notActive(s.srv.SetSessionLog(id, on))
}

// notActive makes the server's ErrSessionNotActive the admin API's.
func notActive(err error) error {
	if errors.Is(err, server.ErrSessionNotActive) {
		return fmt.Errorf("%w: %w", admin.ErrSessionNotActive, err)
	}
	return err
}

// invalid makes the server's ErrInvalidSettings an
// admin.InvalidSettingsError.
func invalid(err error) error {
	if errors.Is(err, server.ErrInvalidSettings) {
		return &admin.InvalidSettingsError{Err: err}
	}
	return err
}

func session(si server.SessionInfo) admin.NDMPSession {
	return admin.NDMPSession{
		ID: si.ID, Node: si.Node, SVM: si.SVM, LIF: si.LIF, LIFRole: si.LIFRole,
		ClientAddr: si.ClientAddr, ServerAddr: si.ServerAddr, Secure: si.Secure, NodeScope: si.NodeScope,
		User: si.User, AuthType: si.AuthType, Started: si.Started, Tape: si.Tape, SCSI: si.SCSI,
		DataState: si.DataState, DataOp: si.DataOp, DataBytes: si.DataBytes,
		MoverState: si.MoverState, MoverMode: si.MoverMode, MoverBytes: si.MoverBytes,
		FHQueueDepth: si.FHQueueDepth, FHStalls: si.FHStalls, Extensions: si.Extensions,
		OpStarted: si.OpStarted, Phase: si.Phase, Files: si.Files, FilesTotal: si.FilesTotal,
	}
}

// SVMSettings returns an SVM's settings, with its type's default preferred
// interface roles when none are set.
func (s *Service) SVMSettings(ctx context.Context, svm string, adminSVM bool) (admin.NDMPSVMSettings, error) {
	set, err := server.LoadSVMSettings(ctx, s.store, svm)
	if err != nil {
		return admin.NDMPSVMSettings{}, err
	}
	return svmSettings(svm, adminSVM, set), nil
}

// ModifySVMSettings applies the non-nil fields of in (whose roles the admin
// API has checked).
func (s *Service) ModifySVMSettings(ctx context.Context, svm string, adminSVM bool, in admin.NDMPSVMModify) (admin.NDMPSVMSettings, error) {
	var roles []storage.LIFRole
	if in.PreferredInterfaceRole != nil {
		roles = []storage.LIFRole{}
		for _, name := range *in.PreferredInterfaceRole {
			role, err := storage.ParseLIFRole(name)
			if err != nil {
				return admin.NDMPSVMSettings{}, &admin.InvalidSettingsError{Err: err}
			}
			roles = append(roles, role)
		}
	}
	set, err := server.ModifySVMSettings(ctx, s.store, svm, func(st *server.SVMSettings) error {
		setIf(&st.Enabled, in.Enabled)
		setIf(&st.AuthTypes, in.AuthTypes)
		setIf(&st.SecureControlConnection, in.SecureControlConnection)
		setIf(&st.DataPortRange, in.DataPortRange)
		if roles != nil {
			st.PreferredInterfaceRole = roles
		}
		setIf(&st.DebugEnable, in.DebugEnable)
		setIf(&st.DebugFilter, in.DebugFilter)
		setIf(&st.ExtensionsEnabled, in.ExtensionsEnabled)
		setIf(&st.BackupLogEnable, in.BackupLogEnable)
		setIf(&st.RestoreUIDs, in.RestoreUIDs)
		setIf(&st.RestoreGIDs, in.RestoreGIDs)
		setIf(&st.RestoreDefaultUID, in.RestoreDefaultUID)
		setIf(&st.RestoreDefaultGID, in.RestoreDefaultGID)
		setIf(&st.RestoreAnyOwner, in.RestoreAnyOwner)
		setIf(&st.DataConnectAllow, in.DataConnectAllow)
		return nil
	})
	if err != nil {
		return admin.NDMPSVMSettings{}, invalid(err)
	}
	return svmSettings(svm, adminSVM, set), nil
}

func svmSettings(svm string, adminSVM bool, set server.SVMSettings) admin.NDMPSVMSettings {
	if len(set.PreferredInterfaceRole) == 0 {
		set.PreferredInterfaceRole = server.DefaultPreferredRoles(adminSVM)
	}
	out := admin.NDMPSVMSettings{
		SVM: svm, Enabled: set.Enabled, AuthTypes: set.AuthTypes, SecureControlConnection: set.SecureControlConnection,
		DataPortRange: set.DataPortRange, PreferredInterfaceRole: set.PreferredInterfaceRole,
		DebugEnable: set.DebugEnable, DebugFilter: set.DebugFilter,
		ExtensionsEnabled: set.ExtensionsEnabled, BackupLogEnable: set.BackupLogEnable,
		RestoreUIDs: set.RestoreUIDs, RestoreGIDs: set.RestoreGIDs, RestoreAnyOwner: set.RestoreAnyOwner,
		DataConnectAllow: set.DataConnectAllow,
	}
	out.RestoreDefaultUID, out.RestoreDefaultGID = set.RestoreOwner()
	return out
}

// NodeSettings returns a node's settings.
func (s *Service) NodeSettings(ctx context.Context, node string) (admin.NDMPNodeOptions, error) {
	set, err := server.LoadNodeSettings(ctx, s.store, node)
	if err != nil {
		return admin.NDMPNodeOptions{}, err
	}
	return nodeOptions(set), nil
}

// ModifyNodeSettings applies the non-nil settings of in.
func (s *Service) ModifyNodeSettings(ctx context.Context, node string, in admin.NDMPNodeModify) error {
	_, err := server.ModifyNodeSettings(ctx, s.store, node, func(st *server.NodeSettings) error {
		applyNode(st, in)
		return nil
	})
	return invalid(err)
}

// applyNode sets the non-nil settings of in in st.
func applyNode(st *server.NodeSettings, in admin.NDMPNodeModify) {
	setIf(&st.Enabled, in.Enabled)
	setIf(&st.NodeScopeMode, in.NodeScopeMode)
	setIf(&st.Plaintext, in.Plaintext)
	setIf(&st.DataPortRange, in.DataPortRange)
	setIf(&st.DebugEnable, in.DebugEnable)
	setIf(&st.AuthTimeout, in.AuthTimeout)
	setIf(&st.MaxUnauthenticated, in.MaxUnauthenticated)
	setIf(&st.MaxUnauthenticatedPerAddress, in.MaxUnauthenticatedPerAddress)
}

// CheckNodeModify checks the settings of in on the defaults.
func (s *Service) CheckNodeModify(in admin.NDMPNodeModify) error {
	trial := server.DefaultNodeSettings()
	applyNode(&trial, in)
	return invalid(trial.Validate())
}

// ReleaseOrphans frees the devices of sessions that no longer exist.
func (s *Service) ReleaseOrphans() int { return s.srv.ReleaseOrphans() }

func nodeOptions(set server.NodeSettings) admin.NDMPNodeOptions {
	total, perAddr := set.UnauthenticatedLimits()
	return admin.NDMPNodeOptions{Enabled: set.Enabled, NodeScopeMode: set.NodeScopeMode, Plaintext: set.Plaintext,
		DataPortRange: set.DataPortRange, DebugEnable: set.DebugEnable, LogSessions: set.LogSessions,
		AuthTimeout: int(set.AuthDeadline() / time.Second), MaxUnauthenticated: total, MaxUnauthenticatedPerAddress: perAddr}
}

// CheckPortRange checks a -data-port-range value.
func (s *Service) CheckPortRange(r string) error {
	_, _, err := server.ParsePortRange(r)
	return invalid(err)
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
