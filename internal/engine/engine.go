package engine

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// Engine is a backup type of the NDMP server (CONFIG_GET_BUTYPE_INFO): it
// writes images in a backup and reads them in a recover. Its methods are
// called concurrently, one call per running operation.
type Engine interface {
	// Info describes the backup type: its name, attributes and default
	// environment.
	Info() Info
	// Backup writes the image of job.Path to job.Output and returns when
	// the image is complete or the backup failed; ctx ends with
	// DATA_ABORT or the session.
	Backup(ctx context.Context, job *BackupJob) (Result, error)
	// Recover reads an image from job.Input (or job.InputAt) and restores
	// it, or lists it as file history when job.ListOnly is set.
	Recover(ctx context.Context, job *RecoverJob) (Result, error)
	// Failure says how an error Backup or Recover returned is reported to
	// the DMA: the halt reason and the LOG_MESSAGE text.
	Failure(err error) Failure
}

// Info describes an engine for CONFIG_GET_BUTYPE_INFO (draft 3.2.5).
type Info struct {
	// Name is the backup type name ("dump").
	Name string
	// Attrs are the NDMP_BUTYPE_* bits of package ndmp.
	Attrs uint32
	// DefaultEnv is the default environment, in the order it is listed.
	DefaultEnv []Var
}

// Var is one environment variable.
type Var struct{ Name, Value string }

// BackupJob describes one backup (DATA_START_BACKUP).
type BackupJob struct {
	// Path is the backup path /svm/volume[/path] (FILESYSTEM), already
	// checked to lie in a volume the session may use.
	Path string
	// Env is the DMA's environment.
	Env map[string]string
	// Output receives the image.
	Output io.Writer
	// RecordSize is the mover's record size in bytes.
	RecordSize int
	// History receives file history; nil when the DMA asked for none.
	History History
	// Events receives the backup event log lines the engine writes; nil
	// when the event log is off.
	Events BackupEvents
}

// RecoverJob describes one recover (DATA_START_RECOVER and
// DATA_START_RECOVER_FILEHIST).
type RecoverJob struct {
	// Path is the destination /svm/volume[/path]; empty when ListOnly.
	Path string
	// Env is the DMA's environment.
	Env map[string]string
	// Input is the image from its start; InputAt is set instead for
	// direct access recovery (DIRECT=Y with a name list).
	Input   io.Reader
	InputAt io.ReaderAt
	// Names restricts the recover to these names of the image; empty
	// recovers everything.
	Names []Name
	// ListOnly lists the image to History (AddFile) and writes nothing.
	ListOnly bool
	// Policy limits what the recover creates for the one who asks (nil:
	// a trusted caller, the image as it is).
	Policy *RestorePolicy
	// StateDir is where the engine keeps what the next incremental recover
	// of the same destination needs, outside the volume; "" for the
	// destination itself.
	StateDir string
	// OnName receives the result of each name that fails (and may receive
	// those that succeed).
	OnName func(NameResult)
	// History receives the listing of ListOnly.
	History History
	// Events receives the restore event log lines; nil when off.
	Events RestoreEvents
}

// Name is one entry of a recover's name list (the NDMP nlist).
type Name struct {
	// Original is the path in the image, relative to its root ("" for
	// everything).
	Original string
	// Dest is where it goes, relative to the destination; "" means the
	// same path as Original.
	Dest string
	// FHInfo is the position the DMA has from file history, -1 when
	// unknown; direct access recovery uses it.
	FHInfo int64
}

// NameResult is the outcome of one restored name (for LOG_FILE): Path is
// the name as the image has it or the path below the destination of a file
// that failed; Err is nil for a success.
type NameResult struct {
	Path string
	Err  error
}

// Result is what a finished operation reports.
type Result struct {
	// Env holds the variables DATA_GET_ENV returns to the DMA.
	Env map[string]string
	// Errors counts the names a recover could not restore.
	Errors int
}

// Failure is how an engine's error is reported: the data service halts
// with Halt and sends Message in a LOG_MESSAGE.
type Failure struct {
	Halt    ndmp.DataHaltReason
	Message string
}

// DefaultFailure reports err as most engines do: a closed data connection
// halts with NDMP_DATA_HALT_CONNECT_ERROR, anything else with
// NDMP_DATA_HALT_INTERNAL_ERROR; the message is err's text.
func DefaultFailure(err error) Failure {
	f := Failure{Halt: ndmp.DataHaltInternalError, Message: err.Error()}
	var pe *PanicError
	switch {
	case errors.As(err, &pe):
		f.Message = pe.Message()
	case errors.Is(err, io.ErrClosedPipe), errors.Is(err, net.ErrClosed):
		f.Halt = ndmp.DataHaltConnectError
	}
	return f
}
