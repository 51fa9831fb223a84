package volimage

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"golang.org/x/sys/unix"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, data, 0o644))
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// reflink makes dst share all of src's data (FICLONE).
func reflink(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	must(t, err)
	defer in.Close()
	out, err := os.Create(dst)
	must(t, err)
	defer out.Close()
	must(t, unix.IoctlFileClone(int(out.Fd()), int(in.Fd())))
}

// fillTree makes every kind of entry, shared data, a hole and old times.
func fillTree(t *testing.T, root string) {
	t.Helper()
	p := func(s string) string { return filepath.Join(root, s) }
	old := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	writeFile(t, p("dir/small"), []byte("small file"))
	writeFile(t, p("dir/sub/big"), random(t, 3<<20+123))
	writeFile(t, p("shared/orig"), random(t, 4<<20))
	for _, n := range []string{"copy1", "copy2", "copy3"} {
		reflink(t, p("shared/orig"), p("shared/"+n))
	}
	f, err := os.Create(p("sparse"))
	must(t, err)
	_, _ = f.WriteAt(random(t, 4096), 0)
	_, _ = f.WriteAt(random(t, 4096), 8<<20)
	must(t, f.Truncate(16<<20))
	f.Close()
	must(t, os.Link(p("dir/small"), p("hard")))
	must(t, os.Symlink("dir/small", p("link")))
	must(t, unix.Mkfifo(p("fifo"), 0o640))
	must(t, unix.Mknod(p("dev"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 5))))
	must(t, unix.Setxattr(p("dir/small"), "user.k", []byte("v"), 0))
	must(t, os.Chown(p("dir/sub"), 1000, 100))
	must(t, os.Chmod(p("dir/sub/big"), 0o4751|os.ModeSetuid))
	must(t, os.Chown(p("dir/sub/big"), 1234, 1234))
	for _, s := range []string{"dir/small", "dir/sub/big", "dir/sub", "dir", "shared/copy2"} {
		must(t, os.Chtimes(p(s), old, old))
	}
}

// changeTree changes the tree as the time between two snapshots does.
func changeTree(t *testing.T, root string) {
	t.Helper()
	p := func(s string) string { return filepath.Join(root, s) }
	writeFile(t, p("dir/small"), []byte("SMALL FILE")) // same size, new data, still linked as hard
	must(t, os.Rename(p("dir/sub"), p("moved")))       // a directory moves
	must(t, os.Remove(p("shared/copy3")))
	writeFile(t, p("shared/new"), random(t, 100000))
	must(t, os.Remove(p("link")))
	must(t, os.Mkdir(p("link"), 0o711)) // a symlink becomes a directory
	writeFile(t, p("link/inside"), []byte("x"))
	must(t, os.Remove(p("fifo")))
	writeFile(t, p("fifo"), []byte("now a file"))
	must(t, os.Chmod(p("shared/orig"), 0o600)) // attributes only
}

type fsEnv struct {
	src, dst string
	prov     snapshot.Provider
	snaps    []Source
}

// snap takes a snapshot of the source volume with the file system's
// provider, with its identity map.
func (e *fsEnv) snap(t *testing.T, name string, at time.Time) Source {
	t.Helper()
	info, err := e.prov.Create(context.Background(), e.src, name)
	must(t, err)
	ids, err := e.prov.Identity(e.src, name)
	must(t, err)
	s := Source{Snapshot: smtape.Snapshot{Name: name, Created: at, ID: uint64(len(e.snaps) + 1)}, Dir: info.Path, IDs: ids}
	e.snaps = append(e.snaps, s)
	return s
}

func btrfsEnv(t *testing.T) *fsEnv { return newFSEnv(t, "btrfs") }

func btrfsProvider() snapshot.Provider { return snapshot.Btrfs{} }

// newFSEnv makes a source and a destination file system of a type: btrfs
// (btrfs snapshots) or XFS (reflink snapshots, whose inode numbers differ
// from the volume's).
func newFSEnv(t *testing.T, fstype string) *fsEnv {
	if fstype == "xfs" {
		return &fsEnv{src: testutil.LoopFS(t, "xfs", 512, "-m", "reflink=1"), dst: testutil.LoopFS(t, "xfs", 512, "-m", "reflink=1"), prov: snapshot.Reflink{}}
	}
	return &fsEnv{src: testutil.LoopFS(t, "btrfs", 400), dst: testutil.LoopFS(t, "btrfs", 400), prov: snapshot.Btrfs{}}
}

