package filedump

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Issue 11 item 2: the range planner merges overlapping and adjacent
// ranges, sorted by offset, and drops empty ones.
func TestMergeRanges(t *testing.T) {
	for _, c := range []struct {
		in, want []byteRange
	}{
		{nil, nil},
		{[]byteRange{{5, 5}, {7, 6}}, nil},
		{[]byteRange{{10, 20}}, []byteRange{{10, 20}}},
		{[]byteRange{{30, 40}, {10, 20}}, []byteRange{{10, 20}, {30, 40}}},
		{[]byteRange{{10, 20}, {20, 30}}, []byteRange{{10, 30}}},                               // adjacent
		{[]byteRange{{10, 25}, {20, 30}}, []byteRange{{10, 30}}},                               // overlapping
		{[]byteRange{{10, 40}, {20, 30}}, []byteRange{{10, 40}}},                               // contained
		{[]byteRange{{10, 20}, {10, 20}}, []byteRange{{10, 20}}},                               // the same twice
		{[]byteRange{{40, 50}, {10, 20}, {21, 30}}, []byteRange{{10, 20}, {21, 30}, {40, 50}}}, // one byte apart
	} {
		if got := mergeRanges(c.in); !slices.Equal(got, c.want) {
			t.Errorf("mergeRanges(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// Issue 11 item 2: an inode's records end where the next inode's header
// starts, the last inode's at ACL_START; the plan of several inodes merges
// neighbours and keeps apart inodes with another between them, even when
// they share a tape record.
func TestExtentsPlan(t *testing.T) {
	const k = 1024
	offsets := map[uint32]int64{2: 5 * k, 3: 7 * k, 10: 20 * k, 11: 21 * k, 12: 22 * k, 13: 30 * k, 99: 40 * k}
	e := newExtents(offsets, 35*k) // inode 99 lies after ACL_START: not an inode extent
	for _, c := range []struct {
		off  int64
		want byteRange
		ok   bool
	}{
		{5 * k, byteRange{5 * k, 7 * k}, true},
		{21 * k, byteRange{21 * k, 22 * k}, true},
		{30 * k, byteRange{30 * k, 35 * k}, true}, // the last inode of the image
		{6 * k, byteRange{}, false},               // not a header of the map
		{40 * k, byteRange{}, false},
	} {
		if got, ok := e.of(c.off); ok != c.ok || got != c.want {
			t.Errorf("of(%d) = %v %v, want %v %v", c.off, got, ok, c.want, c.ok)
		}
	}
	// 20k, 21k and 22k share one 10 KiB tape record with others: 20k and
	// 22k are not neighbours (21k is between them), 21k joins both.
	if got, want := e.plan([]int64{22 * k, 20 * k}), []byteRange{{20 * k, 21 * k}, {22 * k, 30 * k}}; !slices.Equal(got, want) {
		t.Errorf("plan(22k, 20k) = %v, want %v", got, want)
	}
	if got, want := e.plan([]int64{22 * k, 20 * k, 21 * k, 30 * k, 3}), []byteRange{{20 * k, 35 * k}}; !slices.Equal(got, want) {
		t.Errorf("plan(20k..30k) = %v, want %v", got, want)
	}
	var none *extents
	if _, ok := none.of(5 * k); ok || none.plan([]int64{5 * k}) != nil {
		t.Error("no offset map must plan nothing")
	}
}

// readLog records the reads of an image and refuses any beyond its end.
type readLog struct {
	mu    sync.Mutex
	img   []byte
	reads []byteRange
}

func (l *readLog) ReadAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads = append(l.reads, byteRange{off, off + int64(len(p))})
	if off < 0 || off+int64(len(p)) > int64(len(l.img)) {
		return 0, fmt.Errorf("read of %d bytes at %d beyond the %d-byte image", len(p), off, len(l.img))
	}
	return copy(p, l.img[off:]), nil
}

// check fails unless the reads after the first skip go forwards without
// asking for a byte twice, and returns the bytes read.
func (l *readLog) check(t *testing.T, what string, skip int) int64 {
	t.Helper()
	end, n := int64(0), int64(0)
	for i, r := range l.reads {
		n += r.end - r.off
		if i < skip {
			continue
		}
		if r.off < end {
			t.Errorf("%s: read %d %v starts before the end %d of the reads before it: %v", what, i, r, end, l.reads)
		}
		end = r.end
	}
	return n
}

// darImage backs up a tree and returns the image, its file history and
// ACL_START.
func darImage(t *testing.T, src string) ([]byte, *historyRecorder, int64) {
	t.Helper()
	var img bytes.Buffer
	hist := newHistory()
	res, err := Backup(context.Background(), BackupRequest{Dir: src, Env: Env{"HIST": "Y"}, Output: &img, History: hist})
	must(t, err)
	acl, err := strconv.ParseInt(res.Env["ACL_START"], 10, 64)
	must(t, err)
	return img.Bytes(), hist, acl
}

// extentOf returns the bytes of the inode at off from the file history:
// up to the next header, the last up to ACL_START.
func extentOf(hist *historyRecorder, off, aclStart int64) int64 {
	next := aclStart
	for _, o := range hist.offsets {
		if o > off && o < next {
			next = o
		}
	}
	return next - off
}

// sameFile fails unless got has want's bytes, mode, owner and mtime.
func sameFile(t *testing.T, want, got string) {
	t.Helper()
	var ws, gs unix.Stat_t
	must(t, unix.Lstat(want, &ws))
	if err := unix.Lstat(got, &gs); err != nil {
		t.Errorf("%s: %v", got, err)
		return
	}
	wb, _ := os.ReadFile(want)
	gb, _ := os.ReadFile(got)
	if !bytes.Equal(wb, gb) || ws.Mode != gs.Mode || ws.Uid != gs.Uid || ws.Gid != gs.Gid || ws.Mtim != gs.Mtim {
		t.Errorf("%s: %d bytes mode %o uid %d gid %d mtime %v, want %d bytes mode %o uid %d gid %d mtime %v (same bytes %v)",
			got, len(gb), gs.Mode, gs.Uid, gs.Gid, gs.Mtim, len(wb), ws.Mode, ws.Uid, ws.Gid, ws.Mtim, bytes.Equal(wb, gb))
	}
}

// darSizes are file sizes around the 1 KiB record, the 10 KiB tape block
// and the 512 records one header describes.
var darSizes = []int{0, 1, 1023, 1024, 1025, 10239, 10240, 10241, 512<<10 - 1, 512 << 10, 512<<10 + 1, 512<<10 + 1025}

// darSizesTree writes files of darSizes (one with an extended attribute) and,
// last in the image, zz/last.bin.
func darSizesTree(t *testing.T) string {
	src := t.TempDir()
	for i, n := range darSizes {
		p := filepath.Join(src, "f", fmt.Sprintf("s%02d", i))
		writeFile(t, p, bytes.Repeat([]byte{byte('a' + i)}, n), 0o640)
		must(t, os.Chtimes(p, time.Unix(1500000000+int64(i), 5000), time.Unix(1500000000+int64(i), 5000)))
	}
	must(t, unix.Setxattr(filepath.Join(src, "f", "s03"), "user.note", bytes.Repeat([]byte("x"), 3000), 0))
	writeFile(t, filepath.Join(src, "zz", "last.bin"), []byte("the last file"), 0o600)
	return src
}

// Issue 11 item 2, D11: a DAR of one file reads exactly that file's
// records (its header, data, continuation headers and extended attribute
// records) and the next inode's header (which shows that no record of the
// file follows), forwards, each byte once, nothing past the image. The last
// file of the image reads no further than ACL_START when that is known.
// Sizes around record, tape block and header boundaries.
func TestDARReadsExactly(t *testing.T) {
	src := darSizesTree(t)
	img, hist, acl := darImage(t, src)
	names := []string{"zz/last.bin"}
	for i := range darSizes {
		names = append(names, fmt.Sprintf("f/s%02d", i))
	}
	for _, name := range names {
		ino, ok := hist.find(name)
		if !ok {
			t.Fatalf("no file history for %s", name)
		}
		off, extent := hist.offsets[ino], extentOf(hist, hist.offsets[ino], acl)
		for _, withACL := range []bool{true, false} {
			env := Env{"DIRECT": "Y"}
			want := extent
			if name != "zz/last.bin" {
				want += 1024 // the next inode's header
			}
			if withACL {
				env["ACL_START"] = strconv.FormatInt(acl, 10)
			}
			log := &readLog{img: img}
			dst := t.TempDir()
			_, err := Restore(context.Background(), RestoreRequest{InputAt: log, Dest: dst, Env: env,
				Names: []RestoreName{{Original: name, FHInfo: off}}})
			what := fmt.Sprintf("%s (ACL_START %v)", name, withACL)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			sameFile(t, filepath.Join(src, name), filepath.Join(dst, name))
			got := log.check(t, what, 0)
			if got != want && !(name == "zz/last.bin" && !withACL && got > want) {
				t.Errorf("%s: read %d bytes in %v, want %d (extent %d at %d)", what, got, log.reads, want, extent, off)
			}
		}
	}
}

// Issue 11 item 2, D11: two files that share a tape record, named in the
// opposite order of the image, one of them renamed: the restore reads the
// image forwards and never asks for a byte twice (the second file's header,
// read after the first file's records, is not read again).
func TestDARTwoFilesForwards(t *testing.T) {
	src := darSizesTree(t)
	img, hist, acl := darImage(t, src)
	a, _ := hist.find("f/s01")
	b, _ := hist.find("f/s02")
	for _, env := range []Env{{"DIRECT": "Y"}, {"DIRECT": "Y", "ACL_START": strconv.FormatInt(acl, 10)}} {
		log := &readLog{img: img}
		dst := t.TempDir()
		_, err := Restore(context.Background(), RestoreRequest{InputAt: log, Dest: dst, Env: env,
			Names: []RestoreName{{Original: "f/s02", FHInfo: hist.offsets[b]}, {Original: "f/s01", Dest: "other/one", FHInfo: hist.offsets[a]}}})
		must(t, err)
		sameFile(t, filepath.Join(src, "f/s01"), filepath.Join(dst, "other/one"))
		sameFile(t, filepath.Join(src, "f/s02"), filepath.Join(dst, "f/s02"))
		got := log.check(t, fmt.Sprint(env), 0)
		want := extentOf(hist, hist.offsets[a], acl) + extentOf(hist, hist.offsets[b], acl) + 1024
		if got != want {
			t.Errorf("%v: read %d bytes in %v, want %d", env, got, log.reads, want)
		}
	}
}

// Issue 11 item 2, D11: an enhanced DAR of a directory reads the offset map
// (after ACL_START) first and then the directory's inodes forwards, each
// byte once, in reads merged where inodes are neighbours; the restored
// files equal the source.
func TestEnhancedDARReadsForwards(t *testing.T) {
	src := darSizesTree(t)
	writeFile(t, filepath.Join(src, "f", "sub", "inner"), []byte("inner"), 0o644)
	img, hist, acl := darImage(t, src)
	dino, _ := hist.find("f")
	log := &readLog{img: img}
	dst := t.TempDir()
	_, err := Restore(context.Background(), RestoreRequest{InputAt: log, Dest: dst,
		Env:   Env{"DIRECT": "Y", "ENHANCED_DAR_ENABLED": "Y", "ACL_START": strconv.FormatInt(acl, 10)},
		Names: []RestoreName{{Original: "f", FHInfo: hist.offsets[dino]}}})
	must(t, err)
	for i := range darSizes {
		p := fmt.Sprintf("f/s%02d", i)
		sameFile(t, filepath.Join(src, p), filepath.Join(dst, p))
	}
	sameFile(t, filepath.Join(src, "f/sub/inner"), filepath.Join(dst, "f/sub/inner"))
	skip := 0
	for skip < len(log.reads) && log.reads[skip].off >= acl {
		skip++
	}
	if skip == 0 {
		t.Fatalf("the offset map was not read first: %v", log.reads)
	}
	log.check(t, "enhanced DAR", skip)
	// Directories f and f/sub, then the files, neighbours in the image, as
	// one merged range read in pieces of darChunk bytes.
	files := log.reads[min(skip+2, len(log.reads)):]
	for i, r := range files {
		if i > 0 && r.off != files[i-1].end || i < len(files)-1 && r.end-r.off != darChunk {
			t.Errorf("the files were not read as one range in pieces of %d bytes: %v", darChunk, log.reads)
			break
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "zz")); err == nil {
		t.Error("the DAR of f restored zz")
	}
}
