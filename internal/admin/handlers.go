package admin

import (
	"context"
	"net/http"
	"path/filepath"

	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/options"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

func (s *Server) getCluster(ctx context.Context, _ *request) (int, any, error) {
	c, err := s.cfg.Storage.Cluster(ctx)
	if err != nil {
		return 0, nil, err
	}
	nodes, err := s.cfg.Storage.Nodes(ctx)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ClusterInfo{Cluster: c, Version: s.cfg.Version, Node: s.node(), Nodes: nodes}, nil
}

// ---- SVMs

func (s *Server) listSVMs(ctx context.Context, r *request) (int, any, error) {
	all, err := s.cfg.Storage.ListSVMs(ctx)
	if err != nil {
		return 0, nil, err
	}
	name := r.URL.Query().Get("name")
	out := make([]storage.SVM, 0, len(all))
	for _, v := range all {
		if s.scope(r, v.Name) != nil {
			continue
		}
		if name == "" || v.Name == name {
			out = append(out, v)
		}
	}
	return http.StatusOK, records(out), nil
}

func (s *Server) createSVM(ctx context.Context, r *request, in SVMCreate) (int, any, error) {
	if err := s.scope(r, in.Name); err != nil {
		return 0, nil, err
	}
	if len(in.AllowedProtocols) > 0 && len(in.DisallowedProtocols) > 0 {
		return 0, nil, badf("specify either the allowed or the disallowed protocols, not both")
	}
	spec := storage.SVMSpec{Name: in.Name, Comment: in.Comment, DisallowedProtocols: in.DisallowedProtocols}
	if len(in.AllowedProtocols) > 0 {
		dis, err := complement(in.AllowedProtocols)
		if err != nil {
			return 0, nil, err
		}
		spec.DisallowedProtocols = dis
	}
	v, err := s.cfg.Storage.CreateSVM(ctx, spec)
	return reply(http.StatusCreated, v, err)
}

// complement returns the protocols not in allowed, refusing unknown names.
func complement(allowed []string) ([]string, error) {
	in := map[string]bool{}
	for _, p := range allowed {
		known := false
		for _, q := range storage.Protocols() {
			if p == q {
				known = true
			}
		}
		if !known {
			return nil, badf("command failed: %q is not a valid protocol", p)
		}
		in[p] = true
	}
	var out []string
	for _, q := range storage.Protocols() {
		if !in[q] {
			out = append(out, q)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

func (s *Server) modifySVM(ctx context.Context, r *request, in SVMModify) (int, any, error) {
	name := r.PathValue("name")
	if err := s.scope(r, name); err != nil {
		return 0, nil, err
	}
	ch := storage.SVMChange{Comment: in.Comment, AllowedProtocols: in.AllowedProtocols, DisallowedProtocols: in.DisallowedProtocols}
	modify := in.Comment != nil || in.AllowedProtocols != nil || in.DisallowedProtocols != nil
	if !modify && in.State == nil {
		return 0, nil, badf("command failed: nothing to modify")
	}
	if in.State != nil {
		var cmd string
		switch storage.SVMState(*in.State) {
		case storage.SVMRunning:
			cmd = "vserver start"
		case storage.SVMStopped:
			cmd = "vserver stop"
		default:
			return 0, nil, badf("command failed: %q is not a Vserver state; use running or stopped", *in.State)
		}
		if err := s.authorize(ctx, r, cmd, true); err != nil {
			return 0, nil, err
		}
	}
	if modify {
		if err := s.authorize(ctx, r, "vserver modify", true); err != nil {
			return 0, nil, err
		}
		if _, err := s.cfg.Storage.ModifySVM(ctx, name, ch); err != nil {
			return 0, nil, err
		}
	}
	if in.State != nil {
		var err error
		if storage.SVMState(*in.State) == storage.SVMRunning {
			err = s.cfg.Storage.StartSVM(ctx, name)
		} else {
			err = s.cfg.Storage.StopSVM(ctx, name)
		}
		if err != nil {
			return 0, nil, err
		}
	}
	v, err := s.cfg.Storage.GetSVM(ctx, name)
	return reply(http.StatusOK, v, err)
}

func (s *Server) deleteSVM(ctx context.Context, r *request) (int, any, error) {
	name := r.PathValue("name")
	if err := s.scope(r, name); err != nil {
		return 0, nil, err
	}
	if err := s.cfg.Storage.DeleteSVM(ctx, name); err != nil {
		return 0, nil, err
	}
	if err := s.cfg.Auth.PurgeSVM(ctx, name); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, nil, nil
}

// ---- LIFs

func (s *Server) listLIFs(ctx context.Context, r *request) (int, any, error) {
	q := r.URL.Query()
	svm, err := s.listScope(r, q.Get("svm.name"))
	if err != nil {
		return 0, nil, err
	}
	all, err := s.cfg.Storage.ListLIFs(ctx, svm)
	if err != nil {
		return 0, nil, err
	}
	out := byName(all, q.Get("name"), func(v storage.LIF) string { return v.Name })
	return http.StatusOK, records(out), nil
}

func (s *Server) createLIF(ctx context.Context, r *request, in LIFCreate) (int, any, error) {
	if err := s.scope(r, in.SVM); err != nil {
		return 0, nil, err
	}
	role, err := storage.ParseLIFRole(in.Role)
	if err != nil {
		return 0, nil, err
	}
	l, err := s.cfg.Storage.CreateLIF(ctx, storage.LIFSpec{
		Name: in.Name, SVM: in.SVM, Role: role, Address: in.Address, Port: in.Port, HomeNode: in.HomeNode,
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, l, nil
}

func (s *Server) deleteLIF(ctx context.Context, r *request) (int, any, error) {
	all, err := s.cfg.Storage.ListLIFs(ctx, "")
	if err != nil {
		return 0, nil, err
	}
	id := r.PathValue("uuid")
	for _, l := range all {
		if l.UUID == id {
			if err := s.scope(r, l.SVM); err != nil {
				return 0, nil, err
			}
			return http.StatusOK, nil, s.cfg.Storage.DeleteLIF(ctx, l.SVM, l.Name)
		}
	}
	return 0, nil, &storage.Error{Kind: storage.ErrNotFound, Msg: "no LIF has UUID " + id}
}

// ---- volumes

func (s *Server) volumeByUUID(ctx context.Context, r *request, id string) (storage.Volume, error) {
	all, err := s.cfg.Storage.ListVolumes(ctx, "")
	if err != nil {
		return storage.Volume{}, err
	}
	for _, v := range all {
		if v.UUID == id {
			return v, s.scope(r, v.SVM)
		}
	}
	return storage.Volume{}, &storage.Error{Kind: storage.ErrNotFound, Msg: "no volume has UUID " + id}
}

func (s *Server) listVolumes(ctx context.Context, r *request) (int, any, error) {
	q := r.URL.Query()
	svm, err := s.listScope(r, q.Get("svm.name"))
	if err != nil {
		return 0, nil, err
	}
	all, err := s.cfg.Storage.ListVolumes(ctx, svm)
	if err != nil {
		return 0, nil, err
	}
	out := byName(all, q.Get("name"), func(v storage.Volume) string { return v.Name })
	return http.StatusOK, records(out), nil
}

func (s *Server) createVolume(ctx context.Context, r *request, in VolumeCreate) (int, any, error) {
	if err := s.scope(r, in.SVM); err != nil {
		return 0, nil, err
	}
	if in.Path == "" {
		return 0, nil, badf("command failed: the -path parameter is required: the host directory of the volume")
	}
	if !filepath.IsAbs(in.Path) {
		return 0, nil, badf("command failed: host path %q must be an absolute path", in.Path)
	}
	spec := storage.VolumeSpec{
		Name: in.Name, SVM: in.SVM, HostPath: in.Path,
		Type:             storage.VolumeType(in.Type),
		State:            storage.VolumeState(in.State),
		SecurityStyle:    storage.SecurityStyle(in.SecurityStyle),
		SnapshotProvider: in.SnapshotProvider, JunctionPath: in.JunctionPath, Comment: in.Comment,
	}
	v, err := s.cfg.Storage.CreateVolume(ctx, spec)
	return reply(http.StatusCreated, v, err)
}

func (s *Server) modifyVolume(ctx context.Context, r *request, in VolumeModify) (int, any, error) {
	v, err := s.volumeByUUID(ctx, r, r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	ch := storage.VolumeChange{Comment: in.Comment, JunctionPath: in.JunctionPath, SnapshotProvider: in.SnapshotProvider}
	if in.Type != nil {
		t := storage.VolumeType(*in.Type)
		ch.Type = &t
	}
	if in.SecurityStyle != nil {
		st := storage.SecurityStyle(*in.SecurityStyle)
		ch.SecurityStyle = &st
	}
	modify := ch != (storage.VolumeChange{})
	if in.State == nil && !modify {
		return 0, nil, badf("command failed: nothing to modify")
	}
	// The state commands are separate command directories.
	if in.State != nil {
		var cmd string
		switch storage.VolumeState(*in.State) {
		case storage.StateOnline:
			cmd = "volume online"
		case storage.StateOffline:
			cmd = "volume offline"
		case storage.StateRestricted:
			cmd = "volume restrict"
		default:
			return 0, nil, badf("command failed: %q is not a volume state; use online, offline or restricted", *in.State)
		}
		if err := s.authorize(ctx, r, cmd, true); err != nil {
			return 0, nil, err
		}
	}
	if modify {
		if err := s.authorize(ctx, r, "volume modify", true); err != nil {
			return 0, nil, err
		}
		if v, err = s.cfg.Storage.ModifyVolume(ctx, v.SVM, v.Name, ch); err != nil {
			return 0, nil, err
		}
	}
	if in.State != nil {
		if v, err = s.cfg.Storage.SetVolumeState(ctx, v.SVM, v.Name, storage.VolumeState(*in.State)); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusOK, v, nil
}

func (s *Server) deleteVolume(ctx context.Context, r *request) (int, any, error) {
	v, err := s.volumeByUUID(ctx, r, r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, nil, s.cfg.Storage.DeleteVolume(ctx, v.SVM, v.Name)
}

// ---- snapshots

func (s *Server) listSnapshots(ctx context.Context, r *request) (int, any, error) {
	v, err := s.volumeByUUID(ctx, r, r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	all, err := s.cfg.Storage.ListSnapshots(ctx, v.SVM, v.Name)
	if err != nil {
		return 0, nil, err
	}
	out := byName(all, r.URL.Query().Get("name"), func(v storage.Snapshot) string { return v.Name })
	return http.StatusOK, records(out), nil
}

func (s *Server) createSnapshot(ctx context.Context, r *request, in SnapshotCreate) (int, any, error) {
	v, err := s.volumeByUUID(ctx, r, r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	p, err := s.cfg.Storage.CreateSnapshot(ctx, v.SVM, v.Name, in.Name)
	return reply(http.StatusCreated, p, err)
}

func (s *Server) deleteSnapshot(ctx context.Context, r *request) (int, any, error) {
	v, err := s.volumeByUUID(ctx, r, r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, nil, s.cfg.Storage.DeleteSnapshot(ctx, v.SVM, v.Name, r.PathValue("name"))
}

func (s *Server) lockSnapshot(lock bool) handlerFunc {
	return func(ctx context.Context, r *request) (int, any, error) {
		var in SnapshotLock
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		if err := s.scope(r, in.SVM); err != nil {
			return 0, nil, err
		}
		var p storage.Snapshot
		var err error
		if lock {
			// An administrator's lock stays until it is unlocked, across
			// restarts of the daemon.
			p, err = s.cfg.Storage.LockSnapshotWith(ctx, in.SVM, in.Volume, in.Snapshot, in.Owner, storage.LockOptions{Persistent: true})
		} else {
			p, err = s.cfg.Storage.UnlockSnapshot(ctx, in.SVM, in.Volume, in.Snapshot, in.Owner)
		}
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, p, nil
	}
}

// ---- qtrees

func (s *Server) listQtrees(ctx context.Context, r *request) (int, any, error) {
	q := r.URL.Query()
	svm, err := s.listScope(r, q.Get("svm.name"))
	if err != nil {
		return 0, nil, err
	}
	vols, err := s.cfg.Storage.ListVolumes(ctx, svm)
	if err != nil {
		return 0, nil, err
	}
	volName, name := q.Get("volume.name"), q.Get("name")
	out := []storage.Qtree{}
	for _, v := range vols {
		if volName != "" && v.Name != volName {
			continue
		}
		qs, err := s.cfg.Storage.ListQtrees(ctx, v.SVM, v.Name)
		if err != nil {
			return 0, nil, err
		}
		for _, qt := range qs {
			if name == "" || qt.Name == name {
				out = append(out, qt)
			}
		}
	}
	return http.StatusOK, records(out), nil
}

func (s *Server) createQtree(ctx context.Context, r *request, in QtreeCreate) (int, any, error) {
	if err := s.scope(r, in.SVM); err != nil {
		return 0, nil, err
	}
	q, err := s.cfg.Storage.CreateQtree(ctx, storage.QtreeSpec{
		Name: in.Name, SVM: in.SVM, Volume: in.Volume, SecurityStyle: storage.SecurityStyle(in.SecurityStyle),
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, q, nil
}

func (s *Server) modifyQtree(ctx context.Context, r *request, in QtreeModify) (int, any, error) {
	v, err := s.volumeByUUID(ctx, r, r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	q, err := s.cfg.Storage.ModifyQtree(ctx, v.SVM, v.Name, r.PathValue("name"), storage.SecurityStyle(in.SecurityStyle))
	return reply(http.StatusOK, q, err)
}

func (s *Server) deleteQtree(ctx context.Context, r *request) (int, any, error) {
	v, err := s.volumeByUUID(ctx, r, r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	force := r.URL.Query().Get("force") == "true"
	return http.StatusOK, nil, s.cfg.Storage.DeleteQtree(ctx, v.SVM, v.Name, r.PathValue("name"), force)
}

// ---- accounts and roles

// ownerOr returns svm, or the SVM of the requesting user when svm is empty
// (the admin SVM for cluster users).
func (s *Server) ownerOr(r *request, svm string) string {
	if svm == "" {
		return r.who.SVM
	}
	return svm
}

// scope refuses a request of an SVM user that touches another SVM.
func (s *Server) scope(r *request, target string) error {
	return s.cfg.Auth.InScope(r.who.SVM, target)
}

// listScope returns the SVM a list is limited to: the one asked for (which
// must be in scope), else none for cluster users and their own for SVM
// users.
func (s *Server) listScope(r *request, svm string) (string, error) {
	if svm != "" {
		return svm, s.scope(r, svm)
	}
	if r.who.SVM != s.cfg.Auth.AdminSVM() {
		return r.who.SVM, nil
	}
	return "", nil
}

func (s *Server) listAccounts(ctx context.Context, r *request) (int, any, error) {
	q := r.URL.Query()
	svm, err := s.listScope(r, q.Get("owner.name"))
	if err != nil {
		return 0, nil, err
	}
	all, err := s.cfg.Auth.ListUsers(ctx, svm)
	if err != nil {
		return 0, nil, err
	}
	out := byName(all, q.Get("name"), func(v auth.User) string { return v.Name })
	return http.StatusOK, records(out), nil
}

func (s *Server) createAccount(ctx context.Context, r *request, in AccountCreate) (int, any, error) {
	owner := s.ownerOr(r, in.SVM)
	if err := s.scope(r, owner); err != nil {
		return 0, nil, err
	}
	u, err := s.cfg.Auth.CreateUser(ctx, auth.UserSpec{SVM: owner, Name: in.Name, Role: in.Role, Password: in.Password})
	return reply(http.StatusCreated, u, err)
}

func (s *Server) modifyAccount(ctx context.Context, r *request, in AccountModify) (int, any, error) {
	svm, name := r.PathValue("svm"), r.PathValue("name")
	if err := s.scope(r, svm); err != nil {
		return 0, nil, err
	}
	if in.Password == nil && in.Role == nil && in.Locked == nil {
		return 0, nil, badf("command failed: nothing to modify")
	}
	self := svm == r.who.SVM && name == r.who.Name
	if in.Password != nil {
		// Every role may change its own password (security login
		// password); changing somebody else's also needs the right to
		// modify logins.
		if err := s.authorize(ctx, r, "security login password", true); err != nil {
			return 0, nil, err
		}
		if !self {
			if err := s.authorize(ctx, r, "security login modify", true); err != nil {
				return 0, nil, err
			}
		}
	}
	if in.Role != nil || in.Locked != nil {
		cmd := "security login modify"
		if in.Locked != nil {
			cmd = "security login lock"
			if !*in.Locked {
				cmd = "security login unlock"
			}
		}
		if err := s.authorize(ctx, r, cmd, true); err != nil {
			return 0, nil, err
		}
	}
	if _, err := s.cfg.Auth.GetUser(ctx, svm, name); err != nil {
		return 0, nil, err
	}
	if in.Password != nil {
		if err := s.cfg.Auth.SetPassword(ctx, svm, name, *in.Password); err != nil {
			return 0, nil, err
		}
	}
	if in.Role != nil {
		if _, err := s.cfg.Auth.SetUserRole(ctx, svm, name, *in.Role); err != nil {
			return 0, nil, err
		}
	}
	if in.Locked != nil {
		var err error
		if *in.Locked {
			_, err = s.cfg.Auth.LockUser(ctx, svm, name)
		} else {
			_, err = s.cfg.Auth.UnlockUser(ctx, svm, name)
		}
		if err != nil {
			return 0, nil, err
		}
	}
	u, err := s.cfg.Auth.GetUser(ctx, svm, name)
	return reply(http.StatusOK, u, err)
}

func (s *Server) deleteAccount(ctx context.Context, r *request) (int, any, error) {
	if err := s.scope(r, r.PathValue("svm")); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, nil, s.cfg.Auth.DeleteUser(ctx, r.PathValue("svm"), r.PathValue("name"))
}

func (s *Server) listRoles(ctx context.Context, r *request) (int, any, error) {
	q := r.URL.Query()
	owner, err := s.listScope(r, q.Get("owner.name"))
	if err != nil {
		return 0, nil, err
	}
	svms := []string{owner}
	if owner == "" {
		all, err := s.cfg.Storage.ListSVMs(ctx)
		if err != nil {
			return 0, nil, err
		}
		svms = svms[:0]
		for _, v := range all {
			svms = append(svms, v.Name)
		}
	}
	name := q.Get("name")
	out := []auth.Role{}
	for _, svm := range svms {
		roles, err := s.cfg.Auth.ListRoles(ctx, svm)
		if err != nil {
			return 0, nil, err
		}
		for _, ro := range roles {
			if name != "" && ro.Name != name {
				continue
			}
			if ro.SVM == "" {
				ro.SVM = svm
			}
			out = append(out, ro)
		}
	}
	return http.StatusOK, records(out), nil
}

func (s *Server) createRole(ctx context.Context, r *request, in RoleCreate) (int, any, error) {
	acc, err := auth.ParseAccess(in.Access)
	if err != nil {
		return 0, nil, err
	}
	owner := s.ownerOr(r, in.SVM)
	if err := s.scope(r, owner); err != nil {
		return 0, nil, err
	}
	ro, err := s.cfg.Auth.CreateRole(ctx, owner, in.Name, in.CmdDir, acc)
	return reply(http.StatusCreated, ro, err)
}

func (s *Server) modifyRole(ctx context.Context, r *request, in RoleModify) (int, any, error) {
	if err := s.scope(r, r.PathValue("svm")); err != nil {
		return 0, nil, err
	}
	acc, err := auth.ParseAccess(in.Access)
	if err != nil {
		return 0, nil, err
	}
	ro, err := s.cfg.Auth.ModifyRole(ctx, r.PathValue("svm"), r.PathValue("name"), in.CmdDir, acc)
	return reply(http.StatusOK, ro, err)
}

func (s *Server) deleteRole(ctx context.Context, r *request) (int, any, error) {
	if err := s.scope(r, r.PathValue("svm")); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, nil, s.cfg.Auth.DeleteRole(ctx, r.PathValue("svm"), r.PathValue("name"), r.URL.Query().Get("cmddirname"))
}

// ---- NDMP and options

func (s *Server) generateNDMPPassword(ctx context.Context, r *request, in NDMPPasswordRequest) (int, any, error) {
	svm := s.ownerOr(r, in.SVM)
	if err := s.scope(r, svm); err != nil {
		return 0, nil, err
	}
	self := svm == r.who.SVM && in.User == r.who.Name
	// Generating another user's NDMP password hands out a credential, so
	// it needs write access to the command; one's own needs read access.
	if err := s.authorize(ctx, r, "vserver services ndmp generate-password", !self); err != nil {
		return 0, nil, err
	}
	if svm != s.cfg.Auth.AdminSVM() {
		if _, err := s.cfg.Storage.GetSVM(ctx, svm); err != nil {
			return 0, nil, err
		}
	}
	pw, err := s.cfg.Auth.GenerateNDMPPassword(ctx, svm, in.User)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NDMPPassword{SVM: svm, User: in.User, Password: pw}, nil
}

func (s *Server) listOptions(ctx context.Context, r *request) (int, any, error) {
	if err := s.scope(r, s.cfg.Auth.AdminSVM()); err != nil {
		return 0, nil, err
	}
	all, err := options.List(ctx, s.cfg.Store)
	if err != nil {
		return 0, nil, err
	}
	name := r.URL.Query().Get("option-name")
	out := make([]Option, 0, len(all))
	for _, o := range all {
		if name == "" || o.Name == name {
			out = append(out, wireOption(o))
		}
	}
	if name == "" || len(out) > 0 {
		return http.StatusOK, records(out), nil
	}
	return 0, nil, badf("command failed: %q is not a valid option name", name)
}

func (s *Server) setOption(ctx context.Context, r *request) (int, any, error) {
	if err := s.scope(r, s.cfg.Auth.AdminSVM()); err != nil {
		return 0, nil, err
	}
	var in OptionSet
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	o, err := options.Set(ctx, s.cfg.Store, in.Name, in.Value)
	if err != nil {
		return 0, nil, err
	}
	if err := s.applyOption(o); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, wireOption(o), nil
}