func (e *fsEnv) makeSnapshot(t *testing.T) func(string, time.Time) error {
	return func(name string, _ time.Time) error {
		_, err := e.prov.Create(context.Background(), e.dst, name)
		return err
	}
}

// TestImageRoundTrip (S2, S4, S5): an image of two snapshots restores
// both, each equal to its source (content, types, owners, modes, times,
// xattrs, hard links, holes); reflinked copies are stored once in the
// image and share their extents again after the restore. On btrfs and XFS.
func TestImageRoundTrip(t *testing.T) {
	for _, fstype := range []string{"btrfs", "xfs"} {
		t.Run(fstype, func(t *testing.T) { roundTrip(t, newFSEnv(t, fstype)) })
	}
}

func roundTrip(t *testing.T, e *fsEnv) {
	fillTree(t, e.src)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	e.snap(t, "s1", t0)
	changeTree(t, e.src)
	e.snap(t, "s2", t0.Add(time.Hour))
	hdr := &smtape.Header{Time: t0.Add(time.Hour), Mode: smtape.Baseline, Volume: "vol1"}
	var img bytes.Buffer
	stats, err := WriteImage(context.Background(), &img, hdr, nil, e.snaps)
	must(t, err)
	unique := int64(3<<20 + 123 + 4<<20 + 100000 + 2*4096 + 64)
	if int64(img.Len()) > unique*11/10 {
		t.Errorf("image of %d bytes for %d bytes of unique data (stats %+v)", img.Len(), unique, stats)
	}
	_, st, rstats, err := RestoreImage(context.Background(), &img, e.dst, RestoreOptions{MakeSnapshot: e.makeSnapshot(t)})
	must(t, err)
	for _, s := range e.snaps {
		testutil.CompareManifests(t, testutil.TreeManifest(t, filepath.Join(e.dst, snapshot.Dir, s.Snapshot.Name)), testutil.TreeManifest(t, s.Dir))
	}
	testutil.CompareManifests(t, testutil.TreeManifest(t, e.dst), testutil.TreeManifest(t, e.snaps[1].Dir))
	if rstats.ClonedBytes < 2*(4<<20) {
		t.Errorf("restore cloned %d bytes; the copies of shared/orig must be clones (%+v)", rstats.ClonedBytes, rstats)
	}
	assertShared(t, filepath.Join(e.dst, "shared/orig"), filepath.Join(e.dst, "shared/copy1"))
	assertHole(t, filepath.Join(e.dst, "sparse"), 4096, 8<<20)
	if st.SetID != hdr.SetID || !st.Time.Equal(hdr.Time) {
		t.Errorf("state %x %v", st.SetID, st.Time)
	}
}

// TestIncremental (S3, S4): an incremental image from the previous
// snapshot restores onto the baseline's result; an image whose base is
// another time, or of another set, is refused with the spec's messages.
func TestIncremental(t *testing.T) {
	e := btrfsEnv(t)
	fillTree(t, e.src)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	s1 := e.snap(t, "s1", t0)
	base := &smtape.Header{SetID: [16]byte{1}, Time: t0, Mode: smtape.Baseline}
	var img bytes.Buffer
	_, err := WriteImage(context.Background(), &img, base, nil, []Source{s1})
	must(t, err)
	_, st, _, err := RestoreImage(context.Background(), &img, e.dst, RestoreOptions{MakeSnapshot: e.makeSnapshot(t)})
	must(t, err)
	changeTree(t, e.src)
	s2 := e.snap(t, "s2", t0.Add(time.Hour))
	inc := &smtape.Header{SetID: base.SetID, Time: s2.Snapshot.Created, BaseTime: t0, Mode: smtape.Incremental, Sequence: 1}
	img.Reset()
	stats, err := WriteImage(context.Background(), &img, inc, &s1, []Source{s2})
	must(t, err)
	if stats.DataBytes > 200000 {
		t.Errorf("incremental read %d bytes of data; only the changed files should be read", stats.DataBytes)
	}
	incImg := img.Bytes()
	wrong := *st
	wrong.Time = t0.Add(time.Minute)
	if _, _, _, err := RestoreImage(context.Background(), bytes.NewReader(incImg), e.dst, RestoreOptions{State: &wrong}); !errors.Is(err, &smtape.Error{Message: "Mismatch in backup time stamp"}) {
		t.Fatalf("wrong base time: %v", err)
	}
	other := *st
	other.SetID[0] = 9
	if _, _, _, err := RestoreImage(context.Background(), bytes.NewReader(incImg), e.dst, RestoreOptions{State: &other}); smtape.Message(err) != "Mismatch in backup set ID" {
		t.Fatalf("wrong set: %v", err)
	}
	_, _, _, err = RestoreImage(context.Background(), bytes.NewReader(incImg), e.dst, RestoreOptions{State: st, MakeSnapshot: e.makeSnapshot(t)})
	must(t, err)
	testutil.CompareManifests(t, testutil.TreeManifest(t, e.dst), testutil.TreeManifest(t, s2.Dir))
	testutil.CompareManifests(t, testutil.TreeManifest(t, filepath.Join(e.dst, snapshot.Dir, "s1")), testutil.TreeManifest(t, s1.Dir))
}

