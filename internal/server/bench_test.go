package server

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/dma"
	"github.com/tapestry-ndmp/tapestry/internal/engine/filedump"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
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

// bigBackupMB is the size of the volume the big-backup benchmarks dump:
// TAPESTRY_BENCH_MB MiB (default 512) in files of up to 256 MiB of random
// data, like set (a) of scripts/bench.sh.
func bigBackupMB() int {
	if n, err := strconv.Atoi(os.Getenv("TAPESTRY_BENCH_MB")); err == nil && n > 0 {
		return n
	}
	return 512
}

// bigBackup is a fixture with a volume vs1/big on a btrfs subvolume of a
// loop-mounted file system (snapshots as in the daemon's bench) and the
// source directory.
type bigBackup struct {
	f    *fixture
	tape *fixture // the tape server of a three-way backup (nil: local)
	src  string
	img  string // where the engine benchmark writes its image
}

// newBigBackup sets up the volume and the node serving it; with threeWay a
// second node on 127.0.0.2 serves the tape drive.
func newBigBackup(b *testing.B, threeWay bool) *bigBackup {
	b.Helper()
	mb := bigBackupMB()
	mnt := testutil.LoopFS(b, "btrfs", mb+1024)
	src := filepath.Join(mnt, "big")
	testutil.Run(b, "btrfs", "subvolume", "create", src)
	rnd := rand.New(rand.NewPCG(1, 2))
	chunk := make([]byte, 1<<20)
	for i := 0; mb > 0; i++ {
		n := min(mb, 256)
		mb -= n
		fh, err := os.Create(filepath.Join(src, fmt.Sprintf("big%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		for j := 0; j < n; j++ {
			for k := 0; k < len(chunk); k += 8 {
				binary.LittleEndian.PutUint64(chunk[k:], rnd.Uint64())
			}
			if _, err := fh.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		if err := fh.Close(); err != nil {
			b.Fatal(err)
		}
	}
	f := newFixture(b, fixtureOpts{before: func(f *fixture) {
		if _, err := f.st.CreateSVM(f.ctx, storage.SVMSpec{Name: "vs1"}); err != nil {
			b.Fatal(err)
		}
		if _, err := f.st.CreateVolume(f.ctx, storage.VolumeSpec{Name: "big", SVM: "vs1", HostPath: src, SnapshotProvider: "btrfs"}); err != nil {
			b.Fatal(err)
		}
	}})
	bb := &bigBackup{f: f, src: src, img: filepath.Join(b.TempDir(), "img.dump")}
	if threeWay {
		bb.tape = newFixture(b, fixtureOpts{lifHost: "127.0.0.2"})
	}
	testutil.Run(b, "sync")
	return bb
}

// ndmp runs a level-0 backup of vs1/big to nrst0l through the DMA (64 KiB
// records), as `tapestry ndmp backup` does, and returns its time: a local
// one, or a three-way one to the tape node's drive.
func (bb *bigBackup) ndmp(b *testing.B) time.Duration {
	b.Helper()
	job := dma.Job{Addr: bb.f.addr, User: testUser, Password: bb.f.ndmpPW,
		Device: "nrst0l", FileSystem: "/vs1/big", TapeFile: 0}
	if bb.tape != nil {
		job.Data = &dma.Agent{Addr: bb.f.addr, User: testUser, Password: bb.f.ndmpPW}
		job.Addr, job.Password = bb.tape.addr, bb.tape.ndmpPW
	}
	testutil.Run(b, "sync")
	start := time.Now()
	res, err := dma.Backup(bb.f.ctx, job)
	if err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	if res.Bytes < uint64(bigBackupMB())<<20 {
		b.Fatalf("backup moved %d bytes", res.Bytes)
	}
	return d
}

// engine dumps the source directory to an image file as `tapestry dump -0
// -f IMAGE DIR` does (10 KiB records, 1 MiB buffer, no fsync) and returns
// its time.
func (bb *bigBackup) engine(b *testing.B) time.Duration {
	b.Helper()
	_ = os.Remove(bb.img)
	testutil.Run(b, "sync")
	start := time.Now()
	fh, err := os.Create(bb.img)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(fh, 1<<20)
	if _, err := filedump.Backup(bb.f.ctx, filedump.BackupRequest{Dir: bb.src, Output: w, RecordSize: 10 << 10,
		Env: filedump.Env{"LEVEL": "0", "UPDATE": "N"}}); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	_ = os.Remove(bb.img)
	return d
}

// BenchmarkBigLocalBackup measures a local NDMP backup (issue 5) of a
// bigBackupMB volume of large random files to the virtual drive.
func BenchmarkBigLocalBackup(b *testing.B) { benchBigBackup(b, false) }

// BenchmarkBigThreeWayBackup is BenchmarkBigLocalBackup with the data
// service of one node sending the image over loopback TCP to the mover of
// another.
func BenchmarkBigThreeWayBackup(b *testing.B) { benchBigBackup(b, true) }

func benchBigBackup(b *testing.B, threeWay bool) {
	bb := newBigBackup(b, threeWay)
	b.SetBytes(int64(bigBackupMB()) << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		testutil.Run(b, "sync")
		b.StartTimer()
		bb.ndmp(b)
	}
}

// BenchmarkBigLocalBackupRatio runs the engine to an image file and the
// local NDMP backup of the same volume in turn (A, B, A, B, ...) and
// reports the throughput ratio engine/NDMP (issue 5 goal: >= 0.9).
func BenchmarkBigLocalBackupRatio(b *testing.B) { benchBigRatio(b, false) }

// BenchmarkBigThreeWayBackupRatio is BenchmarkBigLocalBackupRatio for a
// three-way backup (issue 5 goal: >= 0.8).
func BenchmarkBigThreeWayBackupRatio(b *testing.B) { benchBigRatio(b, true) }

func benchBigRatio(b *testing.B, threeWay bool) {
	bb := newBigBackup(b, threeWay)
	var te, tn, ce, cn time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0 := cpuTime()
		te += bb.engine(b)
		c1 := cpuTime()
		tn += bb.ndmp(b)
		ce += c1 - c0
		cn += cpuTime() - c1
	}
	b.ReportMetric(te.Seconds()/float64(b.N), "engine-s/op")
	b.ReportMetric(tn.Seconds()/float64(b.N), "ndmp-s/op")
	b.ReportMetric(ce.Seconds()/float64(b.N), "engine-cpu-s/op")
	b.ReportMetric(cn.Seconds()/float64(b.N), "ndmp-cpu-s/op")
	b.ReportMetric(te.Seconds()/tn.Seconds(), "engine/ndmp")
}

// cpuTime returns the user and system CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
