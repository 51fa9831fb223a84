package ndmp

import "context"

// Snapshot management of extension class 0x2050 (version 3). A DMA selects
// the class with SetExtList before it calls these; a server answers them
// with NOT_SUPPORTED otherwise. Only the message numbers and the bodies of
// SNAP_CREATE and SNAP_DELETE are public: the other bodies are Tapestry's,
// described in ndmp.x and docs/ndmp-extensions.md.

// SnapCreate creates snapshot name of the volume at path (SNAP_CREATE).
func (c *Client) SnapCreate(ctx context.Context, path, name string) error {
	_, err := doCall[*SnapCreateReply](ctx, c, &SnapCreateRequest{Pathname: path, Snapname: name})
	return err
}

// SnapDelete deletes the snapshot at snapPath, the volume's path followed
// by "/.snapshot/" and the snapshot's name (SNAP_DELETE).
func (c *Client) SnapDelete(ctx context.Context, snapPath string) error {
	_, err := doCall[*SnapDeleteReply](ctx, c, &SnapDeleteRequest{Snapname: snapPath})
	return err
}

// SnapNames lists the snapshots of the volume at path, oldest first
// (SNAP_GET_SNAPSHOT_NAMES).
func (c *Client) SnapNames(ctx context.Context, path string) ([]SnapInfo, error) {
	r, err := doCall[*SnapGetSnapshotNamesReply](ctx, c, &SnapGetSnapshotNamesRequest{Pathname: path})
	if err != nil {
		return nil, err
	}
	return r.Snapshots, nil
}

// SnapDirList returns one page of a browse (SNAP_DIR_LIST): with req.Snapname
// empty the volume's snapshots, otherwise the entries of directory req.Dir of
// that snapshot. The reply's NextCursor, put in req.Cursor, asks for the next
// page; 0 means there is none. A browse the volume's change invalidated fails
// with ErrIllegalState and starts again from cursor 0.
func (c *Client) SnapDirList(ctx context.Context, req *SnapDirListRequest) (*SnapDirListReply, error) {
	return doCall[*SnapDirListReply](ctx, c, req)
}

// SnapRecover starts recovering files, or with no names the whole volume,
// from a snapshot (SNAP_RECOVER). It returns the recovery's id; its end
// arrives as a NOTIFY_RECOVER_END post on SnapRecoverEnd.
func (c *Client) SnapRecover(ctx context.Context, req *SnapRecoverRequest) (uint64, error) {
	r, err := doCall[*SnapRecoverReply](ctx, c, req)
	if err != nil {
		return 0, err
	}
	return r.RecoverID, nil
}

// SnapRecoverEnd returns the channel on which the Client delivers the
// server's NOTIFY_RECOVER_END posts (class 0x2050), like DataHalted.
func (c *Client) SnapRecoverEnd() <-chan *SnapNotifyRecoverEndPost { return c.recoverEnd }
