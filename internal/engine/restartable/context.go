// Package restartable keeps the contexts of restartable dump backups (D12,
// issue 14): one catalog key per context, restart/context/<svm>/<id>, with
// ONTAP's fields (vserver services ndmp restartable-backup show) and what a
// restart needs (the backup's options, its last checkpoint, and the
// directory where the engine keeps the larger data of the context, such as
// the walk's result and the dump inode assignments, outside the catalog).
//
// A dump backup with file history gets a context when it starts (Begin).
// On entering phase IV the context takes a persistent lock on the backup's
// snapshot (Advance), so that the snapshot outlives the backup and the
// daemon. A backup that ends well removes its context (End). One that stops
// in phase IV leaves it restartable; one that stops earlier removes it and
// its lock (Stop). A daemon that starts again turns the contexts its
// predecessor left busy into what Stop would have made of them (Recover).
package restartable

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// The values of Context.State (ONTAP's "State of the Context"; the numbers
// are Tapestry's, 7 being the one ONTAP shows for a restartable context).
const (
	// StateActive is a context whose backup runs.
	StateActive = 1
	// StateRestartable is a context a DMA may restart.
	StateRestartable = 7
)

// The values of Context.Status (ONTAP's "Status of Backup"; Tapestry's
// numbers, 2 being the one ONTAP shows for a restartable context).
const (
	// StatusRunning is a backup that runs.
	StatusRunning = 1
	// StatusAborted is a backup that stopped before its end.
	StatusAborted = 2
)

// PassFiles is phase IV, the files: the only phase a backup can be
// restarted in.
const PassFiles = 4

// Checkpoint is a point from which the engine regenerates the image
// exactly: the byte offset of the image (on a record boundary) and the
// position in the list of files to dump. It counts only once the bytes
// before Offset are on tape and synced.
type Checkpoint struct {
	// Offset is the byte offset in the image.
	Offset int64 `json:"offset"`
	// File is the index, in the walk's list of files, of the next file to
	// write.
	File int64 `json:"file"`
	// At is when the checkpoint was recorded.
	At time.Time `json:"at"`
}

// Context is one restartable-backup context. The fields up to State are
// ONTAP's (vserver services ndmp restartable-backup show -instance).
type Context struct {
	SVM string `json:"svm"`
	// ID is the context identifier, a UUID.
	ID string `json:"id"`
	// Volume is the volume's path, /<svm>/<volume>.
	Volume         string `json:"volume"`
	CleanupPending bool   `json:"cleanup-pending"`
	// Engine is the backup engine type, "dump".
	Engine              string `json:"engine"`
	SnapshotAutoCreated bool   `json:"snapshot-auto-created"`
	// DumpPath is the path the DMA asked to back up (FILESYSTEM).
	DumpPath string `json:"dump-path"`
	// Level is the incremental backup level.
	Level int `json:"level"`
	// DumpName is the dump's name (DMP_NAME, or the dump path).
	DumpName     string    `json:"dump-name"`
	Updated      time.Time `json:"updated"`
	HasOffsetMap bool      `json:"has-offset-map"`
	OffsetVerify bool      `json:"offset-verify"`
	Restartable  bool      `json:"restartable"`
	Busy         bool      `json:"busy"`
	// Pass is the phase the backup reached (1 to 5).
	Pass   int `json:"pass"`
	Status int `json:"status"`
	// Snapshot is the name of the snapshot the backup reads.
	Snapshot string `json:"snapshot"`
	State    int    `json:"state"`

	// VolumeName is the volume's name in its SVM (Volume is its path).
	VolumeName string `json:"volume-name"`
	// Env is the backup's environment (its options); a restart must give
	// the same.
	Env map[string]string `json:"env,omitempty"`
	// DataDir is the directory of the context's larger data.
	DataDir string `json:"data-dir,omitempty"`
	// Checkpoints are the last checkpoints of phase IV, oldest first (at
	// most MaxCheckpoints).
	Checkpoints []Checkpoint `json:"checkpoints,omitempty"`
}

// MaxCheckpoints is the most checkpoints a context keeps: a DMA may restart
// from an offset a little before the last one (a tape positioned on an
// earlier record).
const MaxCheckpoints = 8

// Synced returns the offset up to which the image is known to be on tape:
// the last checkpoint's, 0 before the first.
func (c *Context) Synced() int64 {
	if len(c.Checkpoints) == 0 {
		return 0
	}
	return c.Checkpoints[len(c.Checkpoints)-1].Offset
}

// From returns the latest checkpoint at or before offset.
func (c *Context) From(offset int64) (Checkpoint, bool) {
	for i := len(c.Checkpoints) - 1; i >= 0; i-- {
		if c.Checkpoints[i].Offset <= offset {
			return c.Checkpoints[i], true
		}
	}
	return Checkpoint{}, false
}

// LockOwner is the owner of the persistent snapshot lock the context holds
// from phase IV on.
func (c *Context) LockOwner() string { return "restartable-backup:" + c.ID }

func contextKey(svm, id string) string { return catalog.Key("restart", "context", svm, id) }

func contextsPrefix() string { return catalog.Prefix("restart", "context") }

// NewID returns a new random context identifier (a version 4 UUID).
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("restartable backup context id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
