package smtapesvc

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/engine/volimage"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

type env struct {
	ctx      context.Context
	st       *storage.Service
	lib      *vtl.Library
	m        *Manager
	src, dst string
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newEnv makes an RW volume vol1 with 7 MB of data and a snapshot "base",
// a restricted DP volume dp1 (both btrfs), and a library of one drive and
// cartridges of 4 MB whose early warning comes 2 MB before their end
// (room for the chunk in progress, at most 1 MB, and two records), so
// that the image needs four of them.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // hang guard
	t.Cleanup(cancel)
	store := testutil.OpenCatalog(t, filepath.Join(t.TempDir(), "c.db"))
	st := storage.New(store, storage.Options{})
	_, err := st.Init(ctx, storage.InitOptions{})
	must(t, err)
	_, err = st.CreateSVM(ctx, storage.SVMSpec{Name: "vs1"})
	must(t, err)
	e := &env{ctx: ctx, st: st, src: testutil.LoopFS(t, "btrfs", 400), dst: testutil.LoopFS(t, "btrfs", 400)}
	_, err = st.CreateVolume(ctx, storage.VolumeSpec{Name: "vol1", SVM: "vs1", HostPath: e.src, SnapshotProvider: "auto"})
	must(t, err)
	_, err = st.CreateVolume(ctx, storage.VolumeSpec{Name: "dp1", SVM: "vs1", HostPath: e.dst, SnapshotProvider: "auto", Type: storage.TypeDP, State: storage.StateRestricted})
	must(t, err)
	for i, n := range []int{3 << 20, 2 << 20, 2<<20 + 77} {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		must(t, os.MkdirAll(filepath.Join(e.src, "d"), 0o755))
		must(t, os.WriteFile(filepath.Join(e.src, "d", string(rune('a'+i))), b, 0o640))
	}
	_, err = st.CreateSnapshot(ctx, "vs1", "vol1", "base")
	must(t, err)
	e.lib, err = vtl.Create(filepath.Join(t.TempDir(), "vtl"), vtl.Config{Drives: 1, Slots: 8, Capacity: 4 << 20, EarlyWarning: 2 << 20})
	must(t, err)
	t.Cleanup(func() { e.lib.Close() })
	for i := range 6 {
		must(t, e.lib.AddCartridge(fmt.Sprintf("SMT%03dL8", i+1), 0))
	}
	reg, err := tape.NewRegistry(store, "smt-n1", tape.Options{})
	must(t, err)
	must(t, tape.AddVTL(ctx, reg, "0a", e.lib))
	e.m = New(Config{Node: "smt-n1", Engine: volimage.New(volimage.Config{Storage: st, Node: "smt-n1"}), Tapes: reg, Storage: st, StateDir: t.TempDir()})
	return e
}

// load puts the cartridge with barcode into the drive, the one there back
// into a free slot.
func (e *env) load(t *testing.T, barcode string) {
	t.Helper()
	var drive, from, free uint16
	for _, el := range e.lib.Inventory() {
		switch {
		case el.Type == vtl.TypeDrive:
			drive = el.Addr
			if el.Full {
				from = el.Addr
			}
		case el.Type == vtl.TypeSlot && !el.Full && free == 0:
			free = el.Addr
		}
	}
	if from != 0 {
		must(t, e.lib.Move(from, free))
	}
	el, ok, err := e.lib.Locate(barcode)
	if err != nil || !ok {
		t.Fatalf("cartridge %s: %v", barcode, err)
	}
	must(t, e.lib.Move(el.Addr, drive))
}

// barcodes lists the cartridges of the library.
func (e *env) barcodes() []string {
	var out []string
	for _, c := range e.lib.Cartridges() {
		out = append(out, c.Barcode)
	}
	return out
}

// run drives a session to its end, loading the next cartridge of tapes and
// continuing it each time it waits for one; it returns the session and how
// many cartridges it used.
func (e *env) run(t *testing.T, s *Session, tapes []string) (Session, int) {
	t.Helper()
	used := 1
	for {
		info, err := e.m.WaitFor(e.ctx, s.ID, func(i Session) bool { return i.Finished() || i.Status == Waiting })
		must(t, err)
		if info.Finished() {
			return info, used
		}
		if used == len(tapes) {
			t.Fatalf("session wants a tape after %d", used)
		}
		e.load(t, tapes[used])
		used++
		must(t, e.m.Continue(s.ID, ""))
	}
}

