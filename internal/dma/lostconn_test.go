package dma_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/dma"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// cutProxy relays loopback TCP connections to target until cut closes
// them all.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	t.Cleanup(p.cut)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// D8: when the only control connection of a local job is lost while the
// backup runs, Backup returns an error naming the lost connection (it
// used to panic at random, reporting the loss as that of a data server
// the local job does not have).
func TestLostControlConnection(t *testing.T) {
	n := startNode(t)
	n.ok("vserver", "create", "-vserver", "vs1")
	src := n.volume("vol1")
	for i := 0; i < 8; i++ {
		write(t, filepath.Join(src, fmt.Sprintf("f%d.bin", i)), strings.Repeat(fmt.Sprintf("%07d\n", i), 1<<17))
	}
	// Each round has a one in two chance to show the old panic; the
	// server frees the drive of a lost session a moment after the loss.
	busyUntil := time.Now().Add(testutil.HangGuard) // the drive is freed after the loss
	for i := 0; i < 4; i++ {
		p := newCutProxy(t, n.addr)
		j := n.job()
		j.Addr, j.FileSystem, j.TapeFile = p.ln.Addr().String(), "/vs1/vol1", 0
		var once sync.Once
		// The first report without a message comes at the start of the
		// backup; a report of a LOG_MESSAGE (such as the one explaining a
		// busy drive, posted before TAPE_OPEN's reply) must not cut.
		j.Progress = func(pr dma.Progress) {
			if pr.Message == "" {
				once.Do(p.cut)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), testutil.HangGuard)
		_, err := dma.Backup(ctx, j)
		cancel()
		if err != nil && strings.Contains(err.Error(), "in use by another session") && time.Now().Before(busyUntil) {
			i--
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "lost the control connection to "+j.Addr) {
			t.Fatalf("backup %d over a cut control connection: %v", i, err)
		}
	}
}
