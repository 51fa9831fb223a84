package server

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/snapmgmt"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// The snapshot management messages of extension class 0x2050
// (docs/ndmp-extensions.md), served by package snapmgmt on the volumes the
// session may use. A DMA that did not select the class gets NOT_SUPPORTED.

// snapRequest reports whether body is a request of the class's snapshot
// management.
func snapRequest(body ndmp.Body) bool {
	switch body.(type) {
	case *ndmp.SnapCreateRequest, *ndmp.SnapDeleteRequest, *ndmp.SnapGetSnapshotNamesRequest,
		*ndmp.SnapDirListRequest, *ndmp.SnapRecoverRequest:
		return true
	}
	return false
}

// serveSnap dispatches a snapshot management request.
func (ss *session) serveSnap(ctx context.Context, body ndmp.Body) (ndmp.Body, ndmp.Error) {
	if !ss.extSelected(ExtClassRBE) {
		return nil, ndmp.ErrNotSupported
	}
	ss.mu.Lock()
	ss.extUsed = true // using an extension ends negotiation (draft 2.5.4.3)
	ss.mu.Unlock()
	m := snapmgmt.New(ss.srv.o.Storage, 0)
	switch req := body.(type) {
	case *ndmp.SnapCreateRequest:
		return ss.snapCreate(ctx, m, req)
	case *ndmp.SnapDeleteRequest:
		return ss.snapDelete(ctx, m, req)
	case *ndmp.SnapGetSnapshotNamesRequest:
		return ss.snapNames(ctx, m, req)
	case *ndmp.SnapDirListRequest:
		return ss.snapDirList(ctx, m, req)
	case *ndmp.SnapRecoverRequest:
		return ss.snapRecover(ctx, m, req)
	}
	return nil, ndmp.ErrNotSupported
}

// snapVolume resolves a DMA's path /svm/volume[/rel] to a volume the
// session may use.
func (ss *session) snapVolume(ctx context.Context, p string) (storage.Volume, string, ndmp.Error) {
	svm, vol, rel, err := storage.SplitBackupPath(p)
	if err != nil {
		ss.logMessage(ndmp.LogError, storage.Message(err))
		return storage.Volume{}, "", ndmp.ErrSnapInvalidPath
	}
	vols, err := ss.visibleVolumes(ctx)
	if err != nil {
		return storage.Volume{}, "", ndmp.ErrSnapInternal
	}
	for _, v := range vols {
		if v.SVM == svm && v.Name == vol {
			return v, rel, ndmp.NoErr
		}
	}
	ss.logMessage(ndmp.LogError, fmt.Sprintf("Volume %s of Vserver %s is not available on this LIF", vol, svm))
	return storage.Volume{}, "", ndmp.ErrSnapInvalidPath
}

// wholeVolume resolves a path that must name a volume itself.
func (ss *session) wholeVolume(ctx context.Context, p string) (storage.Volume, ndmp.Error) {
	v, rel, e := ss.snapVolume(ctx, p)
	if e == ndmp.NoErr && rel != "" {
		ss.logMessage(ndmp.LogError, p+" is not a volume")
		return v, ndmp.ErrSnapInvalidPath
	}
	return v, e
}

// snapFailed reports a snapmgmt error to the DMA and returns its code.
func (ss *session) snapFailed(err error) ndmp.Error {
	ss.logMessage(ndmp.LogError, ss.svmPaths(context.Background(), err.Error()))
	return snapmgmt.Code(err)
}

func (ss *session) snapCreate(ctx context.Context, m *snapmgmt.Manager, req *ndmp.SnapCreateRequest) (ndmp.Body, ndmp.Error) {
	v, e := ss.wholeVolume(ctx, req.Pathname)
	if e != ndmp.NoErr {
		return nil, e
	}
	if err := m.Create(ctx, v.SVM, v.Name, req.Snapname); err != nil {
		return nil, ss.snapFailed(err)
	}
	ss.log.Info("snapshot created through NDMP", "vserver", v.SVM, "volume", v.Name, "snapshot", req.Snapname)
	return &ndmp.SnapCreateReply{}, ndmp.NoErr
}

