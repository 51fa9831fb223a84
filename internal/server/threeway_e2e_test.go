package server

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/dma"
	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
	"github.com/tapestry-ndmp/tapestry/ndmp"
	"golang.org/x/sys/unix"
)

// populateFull writes a tree with the attributes a restore must keep:
// contents, modes, owners (when run as root), modification times,
// extended attributes, a symbolic link and a hard link.
func populateFull(t testing.TB, dir string) {
	t.Helper()
	populate(t, dir)
	p := func(rel string) string { return filepath.Join(dir, rel) }
	if err := os.Link(p("d1/e1/f13.txt"), p("d2/hard13")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("d3/secret"), []byte("0600 file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p("d3/secret"), os.ModeSetuid|0o710); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(p("d0/e0/f0.txt"), "user.tapestry.color", []byte("blue"), 0); err != nil {
		t.Fatalf("setxattr: %v", err)
	}
	if err := unix.Lsetxattr(p("d1"), "user.tapestry.dir", []byte{0, 1, 2, 255}, 0); err != nil {
		t.Fatalf("setxattr: %v", err)
	}
	if os.Geteuid() == 0 {
		for _, rel := range []string{"d0/e0/f0.txt", "d3/secret", "link"} {
			if err := os.Lchown(p(rel), 1234, 4321); err != nil {
				t.Fatal(err)
			}
		}
	}
	when := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 || d.IsDir() {
			return err
		}
		when = when.Add(time.Hour)
		return os.Chtimes(path, when, when)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Directories last, deepest first, so their times stay.
	for _, rel := range []string{"d1/e1", "d1", "d3"} {
		if err := os.Chtimes(p(rel), when, when.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
}

// fullTree lists dir as one line per entry: path, mode, owner, link count
// within the tree (inode groups), mtime in seconds (not for symbolic
// links), size and content or link target, and the user.* xattrs.
func fullTree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	inodes := map[uint64][]string{}
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
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v uid=%d gid=%d", rel, fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" mtime=%d %d %q", fi.ModTime().Unix(), len(b), b[:min(len(b), 24)])
			inodes[st.Ino] = append(inodes[st.Ino], rel)
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case fi.IsDir():
			line += fmt.Sprintf(" mtime=%d", fi.ModTime().Unix())
		}
		buf := make([]byte, 4096)
		n, err := unix.Llistxattr(p, buf)
		if err == nil {
			var names []string
			for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
				if strings.HasPrefix(name, "user.") {
					names = append(names, name)
				}
			}
			sort.Strings(names)
			for _, name := range names {
				v := make([]byte, 256)
				vn, err := unix.Lgetxattr(p, name, v)
				if err != nil {
					return err
				}
				line += fmt.Sprintf(" %s=%q", name, v[:vn])
			}
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range inodes {
		if len(names) > 1 {
			sort.Strings(names)
			out = append(out, "hard links: "+strings.Join(names, " "))
		}
	}
	sort.Strings(out)
	return out
}

// sameTree fails unless the two listings are equal, naming the first
// differing lines.
func sameTree(t *testing.T, want, got []string) {
	t.Helper()
	if strings.Join(want, "\n") == strings.Join(got, "\n") {
		return
	}
	for i := 0; i < max(len(want), len(got)); i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Fatalf("restored tree differs at line %d:\nwant %s\ngot  %s\n(%d lines vs %d)", i, w, g, len(want), len(got))
		}
	}
}

