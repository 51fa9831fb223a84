package filedump

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEnvBool (N16): Y/T and N/F, any case; anything else is an error.
func TestEnvBool(t *testing.T) {
	e := Env{"A": "y", "B": "T", "C": "n", "D": "f", "E": "maybe", "F": ""}
	for name, want := range map[string]bool{"A": true, "B": true, "C": false, "D": false} {
		if got, err := e.Bool(name, !want); err != nil || got != want {
			t.Errorf("%s: %v %v", name, got, err)
		}
	}
	if _, err := e.Bool("E", false); err == nil {
		t.Error("maybe accepted")
	}
	if got, _ := e.Bool("F", true); !got {
		t.Error("empty did not give the default")
	}
	if got, _ := e.Bool("missing", true); !got {
		t.Error("missing did not give the default")
	}
}

// TestExcludeRules (D7): exact names, a leading or trailing asterisk, "\,"
// for a comma, at most 32 names.
func TestExcludeRules(t *testing.T) {
	x, err := ParseExclude(`*.pst,core,tmp*,*cache*,a\,b`)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"mail.pst": true, "pst": false, "core": true, "core2": false, "tmpfile": true, "mytmp": false,
		"webcache1": true, "a,b": true, "a": false, "b": false,
	} {
		if x.Match(name) != want {
			t.Errorf("Match(%q) = %v", name, !want)
		}
	}
	for _, bad := range []string{"a*b", "**x*", "a,,b", "dir/file", strings.Repeat("n,", 32) + "n"} {
		if _, err := ParseExclude(bad); err == nil {
			t.Errorf("ParseExclude(%q) accepted", bad)
		}
	}
	if x, err := ParseExclude(strings.TrimSuffix(strings.Repeat("n,", 32), ",")); err != nil || x.Len() != 32 {
		t.Errorf("32 names: %v", err)
	}
}

// TestRecordSizes (D6): the three documented messages.
func TestRecordSizes(t *testing.T) {
	for _, ok := range []int{4 << 10, 10 << 10, 64 << 10, 256 << 10} {
		if _, err := CheckRecordSize(ok); err != nil {
			t.Errorf("%d: %v", ok, err)
		}
	}
	for _, bad := range []int{0, 1024, 3 << 10, 257 << 10, 4097} {
		if _, err := CheckRecordSize(bad); Message(err) != "Tape record size must be in the range between 4KB and 256KB" {
			t.Errorf("%d: %v", bad, err)
		}
	}
	if err := CheckRestoreRecordSize(8<<10, 10, false); Message(err) != "Tape record size is too small. Try a larger size." {
		t.Errorf("too small: %v", err)
	}
	if err := CheckRestoreRecordSize(20<<10, 10, true); Message(err) != "Tape record size should be 10240 and not 20480" {
		t.Errorf("local: %v", err)
	}
	if err := CheckRestoreRecordSize(20<<10, 10, false); err != nil {
		t.Errorf("larger remote record: %v", err)
	}
	var e *Error
	if !errors.As(ErrorRestoreFailed("f", errTest), &e) || e.Msg != "Restore of the file f failed" || !errors.Is(e, errTest) {
		t.Error("restore failed message")
	}
}

func TestDumpDateToken(t *testing.T) {
	when := time.Unix(1_800_000_000, 0)
	lvl, got, err := ParseDumpDateToken(DumpDateToken(7, when))
	if err != nil || lvl != 7 || !got.Equal(when) {
		t.Errorf("round trip: %d %v %v", lvl, got, err)
	}
	if _, _, err := ParseDumpDateToken(DumpDateToken(40, when)); err == nil {
		t.Error("level 40 accepted")
	}
}

func FuzzParseExclude(f *testing.F) {
	for _, s := range []string{`*.pst,core`, `a\,b`, `**`, `*x*`, ``, `,`, `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		x, err := ParseExclude(s)
		if err != nil {
			return
		}
		if x.Len() > MaxExcludeNames {
			t.Fatalf("%d names", x.Len())
		}
		_ = x.Match(s)
	})
}

func FuzzParseMultiSubtree(f *testing.F) {
	f.Add("a\nb\n/vs1/vol1\x00")
	f.Add("../x\nroot")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		_, subs, err := ParseMultiSubtree(s)
		if err != nil {
			return
		}
		for _, p := range subs {
			if _, ok := cleanRel(p); !ok {
				t.Fatalf("subtree %q leaves the root", p)
			}
		}
	})
}

func FuzzDumpDateToken(f *testing.F) {
	f.Add("0")
	f.Add("4294967296")
	f.Add("-1")
	f.Fuzz(func(t *testing.T, s string) {
		lvl, when, err := ParseDumpDateToken(s)
		if err != nil {
			return
		}
		if lvl < 0 || lvl > 31 {
			t.Fatalf("level %d", lvl)
		}
		if l2, w2, _ := ParseDumpDateToken(DumpDateToken(lvl, when)); l2 != lvl || !w2.Equal(when) {
			t.Fatal("no round trip")
		}
	})
}

func FuzzInodeMap(f *testing.F) {
	im := NewInodeMap()
	for i := uint64(100); i < 110; i++ {
		_, _ = im.Get(i, 0)
	}
	b, _ := im.MarshalBinary()
	f.Add(b)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m InodeMap
		if err := m.UnmarshalBinary(b); err != nil {
			return
		}
		n, err := m.Get(1<<62, 0)
		if err == nil && n < firstDumpIno {
			t.Fatalf("new dump inode %d", n)
		}
		b2, _ := m.MarshalBinary()
		var m2 InodeMap
		if err := m2.UnmarshalBinary(b2); err != nil || m2.Len() != m.Len() {
			t.Fatalf("no round trip: %v", err)
		}
	})
}

// TestInodeMapStable: the same live inode keeps its dump inode; numbers are
// compact from 3.
func TestInodeMapStable(t *testing.T) {
	im := NewInodeMap()
	a, _ := im.Get(1<<40, 9)
	b, _ := im.Get(77, 9)
	a2, _ := im.Get(1<<40, 9)
	if a != 3 || b != 4 || a2 != a {
		t.Errorf("%d %d %d", a, b, a2)
	}
	// A reused inode number (another fingerprint) gets a new dump inode.
	if r, _ := im.Get(77, 10); r != 5 {
		t.Errorf("reused inode: %d", r)
	}
	if r, _ := im.Get(77, 10); r != 5 {
		t.Errorf("reused inode again: %d", r)
	}
	raw, _ := im.MarshalBinary()
	var back InodeMap
	if err := back.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	if c, _ := back.Get(77, 10); c != 5 {
		t.Errorf("after reload: %d", c)
	}
	if c, _ := back.Get(5, 0); c != 6 {
		t.Errorf("next after reload: %d", c)
	}
	if err := back.UnmarshalBinary(bytes.Repeat([]byte{0xff}, 16)); err == nil {
		t.Error("garbage accepted")
	}
}

func FuzzSymtab(f *testing.F) {
	dir := f.TempDir()
	must(f, saveSymtab(dir, &symtab{Level: 1, Date: time.Unix(1e9, 0), Paths: map[string]uint32{"a": 3, "a/b": 4}, Dirs: map[uint32]bool{3: true}}))
	b, err := os.ReadFile(filepath.Join(dir, SymtabName))
	must(f, err)
	f.Add(b)
	f.Add([]byte("junk"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := t.TempDir()
		must(t, os.WriteFile(filepath.Join(d, SymtabName), b, 0o600))
		s, err := loadSymtab(d)
		if err == nil && s == nil {
			t.Fatal("no table and no error")
		}
	})
}