// TestSeedAcrossTapes (S10): system smtape backup of a volume over three
// cartridges (waiting at each full tape until continue), showheader of
// the second, restore into a restricted DP volume over the same three,
// and the volume equals the snapshot.
func TestSeedAcrossTapes(t *testing.T) {
	e := newEnv(t)
	tapes := e.barcodes()
	e.load(t, tapes[0])
	s, err := e.m.Backup(e.ctx, Request{SVM: "vs1", Volume: "vol1", Snapshot: "base", Tape: "nrst0l", BlockKB: 64})
	must(t, err)
	info, used := e.run(t, s, tapes)
	if info.Status != Completed || used < 3 || info.Tape != used || info.Progress < 7<<20 {
		t.Fatalf("backup %+v on %d tapes", info, used)
	}
	e.load(t, tapes[1])
	h, err := e.m.ShowHeader(e.ctx, "nrst0l")
	if err != nil || h.Tape != 2 || h.Volume != "vol1" || len(h.Snapshots) != 1 || h.Snapshots[0].Name != "base" {
		t.Fatalf("showheader of tape 2: %+v, %v", h, err)
	}
	e.load(t, tapes[0])
	r, err := e.m.Restore(e.ctx, Request{SVM: "vs1", Volume: "dp1", Tape: "nrst0l", BlockKB: 64})
	must(t, err)
	rinfo, rused := e.run(t, r, tapes)
	if rinfo.Status != Completed || rused != used {
		t.Fatalf("restore %+v on %d tapes", rinfo, rused)
	}
	snap, _ := e.st.GetSnapshot(e.ctx, "vs1", "vol1", "base")
	testutil.CompareManifests(t, testutil.TreeManifest(t, e.dst), testutil.TreeManifest(t, snap.HostPath))
	if n := e.m.Clear(nil); n != 2 || len(e.m.Sessions()) != 0 {
		t.Fatalf("status clear removed %d, left %d", n, len(e.m.Sessions()))
	}
	must(t, e.m.Break(e.ctx, "vs1", "dp1"))
	if v, _ := e.st.GetVolume(e.ctx, "vs1", "dp1"); v.Type != storage.TypeRW {
		t.Fatalf("after break: %s", v.Type)
	}
}

// TestAbortWaiting (S10): a session waiting for a tape is aborted; it
// fails as aborted, frees the drive and unlocks the snapshot.
func TestAbortWaiting(t *testing.T) {
	e := newEnv(t)
	e.load(t, e.barcodes()[0])
	s, err := e.m.Backup(e.ctx, Request{SVM: "vs1", Volume: "vol1", Snapshot: "base", Tape: "nrst0l"})
	must(t, err)
	w, err := e.m.WaitFor(e.ctx, s.ID, func(i Session) bool { return i.Status == Waiting || i.Finished() })
	must(t, err)
	if w.Status != Waiting {
		t.Fatalf("session did not wait for a tape: %+v", w)
	}
	must(t, e.m.Abort(s.ID))
	info, err := e.m.Wait(e.ctx, s.ID)
	must(t, err)
	if info.Status != Failed || info.Error != "Operation aborted by user" {
		t.Fatalf("aborted session %+v", info)
	}
	if p, _ := e.st.GetSnapshot(e.ctx, "vs1", "vol1", "base"); p.Locked() {
		t.Fatalf("snapshot still locked by %v", p.Owners)
	}
	if _, err := e.m.Backup(e.ctx, Request{SVM: "vs1", Volume: "vol1", Snapshot: "base", Tape: "nrst0l", BlockKB: 1000}); err == nil {
		t.Fatal("a block size of 1000 KB was accepted")
	}
	s2, err := e.m.Backup(e.ctx, Request{SVM: "vs1", Volume: "vol1", Snapshot: "base", Tape: "nrst0l"})
	must(t, err) // the drive is free again
	must(t, e.m.Abort(s2.ID))
	_, _ = e.m.Wait(e.ctx, s2.ID)
}
