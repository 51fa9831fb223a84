package server

// Tenant containment (issue 10, docs/security.md): what a restore creates
// for a session depends on who asks.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/engine/filedump"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// trusted reports whether the session acts for a fully trusted user:
// a node-scope session (the node's NDMP account) or a cluster user (of the
// admin SVM) with the built-in role admin or backup. SVM users and cluster
// users with custom roles are tenants.
func (ss *session) trusted(ctx context.Context) (bool, error) {
	if ss.nodeScope {
		return true, nil
	}
	ss.mu.Lock()
	user := ss.user
	ss.mu.Unlock()
	if user == "" || ss.lif.SVM != ss.srv.o.Auth.AdminSVM() {
		return false, nil
	}
	u, err := ss.srv.o.Auth.GetUser(ctx, ss.lif.SVM, user)
	if err != nil {
		return false, fmt.Errorf("user %s: %w", user, err)
	}
	return u.Role == auth.RoleAdmin || u.Role == auth.RoleBackup, nil
}

// restorePolicy returns the restore policy of the session for a restore
// into dest (/svm/volume[/path]): nil (the image as it is) for a trusted
// session, else the restore mapping of the SVM that owns the destination
// volume. Any failure refuses the restore.
func (d *dataService) restorePolicy(ctx context.Context, dest string) (*filedump.RestorePolicy, ndmp.Error) {
	ss := d.ss
	pol, err := ss.tenantPolicy(ctx, dest)
	if err != nil {
		ss.log.Error("restore policy", "err", err)
		ss.logMessage(ndmp.LogError, "restore refused: the restore policy of this session cannot be determined")
		return nil, ndmp.ErrUndefined
	}
	return pol, ndmp.NoErr
}

func (ss *session) tenantPolicy(ctx context.Context, dest string) (*filedump.RestorePolicy, error) {
	ok, err := ss.trusted(ctx)
	if err != nil || ok {
		return nil, err
	}
	loc, err := ss.srv.o.Storage.Resolve(ctx, dest)
	if err != nil {
		return nil, err
	}
	set, err := LoadSVMSettings(ctx, ss.srv.o.Catalog, loc.Volume.SVM)
	if err != nil {
		return nil, err
	}
	return policyOf(loc.Volume.SVM, set)
}

// policyOf builds the restore policy of an SVM's settings.
func policyOf(svm string, set SVMSettings) (*filedump.RestorePolicy, error) {
	uids, err := filedump.ParseIDRanges(set.RestoreUIDs)
	if err != nil {
		return nil, err
	}
	gids, err := filedump.ParseIDRanges(set.RestoreGIDs)
	if err != nil {
		return nil, err
	}
	p := &filedump.RestorePolicy{Who: "Vserver " + svm, UIDs: uids, GIDs: gids, AnyOwner: set.RestoreAnyOwner}
	p.DefaultUID, p.DefaultGID = set.RestoreOwner()
	return p, nil
}

// svmView reports whether the session's messages and replies must name
// paths as its SVM sees them (/svm/volume/...): sessions of SVM users, on
// a data LIF.
func (ss *session) svmView() bool {
	return !ss.nodeScope && ss.lif.Role == storage.RoleData
}

// pathToken finds the absolute paths in a message: a "/" at the start or
// after a space, quote, "=", "(", "[", ":" or ",", up to the next of
// those.
var pathToken = regexp.MustCompile(`(?:^|[\s"'=(\[:,])(/[^\s"'(),\[\]:]*)`)

// hiddenPath replaces a host path outside the session's volumes.
const hiddenPath = "[host path]"

// svmPaths rewrites the host paths of text for an SVM user's session: a
// path in one of the SVM's volumes becomes /svm/volume/..., a path already
// in that form stays, and any other absolute path becomes "[host path]".
// Other sessions get text as it is.
func (ss *session) svmPaths(ctx context.Context, text string) string {
	if !ss.svmView() || !strings.Contains(text, "/") {
		return text
	}
	vols, err := ss.srv.o.Storage.ListVolumes(ctx, ss.lif.SVM)
	if err != nil {
		vols = nil
	}
	// Longest host path first, so that nested volumes map to the inner one.
	sort.Slice(vols, func(i, j int) bool { return len(vols[i].HostPath) > len(vols[j].HostPath) })
	var b strings.Builder
	last := 0
	for _, m := range pathToken.FindAllStringSubmatchIndex(text, -1) {
		b.WriteString(text[last:m[2]])
		b.WriteString(ss.svmPath(vols, text[m[2]:m[3]]))
		last = m[3]
	}
	b.WriteString(text[last:])
	return b.String()
}

// svmPath maps one absolute path p for svmPaths: host paths of the SVM's
// volumes first, then paths that already name one of its volumes
// (/svm/volume[/...]); anything else is hidden.
func (ss *session) svmPath(vols []storage.Volume, p string) string {
	own := "/" + ss.lif.SVM
	clean := path.Clean(p)
	for _, v := range vols {
		root := path.Clean(v.HostPath)
		if v.HostPath == "" || root == "/" {
			continue
		}
		if clean == root || strings.HasPrefix(clean, root+"/") {
			return own + "/" + v.Name + strings.TrimPrefix(clean, root)
		}
	}
	if clean == own {
		return p
	}
	for _, v := range vols {
		if vp := own + "/" + v.Name; clean == vp || strings.HasPrefix(clean, vp+"/") {
			return p
		}
	}
	return hiddenPath
}

