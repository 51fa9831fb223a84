package server

import (
	"math"
	"net"
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
