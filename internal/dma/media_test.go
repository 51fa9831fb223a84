package dma_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/dma"
	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// smallCartridges makes a library of one drive and four cartridges of
// 1 MiB (the last 256 KiB early warning) in slots 1000-1003, with the
// first loaded into the drive.
func smallCartridges(dir string) (*vtl.Library, error) {
	lib, err := vtl.Create(dir, vtl.Config{Drives: 1, Slots: 8, Capacity: 1 << 20, EarlyWarning: 256 << 10})
	if err != nil {
		return nil, err
	}
	for i := 1; i <= 4; i++ {
		if err := lib.AddCartridge(fmt.Sprintf("SML%03dL8", i), 0); err != nil {
			return lib, err
		}
	}
	return lib, lib.Move(vtl.SlotBase, vtl.DriveBase)
}

// changer tracks which cartridge (1-4, home slot 1000+i-1) is in the
// drive and swaps cartridges with SCSI MOVE MEDIUM through the NDMP
// session it is given.
type changer struct {
	mu      sync.Mutex
	current int
	calls   []int
}

// load puts cartridge want into the drive.
func (ch *changer) load(ctx context.Context, c *ndmp.Client, want int) error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if want < 1 || want > 4 {
		return dma.ErrNoMoreMedia
	}
	if ch.current == want {
		return nil
	}
	if err := dma.MoveMedium(ctx, c, "mc0", vtl.DriveBase, vtl.SlotBase+uint16(ch.current-1)); err != nil {
		return err
	}
	if err := dma.MoveMedium(ctx, c, "mc0", vtl.SlotBase+uint16(want-1), vtl.DriveBase); err != nil {
		return err
	}
	ch.current = want
	return nil
}

// next is a Job.ChangeMedia that loads the cartridge after the current
// one.
func (ch *changer) next(ctx context.Context, c *ndmp.Client, change int) error {
	ch.mu.Lock()
	ch.calls = append(ch.calls, change)
	want := ch.current + 1
	ch.mu.Unlock()
	return ch.load(ctx, c, want)
}

// session logs in to the node for changer work outside a job.
func (n *node) session(ctx context.Context) *ndmp.Client {
	n.t.Helper()
	c, err := ndmp.Dial(ctx, n.addr, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { c.Conn().Close() })
	if err := c.Connect(ctx); err != nil {
		n.t.Fatal(err)
	}
	if err := c.AuthMD5(ctx, n.user, n.pass); err != nil {
		n.t.Fatal(err)
	}
	return c
}

// T10, D1: a backup larger than a cartridge pauses with
// NOTIFY_MOVER_PAUSED(EOM); the DMA's ChangeMedia moves the full cartridge
// to its slot and the next one into the drive with SCSI MOVE MEDIUM on the
// changer mc0 (NDMP_SCSI_EXECUTE_CDB), reopens the tape and sends
// MOVER_CONTINUE. The restore starts on the first cartridge, pauses with
// EOF at its end, changes to the next and sets the window from the pause's
// seek position; the restored tree is exact. Without a further cartridge
// the restore fails with a clear message.
func TestBackupRestoreAcrossCartridges(t *testing.T) {
	n := startNode(t, smallCartridges)
	n.ok("vserver", "create", "-vserver", "vs1")
	src := n.volume("vol1")
	dst := n.volume("vol2")
	n.volume("vol3")
	data := make([]byte, 1600<<10) // needs two cartridges, maybe three
	x := uint32(2463534242)
	for i := range data {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		data[i] = byte(x)
	}
	write(t, filepath.Join(src, "big.bin"), string(data))
	for i := 0; i < 30; i++ {
		write(t, filepath.Join(src, fmt.Sprintf("d%d/f%d.txt", i%3, i)), strings.Repeat(fmt.Sprintf("line %d\n", i), 50*i+1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), testutil.HangGuard)
	defer cancel()
	ch := &changer{current: 1}
	j := n.job()
	j.FileSystem, j.TapeFile, j.ChangeMedia = "/vs1/vol1", 0, ch.next
	res, err := dma.Backup(ctx, j)
	if err != nil {
		t.Fatalf("backup across cartridges: %v", err)
	}
	if res.MediaChanges < 1 || len(ch.calls) != res.MediaChanges || ch.current != 1+res.MediaChanges || res.Bytes < uint64(len(data)) {
		t.Fatalf("backup result %+v, changer calls %v, cartridge %d in the drive", res, ch.calls, ch.current)
	}

	// Restore: load the first cartridge, then let the DMA change.
	if err := ch.load(ctx, n.session(ctx), 1); err != nil {
		t.Fatal(err)
	}
	ch.calls = nil
	rj := n.job()
	rj.Dest, rj.TapeFile, rj.ChangeMedia = "/vs1/vol2", 0, ch.next
	rres, err := dma.Restore(ctx, rj)
	if err != nil {
		t.Fatalf("restore across cartridges: %v", err)
	}
	if rres.MediaChanges != res.MediaChanges || ch.current != 1+res.MediaChanges {
		t.Fatalf("restore changed %d times (calls %v), the backup %d", rres.MediaChanges, ch.calls, res.MediaChanges)
	}
	if want, got := tree(t, src), tree(t, dst); strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Fatalf("restored tree differs:\nwant %q\ngot  %q", want, got)
	}

	t.Logf("backup: %d bytes on %d cartridges; restore: %d changes, %d reads", res.Bytes, 1+res.MediaChanges, rres.MediaChanges, rres.Reads)

	// Only the first cartridge: the restore reports the cut image.
	if err := ch.load(ctx, n.session(ctx), 1); err != nil {
		t.Fatal(err)
	}
	rj.Dest = "/vs1/vol3"
	rj.ChangeMedia = func(context.Context, *ndmp.Client, int) error { return dma.ErrNoMoreMedia }
	_, err = dma.Restore(ctx, rj)
	if err == nil || !strings.Contains(err.Error(), "ended before the end of the dump image") {
		t.Fatalf("restore from the first cartridge alone: %v", err)
	}
	if errors.Is(err, dma.ErrEndOfMedium) {
		t.Fatalf("restore error %v is not an end of medium of a backup", err)
	}
}