// physicalDevice is CONFIG_GET_FS_INFO's fs_physical_device of volume v:
// its host path, except for SVM users, who see /svm/volume.
func (ss *session) physicalDevice(v storage.Volume) string {
	if ss.svmView() {
		return "/" + v.SVM + "/" + v.Name
	}
	return v.HostPath
}

// checkDialTarget applies the data connection rule of SVM users (issue 10,
// N7, docs/security.md) to the end points of a DATA_CONNECT or
// MOVER_CONNECT before anything is dialled: every end point must be
//
//   - in the SVM's -data-connect-allow list (an external tape or data
//     server the administrator named), or
//   - the address of a LIF of this cluster that the SVM's data connections
//     may use (its own data LIFs and the cluster's LIFs, of a role in its
//     -preferred-interface-role, N7), on a port that is a data connection
//     listener: on this node, one that a session of the same SVM or a
//     cluster session has open now (MOVER_LISTEN or DATA_LISTEN); on
//     another node, any port from 1024 up but the LIF's NDMP port.
//
// So an SVM user cannot make the server connect to arbitrary hosts and
// ports and learn from the reply which are open. A refusal is
// NDMP_CONNECT_ERR with a LOG_MESSAGE, the same whether the port is open
// or not. Other sessions may dial anything.
func (ss *session) checkDialTarget(ctx context.Context, eps []netip.AddrPort) ndmp.Error {
	if !ss.svmView() {
		return ndmp.NoErr
	}
	for _, ep := range eps {
		ok, err := ss.dialAllowed(ctx, ep)
		if err != nil {
			ss.log.Error("data connection rule", "err", err)
		}
		if !ok {
			msg := fmt.Sprintf("data connection refused: %s is neither a data connection address of this cluster's LIFs nor allowed by -data-connect-allow of Vserver %s", ep, ss.lif.SVM)
			ss.log.Warn(msg)
			ss.logMessage(ndmp.LogError, msg)
			return ndmp.ErrConnect
		}
	}
	return ndmp.NoErr
}

// dialAllowed reports whether an SVM user's session may dial ep.
func (ss *session) dialAllowed(ctx context.Context, ep netip.AddrPort) (bool, error) {
	ip := ep.Addr().Unmap()
	allow, err := parseAllowList(ss.svmSet.DataConnectAllow)
	if err != nil {
		return false, err
	}
	for _, p := range allow {
		if p.Contains(ip) {
			return true, nil
		}
	}
	lifs, err := ss.dataLIFs(ctx)
	if err != nil {
		return false, err
	}
	for _, l := range lifs {
		if l.Address.Unmap() != ip {
			continue
		}
		if l.HomeNode == "" || l.HomeNode == ss.srv.o.Node {
			return ss.srv.dataListening(ep, ss.mayJoin), nil
		}
		if ep.Port() >= 1024 && int(ep.Port()) != l.Port {
			return true, nil
		}
	}
	return false, nil
}

// dataLIFs returns the LIFs an SVM user's data connections may use: the
// SVM's own and the admin SVM's, of a role in -preferred-interface-role.
func (ss *session) dataLIFs(ctx context.Context) ([]storage.LIF, error) {
	admin, err := ss.srv.o.Storage.AdminSVM(ctx)
	if err != nil {
		return nil, err
	}
	var out []storage.LIF
	for _, svm := range []string{ss.lif.SVM, admin} {
		lifs, err := ss.srv.o.Storage.ListLIFs(ctx, svm)
		if err != nil {
			return nil, err
		}
		for _, l := range lifs {
			if slices.Contains(ss.svmSet.PreferredInterfaceRole, l.Role) {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

// mayJoin reports whether an SVM user's session may connect to a data
// connection listener of session other: one of its own SVM's sessions or
// a cluster session (a cluster DMA running a three-way job for the SVM),
// never another SVM's, whose restore it could otherwise feed.
func (ss *session) mayJoin(other *session) bool {
	return other.lif.SVM == ss.lif.SVM || other.nodeScope || other.lif.Role != storage.RoleData
}

// dataListening reports whether a mover or data service of a session of
// this server that ok accepts listens for a data connection on ep.
func (s *Server) dataListening(ep netip.AddrPort, ok func(*session) bool) bool {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	for _, ss := range list {
		if !ok(ss) {
			continue
		}
		if listensOn(ss.mover.listener(), ep) || listensOn(ss.data.listener(), ep) {
			return true
		}
	}
	return false
}

// listensOn reports whether ln's address is ep.
func listensOn(ln net.Listener, ep netip.AddrPort) bool {
	if ln == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(ln.Addr().String())
	return err == nil && ap.Addr().Unmap() == ep.Addr().Unmap() && ap.Port() == ep.Port()
}

// listener returns the mover's data connection listener, nil when it has
// none.
func (m *mover) listener() net.Listener {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ln
}

// listener returns the data service's data connection listener, nil when
// it has none.
func (d *dataService) listener() net.Listener {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ln
}
