package filedump

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// restoreTree restores img into dest (state in stateDir when set) and
// returns the names reported as failed.
func restoreTree(t *testing.T, img []byte, dest, stateDir string) []string {
	t.Helper()
	var reported []string
	_, err := Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img), Dest: dest, StateDir: stateDir, Env: Env{"FORCE": "Y"},
		OnName: func(n NameResult) {
			if n.Err != nil {
				reported = append(reported, n.Path+": "+n.Err.Error())
			}
		}})
	if err != nil {
		t.Fatalf("restore: %v (reported %v)", err, reported)
	}
	return reported
}

// TestStateNameInImage (issue 11 item 6, D8): a directory named
// restore_symboltable in an image made that restore and every later one
// into the destination fail; a regular file of that name was overwritten
// by the state without a word. Where the state is kept in the destination
// the name is refused with an error naming it and the chain goes on; where
// it is kept elsewhere (the NDMP server) the image's entry is restored.
func TestStateNameInImage(t *testing.T) {
	d0 := time.Unix(1700000000, 0)
	for _, kind := range []byte{0, 1} {
		ops := []treeOp{{kind: kind, ino: 3, name: SymtabName}, {kind: 1, ino: 5, name: "f"}}
		if kind == 0 {
			ops = append(ops, treeOp{kind: 1, parent: 1, ino: 4, name: "inside"})
		}
		img0, err := buildTreeImage(ops, 0, time.Time{}, d0)
		must(t, err)
		img1, err := buildTreeImage(append(ops, treeOp{kind: 1, ino: 6, name: "g"}), 1, d0, d0.Add(time.Hour))
		must(t, err)

		// The state in the destination: the name is refused, the chain
		// restores.
		dest := t.TempDir()
		for i, img := range [][]byte{img0, img1, img0} {
			got := strings.Join(restoreTree(t, img, dest, ""), "\n")
			if !strings.Contains(got, SymtabName+": not restored: the restore keeps its own state under this name") {
				t.Errorf("kind %d, restore %d: the name is not refused: %q", kind, i, got)
			}
			if st, err := loadSymtab(dest); err != nil || st == nil {
				t.Fatalf("kind %d, restore %d: state %v %v", kind, i, st, err)
			}
		}
		if b, err := os.ReadFile(filepath.Join(dest, "f")); err != nil || !strings.HasPrefix(string(b), "data of 5") {
			t.Errorf("f: %q %v", b, err)
		}

		// The state elsewhere: the image's entry is restored as it is.
		dest, state := t.TempDir(), filepath.Join(t.TempDir(), "state")
		for _, img := range [][]byte{img0, img1} {
			if got := restoreTree(t, img, dest, state); len(got) > 0 {
				t.Errorf("kind %d, state elsewhere: %v", kind, got)
			}
		}
		p := filepath.Join(dest, SymtabName)
		if kind == 0 {
			p = filepath.Join(p, "inside")
		}
		if b, err := os.ReadFile(p); err != nil || !strings.HasPrefix(string(b), "data of") {
			t.Errorf("kind %d: %s: %q %v", kind, p, b, err)
		}
		if b, err := os.ReadFile(filepath.Join(dest, "g")); err != nil || !strings.HasPrefix(string(b), "data of 6") {
			t.Errorf("kind %d: level 1 not applied: g %q %v", kind, b, err)
		}
	}
}

// TestDuplicateEntryReported (issue 11 item 6): a directory that holds one
// name twice restores the first and reports the second.
func TestDuplicateEntryReported(t *testing.T) {
	img, err := buildTreeImage([]treeOp{{kind: 1, ino: 4, name: "dup"}, {kind: 1, ino: 6, name: "dup"}, {kind: 1, ino: 5, name: "f"}}, 0, time.Time{}, time.Unix(1700000000, 0))
	must(t, err)
	dest := t.TempDir()
	var reported []string
	_, err = Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(img), Dest: dest, Env: Env{"FORCE": "Y"},
		OnName: func(n NameResult) {
			if n.Err != nil {
				reported = append(reported, n.Path+": "+n.Err.Error())
			}
		}})
	got := strings.Join(reported, "\n")
	if !strings.Contains(got, `dup: dump: malformed image: directory inode 2 holds the name "dup" twice (inodes 4 and 6)`) {
		t.Errorf("duplicate not reported: %v %q", err, got)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "dup")); err != nil || !strings.HasPrefix(string(b), "data of 4") {
		t.Errorf("dup: %q %v", b, err)
	}
}
