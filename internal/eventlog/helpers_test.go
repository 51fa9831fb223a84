package eventlog

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// clock is an injectable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openTest opens a log in a fresh directory with the clock c and UTC.
func openTest(t *testing.T, c *clock, opts Options) (*Log, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mroot", "etc", "log")
	opts.Now = c.Now
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, dir
}

// readLines returns the lines of dir/name.
func readLines(t *testing.T, dir, name string) []string {
	t.Helper()
	b, err := Read(dir, name)
	if err != nil {
		t.Fatalf("Read %s: %v", name, err)
	}
	return Lines(b)
}

func mustParse(t *testing.T, line string) Entry {
	t.Helper()
	e, err := Parse(line)
	if err != nil {
		t.Fatalf("Parse(%q): %v", line, err)
	}
	return e
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
