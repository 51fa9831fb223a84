package filedump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// recordingWriter keeps what it is given and fails from call failAt on
// (0: never).
type recordingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	calls  int
	failAt int
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.failAt > 0 && r.calls >= r.failAt {
		return 0, errTest
	}
	return r.buf.Write(p)
}

func (r *recordingWriter) snapshot() ([]byte, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.buf.Bytes()...), r.calls
}

// TestAsyncWriter (D3): the image reaches the destination whole and in
// order in chunks just over 1 MiB; a destination error comes back from a
// later Write or Close and nothing is written after it; Abort drops what
// is queued and Write after Close fails.
func TestAsyncWriter(t *testing.T) {
	var want bytes.Buffer
	rec := &recordingWriter{}
	a := newAsyncWriter(rec)
	for i := 0; i < 1000; i++ {
		p := bytes.Repeat([]byte{byte(i)}, 10240-i)
		want.Write(p)
		if n, err := a.Write(p); err != nil || n != len(p) {
			t.Fatalf("Write %d: %d %v", i, n, err)
		}
	}
	must(t, a.Close())
	got, calls := rec.snapshot()
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("destination got %d bytes, want %d (or different bytes)", len(got), want.Len())
	}
	if wantCalls := (want.Len() + asyncChunk - 1) / asyncChunk; calls != wantCalls {
		t.Errorf("%d writes to the destination, want %d", calls, wantCalls)
	}
	if _, err := a.Write([]byte("late")); !errors.Is(err, errAsyncClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	a.Abort() // harmless after Close

	// The second chunk fails: the error comes back, nothing more is written.
	rec = &recordingWriter{failAt: 2}
	a = newAsyncWriter(rec)
	var werr error
	for i := 0; i < 10*asyncChunk/4096 && werr == nil; i++ {
		_, werr = a.Write(make([]byte, 4096))
	}
	cerr := a.Close()
	if !errors.Is(werr, errTest) && !errors.Is(cerr, errTest) {
		t.Fatalf("destination error lost: Write %v, Close %v", werr, cerr)
	}
	if !errors.Is(cerr, errTest) {
		t.Errorf("Close after a failed write: %v", cerr)
	}
	if _, calls := rec.snapshot(); calls != 2 {
		t.Errorf("%d writes to the destination, want 2 (none after the error)", calls)
	}

	// Abort: what is queued is dropped.
	block := make(chan struct{})
	bw := &blockingWriter{release: block}
	a = newAsyncWriter(bw)
	for i := 0; i < 2; i++ {
		_, err := a.Write(make([]byte, asyncChunk))
		must(t, err)
	}
	go func() { time.Sleep(50 * time.Millisecond); close(block) }()
	a.Abort()
	if n := bw.count(); n > 1 {
		t.Errorf("%d chunks written after Abort, want at most the one in progress", n)
	}
}

type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	n       int
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	b.mu.Lock()
	b.n++
	b.mu.Unlock()
	return len(p), nil
}

func (b *blockingWriter) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// TestPipelineFileSizes (D4): files around the prefetcher's limits (empty,
// one byte, record and batch boundaries, larger than a batch, sparse small
// and large, more files than a batch holds) come back equal, holes too,
// from our restore and from Linux restore.
func TestPipelineFileSizes(t *testing.T) {
	src := t.TempDir()
	sizes := []int{0, 1, 1023, 1024, 1025, 4096, batchData - 1, batchData, batchData + 1, 3*batchData + 7}
	for i, n := range sizes {
		data := bytes.Repeat([]byte(fmt.Sprintf("%d-", i)), n/2+1)[:n]
		writeFile(t, filepath.Join(src, "sizes", fmt.Sprintf("s%02d", i)), data, 0o644)
	}
	for i := 0; i < batchFiles*2+5; i++ {
		writeFile(t, filepath.Join(src, "many", fmt.Sprintf("m%04d", i)), []byte(strings.Repeat("m", i)), 0o600)
	}
	for _, sz := range []int64{64 << 10, 4 << 20} {
		p := filepath.Join(src, "sparse", fmt.Sprintf("h%d", sz))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		f, err := os.Create(p)
		must(t, err)
		_, err = f.WriteAt([]byte("head"), 0)
		must(t, err)
		_, err = f.WriteAt([]byte("tail"), sz-4)
		must(t, err)
		must(t, f.Close())
	}
	want := snapshotTree(t, src)
	img := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(img)
	must(t, err)
	res, err := Backup(context.Background(), BackupRequest{Dir: src, Output: f})
	must(t, err)
	must(t, f.Close())
	if fi, err := os.Stat(img); err != nil || fi.Size() != res.Bytes {
		t.Fatalf("image of %v bytes, result says %d (%v)", fi.Size(), res.Bytes, err)
	}
	dst := t.TempDir()
	restoreImage(t, img, dst, Env{"FORCE": "Y"})
	got := snapshotTree(t, dst, "restore_symboltable")
	delete(want, ".")
	delete(got, ".")
	compareTrees(t, want, got)
	for _, sz := range []int64{64 << 10, 4 << 20} {
		var st unix.Stat_t
		must(t, unix.Stat(filepath.Join(dst, "sparse", fmt.Sprintf("h%d", sz)), &st))
		if st.Blocks*512 >= sz {
			t.Errorf("sparse file of %d bytes restored with %d blocks: its hole is gone", sz, st.Blocks)
		}
	}
	testutil.RequireTool(t, "restore")
	ldst := t.TempDir()
	linuxRestore(t, ldst, "-r", "-f", img)
	lgot := snapshotTree(t, ldst, "restoresymtable")
	delete(lgot, ".")
	compareTrees(t, want, lgot)
}

