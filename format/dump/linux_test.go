package dump

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"golang.org/x/sys/unix"
)

type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func readSrcTar(t *testing.T) map[string]tarEntry {
	t.Helper()
	f, err := os.Open("testdata/src_tree.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]tarEntry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h.Name, "src_tree"), "/"), "/")
		out[name] = tarEntry{h, b}
	}
	return out
}

func openImage(t *testing.T, name string) *image {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readImage(t, NewReader(f))
}

// TestReadLinuxImages reads the images Linux dump 0.4b47 wrote of
// src_tree and checks every name, attribute, xattr and byte against the tar
// of the same tree (D4).
func TestReadLinuxImages(t *testing.T) {
	src := readSrcTar(t)
	for _, name := range []string{"l0.dump", "l0_ext2.dump"} {
		t.Run(name, func(t *testing.T) {
			img := openImage(t, "testdata/"+name)
			if !img.sawEnd || img.vol.Number != 1 || img.vol.Level != 0 || img.vol.NTREC != 10 {
				t.Fatalf("volume header %+v, end %v", img.vol, img.sawEnd)
			}
			if name == "l0_ext2.dump" && img.vol.Label != "ext2label" {
				t.Errorf("label %q, want ext2label", img.vol.Label)
			}
			if img.vol.Device == "" || img.vol.Host == "" || img.vol.Date.IsZero() || !img.vol.BaseDate.IsZero() {
				t.Errorf("volume info %+v", img.vol)
			}
			checked := 0
			for p, e := range src {
				if len(p) > 0 && len(p[strings.LastIndexByte(p, '/')+1:]) == 255 {
					// Linux dump 0.4b47 drops 255-byte names (reference 3, gotcha 2).
					if _, ok := img.paths[p]; ok {
						t.Errorf("255-byte name present, Linux dump is known to drop it")
					}
					continue
				}
				ino, ok := img.paths[p]
				if !ok {
					t.Errorf("%q missing from the image", p)
					continue
				}
				n := img.nodes[ino]
				if n == nil {
					t.Errorf("%q: inode %d not on the image", p, ino)
					continue
				}
				h := e.hdr
				if h.Typeflag == tar.TypeLink {
					target := strings.TrimPrefix(h.Linkname, "src_tree/")
					if img.paths[target] != ino {
						t.Errorf("%q: hard link to %q has inode %d, target %d", p, target, ino, img.paths[target])
					}
					continue
				}
				in := n.in
				if in.Mode&0o7777 != uint32(h.Mode)&0o7777 {
					t.Errorf("%q: mode %o, tar %o", p, in.Mode, h.Mode)
				}
				if int(in.UID) != h.Uid || int(in.GID) != h.Gid {
					t.Errorf("%q: owner %d:%d, tar %d:%d", p, in.UID, in.GID, h.Uid, h.Gid)
				}
				if p != "" && in.Mtime.Unix() != h.ModTime.Unix() {
					t.Errorf("%q: mtime %v, tar %v", p, in.Mtime, h.ModTime)
				}
				want := map[string]string{}
				for k, v := range h.PAXRecords {
					if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
						want[x] = v
					}
				}
				for k, v := range want {
					if n.xattrs[k] != v {
						t.Errorf("%q: xattr %s = %q, tar %q", p, k, n.xattrs[k], v)
					}
				}
				for k := range n.xattrs {
					if _, ok := want[k]; !ok {
						t.Errorf("%q: extra xattr %s", p, k)
					}
				}
				switch h.Typeflag {
				case tar.TypeReg:
					if in.Mode&ModeFmt != ModeReg || !bytes.Equal(n.data, e.data) {
						t.Errorf("%q: regular file data differs (%d bytes, tar %d)", p, len(n.data), len(e.data))
					}
				case tar.TypeSymlink:
					if in.Mode&ModeFmt != ModeLnk || string(n.data) != h.Linkname {
						t.Errorf("%q: symlink %q, tar %q", p, n.data, h.Linkname)
					}
				case tar.TypeChar:
					if in.Mode&ModeFmt != ModeChr || unix.Major(uint64(in.Rdev)) != uint32(h.Devmajor) || unix.Minor(uint64(in.Rdev)) != uint32(h.Devminor) {
						t.Errorf("%q: device %d, tar %d:%d", p, in.Rdev, h.Devmajor, h.Devminor)
					}
				case tar.TypeFifo:
					if in.Mode&ModeFmt != ModeFifo {
						t.Errorf("%q: mode %o is not a fifo", p, in.Mode)
					}
				case tar.TypeDir:
					if !in.IsDir() {
						t.Errorf("%q: not a directory", p)
					}
				}
				checked++
			}
			if checked < 70 {
				t.Fatalf("only %d entries checked", checked)
			}
			// The sparse file: data only at 0 and 2 MiB.
			sp := img.nodes[img.paths["sparse.bin"]]
			data := 0
			for _, h := range sp.holes {
				if !h {
					data++
				}
			}
			if len(sp.holes) != 4096 || data == 0 || data > 16 {
				t.Errorf("sparse.bin: %d pieces, %d with data", len(sp.holes), data)
			}
			// Every dumped inode is on the image and in the used map.
			for _, ino := range img.order {
				if !img.dumped.Has(ino) || !img.used.Has(ino) {
					t.Errorf("inode %d on the image but not in the maps", ino)
				}
			}
			compareRestoreList(t, "testdata/"+name, img)
			compareRestoreExtract(t, "testdata/"+name, img)
		})
	}
}

