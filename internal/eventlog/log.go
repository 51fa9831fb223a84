package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FileName is the name of the current log file in the log directory.
const FileName = "backup"

// MaxOld is the number of rotated files kept: backup.0 (last week) to
// backup.5 (six weeks ago).
const MaxOld = 6

// stateName is the file that records when the current log file was started.
const stateName = ".backup.state"

// ErrClosed is returned by writes to a closed Log.
var ErrClosed = errors.New("eventlog: log is closed")

// Options configures Open. The zero value is ready to use: logging on, local
// time, the system clock.
type Options struct {
	// Now returns the current time; nil means time.Now. Tests inject a
	// clock here to drive rotation.
	Now func() time.Time
	// Location is the time zone of timestamps and of the weekly rotation
	// boundary; nil means time.Local.
	Location *time.Location
	// Disabled opens the log with logging turned off (backup.log.enable
	// off): nothing is written, not even Start_Logging, until
	// SetEnabled(true).
	Disabled bool
	// SyncAll syncs the file after every line, not only after End, Abort,
	// Error and the logging events.
	SyncAll bool
	// Logger, when set, also gets a line for the Start, End and Abort of
	// every backup and restore ("backup started", "restore ended", ...),
	// whether the event log is enabled or not (issue 17 item 4).
	Logger *slog.Logger
}

// Log is an open backup event log. Its methods are safe for concurrent use.
type Log struct {
	dir string
	now func() time.Time
	loc *time.Location
	all bool
	// logger is Options.Logger.
	logger *slog.Logger

	mu      sync.Mutex
	f       *os.File
	enabled bool
	started time.Time // when the current file was started
	retryAt time.Time // after a failed rotation: no new attempt before this
	closed  bool
}

// RotateRetry is how long a Log waits after a rotation that failed (a
// file in the way, a read-only directory) before it tries again on its
// own. Events are written to the current file meanwhile; without the pause
// every event would retry, and report, the same failure.
const RotateRetry = time.Hour

// Open opens (creating if needed) the directory dir and the log file
// dir/backup for appending. Unless opts.Disabled is set it writes a
// Start_Logging line, rotating the files first if a week boundary has passed
// since the current file was started.
func Open(dir string, opts Options) (*Log, error) {
	if dir == "" {
		return nil, errors.New("eventlog: open: empty directory name")
	}
	l := &Log{dir: dir, now: opts.Now, loc: opts.Location, all: opts.SyncAll, enabled: !opts.Disabled, logger: opts.Logger}
	if l.now == nil {
		l.now = time.Now
	}
	if l.loc == nil {
		l.loc = time.Local
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("eventlog: open: %w", err)
	}
	f, err := openAppend(filepath.Join(dir, FileName))
	if err != nil {
		return nil, err
	}
	l.f = f
	started, ok := l.readState()
	if !ok {
		started = l.now()
		if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
			// A log without a state file (first run of a newer version,
			// state lost): date it by its modification time.
			started = fi.ModTime()
		}
		if err := l.writeState(started); err != nil {
			f.Close()
			return nil, err
		}
	}
	l.started = started
	if l.enabled {
		if err := l.logEvent(EventStartLogging); err != nil {
			f.Close()
			return nil, err
		}
	}
	return l, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	return f, nil
}

// Dir returns the log directory.
func (l *Log) Dir() string { return l.dir }

// Enabled reports whether logging is on.
func (l *Log) Enabled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.enabled
}

// SetEnabled turns logging on or off (option backup.log.enable). Turning it
// off writes Stop_Logging as the last line; turning it on writes
// Start_Logging as the first line. Setting the current state again writes
// nothing.
func (l *Log) SetEnabled(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if on == l.enabled {
		return nil
	}
	if on {
		l.enabled = true
		return l.writeLocked(Entry{Type: TypeLog, Event: EventStartLogging}, true)
	}
	err := l.writeLocked(Entry{Type: TypeLog, Event: EventStopLogging}, true)
	l.enabled = false
	return err
}

// Close closes the log file. It writes nothing: Stop_Logging is written
// only when logging is turned off.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("eventlog: close: %w", err)
	}
	return nil
}

// Dump returns the writer of the dump with the given path and unique id.
func (l *Log) Dump(path string, id uint64) *DumpLog {
	return &DumpLog{l: l, ident: DumpIdentifier(path, id)}
}

// Restore returns the writer of the restore into the destination path dest.
func (l *Log) Restore(dest string) *RestoreLog {
	dest = clean(dest)
	if dest == "" {
		dest = "-"
	}
	return &RestoreLog{l: l, ident: dest}
}

func (l *Log) logEvent(ev Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.writeLocked(Entry{Type: TypeLog, Event: ev}, true)
}

// write appends one dmp or rst line if logging is on.
func (l *Log) write(t Type, ident string, ev Event, info string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.logOperation(t, ident, ev, info)
	if !l.enabled {
		return nil
	}
	sync := ev == EventEnd || ev == EventAbort || ev == EventError
	return l.writeLocked(Entry{Type: t, Identifier: ident, Event: ev, Info: clean(info)}, sync)
}