// changingHistory changes the tree when the first directory entry is
// reported (phase III), before phase IV reads the files.
type changingHistory struct {
	once   sync.Once
	change func() error
	err    error
}

func (c *changingHistory) AddDir(DirHistory) error {
	c.once.Do(func() { c.err = c.change() })
	return c.err
}
func (c *changingHistory) AddNode(NodeHistory) error { return nil }

// TestLiveChangesBeforePhaseIV (D3, D4): in a live directory, a regular
// file that became a FIFO is dumped as a FIFO without waiting for a
// writer, a file that shrank is padded with zeros to its new size, a file
// that became a directory is a clear error.
func TestLiveChangesBeforePhaseIV(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "fifo"), []byte("soon a fifo"), 0o644)
	writeFile(t, filepath.Join(src, "shrinks"), bytes.Repeat([]byte("s"), 100000), 0o644)
	writeFile(t, filepath.Join(src, "plain"), []byte("plain"), 0o644)
	hist := &changingHistory{change: func() error {
		if err := os.Remove(filepath.Join(src, "fifo")); err != nil {
			return err
		}
		if err := unix.Mkfifo(filepath.Join(src, "fifo"), 0o600); err != nil {
			return err
		}
		return os.Truncate(filepath.Join(src, "shrinks"), 5000)
	}}
	img := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(img)
	must(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := Backup(context.Background(), BackupRequest{Dir: src, Output: f, Env: Env{"HIST": "Y"}, History: hist})
		done <- err
	}()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(testutil.HangGuard):
		t.Fatal("backup hangs on a file that became a FIFO")
	}
	must(t, f.Close())
	dst := t.TempDir()
	restoreImage(t, img, dst, Env{"FORCE": "Y"})
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(dst, "fifo"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo restored with mode %o", st.Mode)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "shrinks")); err != nil || !bytes.Equal(b, bytes.Repeat([]byte("s"), 5000)) {
		t.Errorf("shrunk file: %d bytes, %v", len(b), err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "plain")); string(b) != "plain" {
		t.Errorf("plain: %q", b)
	}

	// A file that became a directory.
	src2 := t.TempDir()
	writeFile(t, filepath.Join(src2, "x"), []byte("x"), 0o644)
	hist2 := &changingHistory{change: func() error {
		if err := os.Remove(filepath.Join(src2, "x")); err != nil {
			return err
		}
		return os.Mkdir(filepath.Join(src2, "x"), 0o755)
	}}
	_, err = Backup(context.Background(), BackupRequest{Dir: src2, Output: io.Discard, Env: Env{"HIST": "Y"}, History: hist2})
	if err == nil || !strings.Contains(err.Error(), "became a directory") {
		t.Errorf("file turned directory: %v", err)
	}
}

// TestCancelInPhaseIV (D3): a backup cancelled while phase IV runs returns
// the cancellation, and its goroutines close every file they opened.
func TestCancelInPhaseIV(t *testing.T) {
	src := t.TempDir()
	for i := 0; i < 3000; i++ {
		writeFile(t, filepath.Join(src, fmt.Sprintf("d%d", i/500), fmt.Sprintf("f%04d", i)), []byte("data"), 0o644)
	}
	writeFile(t, filepath.Join(src, "zbig"), make([]byte, 1<<20), 0o644)
	before := openFDs(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Backup(ctx, BackupRequest{Dir: src, Output: io.Discard, Progress: func(p Progress) {
		if p.Phase == PhaseFiles && p.Files >= 1000 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled backup: %v", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before the backup, %d after", before, after)
	}
}
