package dma_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/simtap"
	"github.com/tapestry-ndmp/tapestry/internal/cli"
	"github.com/tapestry-ndmp/tapestry/internal/daemon"
	"github.com/tapestry-ndmp/tapestry/internal/dma"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

const adminPassword = "Admin1234"

// node is a real tapestryd running in the test process.
type node struct {
	t      testing.TB
	dir    string
	socket string
	addr   string // NDMP address of the node-management LIF
	user   string
	pass   string // NDMP password of user
}

// startNode starts a daemon; prep, if given, creates its virtual library
// in the directory it is given instead of the default one.
func startNode(t testing.TB, prep ...func(dir string) (*vtl.Library, error)) *node {
	t.Helper()
	n := &node{t: t, dir: filepath.Join(t.TempDir(), "d")}
	if len(prep) > 0 {
		lib, err := prep[0](filepath.Join(n.dir, daemon.VTLDir))
		if err != nil {
			t.Fatalf("prepare the virtual library: %v", err)
		}
		if err := lib.Close(); err != nil {
			t.Fatal(err)
		}
	}
	d, err := daemon.Open(context.Background(), daemon.Options{
		DataDir: n.dir, AdminPassword: adminPassword,
		Config: daemon.Config{NDMPListen: "127.0.0.1:0"}, Out: &bytes.Buffer{},
	})
	if err != nil {
		t.Fatalf("open daemon: %v", err)
	}
	n.socket = d.SocketPath()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(testutil.HangGuard):
			t.Error("daemon did not stop")
		}
	})
	var lifs []storage.LIF
	if err := json.Unmarshal([]byte(n.ok("--json", "network", "interface", "show")), &lifs); err != nil {
		t.Fatalf("network interface show: %v", err)
	}
	for _, l := range lifs {
		if l.Role == storage.RoleNodeMgmt {
			n.addr = l.AddrPort().String()
		}
	}
	if n.addr == "" {
		t.Fatalf("no node-management LIF in %+v", lifs)
	}
	// A backup user of the admin SVM with its generated NDMP password.
	n.ok("security", "login", "create", "-user-or-group-name", "bkp", "-role", "backup", "-password", "Backup123")
	out := n.ok("vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", "bkp")
	_, pw, ok := strings.Cut(out, "Password: ")
	if !ok {
		t.Fatalf("generate-password output %q", out)
	}
	n.user, n.pass = "bkp", strings.TrimSpace(pw)
	return n
}

