package simtap

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// writeUntilGone writes 1 MiB records after the image was taken away and
// returns how many succeeded before ErrMediumGone; it fails the test when
// more than one check interval of data went by unnoticed.
func writeUntilGone(t *testing.T, c *Cartridge) int {
	t.Helper()
	rec := bytes.Repeat([]byte{0x5a}, 1<<20)
	limit := checkEvery/len(rec) + 2
	for i := 0; i < limit; i++ {
		err := c.WriteRecord(rec)
		if errors.Is(err, ErrMediumGone) {
			return i
		}
		if err != nil {
			t.Fatalf("write %d: %v, want nil or ErrMediumGone", i, err)
		}
	}
	t.Fatalf("%d MiB written after the image was taken away, no ErrMediumGone", limit)
	return 0
}

// checkGoneSticks checks that once the loss was seen every write, Sync
// and Close report it.
func checkGoneSticks(t *testing.T, c *Cartridge) {
	t.Helper()
	if err := c.WriteMark(); !errors.Is(err, ErrMediumGone) {
		t.Errorf("WriteMark after loss: %v, want ErrMediumGone", err)
	}
	if err := c.Sync(); !errors.Is(err, ErrMediumGone) {
		t.Errorf("Sync after loss: %v, want ErrMediumGone", err)
	}
	if err := c.Close(); !errors.Is(err, ErrMediumGone) {
		t.Errorf("Close after loss: %v, want ErrMediumGone", err)
	}
}

// Issue 11 item 8: an image unlinked while a writer writes to it is
// noticed within one check interval (8 MiB) and by Sync and Close, never
// reported as written.
func TestImageRemovedWhileWriting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.tap")
	c, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := c.WriteRecord(bytes.Repeat([]byte{1}, 1<<20)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	n := writeUntilGone(t, c)
	t.Logf("%d MiB accepted after the unlink before the loss was seen", n)
	checkGoneSticks(t, c)
}

// Issue 11 item 8: an image replaced by another file at its path (the
// old one renamed away, so it still has a link) is noticed too, and the
// other file is left as it is.
func TestImageReplacedWhileWriting(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t.tap")
	c, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteRecord(bytes.Repeat([]byte{1}, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p, filepath.Join(dir, "moved.tap")); err != nil {
		t.Fatal(err)
	}
	other := []byte("another file")
	if err := os.WriteFile(p, other, 0o644); err != nil {
		t.Fatal(err)
	}
	writeUntilGone(t, c)
	checkGoneSticks(t, c)
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, other) {
		t.Fatalf("the replacing file: %q, %v", b, err)
	}
}

// Issue 11 item 8: an image removed after the last write is caught by
// Sync, the call that would report the data durable.
func TestImageRemovedBeforeSync(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.tap")
	c, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteRecord([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(); !errors.Is(err, ErrMediumGone) {
		t.Fatalf("Sync: %v, want ErrMediumGone", err)
	}
	_ = c.Close()
}

// A cartridge that rewrites its own image at BOT (replaceImage renames a
// new file over the path) is not mistaken for a lost one.
func TestOwnReplacementNotGone(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.tap")
	c, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	rec := bytes.Repeat([]byte{2}, 1<<20)
	for round := 0; round < 2; round++ {
		if err := c.Rewind(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < checkEvery/len(rec)+2; i++ {
			if err := c.WriteRecord(rec); err != nil {
				t.Fatalf("round %d write %d: %v", round, i, err)
			}
		}
		if err := c.Sync(); err != nil {
			t.Fatalf("round %d sync: %v", round, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
