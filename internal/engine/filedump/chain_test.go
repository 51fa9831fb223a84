package filedump

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/dump"
)

// imageFiles returns the paths of the non-directory inodes an image holds.
func imageFiles(t testing.TB, img string) []string {
	t.Helper()
	f, err := os.Open(img)
	must(t, err)
	defer f.Close()
	r := dump.NewReader(f)
	names := map[uint32][]string{}
	parent := map[uint32]string{dump.RootIno: ""}
	type ent struct {
		dir uint32
		e   dump.DirEntry
	}
	var ents []ent
	var files []uint32
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		if h.Kind != dump.KindInode {
			continue
		}
		if h.Inode.IsDir() {
			es, err := r.DirEntries()
			must(t, err)
			for _, e := range es {
				if e.Name != "." && e.Name != ".." {
					ents = append(ents, ent{h.Ino, e})
				}
			}
			continue
		}
		files = append(files, h.Ino)
	}
	// Directories come in inode order, so resolve names until stable.
	for changed := true; changed; {
		changed = false
		for _, e := range ents {
			if p, ok := parent[e.dir]; ok && e.e.Type == dump.DTDir {
				if _, done := parent[e.e.Ino]; !done {
					parent[e.e.Ino] = joinRel(p, e.e.Name)
					changed = true
				}
			}
		}
	}
	for _, e := range ents {
		if p, ok := parent[e.dir]; ok && e.e.Type != dump.DTDir {
			names[e.e.Ino] = append(names[e.e.Ino], joinRel(p, e.e.Name))
		}
	}
	var out []string
	for _, ino := range files {
		out = append(out, names[ino]...)
	}
	sort.Strings(out)
	return out
}

// TestChain02314 (D5): the spec's sequence 0, 2, 3, 1, 4 gives the chains
// 0-2-3 and 0-1-4, and each level holds exactly the files changed since its
// base.
func TestChain02314(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "base.txt"), []byte("level 0"), 0o644)
	st := tempCatalog(t)
	dir := t.TempDir()
	steps := []struct {
		level int
		add   string
		want  []string
	}{
		{0, "", []string{"base.txt"}},
		{2, "a2", []string{"a2"}},
		{3, "b3", []string{"b3"}},
		{1, "c1", []string{"a2", "b3", "c1"}},
		{4, "d4", []string{"d4"}},
	}
	for i, s := range steps {
		if s.add != "" {
			writeFile(t, filepath.Join(src, s.add), []byte(s.add), 0o644)
		}
		time.Sleep(2 * baseSlack) // changes before a backup are older than its date
		if s.level == 1 {
			// Dump dates on tape are whole seconds: make the level 1
			// date differ from the level 0 date, for the out-of-chain check.
			time.Sleep(time.Second)
		}
		img := filepath.Join(dir, strconv.Itoa(i)+".dump")
		res := backupDir(t, src, img, st, Env{"LEVEL": strconv.Itoa(s.level)})
		got := imageFiles(t, img)
		if strings.Join(got, ",") != strings.Join(s.want, ",") {
			t.Errorf("backup %d (level %d) holds %v, want %v", i+1, s.level, got, s.want)
		}
		if res.Level != s.level {
			t.Errorf("backup %d: level %d", i+1, res.Level)
		}
	}
	// The spec's restore order for the chain 0, 1, 4 rebuilds the tree.
	dst := t.TempDir()
	for _, i := range []int{0, 3, 4} {
		restoreImage(t, filepath.Join(dir, strconv.Itoa(i)+".dump"), dst, Env{"FORCE": "Y"})
	}
	compareTrees(t, snapshotTree(t, src), snapshotTree(t, dst, SymtabName))
	// Restoring level 4 straight after level 0 is refused: not its base.
	dst2 := t.TempDir()
	restoreImage(t, filepath.Join(dir, "0.dump"), dst2, Env{"FORCE": "Y"})
	f, err := os.Open(filepath.Join(dir, "4.dump"))
	must(t, err)
	defer f.Close()
	if _, err := Restore(context.Background(), RestoreRequest{Input: f, Dest: dst2, Env: Env{"FORCE": "Y"}}); err == nil || !strings.Contains(err.Error(), "not the next of the chain") {
		t.Errorf("out-of-chain restore: %v", err)
	}
}