// ok runs a tapestry command line that must succeed.
func (n *node) ok(args ...string) string {
	n.t.Helper()
	var out, errOut bytes.Buffer
	env := cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
		return map[string]string{"TAPESTRY_SOCKET": n.socket, "TAPESTRY_USER": "admin", "TAPESTRY_PASSWORD": adminPassword}[k]
	}}
	if code := cli.Run(context.Background(), args, env); code != 0 {
		n.t.Fatalf("tapestry %s: exit %d: %s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}

// volume registers a new volume of vs1 over a fresh directory.
func (n *node) volume(name string) string {
	n.t.Helper()
	dir := filepath.Join(n.t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		n.t.Fatal(err)
	}
	n.ok("volume", "create", "-vserver", "vs1", "-volume", name, "-path", dir, "-snapshot-provider", "copy")
	return dir
}

func (n *node) job() dma.Job {
	return dma.Job{Addr: n.addr, User: n.user, Password: n.pass, Device: "nrst0l", ProgressInterval: 50 * time.Millisecond}
}

func write(t testing.TB, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tree lists dir as "path mode size content" lines plus link counts and
// link targets, leaving out the restore state file.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." || rel == "restore_symboltable" {
			return nil
		}
		if rel == ".snapshot" {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %d %q links=%d", len(b), b, fi.Sys().(*syscall.Stat_t).Nlink)
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// D1, D5, N14: a level 0 and a level 1 dump to two tape files of a virtual
// drive through the DMA, with file history, then both restored in order
// into another volume give back the changed source exactly (renames,
// deletions, hard links, symbolic links).
func TestBackupRestoreIncremental(t *testing.T) {
	n := startNode(t)
	n.ok("vserver", "create", "-vserver", "vs1")
	src := n.volume("vol1")
	write(t, filepath.Join(src, "docs", "report.txt"), "version 1\n")
	write(t, filepath.Join(src, "docs", "old.txt"), "to be deleted\n")
	write(t, filepath.Join(src, "src", "main.go"), "package main\n")
	write(t, filepath.Join(src, "big.bin"), strings.Repeat("0123456789abcdef", 20000))
	if err := os.Symlink("docs/report.txt", filepath.Join(src, "latest")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "src", "main.go"), filepath.Join(src, "main.hard")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	var mu sync.Mutex
	var reports []dma.Progress
	job := n.job()
	job.FileSystem, job.Level, job.TapeFile, job.Hist = "/vs1/vol1", 0, 0, true
	job.Progress = func(p dma.Progress) { mu.Lock(); reports = append(reports, p); mu.Unlock() }
	r0, err := dma.Backup(ctx, job)
	if err != nil {
		t.Fatalf("level 0: %v", err)
	}
	if r0.Bytes < 320000 || r0.DumpDate == "" || r0.TapeFile != 0 || r0.FileHistory < 7 || r0.RecordSize != dma.DefaultRecordSize {
		t.Fatalf("level 0 result %+v", r0)
	}
	if ndmp.Env(r0.Env)["DUMP_DATE"] != r0.DumpDate {
		t.Fatalf("env %v", r0.Env)
	}

	// Change the source: modify, add, delete, rename.
	time.Sleep(1100 * time.Millisecond) // dump dates have one-second resolution
	write(t, filepath.Join(src, "docs", "report.txt"), "version 2, longer\n")
	write(t, filepath.Join(src, "docs", "new.txt"), "added after level 0\n")
	if err := os.Remove(filepath.Join(src, "docs", "old.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(src, "src"), filepath.Join(src, "code")); err != nil {
		t.Fatal(err)
	}
	job.Level, job.TapeFile, job.Progress = 1, 1, nil
	r1, err := dma.Backup(ctx, job)
	if err != nil {
		t.Fatalf("level 1: %v", err)
	}
	if r1.TapeFile != 1 || r1.Bytes == 0 || r1.DumpDate == "" || r1.DumpDate == r0.DumpDate {
		t.Fatalf("level 1 result %+v (level 0 %+v)", r1, r0)
	}

	dst := n.volume("vol2")
	for i, want := range []int{0, 1} {
		rj := n.job()
		rj.Dest, rj.TapeFile = "/vs1/vol2", want
		rr, err := dma.Restore(ctx, rj)
		if err != nil {
			t.Fatalf("restore of tape file %d: %v", want, err)
		}
		if rr.Bytes == 0 || rr.TapeFile != want || rr.Failed != 0 {
			t.Fatalf("restore %d result %+v", i, rr)
		}
	}
	if w, g := tree(t, src), tree(t, dst); fmt.Sprint(w) != fmt.Sprint(g) {
		t.Fatalf("restored tree differs:\nwant %q\ngot  %q", w, g)
	}
	// A restore of chosen names from the level 0 only.
	part := n.volume("vol3")
	rj := n.job()
	rj.Dest, rj.TapeFile, rj.Names = "/vs1/vol3", 0, []string{"docs/report.txt", "/src/"}
	rr, err := dma.Restore(ctx, rj)
	if err != nil {
		t.Fatalf("restore of names: %v", err)
	}
	if rr.Files != 2 || rr.Failed != 0 {
		t.Fatalf("restore of names: %+v", rr)
	}
	if b, err := os.ReadFile(filepath.Join(part, "docs", "report.txt")); err != nil || string(b) != "version 1\n" {
		t.Fatalf("docs/report.txt from level 0: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(part, "src", "main.go")); err != nil || string(b) != "package main\n" {
		t.Fatalf("src/main.go from level 0: %q %v", b, err)
	}
	for _, absent := range []string{"big.bin", "docs/old.txt", "latest"} {
		if _, err := os.Lstat(filepath.Join(part, absent)); err == nil {
			t.Errorf("%s restored although not named", absent)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if len(reports) == 0 {
		t.Error("no progress reported during the level 0 backup")
	}
}

// Bad input gives clear errors, and the drive is free again afterwards: an
// unknown device, a path that is not a volume, a wrong password, a tape
// file past the end of the data, and missing job fields.
func TestErrors(t *testing.T) {
	n := startNode(t)
	n.ok("vserver", "create", "-vserver", "vs1")
	src := n.volume("vol1")
	write(t, filepath.Join(src, "a.txt"), "a\n")
	ctx, cancel := context.WithTimeout(context.Background(), testutil.HangGuard)
	defer cancel()

	cases := []struct {
		name string
		edit func(*dma.Job)
		want string
	}{
		{"bad device", func(j *dma.Job) { j.Device = "nrst9z" }, `cannot open tape device "nrst9z"`},
		{"missing path", func(j *dma.Job) { j.FileSystem = "/vs1/nosuch" }, "Could not obtain vol ref for Volume nosuch"},
		{"wrong password", func(j *dma.Job) { j.Password = "nope" }, "wrong user name or password"},
		{"bad level", func(j *dma.Job) { j.Level = 12 }, "dump level 12 is not 0-9"},
		{"no path", func(j *dma.Job) { j.FileSystem = "" }, "no path to back up"},
		{"no device", func(j *dma.Job) { j.Device = "" }, "no tape device"},
		{"unreachable", func(j *dma.Job) { j.Addr = "127.0.0.1:1" }, "cannot reach the NDMP server"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := n.job()
			j.FileSystem, j.TapeFile = "/vs1/vol1", 0
			c.edit(&j)
			_, err := dma.Backup(ctx, j)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	// The failed attempts left the drive usable: a backup and a restore
	// of a tape file that does not exist.
	j := n.job()
	j.FileSystem, j.TapeFile = "/vs1/vol1", 0
	if _, err := dma.Backup(ctx, j); err != nil {
		t.Fatalf("backup after the errors: %v", err)
	}
	n.volume("vol2")
	rj := n.job()
	rj.Dest, rj.TapeFile = "/vs1/vol2", 5
	if _, err := dma.Restore(ctx, rj); err == nil || !strings.Contains(err.Error(), "tape file 5") {
		t.Fatalf("restore of tape file 5: %v", err)
	}
	rj.Dest = "/vs1/nosuch"
	rj.TapeFile = 0
	if _, err := dma.Restore(ctx, rj); err == nil || !strings.Contains(err.Error(), "refused the restore into /vs1/nosuch") {
		t.Fatalf("restore into a missing volume: %v", err)
	}
}

// End of medium during a backup (NOTIFY_MOVER_PAUSED EOM) ends the job with
// ErrEndOfMedium and a clear message, and leaves the drive usable.
func TestEndOfMedium(t *testing.T) {
	// Every drive holds a cartridge of 512 KiB whose last 256 KiB are the
	// early-warning zone, where writes report end of medium.
	n := startNode(t, func(dir string) (*vtl.Library, error) {
		lib, err := vtl.Create(dir, vtl.Config{Drives: 4, Slots: 8, Capacity: 512 << 10, EarlyWarning: 256 << 10})
		if err != nil {
			return nil, err
		}
		for i, d := range lib.Drives() {
			if err := lib.AddCartridge(fmt.Sprintf("SML%03dL8", i+1), 0); err != nil {
				return lib, err
			}
			if _, err := lib.LoadNext(d); err != nil {
				return lib, err
			}
		}
		return lib, nil
	})
	n.ok("vserver", "create", "-vserver", "vs1")
	src := n.volume("vol1")
	write(t, filepath.Join(src, "big.bin"), strings.Repeat("tapestry", 128<<10)) // 1 MiB
	ctx, cancel := context.WithTimeout(context.Background(), testutil.HangGuard)
	defer cancel()
	j := n.job()
	j.FileSystem, j.TapeFile = "/vs1/vol1", 0
	res, err := dma.Backup(ctx, j)
	if !errors.Is(err, dma.ErrEndOfMedium) || !strings.Contains(err.Error(), "nrst0l") {
		t.Fatalf("backup onto a 512 KiB tape: %v", err)
	}
	if res == nil || res.Bytes == 0 || res.Bytes > 1<<20 {
		t.Fatalf("result %+v", res)
	}
	// The drive is free again and a small backup fits.
	if err := os.Remove(filepath.Join(src, "big.bin")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(src, "small.txt"), "small\n")
	if _, err := dma.Backup(ctx, j); err != nil {
		t.Fatalf("small backup after the end of medium: %v", err)
	}
}

// BenchmarkBackupRestore measures a level 0 backup of 32 MiB of random data
// to a virtual drive and its restore, through a real daemon on loopback.
func BenchmarkBackupRestore(b *testing.B) {
	n := startNode(b)
	n.ok("vserver", "create", "-vserver", "vs1")
	src := n.volume("vol1")
	n.volume("vol2")
	data := make([]byte, 32<<20)
	for i := range data {
		data[i] = byte(i*7919 + i>>9)
	}
	write(b, filepath.Join(src, "data.bin"), string(data))
	ctx := context.Background()
	b.Run("backup", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			j := n.job()
			j.FileSystem, j.TapeFile = "/vs1/vol1", 0
			if _, err := dma.Backup(ctx, j); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("restore", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			j := n.job()
			j.Dest, j.TapeFile = "/vs1/vol2", 0
			if _, err := dma.Restore(ctx, j); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Canceling the context aborts a running backup: the job ends with an
// error naming the interruption and the drive is free for the next job.
func TestCancel(t *testing.T) {
	n := startNode(t)
	n.ok("vserver", "create", "-vserver", "vs1")
	src := n.volume("vol1")
	for i := 0; i < 8; i++ {
		write(t, filepath.Join(src, fmt.Sprintf("f%d.bin", i)), strings.Repeat(fmt.Sprintf("%07d\n", i), 1<<17))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j := n.job()
	j.FileSystem, j.TapeFile = "/vs1/vol1", 0
	j.Progress = func(dma.Progress) { cancel() } // the first report comes at the start
	_, err := dma.Backup(ctx, j)
	if err == nil || !strings.Contains(err.Error(), "interrupted") || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled backup: %v", err)
	}
	j.Progress = nil
	if _, err := dma.Backup(context.Background(), j); err != nil {
		t.Fatalf("backup after the canceled one: %v", err)
	}
}

// D4, T2: the tape the DMA wrote holds one dump image per tape file, each
// ended by a file mark, that Linux restore reads without Tapestry: the
// second tape file, taken from a copy of the cartridge, lists the files of
// the second backup.
func TestLinuxRestoreReadsTapeFile(t *testing.T) {
	testutil.RequireTool(t, "restore")
	n := startNode(t)
	n.ok("vserver", "create", "-vserver", "vs1")
	src := n.volume("vol1")
	write(t, filepath.Join(src, "first.txt"), "first\n")
	ctx := context.Background()
	j := n.job()
	j.FileSystem, j.TapeFile = "/vs1/vol1", 0
	if _, err := dma.Backup(ctx, j); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(src, "docs", "second.txt"), "second\n")
	j.TapeFile = 1
	if _, err := dma.Backup(ctx, j); err != nil {
		t.Fatal(err)
	}

	// The cartridge with two tape files, copied so the daemon keeps its own.
	carts, _ := filepath.Glob(filepath.Join(n.dir, daemon.VTLDir, "cartridges", "*.tap"))
	var image []byte
	for _, path := range carts {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(t.TempDir(), filepath.Base(path))
		if err := os.WriteFile(cp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := simtap.Open(cp, &simtap.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if c.Files() != 2 {
			c.Close()
			continue
		}
		if err := c.LocateFile(1); err != nil {
			t.Fatal(err)
		}
		for {
			rec, err := c.ReadRecordAlloc()
			if errors.Is(err, simtap.ErrTapeMark) {
				break
			}
			if err != nil {
				t.Fatalf("read tape file 1: %v", err)
			}
			image = append(image, rec...)
		}
		c.Close()
	}
	if len(image) == 0 {
		t.Fatalf("no cartridge of %v holds two tape files", carts)
	}
	img := filepath.Join(t.TempDir(), "file1.dump")
	if err := os.WriteFile(img, image, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("restore", "-t", "-f", img)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("restore -t: %v\n%s", err, out)
	}
	for _, want := range []string{"./first.txt", "./docs/second.txt"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("restore -t of tape file 1 lacks %s:\n%s", want, out)
		}
	}
}
