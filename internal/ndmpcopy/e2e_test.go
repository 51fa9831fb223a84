package ndmpcopy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	dumpfmt "github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/server"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// node is a real Tapestry node for the end-to-end tests: catalog, storage,
// users and the NDMP server on a node-management LIF at one loopback
// address.
type node struct {
	t     testing.TB
	host  string
	port  int
	st    *storage.Service
	user  string
	pw    string // NDMP password of user
	logs  *syncBuffer
	admin string
}

const e2eUser = "copier"

func newNode(t testing.TB, host string) *node {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := catalog.OpenBolt(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	st := storage.New(store, storage.Options{})
	if _, err := st.Init(ctx, storage.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	adminSVM, err := st.AdminSVM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	testutil.Require(t, err == nil, fmt.Sprintf("listen on %s: %v", host, err))
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if _, err := st.CreateLIF(ctx, storage.LIFSpec{Name: "mgmt1", SVM: adminSVM, Role: storage.RoleNodeMgmt, Address: host, Port: port}); err != nil {
		t.Fatal(err)
	}
	// Data connections go over an intercluster LIF (the default preferred
	// interface roles, N7).
	icPort := port + 1
	if icPort > 65535 {
		icPort = port - 1
	}
	if _, err := st.CreateLIF(ctx, storage.LIFSpec{Name: "ic1", SVM: adminSVM, Role: storage.RoleIntercluster, Address: host, Port: icPort}); err != nil {
		t.Fatal(err)
	}
	au := auth.New(store, auth.Options{AdminSVM: adminSVM, Hash: auth.HashParams{Time: 1, Memory: 8 << 10, Threads: 1}})
	if _, err := au.CreateUser(ctx, auth.UserSpec{SVM: adminSVM, Name: e2eUser, Role: auth.RoleBackup, Password: "Login-Passw0rd"}); err != nil {
		t.Fatal(err)
	}
	pw, err := au.GenerateNDMPPassword(ctx, adminSVM, e2eUser)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv, err := server.New(server.Options{
		Storage: st, Auth: au, Catalog: store, Node: storage.DefaultNodeName, Version: "test", MaxSessions: 16,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(testutil.HangGuard):
			t.Error("server did not stop")
		}
	})
	deadline := time.Now().Add(testutil.HangGuard)
	for len(srv.Addrs()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("server did not start listening")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &node{t: t, host: host, port: port, st: st, user: e2eUser, pw: pw, logs: logs, admin: adminSVM}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// volume creates SVM svm (if new) and volume vol on a fresh file system of
// type fstype and returns its host path.
func (n *node) volume(svm, vol, fstype string) string {
	n.t.Helper()
	ctx := context.Background()
	if _, err := n.st.CreateSVM(ctx, storage.SVMSpec{Name: svm}); err != nil && !strings.Contains(err.Error(), "exist") {
		n.t.Fatal(err)
	}
	dir := testutil.LoopFS(n.t, fstype, 300)
	if _, err := n.st.CreateVolume(ctx, storage.VolumeSpec{Name: vol, SVM: svm, HostPath: dir}); err != nil {
		n.t.Fatal(err)
	}
	return dir
}

// endpoint returns host[:port]:/path for the node.
func (n *node) endpoint(path string) string {
	h := n.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(n.port) + ":" + path
}

// copyArgs returns the arguments of a copy between two nodes.
func copyArgs(src, dst *node, srcPath, dstPath string, extra ...string) []string {
	a := []string{"-sa", src.user + ":" + src.pw, "-da", dst.user + ":" + dst.pw, "-st", "md5", "-dt", "md5", "-connect-timeout", "10s"}
	a = append(a, extra...)
	return append(a, src.endpoint(srcPath), dst.endpoint(dstPath))
}

// entry is what the tests compare of one file.
type entry struct {
	typ    fs.FileMode
	perm   fs.FileMode
	uid    uint32
	gid    uint32
	mtime  int64 // microseconds
	size   int64
	sum    [32]byte
	target string
	xattrs string
	links  string // the other names of a hard-linked file
}

// snapshotTree returns the state of the tree below root, ignoring the
// entries the servers keep for themselves.
func snapshotTree(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == ".snapshot" || rel == "restore_symboltable" || rel == "lost+found" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entry{
			typ: fs.FileMode(st.Mode & unix.S_IFMT), perm: fs.FileMode(st.Mode & 0o7777), uid: st.Uid, gid: st.Gid,
			mtime: st.Mtim.Sec*1e6 + st.Mtim.Nsec/1e3,
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.size, e.sum = int64(len(b)), sha256.Sum256(b)
			if st.Nlink > 1 {
				inodes[st.Ino] = append(inodes[st.Ino], rel)
			}
		case unix.S_IFLNK:
			e.target, _ = os.Readlink(p)
		}
		if rel == "." {
			e.mtime = 0 // the root's time is the servers' business
		}
		e.xattrs = xattrString(t, p)
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range inodes {
		sort.Strings(names)
		for _, n := range names {
			e := out[n]
			e.links = strings.Join(names, ",")
			out[n] = e
		}
	}
	return out
}

func xattrString(t *testing.T, p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
	sort.Strings(names)
	var sb strings.Builder
	for _, name := range names {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		fmt.Fprintf(&sb, "%s=%x;", name, v[:m])
	}
	return sb.String()
}

// diffTrees lists the differences between two trees.
func diffTrees(t *testing.T, src, dst string) []string {
	t.Helper()
	a, b := snapshotTree(t, src), snapshotTree(t, dst)
	var diffs []string
	for p, ea := range a {
		eb, ok := b[p]
		if !ok {
			diffs = append(diffs, "missing in destination: "+p)
			continue
		}
		if ea != eb {
			diffs = append(diffs, fmt.Sprintf("%s differs:\n  source      %+v\n  destination %+v", p, ea, eb))
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			diffs = append(diffs, "extra in destination: "+p)
		}
	}
	sort.Strings(diffs)
	return diffs
}

// compareTrees fails the test when the trees differ.
func compareTrees(t *testing.T, what, src, dst string) {
	t.Helper()
	if diffs := diffTrees(t, src, dst); len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... %d more", len(diffs)-20))
		}
		t.Fatalf("%s: the destination differs from the source:\n%s", what, strings.Join(diffs, "\n"))
	}
}

// The tree comparison of the end-to-end tests sees every attribute it
// claims to check: a cp -a copy is equal, and each kind of change is found.
func TestDiffTreesDetects(t *testing.T) {
	testutil.RequireRoot(t)
	cp := testutil.RequireTool(t, "cp")
	a := filepath.Join(t.TempDir(), "a")
	must(t, os.Mkdir(a, 0o755))
	populate(t, a)
	changes := map[string]func(b string){
		"content": func(b string) { must(t, os.WriteFile(filepath.Join(b, "a.txt"), []byte("alphA\n"), 0o644)) },
		"mode":    func(b string) { must(t, os.Chmod(filepath.Join(b, "b.txt"), 0o644)) },
		"owner":   func(b string) { must(t, os.Lchown(filepath.Join(b, "d1"), 70000, 1)) },
		"mtime": func(b string) {
			tm := time.Date(2020, 2, 29, 12, 34, 56, 790000000, time.UTC)
			must(t, os.Chtimes(filepath.Join(b, "d4/e.txt"), tm, tm))
		},
		"xattr": func(b string) { must(t, unix.Setxattr(filepath.Join(b, "a.txt"), "user.color", []byte("Blue"), 0)) },
		"symlink": func(b string) {
			os.Remove(filepath.Join(b, "link-a"))
			must(t, os.Symlink("b.txt", filepath.Join(b, "link-a")))
		},
		"hard link":  func(b string) { must(t, os.Link(filepath.Join(b, "a.txt"), filepath.Join(b, "a-hard"))) },
		"extra file": func(b string) { must(t, os.WriteFile(filepath.Join(b, "d1/extra"), nil, 0o644)) },
		"missing":    func(b string) { must(t, os.Remove(filepath.Join(b, "empty"))) },
		"unlinked": func(b string) {
			// same names and content, but b.txt and d4/b-hard no longer one file
			must(t, os.Remove(filepath.Join(b, "d4/b-hard")))
			testutil.Run(t, cp, "-a", filepath.Join(b, "b.txt"), filepath.Join(b, "d4/b-hard"))
		},
	}
	b := filepath.Join(t.TempDir(), "b")
	testutil.Run(t, cp, "-a", a, b)
	if d := diffTrees(t, a, b); len(d) > 0 {
		t.Fatalf("cp -a copy differs: %v", d)
	}
	for name, change := range changes {
		b := filepath.Join(t.TempDir(), "b")
		testutil.Run(t, cp, "-a", a, b)
		change(b)
		if d := diffTrees(t, a, b); len(d) == 0 {
			t.Errorf("%s: change not detected", name)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p string, data string, mode fs.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(data), mode))
	must(t, os.Chmod(p, mode))
}

// populate makes the level 0 tree: files with several owners, modes and
// times, a sparse file, symbolic and hard links, xattrs, empty files and
// nested directories.
func populate(t *testing.T, root string) {
	write(t, filepath.Join(root, "a.txt"), "alpha\n", 0o644)
	write(t, filepath.Join(root, "b.txt"), strings.Repeat("bravo ", 5000), 0o600)
	write(t, filepath.Join(root, "empty"), "", 0o640)
	write(t, filepath.Join(root, "d1/c.txt"), "charlie", 0o755)
	write(t, filepath.Join(root, "d1/d2/d3/deep.bin"), string(testContent(70000)), 0o444)
	write(t, filepath.Join(root, "d4/e.txt"), "echo", 0o664)
	must(t, os.Chown(filepath.Join(root, "a.txt"), 1001, 2002))
	must(t, os.Chown(filepath.Join(root, "d1"), 70000, 70001))
	must(t, os.Symlink("a.txt", filepath.Join(root, "link-a")))
	must(t, os.Symlink("../nowhere", filepath.Join(root, "d4/dangling")))
	must(t, os.Link(filepath.Join(root, "b.txt"), filepath.Join(root, "d4/b-hard")))
	must(t, unix.Setxattr(filepath.Join(root, "a.txt"), "user.color", []byte("blue"), 0))
	must(t, unix.Setxattr(filepath.Join(root, "d1"), "user.project", []byte{0, 1, 2, 255}, 0))
	f, err := os.Create(filepath.Join(root, "sparse"))
	must(t, err)
	_, err = f.WriteAt([]byte("end"), 10<<20)
	must(t, err)
	must(t, f.Close())
	old := time.Date(2020, 2, 29, 12, 34, 56, 789000000, time.UTC)
	must(t, os.Chtimes(filepath.Join(root, "d4/e.txt"), old, old))
}

// mutate changes the tree before incremental level n.
func mutate(t *testing.T, root string, n int) {
	p := func(s string) string { return filepath.Join(root, s) }
	switch n {
	case 1: // modify, add, delete
		f, err := os.OpenFile(p("a.txt"), os.O_APPEND|os.O_WRONLY, 0)
		must(t, err)
		f.WriteString("more alpha\n")
		f.Close()
		write(t, p("new1.txt"), "new at level 1", 0o644)
		must(t, os.Remove(p("empty")))
	case 2: // rename a directory, chmod, chown
		must(t, os.Rename(p("d1"), p("d1-renamed")))
		must(t, os.Chmod(p("new1.txt"), 0o600))
		must(t, os.Chown(p("new1.txt"), 4242, 4343))
	case 3: // xattr change, a new hard link, a retargeted symlink
		must(t, unix.Setxattr(p("a.txt"), "user.color", []byte("green"), 0))
		must(t, os.Link(p("new1.txt"), p("d4/new1-hard")))
		must(t, os.Remove(p("link-a")))
		must(t, os.Symlink("b.txt", p("link-a")))
	case 4: // delete a subtree, make a new one
		must(t, os.RemoveAll(p("d1-renamed/d2")))
		write(t, p("d5/f1"), "f1", 0o644)
		write(t, p("d5/f2"), "f2", 0o644)
	case 5: // a name changes type: file -> directory
		must(t, os.Remove(p("new1.txt")))
		write(t, p("new1.txt/inside"), "now a directory", 0o644)
	case 6: // truncate, old mtime
		must(t, os.Truncate(p("b.txt"), 100))
		old := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
		must(t, os.Chtimes(p("d5/f1"), old, old))
	case 7: // move a file between directories
		must(t, os.Rename(p("d5/f2"), p("d4/f2-moved")))
	case 8: // removexattr, directory mode
		must(t, unix.Removexattr(p("a.txt"), "user.color"))
		must(t, os.Chmod(p("d5"), 0o750))
	case 9: // many small files and a deletion of a hard link
		for i := 0; i < 50; i++ {
			write(t, p(fmt.Sprintf("many/f%02d", i)), strconv.Itoa(i), 0o644)
		}
		must(t, os.Remove(p("d4/b-hard")))
	}
}

// C1, C2 end to end: two real Tapestry nodes on 127.0.0.1 and 127.0.0.2;
// a level 0 copy, then levels 1 to 9 with changes in between; after each
// copy the destination equals the source (content, mode, owner, mtime,
// xattrs, symbolic and hard links).
func TestE2ECopyLevelsC1C2(t *testing.T) {
	testutil.RequireRoot(t)
	src := newNode(t, "127.0.0.1")
	dst := newNode(t, "127.0.0.2")
	srcDir := src.volume("vs1", "vol1", "btrfs")
	dstDir := dst.volume("vs2", "vol2", "ext4")
	populate(t, srcDir)
	for level := 0; level <= 9; level++ {
		if level > 0 {
			mutate(t, srcDir, level)
		}
		code, out, errOut := runMain(t, copyArgs(src, dst, "/vs1/vol1", "/vs2/vol2", "-l", strconv.Itoa(level))...)
		if code != ExitOK {
			t.Fatalf("level %d: exit %d\nstdout %s\nstderr %s\nsource log %s\ndestination log %s", level, code, out, errOut, src.logs, dst.logs)
		}
		compareTrees(t, fmt.Sprintf("level %d", level), srcDir, dstDir)
	}
}

// C1 end to end: a directory (a subtree of a volume) copied into a
// directory of another volume.
func TestE2ESubtreeC1(t *testing.T) {
	testutil.RequireRoot(t)
	src := newNode(t, "127.0.0.1")
	dst := newNode(t, "127.0.0.2")
	srcDir := src.volume("vs1", "vol1", "btrfs")
	dstDir := dst.volume("vs2", "vol2", "ext4")
	populate(t, srcDir)
	must(t, os.Mkdir(filepath.Join(dstDir, "copy"), 0o755))
	code, out, errOut := runMain(t, copyArgs(src, dst, "/vs1/vol1/d1", "/vs2/vol2/copy")...)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	compareTrees(t, "subtree", filepath.Join(srcDir, "d1"), filepath.Join(dstDir, "copy"))
	if _, err := os.Lstat(filepath.Join(dstDir, "a.txt")); err == nil {
		t.Error("a file outside the copied subtree reached the destination volume")
	}
}

// C1 end to end: a copy within one node, between two of its volumes.
func TestE2EWithinOneNodeC1(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "127.0.0.1")
	srcDir := n.volume("vs1", "vol1", "btrfs")
	dstDir := n.volume("vs1", "vol2", "ext4")
	populate(t, srcDir)
	code, out, errOut := runMain(t, copyArgs(n, n, "/vs1/vol1", "/vs1/vol2")...)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	compareTrees(t, "within one node", srcDir, dstDir)
}

