package ndmpcopy

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// LogDir is where the debug log lives below a node's data directory, the
// Linux home of ONTAP's /mroot/etc/log.
const LogDir = "mroot/etc/log"

// DebugLogName returns the name of the debug log file for day t:
// ndmpcopy.yyyymmdd.
func DebugLogName(t time.Time) string {
	return "ndmpcopy." + t.Format("20060102")
}

// A DebugLog writes time-stamped lines to the -d log file. The zero value
// and a nil *DebugLog discard everything. It is safe for concurrent use.
type DebugLog struct {
	mu  sync.Mutex
	w   io.WriteCloser
	now func() time.Time
}

// OpenDebugLog opens (appending) dataDir/mroot/etc/log/ndmpcopy.yyyymmdd for
// the day of now(), creating the directories. It returns the log and the
// file's path.
func OpenDebugLog(dataDir string, now func() time.Time) (*DebugLog, string, error) {
	if now == nil {
		now = time.Now
	}
	dir := filepath.Join(dataDir, LogDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("debug log directory: %w", err)
	}
	p := filepath.Join(dir, DebugLogName(now()))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, "", fmt.Errorf("debug log: %w", err)
	}
	return &DebugLog{w: f, now: now}, p, nil
}

// Printf writes one line, prefixed with the time.
func (l *DebugLog) Printf(format string, a ...any) {
	if l == nil || l.w == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s %s\n", l.now().Format("2006-01-02T15:04:05.000Z07:00"), fmt.Sprintf(format, a...))
}

// Close closes the file.
func (l *DebugLog) Close() error {
	if l == nil || l.w == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.w.Close()
	l.w = nil
	return err
}
