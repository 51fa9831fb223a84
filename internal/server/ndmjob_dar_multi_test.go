package server

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// darRead is one NOTIFY_DATA_READ the data service posted.
type darRead struct{ off, length int64 }

var darReadLine = regexp.MustCompile(`msg="dar read".* offset=(\d+) length=(\d+)`)

// darReads returns the NOTIFY_DATA_READ posts logged in log.
func darReads(log string) []darRead {
	var out []darRead
	for _, m := range darReadLine.FindAllStringSubmatch(log, -1) {
		o, _ := strconv.ParseInt(m[1], 10, 64)
		l, _ := strconv.ParseInt(m[2], 10, 64)
		out = append(out, darRead{o, l})
	}
	return out
}

// checkDARReads fails unless every read lies within the image and each
// starts at or after the end of the one before (no byte asked twice, no
// seek backwards). skip reads at the start are exempt from the order (the
// offset map, which lies at the end of the image, of an enhanced DAR).
func checkDARReads(t *testing.T, reads []darRead, image int64, skip int) {
	t.Helper()
	if len(reads) <= skip {
		t.Fatalf("%d NOTIFY_DATA_READ posts logged, want more than %d", len(reads), skip)
	}
	end, total := int64(0), int64(0)
	for _, r := range reads {
		total += r.length
	}
	t.Logf("%d NOTIFY_DATA_READ posts, %d bytes of a %d-byte image: %v", len(reads), total, image, reads)
	for i, r := range reads {
		if r.length <= 0 || r.off+r.length > image {
			t.Errorf("read %d (%d bytes at %d) goes beyond the %d-byte image", i, r.length, r.off, image)
		}
		if i < skip {
			continue
		}
		if r.off < end {
			t.Errorf("read %d (%d bytes at %d) starts before the end (%d) of the reads before it: %v", i, r.length, r.off, end, reads)
		}
		end = r.off + r.length
	}
}

// attrLine describes a path for a byte-and-attribute comparison: type and
// permissions, owner, size, content hash, link target and mtime.
func attrLine(t *testing.T, root, rel string) string {
	t.Helper()
	p := filepath.Join(root, rel)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("%s mode=%o uid=%d gid=%d", rel, st.Mode, st.Uid, st.Gid)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		line += fmt.Sprintf(" size=%d sha=%x mtime=%d", len(b), sha256.Sum256(b), st.Mtim.Nano())
	case unix.S_IFLNK:
		l, _ := os.Readlink(p)
		line += " -> " + l + fmt.Sprintf(" mtime=%d", st.Mtim.Nano())
	case unix.S_IFDIR:
		line += fmt.Sprintf(" mtime=%d", st.Mtim.Nano())
	}
	return line
}

