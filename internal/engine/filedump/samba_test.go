package filedump

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// ntaclBlob builds a security.NTACL-like value holding n ACEs (Samba stores
// an NDR blob; the engine keeps it byte for byte).
func ntaclBlob(n int) []byte {
	var b bytes.Buffer
	b.Write([]byte{4, 0, 4, 0}) // version 4
	for i := 0; i < n; i++ {
		var ace [28]byte
		ace[0] = byte(i % 2)
		binary.LittleEndian.PutUint32(ace[4:], 0x1f01ff)
		binary.LittleEndian.PutUint32(ace[8:], uint32(1000+i))
		b.Write(ace[:])
	}
	return b.Bytes()
}

func allXattrs(t testing.TB, p string) map[string]string {
	t.Helper()
	xs, err := listXattrs(p)
	must(t, err)
	m := map[string]string{}
	for _, x := range xs {
		m[x.Name] = string(x.Value)
	}
	return m
}

// TestSambaAttributesRoundTrip (D4, D8): NT ACL with 1,024 ACEs, DOS
// attributes, NT streams, the LUN flag, a 64 KB xattr and nanosecond times
// survive our backup and restore; DOS, streams and LUN travel in extension
// records.
func TestSambaAttributesRoundTrip(t *testing.T) {
	testutil.RequireTool(t, "mkfs.xfs")
	src := testutil.LoopFS(t, "xfs", 300)
	f := filepath.Join(src, "doc.txt")
	writeFile(t, f, []byte("document"), 0o644)
	acl := ntaclBlob(1024)
	must(t, unix.Setxattr(f, "security.NTACL", acl, 0))
	must(t, unix.Setxattr(f, "user.DOSATTRIB", []byte("0x21"), 0))
	must(t, unix.Setxattr(f, "user.DosStream.Zone.Identifier:$DATA", []byte("[ZoneTransfer]\r\nZoneId=3\r\n"), 0))
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KB
	must(t, unix.Setxattr(f, "user.big", big, 0))
	lun := filepath.Join(src, "lun0")
	writeFile(t, lun, bytes.Repeat([]byte{1}, 8192), 0o600)
	must(t, storage.SetLUN(lun, true))
	d := filepath.Join(src, "share")
	must(t, os.Mkdir(d, 0o755))
	must(t, unix.Setxattr(d, "user.DOSATTRIB", []byte("0x10"), 0))
	ts := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)
	for _, p := range []string{f, lun, d} {
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{unix.NsecToTimespec(ts.UnixNano()), unix.NsecToTimespec(ts.UnixNano() + 7)}, 0))
	}

	img := filepath.Join(t.TempDir(), "img")
	backupDir(t, src, img, nil, nil)
	kinds := map[dump.ExtKind]int{}
	in, err := os.Open(img)
	must(t, err)
	r := dump.NewReader(in)
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		if h.Kind == dump.KindExtension {
			kinds[h.Ext]++
		}
	}
	in.Close()
	if kinds[dump.ExtDOS] != 2 || kinds[dump.ExtStream] != 1 || kinds[dump.ExtLUN] != 1 || kinds[dump.ExtXattrs] == 0 {
		t.Errorf("extension records: %v", kinds)
	}

	dst := testutil.LoopFS(t, "xfs", 300)
	restoreImage(t, img, dst, nil)
	for _, rel := range []string{"doc.txt", "lun0", "share"} {
		want, got := allXattrs(t, filepath.Join(src, rel)), allXattrs(t, filepath.Join(dst, rel))
		if len(want) == 0 {
			t.Fatalf("%s has no xattrs", rel)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: xattr %s: %d bytes, want %d", rel, k, len(got[k]), len(v))
			}
		}
		var a, b unix.Stat_t
		must(t, unix.Lstat(filepath.Join(src, rel), &a))
		must(t, unix.Lstat(filepath.Join(dst, rel), &b))
		// Reading a directory for the backup changes its atime in the
		// source, so atimes are compared for files only.
		if a.Mtim != b.Mtim || a.Atim != b.Atim && a.Mode&unix.S_IFMT != unix.S_IFDIR {
			t.Errorf("%s: times %v %v, want %v %v", rel, b.Atim, b.Mtim, a.Atim, a.Mtim)
		}
	}
	if ok, err := storage.IsLUN(filepath.Join(dst, "lun0")); err != nil || !ok {
		t.Errorf("lun0 is no LUN after restore: %v", err)
	}
	// EXTRACT_ACL=N leaves the NT ACL out.
	dst2 := testutil.LoopFS(t, "xfs", 300) // ext4 cannot hold a 64 KB xattr value
	restoreImage(t, img, dst2, Env{"EXTRACT_ACL": "N"})
	if _, ok := allXattrs(t, filepath.Join(dst2, "doc.txt"))["security.NTACL"]; ok {
		t.Error("EXTRACT_ACL=N restored the NT ACL")
	}
	// NO_ACLS=Y keeps the NT ACL off the image.
	img2 := filepath.Join(t.TempDir(), "img2")
	backupDir(t, src, img2, nil, Env{"NO_ACLS": "Y"})
	b, err := os.ReadFile(img2)
	must(t, err)
	if bytes.Contains(b, acl[4:200]) {
		t.Error("NO_ACLS=Y image holds the NT ACL")
	}
}