func (ss *session) snapDelete(ctx context.Context, m *snapmgmt.Manager, req *ndmp.SnapDeleteRequest) (ndmp.Body, ndmp.Error) {
	v, rel, e := ss.snapVolume(ctx, req.Snapname)
	if e != ndmp.NoErr {
		return nil, e
	}
	name, ok := strings.CutPrefix(rel, snapshot.Dir+"/")
	if !ok || name == "" || strings.Contains(name, "/") {
		ss.logMessage(ndmp.LogError, req.Snapname+" is not the path of a Snapshot copy (/vserver/volume/.snapshot/name)")
		return nil, ndmp.ErrSnapInvalidPath
	}
	if err := m.Delete(ctx, v.SVM, v.Name, name); err != nil {
		return nil, ss.snapFailed(err)
	}
	ss.log.Info("snapshot deleted through NDMP", "vserver", v.SVM, "volume", v.Name, "snapshot", name)
	return &ndmp.SnapDeleteReply{}, ndmp.NoErr
}

func (ss *session) snapNames(ctx context.Context, m *snapmgmt.Manager, req *ndmp.SnapGetSnapshotNamesRequest) (ndmp.Body, ndmp.Error) {
	v, e := ss.wholeVolume(ctx, req.Pathname)
	if e != ndmp.NoErr {
		return nil, e
	}
	names, err := m.Names(ctx, v.SVM, v.Name)
	if err != nil {
		return nil, ss.snapFailed(err)
	}
	return &ndmp.SnapGetSnapshotNamesReply{Snapshots: names}, ndmp.NoErr
}

func (ss *session) snapDirList(ctx context.Context, m *snapmgmt.Manager, req *ndmp.SnapDirListRequest) (ndmp.Body, ndmp.Error) {
	v, e := ss.wholeVolume(ctx, req.Pathname)
	if e != ndmp.NoErr {
		return nil, e
	}
	ents, next, err := m.DirList(ctx, snapmgmt.DirListRequest{SVM: v.SVM, Volume: v.Name, Snapshot: req.Snapname,
		Dir: req.Dir, Cursor: req.Cursor, Max: int(req.MaxEntries)})
	if err != nil {
		return nil, ss.snapFailed(err)
	}
	return &ndmp.SnapDirListReply{Entries: ents, NextCursor: next}, ndmp.NoErr
}

// snapRecover checks the request, starts the recovery in the background
// and replies with its id; NOTIFY_RECOVER_END follows when it ends.
func (ss *session) snapRecover(ctx context.Context, m *snapmgmt.Manager, req *ndmp.SnapRecoverRequest) (ndmp.Body, ndmp.Error) {
	v, e := ss.wholeVolume(ctx, req.Pathname)
	if e != ndmp.NoErr {
		return nil, e
	}
	id := ss.srv.recoverIDs.Add(1)
	rr := snapmgmt.RecoverRequest{SVM: v.SVM, Volume: v.Name, Snapshot: req.Snapname, Flags: req.Flags,
		Owner: fmt.Sprintf("snap-recover:%d", id)}
	for _, n := range req.Names {
		dv, rel, e := ss.snapVolume(ctx, n.DestinationDir)
		if e != ndmp.NoErr {
			return nil, e
		}
		name := n.NewName
		if name == "" {
			name = n.Name
		}
		if name == "" {
			name = path.Base(n.OriginalPath)
		}
		rr.Files = append(rr.Files, snapmgmt.FileRecover{Original: n.OriginalPath, DestSVM: dv.SVM, DestVolume: dv.Name, DestDir: rel, Name: name})
	}
	ss.log.Info("snapshot recovery started through NDMP", "vserver", v.SVM, "volume", v.Name, "snapshot", req.Snapname, "files", len(rr.Files), "id", id)
	engine.Go(func() error { return ss.recoverAndPost(m, rr, id) }, func(err error) {
		if err != nil {
			ss.log.Error("snapshot recovery", "id", id, "err", err)
		}
	})
	return &ndmp.SnapRecoverReply{RecoverID: id}, ndmp.NoErr
}

// recoverAndPost runs a recovery and posts its end to the DMA.
func (ss *session) recoverAndPost(m *snapmgmt.Manager, rr snapmgmt.RecoverRequest, id uint64) error {
	ctx := context.Background()
	res, err := m.Recover(ctx, rr)
	post := &ndmp.SnapNotifyRecoverEndPost{RecoverID: id, Files: res.Files, Bytes: res.Bytes,
		Message: fmt.Sprintf("Recovered %d files, %d bytes from Snapshot copy %s", res.Files, res.Bytes, rr.Snapshot)}
	if err != nil {
		post.Error, post.Message = snapmgmt.Code(err), ss.svmPaths(ctx, err.Error())
	}
	ss.log.Info("snapshot recovery ended", "id", id, "files", res.Files, "bytes", res.Bytes, "err", err)
	return ss.conn.Post(ctx, post)
}