// N17, D1, D5: a three-way backup and restore between two servers with
// their own data directories, catalogs and virtual libraries: the DMA
// (package dma, one control connection to each) makes node B's mover
// listen on TCP and node A's data service connect to it; the level 0 of
// A's /vs1/vol1 goes to B's drive nrst0l, then comes back from B's tape
// into A's empty /vs1/vol2. The restored tree equals the source in
// content, mode, owner, mtime, xattrs, symbolic and hard links. Run over
// IPv4 (A on 127.0.0.1, B on 127.0.0.2) and over IPv6 loopback (::1,
// NDMP_ADDR_TCP_IPV6 of the connection address extension).
func TestThreeWayTwoNodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		hostA  string
		hostB  string
		ipv6   bool
		device string
	}{
		{name: "ipv4", hostA: "127.0.0.1", hostB: "127.0.0.2", device: "nrst0l"},
		{name: "ipv6", ipv6: true, device: "nrst1l"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var a6, b6 string
			a := newFixture(t, fixtureOpts{lifHost: tc.hostA, before: func(f *fixture) {
				withVolumes(f)
				if tc.ipv6 {
					a6 = ipv6LIF(f)
				}
			}})
			b := newFixture(t, fixtureOpts{lifHost: tc.hostB, before: func(f *fixture) {
				if tc.ipv6 {
					b6 = ipv6LIF(f)
				}
			}})
			addrA, addrB := a.addr, b.addr
			if tc.ipv6 {
				addrA, addrB = a6, b6
			}
			src, dst := filepath.Join(a.dir, "vols", "vol1"), filepath.Join(a.dir, "vols", "vol2")
			populateFull(t, src)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			job := dma.Job{
				Addr: addrB, User: testUser, Password: b.ndmpPW, Device: tc.device,
				Data:     &dma.Agent{Addr: addrA, User: testUser, Password: a.ndmpPW},
				IPv6:     tc.ipv6,
				TapeFile: 0, FileSystem: "/vs1/vol1", Hist: true,
				ProgressInterval: 50 * time.Millisecond,
			}
			res, err := dma.Backup(ctx, job)
			if err != nil {
				t.Fatalf("three-way backup: %v\nA:\n%s\nB:\n%s\ngoroutines:\n%s", err, a.logs.String(), b.logs.String(), moduleStacks())
			}
			if res.Bytes == 0 || res.DumpDate == "" || res.FileHistory == 0 {
				t.Fatalf("backup result %+v", res)
			}
			// B's mover listened on B's address of the family asked for.
			wantHost, _, _ := net.SplitHostPort(addrB)
			if host, _, err := net.SplitHostPort(res.MoverAddr); err != nil || host != wantHost {
				t.Fatalf("mover listened on %q, want host %s", res.MoverAddr, wantHost)
			}
			// The image went to B's drive, not to A's.
			if st := driveStats(t, b, tc.device); st.BytesWritten < int64(res.Bytes) {
				t.Fatalf("B's drive %s wrote %d bytes, the backup sent %d", tc.device, st.BytesWritten, res.Bytes)
			}
			if st := driveStats(t, a, tc.device); st.BytesWritten != 0 {
				t.Fatalf("A's drive %s wrote %d bytes, want none", tc.device, st.BytesWritten)
			}
			job.FileSystem, job.Dest = "", "/vs1/vol2"
			rres, err := dma.Restore(ctx, job)
			if err != nil {
				t.Fatalf("three-way restore: %v\nA:\n%s\nB:\n%s\ngoroutines:\n%s", err, a.logs.String(), b.logs.String(), moduleStacks())
			}
			if rres.Reads == 0 {
				t.Fatalf("restore result %+v: no NOTIFY_DATA_READ relayed", rres)
			}
			if st := driveStats(t, b, tc.device); st.BytesRead < int64(res.Bytes) {
				t.Fatalf("B's drive %s read %d bytes, the image has %d", tc.device, st.BytesRead, res.Bytes)
			}
			sameTree(t, fullTree(t, src), fullTree(t, dst))
			t.Logf("%s: mover on %s, backup %d bytes, restore %d reads of %d bytes", tc.name, res.MoverAddr, res.Bytes, rres.Reads, rres.ReadBytes)
		})
	}
}

// driveStats returns the counters of the fixture's drive named device
// (nrstNl: drive N).
func driveStats(t *testing.T, f *fixture, device string) vtl.Stats {
	t.Helper()
	i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(device, "nrst"), "l"))
	if err != nil {
		t.Fatalf("device %q: %v", device, err)
	}
	d, err := f.lib.Drive(i)
	if err != nil {
		t.Fatal(err)
	}
	return d.Stats()
}

