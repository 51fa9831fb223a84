package server

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// imgEntry is one inode of a crafted tenant image and its names.
type imgEntry struct {
	names []string
	in    dump.Inode
	data  []byte
	xs    []dump.Xattr
}

func (e *imgEntry) typ() uint32 { return e.in.Mode & dump.ModeFmt }

// tenantImage crafts the image a hostile tenant supplies (issue 10): block
// and character device nodes (world-writable, one of them the host's first
// disk, one with two names), set-user-ID root files with any modes (small
// ones for the file workers, a large one written directly, two names of one
// of them), files owned by root and by ids outside any mapping, a file with
// a root file capability, a set-ID directory owned by root.
func tenantImage(t testing.TB) ([]byte, []*imgEntry) {
	t.Helper()
	mt := time.Unix(1700000000, 123456000)
	big := bytes.Repeat([]byte("big setuid payload "), 10000) // > 64 KiB
	ents := []*imgEntry{
		{names: []string{"sda"}, in: dump.Inode{Mode: dump.ModeBlk | 0o666, Rdev: uint32(unix.Mkdev(8, 0))}},
		{names: []string{"mem"}, in: dump.Inode{Mode: dump.ModeChr | 0o666, Rdev: uint32(unix.Mkdev(1, 1))}},
		{names: []string{"suid-root"}, in: dump.Inode{Mode: dump.ModeReg | 0o4755}, data: []byte("#!/bin/sh\nid\n")},
		{names: []string{"suid-sgid-any"}, in: dump.Inode{Mode: dump.ModeReg | 0o6777, GID: 0}, data: []byte("any mode")},
		{names: []string{"sgid-inside"}, in: dump.Inode{Mode: dump.ModeReg | 0o2750, UID: 2001, GID: 2002}, data: []byte("inside ids")},
		{names: []string{"root-file"}, in: dump.Inode{Mode: dump.ModeReg | 0o644}, data: []byte("owned by root")},
		{names: []string{"outside"}, in: dump.Inode{Mode: dump.ModeReg | 0o640, UID: 70000, GID: 70001}, data: []byte("ids outside")},
		{names: []string{"inside"}, in: dump.Inode{Mode: dump.ModeReg | 0o600, UID: 2500, GID: 2600}, data: []byte("ids inside")},
		{names: []string{"big-suid"}, in: dump.Inode{Mode: dump.ModeReg | 0o4711}, data: big},
		{names: []string{"cap"}, in: dump.Inode{Mode: dump.ModeReg | 0o755, UID: 2001, GID: 2001}, data: []byte("capable"),
			xs: []dump.Xattr{{Name: "security.capability", Value: capSetUID()}, {Name: "user.note", Value: []byte("kept")}}},
		{names: []string{"fifo"}, in: dump.Inode{Mode: dump.ModeFifo | 0o644, UID: 2001, GID: 2001}},
		{names: []string{"link"}, in: dump.Inode{Mode: dump.ModeLnk | 0o777}, data: []byte("suid-root")},
		{names: []string{"dir/hard-a", "hard-b"}, in: dump.Inode{Mode: dump.ModeReg | 0o4755}, data: []byte("two names")},
		{names: []string{"dir/tty", "tty-b"}, in: dump.Inode{Mode: dump.ModeChr | 0o620, Rdev: uint32(unix.Mkdev(4, 1))}},
	}
	for i, e := range ents {
		e.in.Ino = uint32(10 + i)
		e.in.Nlink = len(e.names)
		e.in.Size = int64(len(e.data))
		e.in.Mtime, e.in.Atime, e.in.Ctime = mt, mt, mt
	}
	var buf bytes.Buffer
	w, err := dump.NewWriter(&buf, dump.Options{Date: mt})
	if err != nil {
		t.Fatal(err)
	}
	used := dump.NewBitmap(64)
	for i := uint32(2); i < uint32(10+len(ents)); i++ {
		used.Set(i)
	}
	if err := w.WriteMaps(used, used); err != nil {
		t.Fatal(err)
	}
	root := []dump.DirEntry{{Ino: 2, Type: dump.DTDir, Name: "."}, {Ino: 2, Type: dump.DTDir, Name: ".."}, {Ino: 3, Type: dump.DTDir, Name: "dir"}}
	sub := []dump.DirEntry{{Ino: 3, Type: dump.DTDir, Name: "."}, {Ino: 2, Type: dump.DTDir, Name: ".."}}
	for _, e := range ents {
		for _, n := range e.names {
			d, base := filepath.Split(n)
			de := dump.DirEntry{Ino: e.in.Ino, Type: dump.DTFromMode(e.in.Mode), Name: base}
			if d == "" {
				root = append(root, de)
			} else {
				sub = append(sub, de)
			}
		}
	}
	if _, err := w.WriteDir(&dump.Inode{Ino: 2, Mode: dump.ModeDir | 0o755, Nlink: 3, Mtime: mt, Atime: mt, Ctime: mt}, nil, root); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteDir(&dump.Inode{Ino: 3, Mode: dump.ModeDir | 0o6775, GID: 2001, Nlink: 2, Mtime: mt, Atime: mt, Ctime: mt}, nil, sub); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		in := e.in
		if e.data == nil {
			_, err = w.WriteFile(&in, e.xs, nil)
		} else {
			_, err = w.WriteFile(&in, e.xs, bytes.NewReader(e.data))
		}
		if err != nil {
			t.Fatalf("write inode %d: %v", in.Ino, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), ents
}

// capSetUID is a security.capability value (VFS_CAP_REVISION_2) granting
// CAP_SETUID, effective: a root shell for whoever runs the file.
func capSetUID() []byte {
	v := make([]byte, 20)
	v[0], v[3] = 0x01, 0x02 // magic_etc = 0x02000001
	v[4] = 1 << 7           // permitted[0]: CAP_SETUID (7)
	return v
}

// loginPosts logs user in at addr with a post collector.
func (f *fixture) loginPosts(addr, user, pw string, ps *posts) *ndmp.Client {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, hangGuard)
	defer cancel()
	c, err := ndmp.Dial(ctx, addr, &ndmp.ClientConfig{PostHandler: ps.handler})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Conn().Close() })
	if err := c.Connect(ctx); err != nil {
		f.t.Fatal(err)
	}
	if err := c.AuthMD5(ctx, user, pw); err != nil {
		f.t.Fatal(err)
	}
	return c
}

