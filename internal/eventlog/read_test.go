package eventlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadNames (M3): only backup and backup.0 ... backup.5 can be read.
func TestReadNames(t *testing.T) {
	c := newClock(t0)
	l, dir := openTest(t, c, Options{})
	for range 3 {
		if err := l.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	for _, good := range []string{"backup", "backup.0", "backup.1", "backup.2"} {
		if err := ValidName(good); err != nil {
			t.Errorf("ValidName(%q): %v", good, err)
		}
		if _, err := Read(dir, good); err != nil {
			t.Errorf("Read(%q): %v", good, err)
		}
	}
	if b, _ := Read(dir, "backup.2"); !strings.HasSuffix(string(b), "Start_Logging\n") {
		t.Errorf("backup.2 = %q", b)
	}
	// Valid name, no such file.
	if _, err := Read(dir, "backup.5"); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("Read(backup.5) = %v, want not-exist", err)
	}
	secret := filepath.Join(filepath.Dir(dir), "secret")
	if err := os.WriteFile(secret, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"", ".", "..", "backup.6", "backup.10", "backup.-1", "backup.", "backup.0.gz", "Backup", "backup/",
		"/etc/log/backup", "../secret", "backup/../../secret", "./backup", ".backup.state", "messages", "backup\x00",
	} {
		if err := ValidName(bad); err == nil {
			t.Errorf("ValidName(%q) accepted", bad)
		}
		if b, err := Read(dir, bad); err == nil {
			t.Errorf("Read(%q) = %q, want an error", bad, b)
		}
		if _, err := Tail(dir, bad, 1); err == nil {
			t.Errorf("Tail(%q) accepted", bad)
		}
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// TestReadSymlinkEscape: a log file replaced by a symbolic link that leads
// out of the log directory is not followed.
func TestReadSymlinkEscape(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(outside, []byte("root:x:0:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "backup.3")); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(dir, "backup.3"); err == nil {
		t.Fatalf("Read followed a symlink out of the directory: %q", b)
	}
	if err := os.Mkdir(filepath.Join(dir, "backup.4"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir, "backup.4"); err == nil {
		t.Fatal("Read of a directory succeeded")
	}
}

func TestNameFromPath(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/log/backup":         "backup",
		"etc/log/backup.0":        "backup.0",
		"/mroot/etc/log/backup.5": "backup.5",
	} {
		if got, err := NameFromPath(in); err != nil || got != want {
			t.Errorf("NameFromPath(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{
		"", "/", "backup", "/etc/log", "/etc/log/", "/etc/log/backup.6", "/etc/log/../log/backup",
		"/etc/log//backup", "/etc/log/backup/", "/etc/messages", "/vol/vol0/etc/log/backup", "/etc/log/./backup",
	} {
		if got, err := NameFromPath(bad); err == nil {
			t.Errorf("NameFromPath(%q) = %q, want an error", bad, got)
		}
	}
}

// TestTail reads the last lines of a file larger than Tail's chunk.
func TestTail(t *testing.T) {
	c := newClock(t0)
	l, dir := openTest(t, c, Options{})
	const n = 3000
	d := l.Dump("/vs1/vol1/", 1)
	for i := range n {
		if err := d.PhaseChange(fmt.Sprintf("%d %s", i, strings.Repeat("p", i%97))); err != nil {
			t.Fatal(err)
		}
	}
	all := readLines(t, dir, FileName)
	if len(all) != n+1 {
		t.Fatalf("%d lines", len(all))
	}
	if fi, _ := os.Stat(filepath.Join(dir, FileName)); fi.Size() < 3*tailChunk {
		t.Fatalf("file of %d bytes does not span several chunks", fi.Size())
	}
	for _, k := range []int{0, 1, 2, 10, 500, 2999, 3000, 3001, 5000} {
		got, err := l.Tail(k)
		if err != nil {
			t.Fatalf("Tail(%d): %v", k, err)
		}
		want := all
		if k < len(all) {
			want = all[len(all)-k:]
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("Tail(%d): %d lines, first %.60q, want %d lines, first %.60q", k, len(got), first(got), len(want), first(want))
		}
	}
	if _, err := l.Tail(-1); err == nil {
		t.Error("Tail(-1) accepted")
	}
	// A last line without its newline (a crash in mid-write) is returned.
	f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("partial")
	f.Close()
	if got, err := l.Tail(2); err != nil || len(got) != 2 || got[1] != "partial" || got[0] != all[len(all)-1] {
		t.Errorf("Tail(2) = %q, %v", got, err)
	}
	// Empty file.
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "backup.0"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Tail(empty, "backup.0", 5); err != nil || len(got) != 0 {
		t.Errorf("Tail of an empty file = %q, %v", got, err)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func TestLines(t *testing.T) {
	for in, want := range map[string]int{"": 0, "\n": 1, "a": 1, "a\n": 1, "a\nb": 2, "a\nb\n": 2, "a\n\nb\n": 3} {
		if got := Lines([]byte(in)); len(got) != want {
			t.Errorf("Lines(%q) = %q, want %d lines", in, got, want)
		}
	}
}

// FuzzNameFromPath: whatever path is given, an accepted one maps to a
// valid name and the name is the path's last element.
func FuzzNameFromPath(f *testing.F) {
	for _, s := range []string{"/etc/log/backup", "etc/log/backup.3", "/mroot/etc/log/backup.5", "/etc/log/../../backup", "/etc/log/backup.6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		name, err := NameFromPath(p)
		if err != nil {
			return
		}
		if ValidName(name) != nil || !strings.HasSuffix(p, "/"+name) || strings.Contains(p, "..") {
			t.Fatalf("NameFromPath(%q) = %q", p, name)
		}
	})
}

func BenchmarkTail(b *testing.B) {
	dir := b.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	d := l.Dump("/vs1/vol1/", 1)
	for range 20000 {
		d.PhaseChange("III")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Tail(100); err != nil {
			b.Fatal(err)
		}
	}
}
