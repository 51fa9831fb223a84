package filedump

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestTruncationFailed (D14): a restored file that cannot take its size (here
// past the process's file size limit, the error EFBIG) is skipped with the
// documented message naming its inode on the image and the errno, no file of
// the wrong size is left, and the restore goes on with the next file.
func TestTruncationFailed(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1700000000, 0)
	w, err := dump.NewWriter(&buf, dump.Options{Date: now})
	must(t, err)
	used := dump.NewBitmap(8)
	for i := uint32(2); i <= 5; i++ {
		used.Set(i)
	}
	must(t, w.WriteMaps(used, used))
	_, err = w.WriteDir(&dump.Inode{Ino: 2, Mode: dump.ModeDir | 0o755, Nlink: 2, Mtime: now, Atime: now, Ctime: now}, nil,
		[]dump.DirEntry{{Ino: 2, Type: dump.DTDir, Name: "."}, {Ino: 2, Type: dump.DTDir, Name: ".."},
			{Ino: 4, Type: dump.DTReg, Name: "big"}, {Ino: 5, Type: dump.DTReg, Name: "small"}})
	must(t, err)
	const bigSize = 8 << 20
	head := bytes.Repeat([]byte("b"), 1024)
	_, err = w.WriteSparseFile(&dump.Inode{Ino: 4, Mode: dump.ModeReg | 0o644, Nlink: 1, Size: bigSize, Mtime: now, Atime: now, Ctime: now},
		nil, bytes.NewReader(head), []dump.Extent{{Offset: 0, Length: 1024}})
	must(t, err)
	_, err = w.WriteFile(&dump.Inode{Ino: 5, Mode: dump.ModeReg | 0o644, Nlink: 1, Size: 5, Mtime: now, Atime: now, Ctime: now},
		nil, bytes.NewReader([]byte("small")))
	must(t, err)
	must(t, w.Close())

	// The size limit holds for the whole test process while the restore
	// runs: no other test runs in parallel with this one.
	var old unix.Rlimit
	must(t, unix.Getrlimit(unix.RLIMIT_FSIZE, &old))
	lim := old
	lim.Cur = bigSize / 2
	must(t, unix.Setrlimit(unix.RLIMIT_FSIZE, &lim))
	restored := false
	defer func() {
		if !restored {
			_ = unix.Setrlimit(unix.RLIMIT_FSIZE, &old)
		}
	}()
	dest := t.TempDir()
	var results []NameResult
	res, err := Restore(context.Background(), RestoreRequest{Input: bytes.NewReader(buf.Bytes()), Dest: dest,
		StateDir: t.TempDir(), Env: Env{"FORCE": "Y"}, OnName: func(r NameResult) { results = append(results, r) }})
	must(t, unix.Setrlimit(unix.RLIMIT_FSIZE, &old))
	restored = true
	must(t, err)
	var bigErr error
	for _, r := range results {
		if r.Path == "big" && r.Err != nil {
			bigErr = r.Err
		}
		if r.Path == "small" && r.Err != nil {
			t.Errorf("small: %v", r.Err)
		}
	}
	const want = "Truncation failed for src inode 4. Error 27. Skipping inode."
	if bigErr == nil || Message(bigErr) != want || !errors.Is(bigErr, unix.EFBIG) {
		t.Errorf("big: error %v, want %q wrapping EFBIG", bigErr, want)
	}
	if res.Errors != 1 {
		t.Errorf("restore counted %d errors, want 1", res.Errors)
	}
	if _, err := os.Lstat(filepath.Join(dest, "big")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file that could not be truncated is left: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "small")); err != nil || string(b) != "small" {
		t.Errorf("small after the skipped inode: %q, %v", b, err)
	}
}

// TestDumpsDisabledAndTransitional (D14): a backup of a restricted volume
// (a mirror destination being broken or resynchronised) gets "Dumps
// temporarily disabled on volume, try again"; an offline volume, or one
// whose directory is gone (unmounted), "Volume is temporarily in a
// transitional state". Nothing is written and no snapshot is left.
func TestDumpsDisabledAndTransitional(t *testing.T) {
	f := newStorage(t)
	ctx := context.Background()
	try := func(what, want string) {
		t.Helper()
		var out bytes.Buffer
		_, err := Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Output: &out, Catalog: tempCatalog(t)})
		var e *Error
		if !errors.As(err, &e) || e.Msg != want {
			t.Errorf("%s: error %v, want %q", what, err, want)
		}
		if out.Len() != 0 {
			t.Errorf("%s: %d bytes written", what, out.Len())
		}
		if s := f.snapshots(t); len(s) != 0 {
			t.Errorf("%s: snapshots left: %v", what, s)
		}
	}
	_, err := f.svc.SetVolumeState(ctx, "vs1", "vol1", "restricted")
	must(t, err)
	try("restricted", MsgDumpsDisabled)
	_, err = f.svc.SetVolumeState(ctx, "vs1", "vol1", "offline")
	must(t, err)
	try("offline", MsgTransitional)
	_, err = f.svc.SetVolumeState(ctx, "vs1", "vol1", "online")
	must(t, err)
	must(t, os.Rename(f.data, f.data+".away"))
	try("directory gone", MsgTransitional)
	must(t, os.Rename(f.data+".away", f.data))
	// Back online and in place: the backup works.
	_, err = Backup(ctx, BackupRequest{Storage: f.svc, Path: "/vs1/vol1", Output: &bytes.Buffer{}})
	must(t, err)
}

