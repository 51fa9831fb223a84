package server

// Tenant containment (issue 10, docs/security.md): what a restore creates
// for a session depends on who asks.

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/engine/dump"
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
func (d *dataService) restorePolicy(ctx context.Context, dest string) (*dump.RestorePolicy, ndmp.Error) {
	ss := d.ss
	pol, err := ss.tenantPolicy(ctx, dest)
	if err != nil {
		ss.log.Error("restore policy", "err", err)
		ss.logMessage(ndmp.LogError, "restore refused: the restore policy of this session cannot be determined")
		return nil, ndmp.ErrUndefined
	}
	return pol, ndmp.NoErr
}

func (ss *session) tenantPolicy(ctx context.Context, dest string) (*dump.RestorePolicy, error) {
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
func policyOf(svm string, set SVMSettings) (*dump.RestorePolicy, error) {
	uids, err := dump.ParseIDRanges(set.RestoreUIDs)
	if err != nil {
		return nil, err
	}
	gids, err := dump.ParseIDRanges(set.RestoreGIDs)
	if err != nil {
		return nil, err
	}
	p := &dump.RestorePolicy{Who: "Vserver " + svm, UIDs: uids, GIDs: gids, AnyOwner: set.RestoreAnyOwner}
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
