package eventlog

import (
	"strconv"
	"strings"
	"time"
)

// KindNDMP is the type of dump or restore of operations driven by a DMA
// over NDMP, for the Start event information.
const KindNDMP = "NDMP"

// Option is one option of an Options event: a name and, unless Value is
// empty, its value.
type Option struct {
	Name  string
	Value string
}

// String renders the option as "name=value", or "name" without a value.
func (o Option) String() string {
	if o.Value == "" {
		return o.Name
	}
	return o.Name + "=" + o.Value
}

// FormatOptions renders options as the information of an Options event:
// "name=value" or "name", separated by ", ", in the order given.
func FormatOptions(opts []Option) string {
	s := make([]string, len(opts))
	for i, o := range opts {
		s[i] = o.String()
	}
	return strings.Join(s, ", ")
}

// FormatAmount renders an amount of data as it appears in End and Abort
// event information: whole kilobytes (1024 bytes), rounded up, as "12 KB".
// Negative amounts count as zero.
func FormatAmount(bytes int64) string {
	if bytes < 0 {
		bytes = 0
	}
	kb := bytes / 1024
	if bytes%1024 != 0 {
		kb++
	}
	return strconv.FormatInt(kb, 10) + " KB"
}

func formatStart(level int, kind string) string {
	return "level " + strconv.Itoa(level) + ", " + kind
}

// DumpLog writes the events of one dump. Get one from Log.Dump. Its
// methods return the error of writing the line; a disabled log writes
// nothing and returns nil.
type DumpLog struct {
	l     *Log
	ident string
}

// Identifier returns the identifier of the dump's lines: "path(id)".
func (d *DumpLog) Identifier() string { return d.ident }

func (d *DumpLog) write(ev Event, info string) error {
	return d.l.write(TypeDump, d.ident, ev, info)
}

// Start logs that the dump started: "Start (level N, kind)", kind being
// the type of dump, normally KindNDMP.
func (d *DumpLog) Start(level int, kind string) error {
	return d.write(EventStart, formatStart(level, kind))
}

// Options logs the options of the dump, NDMP environment included:
// "Options (name=value, ...)".
func (d *DumpLog) Options(opts ...Option) error {
	return d.write(EventOptions, FormatOptions(opts))
}

// TapeOpen logs that the tape device was opened: "Tape_open (device)".
func (d *DumpLog) TapeOpen(device string) error {
	return d.write(EventTapeOpen, device)
}

// TapeClose logs that the tape device was closed: "Tape_close (device)".
func (d *DumpLog) TapeClose(device string) error {
	return d.write(EventTapeClose, device)
}

// PhaseChange logs that the dump entered a new phase: "Phase-change (phase)".
func (d *DumpLog) PhaseChange(phase string) error {
	return d.write(EventPhaseChange, phase)
}

// Error logs an unexpected event: "Error (message)". The line is synced.
func (d *DumpLog) Error(msg string) error {
	return d.write(EventError, msg)
}

// Snapshot logs the Snapshot copy the dump reads, created or located:
// "Snapshot (name, time)".
func (d *DumpLog) Snapshot(name string, created time.Time) error {
	return d.write(EventSnapshot, name+", "+created.In(d.l.loc).Format(TimeLayout))
}

// BaseDump logs the base dump an incremental dump is based on:
// "Base_dump (level N, time)".
func (d *DumpLog) BaseDump(level int, at time.Time) error {
	return d.write(EventBaseDump, "level "+strconv.Itoa(level)+", "+at.In(d.l.loc).Format(TimeLayout))
}

// End logs that the dump completed: "End (N KB)". The line is synced.
func (d *DumpLog) End(bytes int64) error {
	return d.write(EventEnd, FormatAmount(bytes))
}

// Abort logs that the dump was cancelled: "Abort (N KB)". The line is
// synced.
func (d *DumpLog) Abort(bytes int64) error {
	return d.write(EventAbort, FormatAmount(bytes))
}

// RestoreLog writes the events of one restore. Get one from Log.Restore.
// Its methods return the error of writing the line; a disabled log writes
// nothing and returns nil.
type RestoreLog struct {
	l     *Log
	ident string
}

// Identifier returns the identifier of the restore's lines: the
// destination path.
func (r *RestoreLog) Identifier() string { return r.ident }

func (r *RestoreLog) write(ev Event, info string) error {
	return r.l.write(TypeRestore, r.ident, ev, info)
}

// Start logs that the restore started: "Start (level N, kind)".
func (r *RestoreLog) Start(level int, kind string) error {
	return r.write(EventStart, formatStart(level, kind))
}

// Options logs the options of the restore: "Options (name=value, ...)".
func (r *RestoreLog) Options(opts ...Option) error {
	return r.write(EventOptions, FormatOptions(opts))
}

// TapeOpen logs that the tape device was opened: "Tape_open (device)".
func (r *RestoreLog) TapeOpen(device string) error {
	return r.write(EventTapeOpen, device)
}

// TapeClose logs that the tape device was closed: "Tape_close (device)".
func (r *RestoreLog) TapeClose(device string) error {
	return r.write(EventTapeClose, device)
}

// PhaseChange logs that the restore entered a new phase:
// "Phase-change (phase)".
func (r *RestoreLog) PhaseChange(phase string) error {
	return r.write(EventPhaseChange, phase)
}

// Error logs an unexpected event: "Error (message)". The line is synced.
func (r *RestoreLog) Error(msg string) error {
	return r.write(EventError, msg)
}

// End logs that the restore completed: "End (N files, M KB)". The line is
// synced.
func (r *RestoreLog) End(files, bytes int64) error {
	return r.write(EventEnd, formatFiles(files, bytes))
}

// Abort logs that the restore was cancelled: "Abort (N files, M KB)". The
// line is synced.
func (r *RestoreLog) Abort(files, bytes int64) error {
	return r.write(EventAbort, formatFiles(files, bytes))
}

func formatFiles(files, bytes int64) string {
	if files < 0 {
		files = 0
	}
	return strconv.FormatInt(files, 10) + " files, " + FormatAmount(bytes)
}