// TestDARFileOverLUN (D14): a direct access recovery of a file whose name is
// that of a LUN on the destination fails for that file with "Restore of the
// file <name> failed" and leaves the LUN as it was; another file of the same
// recovery is restored.
func TestDARFileOverLUN(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "disk.lun"), []byte("image data"), 0o644)
	writeFile(t, filepath.Join(src, "other"), []byte("other data"), 0o644)
	var img bytes.Buffer
	hist := newHistory()
	res, err := Backup(context.Background(), BackupRequest{Dir: src, Env: Env{"HIST": "Y"}, Output: &img, History: hist})
	must(t, err)
	lunIno, _ := hist.find("disk.lun")
	otherIno, _ := hist.find("other")
	dst := t.TempDir()
	writeFile(t, filepath.Join(dst, "disk.lun"), []byte("live LUN"), 0o600)
	must(t, storage.SetLUN(filepath.Join(dst, "disk.lun"), true))
	var results []NameResult
	out, err := Restore(context.Background(), RestoreRequest{InputAt: bytes.NewReader(img.Bytes()), Dest: dst,
		Env:    Env{"DIRECT": "Y", "ENHANCED_DAR_ENABLED": "Y", "ACL_START": res.Env["ACL_START"]},
		Names:  []RestoreName{{Original: "disk.lun", FHInfo: hist.offsets[lunIno]}, {Original: "other", FHInfo: hist.offsets[otherIno]}},
		OnName: func(r NameResult) { results = append(results, r) }})
	must(t, err)
	var lunErr error
	for _, r := range results {
		if r.Path == "disk.lun" {
			lunErr = r.Err
		}
	}
	if lunErr == nil || Message(lunErr) != "Restore of the file disk.lun failed" {
		t.Errorf("disk.lun: %v, want %q", lunErr, "Restore of the file disk.lun failed")
	}
	if out.Errors != 1 {
		t.Errorf("%d errors, want 1", out.Errors)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "disk.lun")); err != nil || string(b) != "live LUN" {
		t.Errorf("the LUN was changed: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "other")); err != nil || string(b) != "other data" {
		t.Errorf("other: %q, %v", b, err)
	}
	// Without the LUN flag the file is replaced as usual.
	must(t, storage.SetLUN(filepath.Join(dst, "disk.lun"), false))
	results = nil
	_, err = Restore(context.Background(), RestoreRequest{InputAt: bytes.NewReader(img.Bytes()), Dest: dst,
		Env:   Env{"DIRECT": "Y", "ENHANCED_DAR_ENABLED": "Y", "ACL_START": res.Env["ACL_START"]},
		Names: []RestoreName{{Original: "disk.lun", FHInfo: hist.offsets[lunIno]}}, OnName: func(r NameResult) { results = append(results, r) }})
	must(t, err)
	if b, err := os.ReadFile(filepath.Join(dst, "disk.lun")); err != nil || string(b) != "image data" {
		t.Errorf("plain file not restored over: %q, %v (%v)", b, err, results)
	}
}

// TestReadOnlyQtree (D14): a restore into a qtree whose directory is a
// read-only mount, in a writable volume, gets "Destination qtree is
// read-only"; a restore elsewhere in the volume works.
func TestReadOnlyQtree(t *testing.T) {
	testutil.RequireRoot(t)
	f := newStorage(t)
	ctx := context.Background()
	var img bytes.Buffer
	_, err := Backup(ctx, BackupRequest{Dir: filepath.Join(f.data, "plain"), Output: &img})
	must(t, err)
	q := filepath.Join(f.data, "q1")
	testutil.Run(t, "mount", "--bind", q, q)
	t.Cleanup(func() { _ = unix.Unmount(q, unix.MNT_DETACH) })
	testutil.Run(t, "mount", "-o", "remount,bind,ro", q)
	_, err = Restore(ctx, RestoreRequest{Input: bytes.NewReader(img.Bytes()), Storage: f.svc, Path: "/vs1/vol1/q1", Env: Env{"FORCE": "Y"}})
	var e *Error
	if !errors.As(err, &e) || e.Msg != MsgReadOnlyQtree {
		t.Errorf("restore into the read-only qtree: %v, want %q", err, MsgReadOnlyQtree)
	}
	must(t, os.MkdirAll(filepath.Join(f.data, "restored"), 0o755))
	_, err = Restore(ctx, RestoreRequest{Input: bytes.NewReader(img.Bytes()), Storage: f.svc, Path: "/vs1/vol1/restored", Env: Env{"FORCE": "Y"}})
	must(t, err)
	if b, err := os.ReadFile(filepath.Join(f.data, "restored", "keep.txt")); err != nil || string(b) != "keep" {
		t.Errorf("restore beside the qtree: %q, %v", b, err)
	}
}