// C2 -exclude end to end, over IPv6 loopback.
func TestE2EExcludeIPv6C2(t *testing.T) {
	testutil.RequireRoot(t)
	src := newNode(t, "::1")
	dst := newNode(t, "::1")
	srcDir := src.volume("vs1", "vol1", "ext4")
	dstDir := dst.volume("vs2", "vol2", "ext4")
	write(t, filepath.Join(srcDir, "keep/a.txt"), "keep", 0o644)
	write(t, filepath.Join(srcDir, "keep/b.tmp"), "drop", 0o644)
	write(t, filepath.Join(srcDir, "cache/c.txt"), "drop", 0o644)
	write(t, filepath.Join(srcDir, "top.tmp"), "drop", 0o644)
	code, out, errOut := runMain(t, copyArgs(src, dst, "/vs1/vol1", "/vs2/vol2", "-exclude", "*.tmp,cache")...)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	got := snapshotTree(t, dstDir)
	var names []string
	for p := range got {
		names = append(names, p)
	}
	sort.Strings(names)
	if strings.Join(names, " ") != ". keep keep/a.txt" {
		t.Errorf("destination holds %q, want . keep keep/a.txt", names)
	}
}

// C1, C2: the backup half against the real server while its restore is
// not there: a real source node sends its dump image over the three-way
// data connection to a protocol peer that keeps the bytes, and Linux
// restore lists the image. Level 0, then a level 1 after a change, with
// -exclude.
func TestE2EBackupToPeerC1C2(t *testing.T) {
	testutil.RequireRoot(t)
	restore := testutil.RequireTool(t, "restore")
	src := newNode(t, "127.0.0.1")
	// btrfs snapshots keep ctimes; reflink and copy snapshots (xfs,
	// ext4) give every file a new ctime, so every incremental would hold
	// every file.
	srcDir := src.volume("vs1", "vol1", "btrfs")
	populate(t, srcDir)
	write(t, filepath.Join(srcDir, "junk.tmp"), "excluded", 0o644)
	dst := newPeer(t, "127.0.0.2")
	dst.raw = true
	// copyLevel copies at a level and returns restore -t's listing and the
	// names of the non-directory inodes the image holds.
	copyLevel := func(level int) (string, []string) {
		t.Helper()
		args := []string{"-sa", src.user + ":" + src.pw, "-da", "admin:secret", "-st", "md5", "-l", strconv.Itoa(level),
			"-exclude", "*.tmp", src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2")}
		code, out, errOut := runMain(t, args...)
		if code != ExitOK {
			t.Fatalf("level %d: exit %d\nstdout %s\nstderr %s\nsource log %s", level, code, out, errOut, src.logs)
		}
		img, _ := dst.file("/vs2/vol2")
		p := filepath.Join(t.TempDir(), "image")
		must(t, os.WriteFile(p, img, 0o644))
		listing := testutil.Run(t, restore, "-t", "-f", p)
		names := map[uint32][]string{}
		for _, line := range strings.Split(listing, "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && strings.HasPrefix(f[1], "./") {
				if n, err := strconv.Atoi(f[0]); err == nil {
					names[uint32(n)] = append(names[uint32(n)], f[1])
				}
			}
		}
		var files []string
		r := dumpfmt.NewReader(bytes.NewReader(img))
		for {
			h, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("level %d image: %v", level, err)
			}
			if h.Kind == dumpfmt.KindInode && !h.Inode.IsDir() {
				files = append(files, names[h.Ino]...)
			}
		}
		sort.Strings(files)
		return listing, files
	}
	// Dump dates have one-second resolution and a file changed in the
	// second of its base is dumped again, so let a second pass.
	time.Sleep(1100 * time.Millisecond)
	l0, files0 := copyLevel(0)
	time.Sleep(1100 * time.Millisecond)
	want0 := "./a.txt ./b.txt ./d1/c.txt ./d1/d2/d3/deep.bin ./d4/b-hard ./d4/dangling ./d4/e.txt ./empty ./link-a ./sparse"
	if got := strings.Join(files0, " "); got != want0 {
		t.Errorf("level 0 image holds %s, want %s\n%s", got, want0, l0)
	}
	mutate(t, srcDir, 1)
	l1, files1 := copyLevel(1)
	if got := strings.Join(files1, " "); got != "./a.txt ./new1.txt" {
		t.Errorf("level 1 image holds %s, want the changed a.txt and new1.txt\n%s", got, l1)
	}
	if strings.Contains(l1, "./empty") {
		t.Errorf("level 1 still names the deleted file empty:\n%s", l1)
	}
}

