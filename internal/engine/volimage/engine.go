package volimage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"github.com/tapestry-ndmp/tapestry/internal/engine"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// ButypeName is the backup type name of the SMTape engine.
const ButypeName = "smtape"

// Record sizes SMTape writes with (S6).
const (
	minRecord = 4 << 10
	maxRecord = 256 << 10
)

// The spec's SMTape messages the engine produces besides the format's.
var (
	errInvalidPath    = &smtape.Error{Message: "Invalid volume path"}
	errVolumeOffline  = &smtape.Error{Message: "Volume offline"}
	errNotRestricted  = &smtape.Error{Message: "Volume not restricted"}
	errFindSnapshot   = &smtape.Error{Message: "Failed to find snapshot"}
	errCreateSnapshot = &smtape.Error{Message: "Failed to create snapshot"}
	errLockSnapshot   = &smtape.Error{Message: "Failed to lock snapshot"}
	errDeleteSnapshot = &smtape.Error{Message: "Failed to delete snapshot"}
	errLatestSnapshot = &smtape.Error{Message: "Failed to get latest snapshot"}
	errInitTape       = &smtape.Error{Message: "Failed to initialize tape"}
)

// refusal is a request SMTape does not serve (file history, DAR, a bad
// variable): the spec's list has no message for it, so the sentence says
// what was refused.
func refusal(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

// fail returns a copy of e with a detail.
func fail(e *smtape.Error, format string, args ...any) *smtape.Error {
	return &smtape.Error{Message: e.Message, Detail: fmt.Sprintf(format, args...)}
}

// Config holds what the SMTape engine of a node shares.
type Config struct {
	// Storage resolves volumes and makes, locks and lists snapshots.
	Storage *storage.Service
	// Node is the node name written into image headers.
	Node string
	// Limiter bounds the node's SMTape backups and restores (S8), counted
	// apart from NDMP sessions and dumps; nil means no limit.
	Limiter *engine.Limiter
}

// NewLimiter returns the Limiter of SMTape jobs: max at once, refused
// with engine.MsgMaxSMTape.
func NewLimiter(max int) *engine.Limiter { return engine.NewLimiter(max, engine.MsgMaxSMTape) }

// Engine is the SMTape engine as an engine.Engine of the NDMP server.
type Engine struct{ cfg Config }

var _ engine.Engine = (*Engine)(nil)

// New returns the SMTape engine of a node.
func New(cfg Config) *Engine { return &Engine{cfg: cfg} }

// Info describes the backup type smtape: image backups, with incrementals,
// and no file history, file lists or direct access recovery.
func (e *Engine) Info() engine.Info {
	return engine.Info{
		Name:  ButypeName,
		Attrs: ndmp.ButypeBackupIncremental | ndmp.ButypeRecoverIncremental | ndmp.ButypeBackupUTF8 | ndmp.ButypeRecoverUTF8,
		DefaultEnv: []engine.Var{
			{Name: "FILESYSTEM", Value: ""},
			{Name: "SMTAPE_BACKUP_SET_ID", Value: ""},
			{Name: "SMTAPE_SNAPSHOT_NAME", Value: ""},
			{Name: "SMTAPE_DELETE_SNAPSHOT", Value: "Y"},
			{Name: "SMTAPE_BREAK_MIRROR", Value: "N"},
			{Name: "VERBOSE", Value: "N"},
			{Name: "DEBUG", Value: "N"},
		},
	}
}

// Failure reports an error with the spec's SMTape message it carries.
func (e *Engine) Failure(err error) engine.Failure {
	f := engine.DefaultFailure(err)
	if m := smtape.Message(err); m != "" && f.Halt != ndmp.DataHaltConnectError {
		f.Message = m
	}
	return f
}

// refuseUnsupported refuses what an image engine does not do (S6).
func refuseUnsupported(env map[string]string) error {
	switch {
	case yes(env["HIST"]):
		return refusal("SMTape keeps no file history (HIST=Y)")
	case yes(env["DIRECT"]):
		return refusal("SMTape has no direct access recovery (DIRECT=Y)")
	}
	return nil
}

func yes(v string) bool { return strings.EqualFold(v, "y") || strings.EqualFold(v, "yes") }

// checkRecordSize enforces a record size of 4 KB to 256 KB in steps of 4 KB.
func checkRecordSize(n int) error {
	if n < minRecord || n > maxRecord || n%minRecord != 0 {
		return fail(errInitTape, "tape record size %d bytes: SMTape writes records of 4 KB to 256 KB in steps of 4 KB", n)
	}
	return nil
}

// wholeVolume resolves a path that must name a whole volume (S1).
func (e *Engine) wholeVolume(ctx context.Context, p string) (storage.Location, error) {
	loc, err := e.cfg.Storage.Resolve(ctx, p)
	if err != nil {
		return loc, fail(errInvalidPath, "%v", err)
	}
	if loc.RelPath != "" || loc.Snapshot != nil || loc.Qtree != nil {
		return loc, fail(errInvalidPath, "%s is not a whole volume: SMTape backs up and restores volumes only", p)
	}
	return loc, nil
}

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// newSetID makes a baseline's backup set id.
func newSetID() ([16]byte, error) {
	var id [16]byte
	_, err := rand.Read(id[:])
	return id, err
}

// parseSetID reads SMTAPE_BACKUP_SET_ID (32 hex digits).
func parseSetID(s string) ([16]byte, error) {
	var id [16]byte
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		return id, refusal("SMTAPE_BACKUP_SET_ID %q is not a backup set id (32 hexadecimal digits)", s)
	}
	copy(id[:], b)
	return id, nil
}

// resultEnv is what DATA_GET_ENV returns after a backup or restore.
func resultEnv(h *smtape.Header, snapName string) map[string]string {
	return map[string]string{
		"SMTAPE_BACKUP_SET_ID": hex.EncodeToString(h.SetID[:]),
		"SMTAPE_SNAPSHOT_NAME": snapName,
		"DUMP_DATE":            strconv.FormatInt(h.Time.UnixNano(), 10),
	}
}
