package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// hangGuard bounds every wait of the restart test; it only stops a hang.
const hangGuard = 2 * time.Minute

// postBox collects the posts of one NDMP session.
type postBox struct {
	mu sync.Mutex
	ms []*ndmp.Message
	ch chan struct{}
}

func newPostBox() *postBox { return &postBox{ch: make(chan struct{}, 1)} }

func (b *postBox) handle(_ context.Context, m *ndmp.Message) {
	b.mu.Lock()
	b.ms = append(b.ms, m)
	b.mu.Unlock()
	select {
	case b.ch <- struct{}{}:
	default:
	}
}

// wait returns the first post with the given code, waiting for it.
func (b *postBox) wait(t *testing.T, code ndmp.MessageCode) *ndmp.Message {
	t.Helper()
	guard := time.After(hangGuard)
	for {
		b.mu.Lock()
		for _, m := range b.ms {
			if m.Header.MessageCode == code {
				b.mu.Unlock()
				return m
			}
		}
		b.mu.Unlock()
		select {
		case <-b.ch:
		case <-guard:
			t.Fatalf("no %v post", code)
		}
	}
}

// node is a running tapestryd with the admin API client and the NDMP
// address and password of cluster user admin.
type node struct {
	p      *proc
	c      *admin.Client
	addr   string
	ndmpPW string
}

func (n *node) do(t *testing.T, method, path string, in, out any) {
	t.Helper()
	if err := n.c.Do(context.Background(), method, path, nil, in, out); err != nil {
		t.Fatalf("%s %s: %v\n%s", method, path, err, n.p.log())
	}
}

func startNodeAt(t *testing.T, bin, dir string) *node {
	t.Helper()
	n := &node{p: startDaemon(t, bin, dir), c: admin.NewClient(filepath.Join(dir, "admin.sock"), "admin", pw)}
	n.c.SetPrivilege(admin.PrivAdvanced) // volume snapshot lock
	t.Cleanup(func() { n.c.Close() })
	var lifs admin.Records[storage.LIF]
	n.do(t, http.MethodGet, "/api/network/ip/interfaces", nil, &lifs)
	for _, l := range lifs.Records {
		if l.Role == storage.RoleNodeMgmt {
			n.addr = net.JoinHostPort(l.Address.String(), strconv.Itoa(l.Port))
		}
	}
	var out admin.NDMPPassword
	n.do(t, http.MethodPost, "/api/private/cli/vserver/services/ndmp/generate-password", admin.NDMPPasswordRequest{SVM: "cluster1", User: "admin"}, &out)
	n.ndmpPW = out.Password
	return n
}

// snapshots returns the snapshot records of volume uuid.
func (n *node) snapshots(t *testing.T, uuid string) map[string]storage.Snapshot {
	t.Helper()
	var recs admin.Records[storage.Snapshot]
	n.do(t, http.MethodGet, "/api/storage/volumes/"+uuid+"/snapshots", nil, &recs)
	m := map[string]storage.Snapshot{}
	for _, p := range recs.Records {
		m[p.Name] = p
	}
	return m
}

// startBackup logs in over NDMP and starts a dump of path to drive nrstNl
// through a local mover whose window holds window records.
func (n *node) startBackup(t *testing.T, drive int, path string, window uint64) (*ndmp.Client, *postBox) {
	t.Helper()
	ctx := context.Background()
	box := newPostBox()
	c, err := ndmp.Dial(ctx, n.addr, &ndmp.ClientConfig{PostHandler: box.handle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Conn().Close() })
	const rec = 64 << 10
	steps := []func() error{
		func() error { return c.Connect(ctx) },
		func() error { return c.AuthMD5(ctx, "admin", n.ndmpPW) },
		func() error { return c.TapeOpen(ctx, fmt.Sprintf("nrst%dl", drive), ndmp.TapeRDWRMode) },
		func() error { return c.MoverSetRecordSize(ctx, rec) },
		func() error { return c.MoverSetWindow(ctx, 0, window*rec) },
		func() error { _, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrLocal); return err },
		func() error { return c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}) },
		func() error {
			return c.DataStartBackup(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: path}, {Name: "HIST", Value: "N"}})
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("backup of %s, step %d: %v\n%s", path, i, err, n.p.log())
		}
	}
	return c, box
}

