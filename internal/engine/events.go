package engine

import (
	"strconv"
	"time"
)

// Phase numbers a stage of a job, from 1. A file-level backup has the five
// phases I to V of D3; a restore has the stages of D8.
type Phase int

// String returns the Roman numeral of phases 1 to 5, as the event log's
// Phase-change lines name them, and the number of any other phase.
func (p Phase) String() string {
	if p >= 1 && int(p) <= len(romanPhases) {
		return romanPhases[p-1]
	}
	return strconv.Itoa(int(p))
}

var romanPhases = [...]string{"I", "II", "III", "IV", "V"}

// Progress reports how far a backup or restore is.
type Progress struct {
	Phase Phase
	Bytes int64 // image bytes written (backup) or read (restore)
	Files int64 // inodes (or other objects) written or restored
	Total int64 // objects the job will handle (0 when not yet known)
}

// JobEvents are the events of the backup event log (M1) that every job
// writes: its start, its phase changes and its errors. Their errors are
// reported, never fatal to the job.
type JobEvents interface {
	// Start is written when the job has its source and starts; level is
	// the backup level, kind what started it ("NDMP").
	Start(level int, kind string) error
	PhaseChange(phase string) error
	Error(msg string) error
}

// BackupEvents is the part of the event log a backup writes to;
// *eventlog.DumpLog implements it. A backup that fails writes Error and
// then Abort; one that succeeds writes End.
type BackupEvents interface {
	JobEvents
	// Snapshot names the snapshot copy the backup reads.
	Snapshot(name string, created time.Time) error
	// BaseDump names the backup an incremental is based on.
	BaseDump(level int, at time.Time) error
	End(bytes int64) error
	Abort(bytes int64) error
}

// RestoreEvents is the part of the event log a restore writes to;
// *eventlog.RestoreLog implements it. A restore that fails writes Error and
// then Abort; one that succeeds writes End.
type RestoreEvents interface {
	JobEvents
	End(files, bytes int64) error
	Abort(files, bytes int64) error
}