// assertShared fails unless the two files' first extents are one.
func assertShared(t *testing.T, a, b string) {
	t.Helper()
	ea, eb := extentsOf(t, a), extentsOf(t, b)
	if len(ea) == 0 || len(eb) == 0 || ea[0].Physical != eb[0].Physical || ea[0].Flags&extentShared == 0 {
		t.Errorf("%s and %s do not share their data: %+v / %+v", a, b, first(ea), first(eb))
	}
}

func first(e []extent) any {
	if len(e) == 0 {
		return nil
	}
	return e[0]
}

// assertHole fails unless the range [from, to) of the file is a hole.
func assertHole(t *testing.T, p string, from, to uint64) {
	t.Helper()
	for _, e := range extentsOf(t, p) {
		if e.Logical < to && e.Logical+e.Length > from {
			t.Errorf("%s: extent %+v inside the hole [%d, %d)", p, e, from, to)
		}
	}
}

func extentsOf(t *testing.T, p string) []extent {
	t.Helper()
	f, err := os.Open(p)
	must(t, err)
	defer f.Close()
	ex, err := fiemap(int(f.Fd()))
	must(t, err)
	return ex
}

// tapes is a TapeChanger of tapes of at least size bytes.
type tapes struct {
	data [][]byte
	size int
}

func (c *tapes) Write(p []byte) (int, error) {
	c.data[len(c.data)-1] = append(c.data[len(c.data)-1], p...)
	return len(p), nil
}

func (c *tapes) NextTape() (io.Writer, error) {
	if len(c.data[len(c.data)-1]) < c.size {
		return nil, nil
	}
	c.data = append(c.data, nil)
	return c, nil
}

// inOrder lists the tapes after the first.
func inOrder(n int) []int {
	var o []int
	for i := 1; i < n; i++ {
		o = append(o, i)
	}
	return o
}

// TestImageAcrossTapes (S9, S10): an image written over three tapes, each
// starting with its header, restores exactly when the tapes come in
// order; a tape from another image or out of order is refused.
func TestImageAcrossTapes(t *testing.T) {
	e := btrfsEnv(t)
	fillTree(t, e.src)
	s1 := e.snap(t, "s1", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	c := &tapes{data: [][]byte{nil}, size: 2 << 20}
	_, err := WriteImage(context.Background(), c, &smtape.Header{SetID: [16]byte{7}, Time: s1.Snapshot.Created}, nil, []Source{s1})
	must(t, err)
	if len(c.data) < 3 {
		t.Fatalf("%d tapes", len(c.data))
	}
	for i, tp := range c.data {
		if h, err := smtape.ReadHeader(bytes.NewReader(tp)); err != nil || int(h.Tape) != i+1 {
			t.Fatalf("tape %d header: %v", i+1, err)
		}
	}
	feed := func(order ...int) func() (io.Reader, error) {
		return func() (io.Reader, error) {
			if len(order) == 0 {
				return nil, errors.New("no more tapes")
			}
			r := bytes.NewReader(c.data[order[0]])
			order = order[1:]
			return r, nil
		}
	}
	_, _, _, err = RestoreImage(context.Background(), bytes.NewReader(c.data[0]), e.dst, RestoreOptions{NextTape: feed(2, 1)})
	if smtape.Message(err) != "Tapes out of order" {
		t.Fatalf("tape 3 after tape 1: %v", err)
	}
	dst := testutil.LoopFS(t, "btrfs", 400)
	_, _, _, err = RestoreImage(context.Background(), bytes.NewReader(c.data[0]), dst, RestoreOptions{NextTape: feed(inOrder(len(c.data))...)})
	must(t, err)
	testutil.CompareManifests(t, testutil.TreeManifest(t, dst), testutil.TreeManifest(t, s1.Dir))
}