// svmLogin logs vs1's vsadmin-backup user in on vs1's data LIF.
func (f *fixture) svmLogin(ps *posts) *ndmp.Client {
	f.t.Helper()
	lif, err := f.st.GetLIF(f.ctx, "vs1", "vs1_data1")
	if err != nil {
		f.t.Fatal(err)
	}
	pw, err := f.au.GenerateNDMPPassword(f.ctx, "vs1", "vsbackup")
	if err != nil {
		f.t.Fatal(err)
	}
	return f.loginPosts(net.JoinHostPort(lif.Address.String(), strconv.Itoa(lif.Port)), "vsbackup", pw, ps)
}

// feedRestore restores img into /vs1/vol2 through c: DATA_LISTEN on TCP,
// the test (the tenant's own tape server) connects and sends the image. It
// returns the halt reason and the LOG_FILE posts before the halt.
func feedRestore(t *testing.T, f *fixture, c *ndmp.Client, ps *posts, img []byte) (ndmp.DataHaltReason, []ndmp.LogFilePost) {
	t.Helper()
	ctx := f.ctx
	a, err := c.DataListen(ctx, ndmp.AddrTCP)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", a.AddrPorts()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitFor(t, func() bool { s, _ := c.DataGetState(ctx); return s != nil && s.State == ndmp.DataStateConnected })
	sent := make(chan error, 1)
	go func() {
		_, err := conn.Write(img)
		_ = conn.(*net.TCPConn).CloseWrite()
		sent <- err
	}()
	wantErr(t, "start recover", c.DataStartRecover(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol2"}}, nil), ndmp.NoErr)
	r := ps.wait(t, ndmp.NotifyDataHalted, hangGuard).Body.(*ndmp.NotifyDataHaltedPost).Reason
	if err := <-sent; err != nil {
		t.Fatalf("send image: %v", err)
	}
	lfs := logFilesOf(t, ps)
	wantErr(t, "data stop", c.DataStop(ctx), ndmp.NoErr)
	return r, lfs
}

// wantAttrs is what one restored name must be.
type wantAttrs struct {
	mode     uint32 // type and permission bits
	uid, gid uint32
}

// checkRestored compares every name of ents restored into dst with the
// image: type, permission bits, owner and group as want says, data bytes,
// modification time, symbolic link target, the extended attributes that
// must be kept (keep) and those that must not (drop).
func checkRestored(t *testing.T, dst string, e *imgEntry, w wantAttrs, keep, drop []string) {
	t.Helper()
	for _, n := range e.names {
		p := filepath.Join(dst, n)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		mode := st.Mode
		if mode&unix.S_IFMT == unix.S_IFLNK {
			mode = unix.S_IFLNK | 0o777
		}
		if mode != w.mode || st.Uid != w.uid || st.Gid != w.gid {
			t.Errorf("%s: mode %#o owner %d:%d, want %#o %d:%d", n, st.Mode, st.Uid, st.Gid, w.mode, w.uid, w.gid)
		}
		if got := time.Unix(st.Mtim.Unix()); !got.Equal(e.in.Mtime) {
			t.Errorf("%s: mtime %v, want %v", n, got, e.in.Mtime)
		}
		if (st.Mode&unix.S_IFMT == unix.S_IFCHR || st.Mode&unix.S_IFMT == unix.S_IFBLK) && uint32(st.Rdev) != e.in.Rdev {
			t.Errorf("%s: device %#x, want %#x", n, st.Rdev, e.in.Rdev)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, e.data) {
				t.Errorf("%s: data differs (%d bytes, want %d; %v)", n, len(b), len(e.data), err)
			}
		case unix.S_IFLNK:
			if l, err := os.Readlink(p); err != nil || l != string(e.data) {
				t.Errorf("%s: link %q, want %q (%v)", n, l, e.data, err)
			}
		}
		for _, x := range e.xs {
			v := make([]byte, 256)
			k, err := unix.Lgetxattr(p, x.Name, v)
			switch {
			case contains(keep, x.Name) && (err != nil || !bytes.Equal(v[:k], x.Value)):
				t.Errorf("%s: xattr %s = %q (%v), want %q", n, x.Name, v[:max(k, 0)], err, x.Value)
			case contains(drop, x.Name) && !errors.Is(err, unix.ENODATA):
				t.Errorf("%s: xattr %s restored (%q, %v), must not be", n, x.Name, v[:max(k, 0)], err)
			}
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// restoreVolume empties vs1/vol2 and returns its host path.
func restoreVolume(t *testing.T, f *fixture) string {
	t.Helper()
	dst := filepath.Join(f.dir, "vols", "vol2")
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// Issue 10 item 6: an SVM user (vsadmin-backup on the SVM's data LIF)
// restoring an image it supplies gets no device nodes (a LOG_FILE
// NDMP_RECOVERY_FAILED_PERMISSION naming each name of each, the rest
// restored), no set-user-ID bits, no set-group-ID bits on files, no file
// capability, and owners only inside the SVM's restore mapping (others go
// to the default owner, 65534 unless set); with -restore-allow-any-owner
// the image's owners stay, root included, and the other rules hold.
func TestTenantRestoreContained(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	_, err := ModifySVMSettings(f.ctx, f.store, "vs1", func(s *SVMSettings) error {
		s.RestoreUIDs, s.RestoreGIDs = "2000-2999", "2000-2999"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, ents := tenantImage(t)
	for _, anyOwner := range []bool{false, true} {
		t.Run("any-owner="+strconv.FormatBool(anyOwner), func(t *testing.T) {
			if _, err := ModifySVMSettings(f.ctx, f.store, "vs1", func(s *SVMSettings) error {
				s.RestoreAnyOwner = anyOwner
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			dst := restoreVolume(t, f)
			ps := newPosts()
			c := f.svmLogin(ps)
			r, lfs := feedRestore(t, f, c, ps, img)
			if r != ndmp.DataHaltSuccessful {
				t.Fatalf("restore halted %v\n%s", r, f.logs.String())
			}
			var refused []string
			for _, e := range ents {
				if typ := e.typ(); typ == dump.ModeBlk || typ == dump.ModeChr {
					for _, n := range e.names {
						refused = append(refused, n)
						if _, err := os.Lstat(filepath.Join(dst, n)); !errors.Is(err, fs.ErrNotExist) {
							t.Errorf("device %s was created (%v)", n, err)
						}
					}
					continue
				}
				want := wantAttrs{mode: e.in.Mode &^ 0o6000, uid: 65534, gid: 65534}
				if e.in.UID >= 2000 && e.in.UID < 3000 || anyOwner {
					want.uid = e.in.UID
				}
				if e.in.GID >= 2000 && e.in.GID < 3000 || anyOwner {
					want.gid = e.in.GID
				}
				checkRestored(t, dst, e, want, []string{"user.note"}, []string{"security.capability"})
			}
			dirWant := wantAttrs{mode: unix.S_IFDIR | 0o2775, uid: 65534, gid: 2001}
			if anyOwner {
				dirWant.uid = 0
			}
			checkRestored(t, dst, &imgEntry{names: []string{"dir"}, in: dump.Inode{Mtime: time.Unix(1700000000, 123456000)}}, dirWant, nil, nil)
			var failed []string
			for _, lf := range lfs {
				if lf.Name == "/" {
					continue
				}
				if lf.RecoveryStatus != ndmp.RecoveryFailedPermission {
					t.Errorf("LOG_FILE %s: %v, want NDMP_RECOVERY_FAILED_PERMISSION", lf.Name, lf.RecoveryStatus)
				}
				failed = append(failed, lf.Name)
			}
			sort.Strings(refused)
			sort.Strings(failed)
			if strings.Join(refused, "\n") != strings.Join(failed, "\n") {
				t.Errorf("LOG_FILE errors for %q, want one for each device name %q", failed, refused)
			}
		})
	}
}

// Issue 10 item 6: a cluster user with role backup restores the same image
// as it is: devices, set-ID bits and owners.
func TestClusterBackupRestoresAsIs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	img, ents := tenantImage(t)
	dst := restoreVolume(t, f)
	ps := newPosts()
	c := f.loginPosts(f.addr, testUser, f.ndmpPW, ps)
	r, lfs := feedRestore(t, f, c, ps, img)
	if r != ndmp.DataHaltSuccessful {
		t.Fatalf("restore halted %v\n%s", r, f.logs.String())
	}
	for _, lf := range lfs {
		if lf.RecoveryStatus != ndmp.RecoverySuccessful {
			t.Errorf("LOG_FILE %+v", lf)
		}
	}
	for _, e := range ents {
		// security.capability is not compared: the kernel drops it at the
		// chown that follows the xattrs (the restore order of every caller).
		checkRestored(t, dst, e, wantAttrs{mode: e.in.Mode, uid: e.in.UID, gid: e.in.GID}, []string{"user.note"}, nil)
	}
}

// acceptedFrom reports whether the first connection ln accepts comes from
// the server (not from the probe the test dials after it): a connection
// the server made before is queued ahead of the probe.
func acceptedFrom(t *testing.T, ln net.Listener) bool {
	t.Helper()
	probe, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.RemoteAddr().String() != probe.LocalAddr().String()
}

// Issue 10 item 7, N7: an SVM user's DATA_CONNECT and MOVER_CONNECT may not
// make the server dial arbitrary hosts and ports: an address that is not a
// LIF of this cluster, the NDMP port of a LIF and a port of a LIF address
// that no session listens on are refused (NDMP_CONNECT_ERR, nothing
// dialled), and so is a data service of another SVM listening on the
// cluster's intercluster LIF; a mover of a cluster session listening there
// and an address on the SVM's -data-connect-allow list are reached.
func TestSVMUserDataConnectRule(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: func(f *fixture) {
		withVolumes(f)
		if _, err := f.st.CreateLIF(f.ctx, storage.LIFSpec{Name: "ic1", SVM: f.adminSVM, Role: storage.RoleIntercluster,
			Address: "127.0.0.3", Port: freePort(f.t, "127.0.0.3"), HomeNode: testNodeName}); err != nil {
			f.t.Fatal(err)
		}
		// Another tenant.
		if _, err := f.st.CreateSVM(f.ctx, storage.SVMSpec{Name: "vs2"}); err != nil {
			f.t.Fatal(err)
		}
		if _, err := f.st.CreateLIF(f.ctx, storage.LIFSpec{Name: "vs2_data1", SVM: "vs2", Role: storage.RoleData,
			Address: "127.0.0.4", Port: freePort(f.t, "127.0.0.4"), HomeNode: testNodeName}); err != nil {
			f.t.Fatal(err)
		}
		if _, err := f.au.CreateUser(f.ctx, authSpec("vs2", "vs2backup", auth.RoleVsadminBackup)); err != nil {
			f.t.Fatal(err)
		}
	}})
	ctx := f.ctx
	listen := func(host string) net.Listener {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln
	}
	addrOf := func(ln net.Listener) ndmp.Addr {
		a, err := ndmp.NewTCPAddrs(netip.MustParseAddrPort(ln.Addr().String()))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	foreign := listen("127.0.0.9")             // a host that is no LIF of the cluster
	onLIF := listen("127.0.0.3")               // a port of the intercluster LIF's address nobody listens on for NDMP
	lifPort := netip.MustParseAddrPort(f.addr) // the node-management LIF's NDMP port
	ps := newPosts()
	c := f.svmLogin(ps)
	for _, tc := range []struct {
		name string
		addr ndmp.Addr
		ln   net.Listener
	}{
		{"foreign host", addrOf(foreign), foreign},
		{"port of a LIF address", addrOf(onLIF), onLIF},
		{"NDMP port of a LIF", func() ndmp.Addr { a, _ := ndmp.NewTCPAddrs(lifPort); return a }(), nil},
	} {
		wantErr(t, tc.name+": data connect", c.DataConnect(ctx, tc.addr), ndmp.ErrConnect)
		if tc.ln != nil && acceptedFrom(t, tc.ln) {
			t.Errorf("%s: the server dialled it", tc.name)
		}
		if s, _ := c.DataGetState(ctx); s == nil || s.State != ndmp.DataStateIdle {
			t.Fatalf("%s: data state %+v after a refused connect", tc.name, s)
		}
		m := ps.wait(t, ndmp.LogMessage, hangGuard).Body.(*ndmp.LogMessagePost)
		if !strings.Contains(m.Entry, "data connection refused") {
			t.Errorf("%s: LOG_MESSAGE %q", tc.name, m.Entry)
		}
	}

	// A mover of a cluster session listening on the intercluster LIF.
	tapeS := f.login(nil)
	wantErr(t, "tape open", tapeS.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode), ndmp.NoErr)
	wantErr(t, "record size", tapeS.MoverSetRecordSize(ctx, recSize), ndmp.NoErr)
	ma, err := tapeS.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrTCP)
	if err != nil {
		t.Fatal(err)
	}
	if got := ma.AddrPorts()[0].Addr().String(); got != "127.0.0.3" {
		t.Fatalf("mover listens on %s, want the intercluster LIF", got)
	}
	wantErr(t, "connect to a listening mover", c.DataConnect(ctx, *ma), ndmp.NoErr)
	wantErr(t, "data abort", c.DataAbort(ctx), ndmp.NoErr)
	wantErr(t, "data stop", c.DataStop(ctx), ndmp.NoErr)

	// Another SVM's data service listening on the intercluster LIF.
	lif2, err := f.st.GetLIF(ctx, "vs2", "vs2_data1")
	if err != nil {
		t.Fatal(err)
	}
	pw2, err := f.au.GenerateNDMPPassword(ctx, "vs2", "vs2backup")
	if err != nil {
		t.Fatal(err)
	}
	other := f.loginPosts(lif2.AddrPort().String(), "vs2backup", pw2, newPosts())
	oa, err := other.DataListen(ctx, ndmp.AddrTCP)
	if err != nil {
		t.Fatal(err)
	}
	if got := oa.AddrPorts()[0].Addr().String(); got != "127.0.0.3" {
		t.Fatalf("vs2's data service listens on %s, want the intercluster LIF", got)
	}
	wantErr(t, "connect to another SVM's listener", c.DataConnect(ctx, *oa), ndmp.ErrConnect)
	if s, _ := other.DataGetState(ctx); s == nil || s.State != ndmp.DataStateListen {
		t.Fatalf("vs2's data service after the refused connect: %+v", s)
	}

	// The administrator allows the foreign host.
	if _, err := ModifySVMSettings(ctx, f.store, "vs1", func(s *SVMSettings) error {
		s.DataConnectAllow = []string{"127.0.0.8/30"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c2 := f.svmLogin(newPosts())
	wantErr(t, "allowed host", c2.DataConnect(ctx, addrOf(foreign)), ndmp.NoErr)
	if !acceptedFrom(t, foreign) {
		t.Error("allowed host: the server did not connect")
	}
}

// Issue 10 item 7: an SVM user sees its volumes as /svm/volume in
// CONFIG_GET_FS_INFO, and the LOG_MESSAGE of a restore that fails names no
// host path (its state directory is hidden); paths in the SVM's volumes are
// written /svm/volume/..., other host paths hidden.
func TestSVMUserSeesNoHostPaths(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{before: withVolumes})
	ctx := f.ctx
	ps := newPosts()
	c := f.svmLogin(ps)
	fsi, err := c.GetFSInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, fi := range fsi {
		if fi.FSPhysicalDevice != fi.FSLogicalDevice || !strings.HasPrefix(fi.FSPhysicalDevice, "/vs1/") {
			t.Errorf("fs info %s: physical device %q, want %q", fi.FSLogicalDevice, fi.FSPhysicalDevice, fi.FSLogicalDevice)
		}
	}
	// A level 1 image with no level 0 restored before: the error names the
	// destination directory.
	restoreVolume(t, f)
	if r, _ := feedRestore(t, f, c, ps, levelOneImage(t)); r == ndmp.DataHaltSuccessful {
		t.Fatal("restore of a level 1 image without its level 0 succeeded")
	}
	var msgs []string
	ps.mu.Lock()
	for _, m := range ps.ms {
		if lm, ok := m.Body.(*ndmp.LogMessagePost); ok {
			msgs = append(msgs, lm.Entry)
		}
	}
	ps.mu.Unlock()
	all := strings.Join(msgs, "\n")
	if strings.Contains(all, f.dir) || !strings.Contains(all, hiddenPath) {
		t.Errorf("LOG_MESSAGEs name a host path:\n%s", all)
	}
	// How a message's paths are rewritten: the SVM's volumes (and their
	// snapshots) as /svm/volume, other host paths hidden.
	vol1 := filepath.Join(f.dir, "vols", "vol1")
	ss := &session{srv: f.srv, lif: storage.LIF{SVM: "vs1", Role: storage.RoleData}}
	for in, want := range map[string]string{
		"open " + vol1 + "/a/b: permission denied":           "open /vs1/vol1/a/b: permission denied",
		"snapshot " + vol1 + "/.snapshot/s1 (busy)":          "snapshot /vs1/vol1/.snapshot/s1 (busy)",
		"no space in \"" + vol1 + "\", see /etc/fstab":       "no space in \"/vs1/vol1\", see [host path]",
		"FILESYSTEM=/vs1/vol2/x and /vs1/nosuch":             "FILESYSTEM=/vs1/vol2/x and [host path]",
		"restore into " + f.dir + "/restore-state/vs1: done": "restore into [host path]: done",
	} {
		if got := ss.svmPaths(ctx, in); got != want {
			t.Errorf("svmPaths(%q) = %q, want %q", in, got, want)
		}
	}
	cluster := &session{srv: f.srv, lif: storage.LIF{SVM: f.adminSVM, Role: storage.RoleNodeMgmt}}
	if in := "open " + vol1; cluster.svmPaths(ctx, in) != in {
		t.Errorf("a cluster session's message was rewritten: %q", cluster.svmPaths(ctx, in))
	}
}

// levelOneImage is an image of level 1 holding only its root directory.
func levelOneImage(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := dump.NewWriter(&buf, dump.Options{Level: 1, Date: time.Unix(1700000100, 0), BaseDate: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	used := dump.NewBitmap(8)
	used.Set(2)
	if err := w.WriteMaps(used, used); err != nil {
		t.Fatal(err)
	}
	ents := []dump.DirEntry{{Ino: 2, Type: dump.DTDir, Name: "."}, {Ino: 2, Type: dump.DTDir, Name: ".."}}
	if _, err := w.WriteDir(&dump.Inode{Ino: 2, Mode: dump.ModeDir | 0o755, Nlink: 2}, nil, ents); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
