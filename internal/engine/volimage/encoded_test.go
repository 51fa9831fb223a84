package volimage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// compressible returns n bytes that zstd shrinks about tenfold.
func compressible(t *testing.T, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString(strings.Repeat(string(rune('a'+i%26)), 7))
		b.Write(random(t, 1))
	}
	return b.Bytes()[:n]
}

// storedBytes sums what btrfs stores for a file's data, read encoded.
func storedBytes(t *testing.T, p string) int64 {
	f, err := os.Open(p)
	must(t, err)
	defer f.Close()
	st, _ := f.Stat()
	buf := make([]byte, maxEncoded)
	var n int64
	for off := uint64(0); off < uint64(st.Size()); {
		x, err := encodedRead(int(f.Fd()), off, buf)
		must(t, err)
		n += int64(len(x.data))
		off += x.length
	}
	return n
}

// TestCompressedExtents (S5): on a btrfs volume mounted with
// compress=zstd (or zlib, or lzo), compressed extents travel compressed
// (the image is no larger than the stored data plus 5%) and land
// compressed on a btrfs destination that does not compress itself; onto
// XFS they are decoded (LZO, btrfs's own framing, is refused there).
func TestCompressedExtents(t *testing.T) {
	for _, alg := range []string{"zstd", "zlib", "lzo"} {
		t.Run(alg, func(t *testing.T) { compressedExtents(t, alg) })
	}
}

func compressedExtents(t *testing.T, alg string) {
	src := testutil.LoopFS(t, "btrfs", 400)
	testutil.Run(t, "mount", "-o", "remount,compress="+alg, src)
	for i := range 4 {
		writeFile(t, filepath.Join(src, "d", "f"+string(rune('0'+i))), compressible(t, 2<<20))
	}
	reflink(t, filepath.Join(src, "d", "f0"), filepath.Join(src, "d", "clone"))
	info, err := snapshot.Btrfs{}.Create(context.Background(), src, "s1")
	must(t, err)
	var stored int64
	for i := range 4 {
		stored += storedBytes(t, filepath.Join(info.Path, "d", "f"+string(rune('0'+i))))
	}
	if stored > 4*(2<<20)/2 {
		t.Fatalf("btrfs stored %d bytes for 8 MiB of compressible data: not compressed", stored)
	}
	s1 := Source{Snapshot: smtape.Snapshot{Name: "s1", Created: time.Unix(1800000000, 0)}, Dir: info.Path}
	var img bytes.Buffer
	_, err = WriteImage(context.Background(), &img, &smtape.Header{Time: s1.Snapshot.Created}, nil, []Source{s1})
	must(t, err)
	if int64(img.Len()) > stored*105/100+64<<10 {
		t.Errorf("image of %d bytes for %d bytes stored compressed", img.Len(), stored)
	}
	for _, fstype := range []string{"btrfs", "xfs"} {
		t.Run(fstype, func(t *testing.T) {
			dst := testutil.LoopFS(t, fstype, 400)
			_, _, rs, err := RestoreImage(context.Background(), bytes.NewReader(img.Bytes()), dst, RestoreOptions{})
			if alg == "lzo" && fstype == "xfs" {
				if err == nil || !strings.Contains(err.Error(), "LZO-compressed extents restore only onto btrfs") {
					t.Fatalf("LZO onto XFS: %v", err)
				}
				return
			}
			must(t, err)
			testutil.CompareManifests(t, testutil.TreeManifest(t, dst), testutil.TreeManifest(t, info.Path))
			if fstype == "btrfs" {
				if rs.EncodedBytes < 8<<20 {
					t.Errorf("%d bytes written encoded, want the 8 MiB", rs.EncodedBytes)
				}
				for _, e := range extentsOf(t, filepath.Join(dst, "d", "f1")) {
					if e.Flags&extentEncoded == 0 {
						t.Errorf("restored extent %+v is not compressed", e)
					}
				}
				assertShared(t, filepath.Join(dst, "d", "f0"), filepath.Join(dst, "d", "clone"))
			}
		})
	}
}