// attrTree lists every path below root/sub with attrLine, relative to root.
func attrTree(t *testing.T, root, sub string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(root, sub), func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, attrLine(t, root, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// darFixture backs up a tree to nrst0l with ndmjob (file history in an
// index file) and returns the fixture, source and destination volumes,
// the index and the image's length.
func darFixture(t *testing.T, fill func(src string)) (f *fixture, src, dst, index string, image int64) {
	f = newFixture(t, fixtureOpts{before: withVolumes})
	src, dst = filepath.Join(f.dir, "vols", "vol1"), filepath.Join(f.dir, "vols", "vol2")
	populate(t, src)
	fill(src)
	index = filepath.Join(t.TempDir(), "index")
	out, err := runNdmjob(t, "-v", "-c", "-D", f.agent("m"), "-B", "dump", "-C", "/vs1/vol1", "-f", "nrst0l", "-I", index)
	if err != nil || !strings.Contains(out, "Operation ended OKAY") {
		t.Fatalf("ndmjob -c: %v\n%s", err, out)
	}
	d0, err := f.lib.Drive(0)
	if err != nil {
		t.Fatal(err)
	}
	return f, src, dst, index, int64(d0.Stats().BytesWritten)
}

// stamp sets a distinct mtime on p, so the comparison sees whether the
// restore kept it.
func stamp(t *testing.T, p string, sec int64) {
	t.Helper()
	ts := time.Unix(sec, 123456789)
	if err := os.Chtimes(p, ts, ts); err != nil {
		t.Fatal(err)
	}
}

// Issue 11 item 2, D11, N16: ndmjob restores two files by direct access,
// one of them under another name (NEW=OLD). They are the last two files of
// the image, so a read that asks for more than the files need runs past
// the end of the image, where the mover pauses and ndmjob closes it. Each
// restored file equals its source byte for byte with its mode, owner and
// mtime; every NOTIFY_DATA_READ asks for bytes inside the image, in
// increasing order, none twice.
func TestNdmjobDARTwoFilesOneRenamed(t *testing.T) {
	f, src, dst, index, image := darFixture(t, func(src string) {
		bigFile(t, filepath.Join(src, "zz/y.bin"), 3000)
		bigFile(t, filepath.Join(src, "zz/z.bin"), 5000)
		if err := os.Chmod(filepath.Join(src, "zz/y.bin"), 0o600); err != nil {
			t.Fatal(err)
		}
		stamp(t, filepath.Join(src, "zz/y.bin"), 1600000000)
		stamp(t, filepath.Join(src, "zz/z.bin"), 1600000100)
	})
	mark := len(f.logs.String())
	out, err := runNdmjob(t, "-v", "-x", "-D", f.agent("m"), "-B", "dump", "-C", "/vs1/vol2", "-f", "nrst0l", "-J", index,
		"-E", "DIRECT=Y", `new/y-renamed.bin=zz/y.bin`, "zz/z.bin")
	logs := f.logs.String()[mark:]
	if err != nil || !strings.Contains(out, "Operation ended OKAY") || !strings.Contains(out, "2 OK, 0 ERROR") {
		t.Fatalf("ndmjob -x DIRECT=Y of two files: %v\n%s\nserver:\n%s", err, out, logs)
	}
	for got, want := range map[string]string{"new/y-renamed.bin": "zz/y.bin", "zz/z.bin": "zz/z.bin"} {
		g := strings.TrimPrefix(attrLine(t, dst, got), got)
		w := strings.TrimPrefix(attrLine(t, src, want), want)
		if g != w {
			t.Errorf("%s restored as %s:\n got %s\nwant %s", want, got, g, w)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "zz/y.bin")); err == nil {
		t.Error("the renamed file was restored under its original name too")
	}
	for _, p := range []string{"d0", "d1", "link"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err == nil {
			t.Errorf("the DAR restore brought back %s", p)
		}
	}
	checkDARReads(t, darReads(logs), image, 0)
}

// Issue 11 item 2, D11, N16: ndmjob restores a directory by enhanced DAR
// (ENHANCED_DAR_ENABLED=Y; ACL_START comes from the index). The directory
// holds files of sizes around record and tape-block boundaries, a
// subdirectory, a symbolic link and the last file of the image; the
// restored tree equals the source byte for byte with modes, owners and
// mtimes. The data service reads the offset map first (it lies at the end
// of the image, after ACL_START), then every other byte it needs once, in
// increasing order, and nothing beyond the image.
func TestNdmjobEnhancedDARDirectory(t *testing.T) {
	f, src, dst, index, image := darFixture(t, func(src string) {
		for i, n := range []int{0, 1, 1023, 1024, 1025, 10239, 10240, 10241, 65536, 70000, 512<<10 + 1} {
			bigFile(t, filepath.Join(src, "docs", fmt.Sprintf("f%02d.bin", i)), n)
		}
		bigFile(t, filepath.Join(src, "docs/sub/inner.bin"), 4000)
		bigFile(t, filepath.Join(src, "docs/zlast/last.bin"), 3333)
		if err := os.Symlink("sub/inner.bin", filepath.Join(src, "docs/link")); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(src, "docs/sub"), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(src, "docs/f03.bin"), 0o640); err != nil {
			t.Fatal(err)
		}
		stamp(t, filepath.Join(src, "docs/f02.bin"), 1500000000)
		stamp(t, filepath.Join(src, "docs/sub"), 1500000100)
		stamp(t, filepath.Join(src, "docs"), 1500000200)
		// Files outside the directory, after it in the image.
		bigFile(t, filepath.Join(src, "zz/after.bin"), 20000)
	})
	mark := len(f.logs.String())
	out, err := runNdmjob(t, "-v", "-x", "-D", f.agent("m"), "-B", "dump", "-C", "/vs1/vol2", "-f", "nrst0l", "-J", index,
		"-E", "DIRECT=Y", "-E", "ENHANCED_DAR_ENABLED=Y", "docs")
	logs := f.logs.String()[mark:]
	if err != nil || !strings.Contains(out, "Operation ended OKAY") || !strings.Contains(out, "1 OK, 0 ERROR") {
		t.Fatalf("ndmjob -x DIRECT=Y ENHANCED_DAR_ENABLED=Y docs: %v\n%s\nserver:\n%s", err, out, logs)
	}
	want, got := attrTree(t, src, "docs"), attrTree(t, dst, "docs")
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Errorf("restored directory differs:\nwant\n%s\ngot\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
	for _, p := range []string{"d0", "zz", "link"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err == nil {
			t.Errorf("the DAR restore brought back %s", p)
		}
	}
	reads := darReads(logs)
	aclStart := aclStartOf(t, index)
	skip := 0
	for skip < len(reads) && reads[skip].off >= aclStart {
		skip++
	}
	if skip == 0 {
		t.Errorf("enhanced DAR did not read the offset map (after ACL_START %d) first: %v", aclStart, reads)
	}
	checkDARReads(t, reads, image, skip)
}

// aclStartOf returns ACL_START from an ndmjob index file.
func aclStartOf(t *testing.T, index string) int64 {
	t.Helper()
	b, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`DE ACL_START=(\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("index without ACL_START:\n%s", b)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}