// TestIncrementalNeedsBase (D5): a level above 0 without a lower-level
// backup is an error, never a silent level 0; UPDATE=N records nothing.
func TestIncrementalNeedsBase(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("x"), 0o644)
	st := tempCatalog(t)
	_, err := Backup(context.Background(), BackupRequest{Dir: src, Catalog: st, Env: Env{"LEVEL": "1"}, Output: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "no earlier backup at a lower level") {
		t.Fatalf("level 1 without base: %v", err)
	}
	if _, err := Backup(context.Background(), BackupRequest{Dir: src, Catalog: st, Env: Env{"UPDATE": "N"}, Output: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(context.Background(), BackupRequest{Dir: src, Catalog: st, Env: Env{"LEVEL": "1"}, Output: io.Discard}); err == nil {
		t.Fatal("level 1 after a level 0 with UPDATE=N succeeded")
	}
	if _, err := Backup(context.Background(), BackupRequest{Dir: src, Catalog: st, Env: Env{"UPDATE": "T"}, Output: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(context.Background(), BackupRequest{Dir: src, Catalog: st, Env: Env{"LEVEL": "1"}, Output: io.Discard}); err != nil {
		t.Fatalf("level 1 after recorded level 0: %v", err)
	}
	// Another DMP_NAME is another chain.
	if _, err := Backup(context.Background(), BackupRequest{Dir: src, Catalog: st, Env: Env{"LEVEL": "1", "DMP_NAME": "other"}, Output: io.Discard}); err == nil {
		t.Fatal("level 1 of another DMP_NAME found a base")
	}
	_, err = Backup(context.Background(), BackupRequest{Dir: src, Env: Env{"LEVEL": "32"}, Output: io.Discard})
	if err == nil {
		t.Fatal("level 32 accepted")
	}
}

// TestBaseDateTokens (D5): BASE_DATE 0 on a level 0 starts a chain, the
// returned DUMP_DATE as the next BASE_DATE makes a level 1 of the changes.
func TestBaseDateTokens(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "old"), []byte("x"), 0o644)
	time.Sleep(1100 * time.Millisecond) // tokens hold whole seconds
	dir := t.TempDir()
	res := backupDir(t, src, filepath.Join(dir, "0"), nil, Env{"BASE_DATE": "0"})
	tok := res.Env["DUMP_DATE"]
	lvl, when, err := ParseDumpDateToken(tok)
	if err != nil || lvl != 0 || when.Unix() != res.Date.Unix() {
		t.Fatalf("DUMP_DATE %q: %d %v %v", tok, lvl, when, err)
	}
	writeFile(t, filepath.Join(src, "new"), []byte("y"), 0o644)
	res1 := backupDir(t, src, filepath.Join(dir, "1"), nil, Env{"BASE_DATE": tok})
	if res1.Level != 1 {
		t.Errorf("token incremental level %d", res1.Level)
	}
	if got := imageFiles(t, filepath.Join(dir, "1")); strings.Join(got, ",") != "new" {
		t.Errorf("token incremental holds %v", got)
	}
	if _, err := Backup(context.Background(), BackupRequest{Dir: src, Env: Env{"BASE_DATE": "junk"}, Output: io.Discard}); err == nil {
		t.Error("BASE_DATE junk accepted")
	}
	var e *Error
	if _, err := Backup(context.Background(), BackupRequest{Dir: src, RecordSize: 2048, Output: io.Discard}); !errors.As(err, &e) || e.Msg != MsgRecordRange {
		t.Errorf("record size 2 KB: %v", err)
	}
}

// TestIgnoreCtime (D7): a file whose ctime alone changed is in the next
// incremental unless IGNORE_CTIME=Y.
func TestIgnoreCtime(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("x"), 0o644)
	writeFile(t, filepath.Join(src, "g"), []byte("y"), 0o644)
	time.Sleep(2 * baseSlack)
	st := tempCatalog(t)
	dir := t.TempDir()
	backupDir(t, src, filepath.Join(dir, "0"), st, nil)
	time.Sleep(2 * baseSlack)
	must(t, os.Chmod(filepath.Join(src, "f"), 0o600)) // ctime only
	time.Sleep(2 * baseSlack)
	backupDir(t, src, filepath.Join(dir, "1"), st, Env{"LEVEL": "1", "UPDATE": "N"})
	backupDir(t, src, filepath.Join(dir, "1i"), st, Env{"LEVEL": "1", "IGNORE_CTIME": "Y"})
	if got := strings.Join(imageFiles(t, filepath.Join(dir, "1")), ","); got != "f" {
		t.Errorf("level 1: %s", got)
	}
	if got := strings.Join(imageFiles(t, filepath.Join(dir, "1i")), ","); got != "" {
		t.Errorf("level 1 with IGNORE_CTIME=Y: %s", got)
	}
}

// removingHistory deletes a file when the first directory is written, after
// the walk has seen it.
type removingHistory struct {
	victim string
	done   bool
}

func (r *removingHistory) AddDir(DirHistory) error {
	if !r.done {
		r.done = true
		return os.Remove(r.victim)
	}
	return nil
}
func (r *removingHistory) AddNode(NodeHistory) error { return nil }

// TestFileRemovedDuringBackup: a file of a live directory removed during the
// backup is written empty and reported; the backup goes on.
func TestFileRemovedDuringBackup(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "keep"), []byte("keep"), 0o644)
	writeFile(t, filepath.Join(src, "victim"), []byte("gone soon"), 0o644)
	ev := &eventRecorder{}
	img := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(img)
	must(t, err)
	_, err = Backup(context.Background(), BackupRequest{Dir: src, Output: f, Env: Env{"HIST": "Y"},
		History: &removingHistory{victim: filepath.Join(src, "victim")}, Log: ev})
	must(t, err)
	must(t, f.Close())
	if !strings.Contains(strings.Join(ev.lines, ","), "Error file removed during the backup: victim") {
		t.Errorf("events %v", ev.lines)
	}
	dst := t.TempDir()
	restoreImage(t, img, dst, Env{"FORCE": "Y"})
	if b, err := os.ReadFile(filepath.Join(dst, "victim")); err != nil || len(b) != 0 {
		t.Errorf("victim: %q %v", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "keep")); string(b) != "keep" {
		t.Errorf("keep: %q", b)
	}
}