// N17, D1: ndmjob as a three-way DMA with separate agents: the data agent
// (-D) is node A on 127.0.0.1 and the tape agent (-T) node B on
// 127.0.0.2. The backup of A's /vs1/vol1 lands on B's drive and the
// restore from it into A's /vs1/vol2 gives back the same tree.
func TestNdmjobThreeWay(t *testing.T) {
	t.Parallel()
	a := newFixture(t, fixtureOpts{lifHost: "127.0.0.1", before: withVolumes})
	b := newFixture(t, fixtureOpts{lifHost: "127.0.0.2"})
	src, dst := filepath.Join(a.dir, "vols", "vol1"), filepath.Join(a.dir, "vols", "vol2")
	populateFull(t, src)
	out, err := runNdmjob(t, "-v", "-c", "-D", a.agent("m"), "-T", b.agent("m"), "-B", "dump", "-C", "/vs1/vol1", "-f", "nrst2l")
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("ndmjob -c three-way: %v\n%s", err, out)
	}
	written := driveStats(t, b, "nrst2l").BytesWritten
	if written == 0 || driveStats(t, a, "nrst2l").BytesWritten != 0 {
		t.Fatalf("B's drive wrote %d bytes, A's %d", written, driveStats(t, a, "nrst2l").BytesWritten)
	}
	out, err = runNdmjob(t, "-v", "-x", "-D", a.agent("m"), "-T", b.agent("m"), "-B", "dump", "-C", "/vs1/vol2", "-f", "nrst2l")
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("ndmjob -x three-way: %v\n%s", err, out)
	}
	if driveStats(t, b, "nrst2l").BytesRead == 0 {
		t.Fatal("the restore read nothing from B's drive")
	}
	sameTree(t, fullTree(t, src), fullTree(t, dst))
}

// N17, T10: a three-way backup from node A to node B whose cartridges
// (1 MiB) are smaller than the image: B's mover pauses with EOM, the DMA
// moves cartridges in B's library with SCSI MOVE MEDIUM through B's
// session and continues; the three-way restore changes cartridges at each
// EOF pause. The tree restored on A is exact.
func TestThreeWayAcrossCartridges(t *testing.T) {
	t.Parallel()
	a := newFixture(t, fixtureOpts{lifHost: "127.0.0.1", before: withVolumes})
	b := newFixture(t, fixtureOpts{lifHost: "127.0.0.2",
		vtl: &vtl.Config{Drives: 1, Slots: 8, Capacity: 1 << 20, EarlyWarning: 256 << 10},
		before: func(f *fixture) {
			for i := 1; i <= 4; i++ {
				if err := f.lib.AddCartridge(fmt.Sprintf("TWC%03dL8", i), 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.lib.Move(vtl.SlotBase, vtl.DriveBase); err != nil {
				t.Fatal(err)
			}
		}})
	src, dst := filepath.Join(a.dir, "vols", "vol1"), filepath.Join(a.dir, "vols", "vol2")
	populateFull(t, src)
	bigFile(t, filepath.Join(src, "big/data.bin"), 1600<<10)
	current := 1 // cartridge i lives in slot SlotBase+i-1
	load := func(ctx context.Context, c *ndmp.Client, want int) error {
		if want > 4 {
			return dma.ErrNoMoreMedia
		}
		if err := dma.MoveMedium(ctx, c, "mc0", vtl.DriveBase, vtl.SlotBase+uint16(current-1)); err != nil {
			return err
		}
		if err := dma.MoveMedium(ctx, c, "mc0", vtl.SlotBase+uint16(want-1), vtl.DriveBase); err != nil {
			return err
		}
		current = want
		return nil
	}
	next := func(ctx context.Context, c *ndmp.Client, change int) error { return load(ctx, c, current+1) }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	job := dma.Job{
		Addr: b.addr, User: testUser, Password: b.ndmpPW, Device: "nrst0l",
		Data:     &dma.Agent{Addr: a.addr, User: testUser, Password: a.ndmpPW},
		TapeFile: 0, FileSystem: "/vs1/vol1", ChangeMedia: next,
	}
	res, err := dma.Backup(ctx, job)
	if err != nil {
		t.Fatalf("three-way backup across cartridges: %v\nB:\n%s\ngoroutines:\n%s", err, b.logs.String(), moduleStacks())
	}
	if res.MediaChanges < 1 || current != 1+res.MediaChanges {
		t.Fatalf("backup %+v, cartridge %d in the drive", res, current)
	}
	if err := load(ctx, b.login(nil), 1); err != nil {
		t.Fatal(err)
	}
	job.FileSystem, job.Dest = "", "/vs1/vol2"
	rres, err := dma.Restore(ctx, job)
	if err != nil {
		t.Fatalf("three-way restore across cartridges: %v\nB:\n%s\ngoroutines:\n%s", err, b.logs.String(), moduleStacks())
	}
	if rres.MediaChanges != res.MediaChanges {
		t.Fatalf("restore changed cartridges %d times, the backup %d", rres.MediaChanges, res.MediaChanges)
	}
	sameTree(t, fullTree(t, src), fullTree(t, dst))
	t.Logf("%d bytes on %d cartridges of node B", res.Bytes, 1+res.MediaChanges)
}
