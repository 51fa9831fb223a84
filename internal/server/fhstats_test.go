package server

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// longName pads file names to 240 bytes, so every FH_ADD_DIR entry is
// large and the posts outgrow the socket buffers sooner.
var longName = strings.Repeat("n", 229)

// manyFiles writes n empty files below dir, 500 to a directory, so a
// backup with HIST=Y produces more file history than the FH queue and the
// socket buffers hold.
func manyFiles(t testing.TB, dir string, n int) {
	t.Helper()
	manyFilesIn(t, dir, n, 500)
}

// fhFiles and fhPerDir make a data set whose file history fills the queue
// of a slowDMA's backup with some 60 posts (two a directory: its entries,
// then its node), twice what the queue and the buffers hold.
const fhFiles, fhPerDir = 1500, 50

// manyFilesIn is manyFiles with perDir files to a directory.
func manyFilesIn(t testing.TB, dir string, n, perDir int) {
	t.Helper()
	for i := 0; i < n; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("g%02d", i/perDir))
		if i%perDir == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		name := fmt.Sprintf("%06d-%s.txt", i, longName)
		if err := os.WriteFile(filepath.Join(sub, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// slowDMA is a DMA whose post handler stops at the first file history post
// until it is released, like a DMA that cannot keep up with its catalog.
// Its socket receive buffer and the server's send buffer of its
// connection are small so that the server feels it after a few posts
// (loopback TCP otherwise buffers megabytes: tens of thousands of files).
type slowDMA struct {
	c       *ndmp.Client
	release chan struct{}
	once    sync.Once
	fhNodes atomic.Int64
	fhDirs  atomic.Int64
	blocked atomic.Bool
	// stopped is closed when the handler first stops.
	stopped     chan struct{}
	stoppedOnce sync.Once
	posts       *posts
	// blockOn, if not nil, chooses the posts the handler stops at
	// (default: every file history post).
	blockOn func(m *ndmp.Message) bool
}

func (f *fixture) dialSlowDMA(t *testing.T, blockOn func(*ndmp.Message) bool) *slowDMA {
	t.Helper()
	d := &slowDMA{release: make(chan struct{}), stopped: make(chan struct{}), posts: newPosts(), blockOn: blockOn}
	dialer := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return setSockBuf(rc, syscall.SO_RCVBUF, 4096)
	}}
	nc, err := dialer.DialContext(f.ctx, "tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	d.c = ndmp.NewClient(nc, &ndmp.ClientConfig{Conn: ndmp.Config{QueueLength: 1}, PostHandler: func(ctx context.Context, m *ndmp.Message) {
		d.posts.handler(ctx, m)
		if d.blockOn != nil && d.blockOn(m) {
			d.wait()
		}
		switch b := m.Body.(type) {
		case *ndmp.FHAddNodePost:
			if d.blockOn == nil {
				d.wait()
			}
			d.fhNodes.Add(int64(len(b.Nodes)))
		case *ndmp.FHAddDirPost:
			if d.blockOn == nil {
				d.wait()
			}
			d.fhDirs.Add(int64(len(b.Dirs)))
		}
	}})
	t.Cleanup(func() { d.unblock(); d.c.Conn().Close() })
	if err := d.c.Connect(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.c.AuthMD5(f.ctx, testUser, f.ndmpPW); err != nil {
		t.Fatal(err)
	}
	f.shrinkServerSendBuffer(t, nc.LocalAddr())
	return d
}

// setSockBuf sets the socket buffer opt (SO_RCVBUF, SO_SNDBUF) of rc to n
// bytes, which also stops the kernel from growing it.
func setSockBuf(rc syscall.RawConn, opt, n int) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, n)
	})
	if err != nil {
		return err
	}
	return serr
}

