package server

import (
	"sort"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/engine/filedump"
	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
)

// The dump engine writes the events it knows of (Start, Snapshot,
// Base_dump, Phase-change, Error, End, Abort); the server adds those only
// the session knows: the options the DMA gave (Options) and the tape drive
// the local mover uses (Tape_open after Start, Tape_close before End or
// Abort), in the order of ONTAP's backup log.

// eventOptions turns a DMA environment into Options event entries, sorted
// by name so that the line is the same for the same environment.
func eventOptions(env map[string]string) []eventlog.Option {
	opts := make([]eventlog.Option, 0, len(env))
	for k, v := range env {
		opts = append(opts, eventlog.Option{Name: k, Value: v})
	}
	sort.Slice(opts, func(i, j int) bool { return opts[i].Name < opts[j].Name })
	return opts
}

// sessionEvents reports whether the session writes backup event log lines:
// the server has a log and the session's SVM has backup-log-enable on.
func (ss *session) sessionEvents() *eventlog.Log {
	l := ss.srv.o.EventLog
	if l == nil {
		return nil
	}
	ss.mu.Lock()
	on := ss.svmSet.BackupLogEnable
	ss.mu.Unlock()
	if !on {
		return nil
	}
	return l
}

// dumpEvents wraps a DumpLog (filedump.DumpEvents) with the session's events.
type dumpEvents struct {
	*eventlog.DumpLog
	opts   []eventlog.Option
	device string // tape drive of the local mover, "" for none
	opened bool   // Tape_open was written
	// aborted reports a DATA_ABORT: the engine's error is then only the
	// consequence (a closed pipe), and the Abort line says it all.
	aborted func() bool
}

// Error writes the Error event unless the DMA aborted the dump.
func (e *dumpEvents) Error(msg string) error {
	if e.aborted != nil && e.aborted() {
		return nil
	}
	return e.DumpLog.Error(msg)
}

// Start writes Start, Options and Tape_open.
func (e *dumpEvents) Start(level int, kind string) error {
	err := e.DumpLog.Start(level, kind)
	if err == nil && len(e.opts) > 0 {
		err = e.DumpLog.Options(e.opts...)
	}
	if err == nil && e.device != "" {
		err = e.DumpLog.TapeOpen(e.device)
		e.opened = err == nil
	}
	return err
}

// Snapshot writes the Snapshot event.
func (e *dumpEvents) Snapshot(name string, created time.Time) error {
	return e.DumpLog.Snapshot(name, created)
}

// End writes Tape_close and End.
func (e *dumpEvents) End(bytes int64) error {
	if e.opened {
		_ = e.DumpLog.TapeClose(e.device)
	}
	return e.DumpLog.End(bytes)
}

// Abort writes Tape_close and Abort.
func (e *dumpEvents) Abort(bytes int64) error {
	if e.opened {
		_ = e.DumpLog.TapeClose(e.device)
	}
	return e.DumpLog.Abort(bytes)
}

// restoreEvents wraps a RestoreLog (filedump.RestoreEvents) the same way.
type restoreEvents struct {
	*eventlog.RestoreLog
	opts    []eventlog.Option
	device  string
	opened  bool
	aborted func() bool
	wrote   bool // Start, Error, End or Abort was written
}

// failed writes Error and Abort for a restore that failed before the
// engine wrote any line (for example a missing destination).
func (e *restoreEvents) failed(err error) {
	if e.wrote || err == nil || (e.aborted != nil && e.aborted()) {
		return
	}
	msg := filedump.Message(err)
	if msg == "" {
		msg = err.Error()
	}
	_ = e.Error(msg)
	_ = e.Abort(0, 0)
}

// Error writes the Error event unless the DMA aborted the restore.
func (e *restoreEvents) Error(msg string) error {
	e.wrote = true
	if e.aborted != nil && e.aborted() {
		return nil
	}
	return e.RestoreLog.Error(msg)
}

// Start writes Start, Options and Tape_open.
func (e *restoreEvents) Start(level int, kind string) error {
	e.wrote = true
	err := e.RestoreLog.Start(level, kind)
	if err == nil && len(e.opts) > 0 {
		err = e.RestoreLog.Options(e.opts...)
	}
	if err == nil && e.device != "" {
		err = e.RestoreLog.TapeOpen(e.device)
		e.opened = err == nil
	}
	return err
}

// End writes Tape_close and End.
func (e *restoreEvents) End(files, bytes int64) error {
	e.wrote = true
	if e.opened {
		_ = e.RestoreLog.TapeClose(e.device)
	}
	return e.RestoreLog.End(files, bytes)
}

// Abort writes Tape_close and Abort.
func (e *restoreEvents) Abort(files, bytes int64) error {
	e.wrote = true
	if e.opened {
		_ = e.RestoreLog.TapeClose(e.device)
	}
	return e.RestoreLog.Abort(files, bytes)
}
