package server

import (
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// BenchmarkMoverTCPToTape measures the mover writing a 64 MiB stream from a
// TCP data connection to a virtual drive in 256 KiB records.
func BenchmarkMoverTCPToTape(b *testing.B) {
	f := newFixture(b, fixtureOpts{})
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	ctx := f.ctx
	if err := c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode); err != nil {
		b.Fatal(err)
	}
	const size = 64 << 20
	chunk := pattern(1 << 20)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
			b.Fatal(err)
		}
		if err := c.MoverSetRecordSize(ctx, 256<<10); err != nil {
			b.Fatal(err)
		}
		if err := c.MoverSetWindow(ctx, 0, math.MaxUint64); err != nil {
			b.Fatal(err)
		}
		a, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrTCP)
		if err != nil {
			b.Fatal(err)
		}
		dc, err := net.Dial("tcp", a.AddrPorts()[0].String())
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < size; n += len(chunk) {
			if _, err := dc.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		dc.Close()
		ps.wait(b, ndmp.NotifyMoverHalted, time.Minute)
		if err := c.MoverStop(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequestRoundTrip measures one TAPE_GET_STATE request and reply.
func BenchmarkRequestRoundTrip(b *testing.B) {
	f := newFixture(b, fixtureOpts{})
	c := f.login(nil)
	if err := c.TapeOpen(f.ctx, "nrst0l", ndmp.TapeReadMode); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.TapeGetState(f.ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLocalDumpBackup measures a level-0 dump of a 32 MiB volume
// through a LOCAL data connection and the mover to a virtual drive.
func BenchmarkLocalDumpBackup(b *testing.B) {
	f := newFixture(b, fixtureOpts{before: withVolumes})
	src := filepath.Join(f.dir, "vols", "vol1")
	for i := 0; i < 32; i++ {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d", i)), pattern(1<<20), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ps := newPosts()
	c := f.login(&ndmp.ClientConfig{PostHandler: ps.handler})
	ctx := f.ctx
	if err := c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode); err != nil {
		b.Fatal(err)
	}
	var bytes uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.TapeMTIO(ctx, ndmp.MTIOREW, 1); err != nil {
			b.Fatal(err)
		}
		if err := c.MoverSetRecordSize(ctx, 256<<10); err != nil {
			b.Fatal(err)
		}
		if err := c.MoverSetWindow(ctx, 0, math.MaxUint64); err != nil {
			b.Fatal(err)
		}
		if _, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrLocal); err != nil {
			b.Fatal(err)
		}
		if err := c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}); err != nil {
			b.Fatal(err)
		}
		if err := c.DataStartBackup(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}}); err != nil {
			b.Fatal(err)
		}
		if r := ps.wait(b, ndmp.NotifyDataHalted, time.Minute).Body.(*ndmp.NotifyDataHaltedPost).Reason; r != ndmp.DataHaltSuccessful {
			b.Fatalf("backup %v", r)
		}
		ps.wait(b, ndmp.NotifyMoverHalted, time.Minute)
		ds, _ := c.DataGetState(ctx)
		bytes = ds.BytesProcessed
		if err := c.DataStop(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.MoverStop(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(bytes))
}