// shrinkServerSendBuffer gives the server's end of the connection from
// client a 4 KiB send buffer.
func (f *fixture) shrinkServerSendBuffer(t *testing.T, client net.Addr) {
	t.Helper()
	f.srv.mu.Lock()
	var nc net.Conn
	for _, ss := range f.srv.sessions {
		if ss.remote.String() == client.String() {
			nc = ss.conn.NetConn()
		}
	}
	f.srv.mu.Unlock()
	sc, ok := nc.(syscall.Conn)
	if !ok {
		t.Fatalf("no TCP session for %v", client)
	}
	rc, err := sc.SyscallConn()
	if err == nil {
		err = setSockBuf(rc, syscall.SO_SNDBUF, 4096)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func (d *slowDMA) wait() {
	d.blocked.Store(true)
	d.stoppedOnce.Do(func() { close(d.stopped) })
	<-d.release
}

// waitStopped waits until the handler has stopped at a post.
func (d *slowDMA) waitStopped(t *testing.T) bool {
	t.Helper()
	select {
	case <-d.stopped:
		return true
	case <-time.After(hangGuard):
		return false
	}
}

func (d *slowDMA) unblock() { d.once.Do(func() { close(d.release) }) }

// startHistBackup starts a local dump of /vs1/vol1 with HIST=Y on nrst0l.
func startHistBackup(t *testing.T, f *fixture, c *ndmp.Client) {
	t.Helper()
	startLocalBackup(t, f, c, []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}, {Name: "HIST", Value: "Y"}, {Name: "LEVEL", Value: "0"}})
}

// startLocalBackup opens nrst0l, connects the mover and the data service
// LOCAL and starts a dump backup with env.
func startLocalBackup(t *testing.T, f *fixture, c *ndmp.Client, env []ndmp.Pval) {
	t.Helper()
	ctx := f.ctx
	wantErr(t, "tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "record size", c.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	wantErr(t, "window", c.MoverSetWindow(ctx, 0, math.MaxUint64), ndmp.NoErr)
	if _, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrLocal); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "data connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}), ndmp.NoErr)
	wantErr(t, "start backup", c.DataStartBackup(ctx, "dump", env), ndmp.NoErr)
}

// loginReader logs a DMA in that answers every NOTIFY_DATA_READ with a
// MOVER_READ of the same range and hands every post to handle.
func loginReader(f *fixture, handle func(context.Context, *ndmp.Message)) *ndmp.Client {
	var c *ndmp.Client
	c = f.login(&ndmp.ClientConfig{PostHandler: func(ctx context.Context, m *ndmp.Message) {
		if p, ok := m.Body.(*ndmp.NotifyDataReadPost); ok {
			_ = c.MoverRead(ctx, p.Offset, p.Length)
		}
		handle(ctx, m)
	}})
	return c
}

// fhFull is the file history queue depth of a backup whose producer waits
// on a full queue: FHQueueLength posts queued and one more counted by the
// waiting sender. A DMA that stops reading brings every backup with
// enough history to it, and it lasts until the DMA reads again.
const fhFull = FHQueueLength + 1

// fhMaxDepth bounds the depth a reading can show: fhFull, and the post the
// sending goroutine has just taken from the queue and not yet counted out
// when a new sender is already counted in.
const fhMaxDepth = fhFull + 1

// waitFHFull waits until cond, which reads the queue state and is called
// again and again, holds, failing if the depth it reports exceeds
// fhMaxDepth or if hangGuard passes (a backup with too little history for
// the buffers between it and the DMA waits with a shorter queue).
func (f *fixture) waitFHFull(t testing.TB, what string, cond func() (depth int, ok bool)) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		depth, ok := cond()
		if depth > fhMaxDepth {
			t.Fatalf("%s: file history queue depth %d, more than %d", what, depth, fhMaxDepth)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no full file history queue after %v: %+v", what, hangGuard, f.srv.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitUntil polls cond until it holds or d (at least hangGuard: it only
// guards against a hang) passes.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(max(d, hangGuard))
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