// C2 end to end: refused authentication, an authentication type the server
// does not allow, an unreachable host and a missing path give clear messages
// and non-zero exits, against the real server.
func TestE2EErrorsC2(t *testing.T) {
	testutil.RequireRoot(t)
	src := newNode(t, "127.0.0.1")
	dst := newNode(t, "127.0.0.2")
	src.volume("vs1", "vol1", "ext4")
	dst.volume("vs2", "vol2", "ext4")
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	good := copyArgs(src, dst, "/vs1/vol1", "/vs2/vol2")
	withArg := func(i int, v string) []string {
		a := append([]string(nil), good...)
		a[i] = v
		return a
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"wrong password", withArg(1, e2eUser+":not-the-password"), ExitAuth,
			"authentication failed on the source " + net.JoinHostPort(src.host, strconv.Itoa(src.port)) + " for user " + e2eUser + " (md5): wrong user name or password"},
		{"unknown user", withArg(3, "nobody:"+dst.pw), ExitAuth, "authentication failed on the destination"},
		// SVM scope allows only challenge (MD5) authentication by default (N3).
		{"text not allowed", withArg(5, "text"), ExitAuth, "the source " + net.JoinHostPort(src.host, strconv.Itoa(src.port)) + " does not accept text authentication"},
		{"unreachable", withArg(len(good)-2, closed+":/vs1/vol1"), ExitUnreachable, "cannot reach the source " + closed},
		{"missing volume", withArg(len(good)-2, src.endpoint("/vs1/nosuch")), ExitRefused,
			"refused the backup of /vs1/nosuch (Could not obtain vol ref for Volume nosuch)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runMain(t, c.args...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d (want %d)\nstderr %q\nwant   %q\nstdout %q", code, c.code, errOut, c.want, out)
			}
			// The refused IPv6 attempt before IPv4 is not shown.
			if strings.Contains(out, "data connection refused") {
				t.Errorf("stdout shows the servers' refusal of the IPv6 attempt: %q", out)
			}
		})
	}
}