// Issue 11 item 9 (N13): tapestryd killed with SIGKILL while two backups
// run (one on a snapshot it made, one on a named snapshot an administrator
// also locked). The next start releases the dead backups' locks, deletes
// the backup's own snapshot (record and copy), keeps the administrator's
// lock, and a new backup of the volume works.
func TestKill9DuringBackup(t *testing.T) {
	bin := buildDaemon(t)
	dir := filepath.Join(t.TempDir(), "d")
	volDir := filepath.Join(t.TempDir(), "vol1")
	if err := os.MkdirAll(volDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if err := os.WriteFile(filepath.Join(volDir, fmt.Sprintf("f%d", i)), []byte(strings.Repeat(fmt.Sprint(i), 3<<20)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := startNodeAt(t, bin, dir)
	n.do(t, http.MethodPost, "/api/svm/svms", admin.SVMCreate{Name: "vs1"}, nil)
	var vol storage.Volume
	n.do(t, http.MethodPost, "/api/storage/volumes", admin.VolumeCreate{SVM: "vs1", Name: "vol1", Path: volDir, SnapshotProvider: "copy"}, &vol)
	n.do(t, http.MethodPost, "/api/storage/volumes/"+vol.UUID+"/snapshots", admin.SnapshotCreate{Name: "nightly"}, nil)
	n.do(t, http.MethodPost, "/api/private/cli/volume/snapshot/lock", admin.SnapshotLock{SVM: "vs1", Volume: "vol1", Snapshot: "nightly", Owner: "hold"}, nil)

	// Two backups held at the end of their mover windows: both are in
	// progress, each with its snapshot locked.
	for i, path := range []string{"/vs1/vol1", "/vs1/vol1/.snapshot/nightly"} {
		_, box := n.startBackup(t, i, path, 2)
		if p := box.wait(t, ndmp.NotifyMoverPaused).Body.(*ndmp.NotifyMoverPausedPost); p.Reason != ndmp.MoverPauseEOW {
			t.Fatalf("%s: mover paused %v", path, p.Reason)
		}
	}
	before := n.snapshots(t, vol.UUID)
	var auto storage.Snapshot
	for name, p := range before {
		if strings.HasPrefix(name, "snapshot_for_backup.") {
			auto = p
		}
	}
	if auto.Name == "" || !auto.Locked() || len(before["nightly"].Owners) != 2 {
		t.Fatalf("snapshots during the backups: %+v", before)
	}
	n.c.Close()
	if err := n.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = n.p.wait(t)

	n = startNodeAt(t, bin, dir)
	after := n.snapshots(t, vol.UUID)
	if len(after) != 1 || !slices.Equal(after["nightly"].Owners, []string{"hold"}) {
		t.Fatalf("snapshots after the restart: %+v\n%s", after, n.p.log())
	}
	if _, err := os.Lstat(auto.HostPath); !os.IsNotExist(err) {
		t.Errorf("the copy of %s is still on the host (%v)", auto.Name, err)
	}
	if !strings.Contains(n.p.log(), "released a snapshot lock of an earlier run") {
		t.Errorf("the release is not logged:\n%s", n.p.log())
	}
	// The administrator's lock still holds; unlocked, nightly goes.
	if err := n.c.Do(context.Background(), http.MethodDelete, "/api/storage/volumes/"+vol.UUID+"/snapshots/nightly", nil, nil, nil); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("delete of the administrator-locked snapshot: %v", err)
	}
	n.do(t, http.MethodPost, "/api/private/cli/volume/snapshot/unlock", admin.SnapshotLock{SVM: "vs1", Volume: "vol1", Snapshot: "nightly", Owner: "hold"}, nil)
	n.do(t, http.MethodDelete, "/api/storage/volumes/"+vol.UUID+"/snapshots/"+url.PathEscape("nightly"), nil, nil)

	// A new backup of the volume runs to the end and leaves no snapshot.
	_, box := n.startBackup(t, 0, "/vs1/vol1", math.MaxUint64/(64<<10))
	if h := box.wait(t, ndmp.NotifyDataHalted).Body.(*ndmp.NotifyDataHaltedPost); h.Reason != ndmp.DataHaltSuccessful {
		t.Fatalf("backup after the restart halted %v\n%s", h.Reason, n.p.log())
	}
	if left := n.snapshots(t, vol.UUID); len(left) != 0 {
		t.Fatalf("snapshots after the new backup: %+v", left)
	}
	_ = n.p.cmd.Process.Signal(syscall.SIGTERM)
	if err := n.p.wait(t); err != nil {
		t.Fatal(err)
	}
}