// compareRestoreList checks that Linux restore -t lists exactly the names
// and inode numbers our reader finds.
func compareRestoreList(t *testing.T, file string, img *image) {
	t.Helper()
	restore := testutil.RequireTool(t, "restore")
	out, err := exec.Command(restore, "-t", "-f", file).Output()
	if err != nil {
		t.Fatalf("restore -t: %v", err)
	}
	got := map[string]uint32{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		f := strings.SplitN(strings.TrimLeft(line, " "), "\t", 2)
		if len(f) != 2 {
			continue
		}
		ino, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			continue
		}
		p := strings.TrimPrefix(strings.TrimPrefix(f[1], "."), "/")
		if f[1] == "./" { // "./\r": the scanner drops the \r
			// restore's reading of the 255-byte name Linux dump wrote with
			// d_reclen 8 (reference 3, gotcha 2); our reader drops that entry.
			continue
		}
		got[p] = uint32(ino)
	}
	listed := 0
	for p, ino := range img.paths {
		if !img.dumped.Has(ino) {
			continue // restore -t lists only what is on the tape
		}
		listed++
		if got[p] != ino {
			t.Errorf("restore -t: %q has inode %d, our reader %d", p, got[p], ino)
		}
	}
	if len(got) != listed {
		t.Errorf("restore -t lists %d names, our reader %d", len(got), listed)
	}
}

// TestReadLinuxIncremental reads the level-1 image: only changed inodes,
// the used map without deleted inodes, and the base date (D5).
func TestReadLinuxIncremental(t *testing.T) {
	l0 := openImage(t, "testdata/l0.dump")
	l1 := openImage(t, "testdata/l1.dump")
	if l1.vol.Level != 1 || !l1.vol.BaseDate.Equal(l0.vol.Date) {
		t.Fatalf("level %d base %v, want 1 and %v", l1.vol.Level, l1.vol.BaseDate, l0.vol.Date)
	}
	for _, p := range []string{"renamed.txt", "newfile.txt", "newdir/inner.txt", "moved_dir2"} {
		if _, ok := l1.paths[p]; !ok {
			t.Errorf("%q missing from the level-1 image", p)
		}
	}
	if string(l1.nodes[l1.paths["newdir/inner.txt"]].data) == "" {
		t.Errorf("newdir/inner.txt has no data")
	}
	rnd := l1.nodes[l1.paths["dir1/random.bin"]]
	if rnd == nil || len(rnd.data) != 153000 {
		t.Errorf("dir1/random.bin not dumped with its appended 3000 bytes")
	}
	if old := l0.paths["dir1/dir2/dir3/deep.txt"]; l1.paths["newfile.txt"] != old {
		t.Logf("inode of deep.txt %d, newfile.txt %d", old, l1.paths["newfile.txt"])
	}
	if l1.used.Has(l0.paths[strings.Repeat("L", 255)]) && l0.paths[strings.Repeat("L", 255)] != 0 {
		t.Errorf("deleted inode still in the used map")
	}
	compareRestoreList(t, "testdata/l1.dump", l1)
	// Unchanged files are in the used map but not on the tape.
	hello := l0.paths["short_link"]
	if !l1.used.Has(hello) || l1.dumped.Has(hello) {
		t.Errorf("unchanged inode %d: used %v dumped %v", hello, l1.used.Has(hello), l1.dumped.Has(hello))
	}
}

// compareRestoreExtract has Linux restore -x extract the image and checks
// that our reader's data, modes, owners and xattrs equal what it wrote.
func compareRestoreExtract(t *testing.T, file string, img *image) {
	t.Helper()
	restore := testutil.RequireTool(t, "restore")
	testutil.RequireRoot(t)
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	cmd := exec.Command(restore, "-x", "-a", "-f", abs)
	cmd.Dir = dst
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restore -x: %v\n%s", err, out)
	}
	n := 0
	for p, ino := range img.paths {
		if p == "" {
			continue
		}
		node := img.nodes[ino]
		if node == nil {
			continue
		}
		fs := lstatNode(t, filepath.Join(dst, p))
		n++
		if fs.st.Mode != node.in.Mode || fs.st.Uid != node.in.UID || fs.st.Gid != node.in.GID {
			t.Errorf("%q: restore -x gives %o %d:%d, our reader %o %d:%d", p, fs.st.Mode, fs.st.Uid, fs.st.Gid, node.in.Mode, node.in.UID, node.in.GID)
		}
		if fmt.Sprint(fs.xattrs) != fmt.Sprint(node.xattrs) {
			t.Errorf("%q: restore -x xattrs %q, our reader %q", p, fs.xattrs, node.xattrs)
		}
		switch node.in.Mode & ModeFmt {
		case ModeReg:
			// Holes are compared by count: the restored file lives on a file
			// system with 4 KB blocks, the image may have 1 KB pieces.
			if !bytes.Equal(fs.data, node.data) || dataPieces(fs.holes) > 4*dataPieces(node.holes)+4 {
				t.Errorf("%q: restore -x data (holes %s), our reader (holes %s)", p, summary(fs.holes), summary(node.holes))
			}
		case ModeLnk:
			if fs.target != string(node.data) {
				t.Errorf("%q: restore -x link %q, our reader %q", p, fs.target, node.data)
			}
		case ModeChr, ModeBlk:
			if fs.st.Rdev != uint64(node.in.Rdev) {
				t.Errorf("%q: restore -x rdev %x, our reader %x", p, fs.st.Rdev, node.in.Rdev)
			}
		}
	}
	if n < 70 {
		t.Fatalf("only %d paths compared with restore -x", n)
	}
}

func dataPieces(h []bool) int {
	n := 0
	for _, x := range h {
		if !x {
			n++
		}
	}
	return n
}
