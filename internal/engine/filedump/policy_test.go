package filedump

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// ParseIDRanges reads ids and LOW-HIGH ranges and refuses anything else.
func TestParseIDRanges(t *testing.T) {
	r, err := ParseIDRanges(" 2000-2999, 31000 ,")
	if err != nil || r.String() != "2000-2999,31000" {
		t.Fatalf("parse: %v %v", r, err)
	}
	for id, want := range map[uint32]bool{0: false, 1999: false, 2000: true, 2999: true, 3000: false, 31000: true} {
		if r.Contains(id) != want {
			t.Errorf("Contains(%d) = %v", id, !want)
		}
	}
	for _, bad := range []string{"x", "5-3", "-1", "1-", "4294967296"} {
		if _, err := ParseIDRanges(bad); !errors.Is(err, ErrBadIDRanges) {
			t.Errorf("%q: %v, want ErrBadIDRanges", bad, err)
		}
	}
}

// Issue 10 item 6 on the direct access path (DIRECT=Y): a restore with a
// policy refuses a device node named in the list and gives a set-user-ID
// root file to the default owner without the bit, as the stream restore
// does; without a policy both are restored as they are.
func TestRestorePolicyDAR(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "suid"), []byte("payload"), 0o644)
	must(t, unix.Chmod(filepath.Join(src, "suid"), 0o4755))
	must(t, unix.Mknod(filepath.Join(src, "null-dev"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	img := filepath.Join(t.TempDir(), "img.dump")
	f, err := os.Create(img)
	must(t, err)
	hist := newHistory()
	_, err = Backup(context.Background(), BackupRequest{Dir: src, Env: Env{"HIST": "Y"}, Output: f, History: hist})
	must(t, err)
	must(t, f.Close())
	in, err := os.Open(img)
	must(t, err)
	defer in.Close()
	names := func() []RestoreName {
		var out []RestoreName
		for _, n := range []string{"suid", "null-dev"} {
			ino, ok := hist.find(n)
			if !ok {
				t.Fatalf("no file history for %s", n)
			}
			out = append(out, RestoreName{Original: n, FHInfo: hist.offsets[ino]})
		}
		return out
	}
	pol := &RestorePolicy{Who: "Vserver vs1", DefaultUID: 65534, DefaultGID: 65534}
	for _, p := range []*RestorePolicy{pol, nil} {
		dst := t.TempDir()
		var failed []string
		_, err := Restore(context.Background(), RestoreRequest{InputAt: in, Dest: dst, Env: Env{"DIRECT": "Y"}, Names: names(), Policy: p,
			OnName: func(n NameResult) {
				if n.Err != nil {
					failed = append(failed, n.Path)
					if !errors.Is(n.Err, ErrDeviceRefused) {
						t.Errorf("%s: %v", n.Path, n.Err)
					}
				}
			}})
		must(t, err)
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(dst, "suid"), &st))
		b, err := os.ReadFile(filepath.Join(dst, "suid"))
		if err != nil || string(b) != "payload" {
			t.Errorf("policy %v: data %q %v", p != nil, b, err)
		}
		_, devErr := os.Lstat(filepath.Join(dst, "null-dev"))
		if p != nil {
			if st.Mode != unix.S_IFREG|0o755 || st.Uid != 65534 || st.Gid != 65534 || !errors.Is(devErr, fs.ErrNotExist) || len(failed) != 1 || failed[0] != "null-dev" {
				t.Errorf("with policy: suid mode %#o owner %d:%d, device %v, failed %q", st.Mode, st.Uid, st.Gid, devErr, failed)
			}
		} else if st.Mode != unix.S_IFREG|0o4755 || st.Uid != 0 || devErr != nil || len(failed) != 0 {
			t.Errorf("without policy: suid mode %#o owner %d:%d, device %v, failed %q", st.Mode, st.Uid, st.Gid, devErr, failed)
		}
	}
}