// operationWords name the operation of an event type and the ending of
// the events that start and end one, for the daemon's log.
var (
	operationWords = map[Type]string{TypeDump: "backup", TypeRestore: "restore"}
	eventWords     = map[Event]string{EventStart: "started", EventEnd: "ended", EventAbort: "aborted"}
)

// logOperation writes the Start, End and Abort of a backup or restore to
// the daemon's log, if the log has one.
func (l *Log) logOperation(t Type, ident string, ev Event, info string) {
	op, word := operationWords[t], eventWords[ev]
	if l.logger == nil || op == "" || word == "" {
		return
	}
	lvl := slog.LevelInfo
	if ev == EventAbort {
		lvl = slog.LevelWarn
	}
	l.logger.Log(context.Background(), lvl, op+" "+word, "id", ident, "info", info)
}

// writeLocked stamps e with the current time, rotates if due and appends
// the line with one write call.
func (l *Log) writeLocked(e Entry, sync bool) error {
	now := l.now().In(l.loc)
	// A failed rotation does not cost the event: it still goes into the
	// current file, if there is one.
	rerr := l.rotateIfDueLocked(now)
	if l.closed {
		return rerr
	}
	e.Timestamp = now.Format(TimeLayout)
	line := e.String() + "\n"
	if _, err := l.f.WriteString(line); err != nil {
		return errors.Join(rerr, fmt.Errorf("eventlog: write %s: %w", e.Event, err))
	}
	if sync || l.all {
		if err := l.f.Sync(); err != nil {
			return errors.Join(rerr, fmt.Errorf("eventlog: sync: %w", err))
		}
	}
	return rerr
}

// weekEnd returns the end of the week containing t: the next Sunday 00:00
// in loc strictly after t.
func weekEnd(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	days := 7 - int(t.Weekday()) // Sunday: 7, Saturday: 1
	y, m, d := t.Date()
	return time.Date(y, m, d+days, 0, 0, 0, 0, loc)
}

// RotateIfDue rotates the files if the week in which the current file was
// started has ended. Writes do this by themselves; the daemon may call it
// on a timer so that rotation happens even in a week without events.
func (l *Log) RotateIfDue() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.rotateIfDueLocked(l.now())
}

func (l *Log) rotateIfDueLocked(now time.Time) error {
	if now.Before(l.started) {
		// The clock went back (or the state came from a clock that was
		// ahead): date the current file now, or it would not be rotated
		// until the wrong date came round.
		l.started = now
		return l.writeState(now)
	}
	if now.Before(weekEnd(l.started, l.loc)) || now.Before(l.retryAt) {
		return nil
	}
	return l.rotateLocked(now)
}

// Rotate rotates the files now, whatever the date: backup.5 is dropped,
// backup.N becomes backup.N+1, backup becomes backup.0 and an empty backup
// file is started.
func (l *Log) Rotate() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.rotateLocked(l.now())
}

func (l *Log) rotateLocked(now time.Time) error {
	// The files are renamed while the current one is still open (a rename
	// does not disturb an open descriptor), so a rotation that cannot be
	// done leaves the Log writing where it was.
	if err := l.shift(); err != nil {
		l.retryAt = now.Add(RotateRetry)
		return err
	}
	l.retryAt = time.Time{}
	// From here on l.f is closed, even when Close reports an error; reopen
	// the current file whatever happens so that the Log stays usable (a
	// Close error alone used to leave it writing to a closed file for good).
	var cerr error
	if err := l.f.Close(); err != nil {
		cerr = fmt.Errorf("eventlog: rotate: %w", err)
	}
	f, err := openAppend(filepath.Join(l.dir, FileName))
	if err != nil {
		l.closed = true
		return errors.Join(cerr, err)
	}
	l.f = f
	if err := syncDir(l.dir); err != nil {
		return errors.Join(cerr, err)
	}
	l.started = now
	return errors.Join(cerr, l.writeState(now))
}

// shift renames the files one step older.
func (l *Log) shift() error {
	name := func(i int) string {
		if i < 0 {
			return filepath.Join(l.dir, FileName)
		}
		return filepath.Join(l.dir, FileName+"."+strconv.Itoa(i))
	}
	if err := os.Remove(name(MaxOld - 1)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("eventlog: rotate: %w", err)
	}
	for i := MaxOld - 2; i >= -1; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("eventlog: rotate: %w", err)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("eventlog: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("eventlog: sync directory: %w", err)
	}
	return nil
}

// readState returns the start time of the current file from the state
// file, if it is there and well formed.
func (l *Log) readState() (time.Time, bool) {
	b, err := os.ReadFile(filepath.Join(l.dir, stateName))
	if err != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// writeState records the start time of the current file, atomically.
func (l *Log) writeState(t time.Time) error {
	path := filepath.Join(l.dir, stateName)
	tmp := path + ".tmp"
	data := []byte(t.Format(time.RFC3339Nano) + "\n")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("eventlog: write rotation state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("eventlog: write rotation state: %w", err)
	}
	return nil
}
