package filedump

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/format/dump"
)

// The planner of a stream restore (issue 12 item 4; D5, D8), without a file
// system: the previous state and the image's records go in, the plan comes
// out.

// stg is the staging directory of the plans below.
const stg = ".tapestry-restore-staging/"

// planCase is one restore: the state the last restore left and what the
// image holds.
type planCase struct {
	name  string
	level int
	// old is the last restore's namespace, "path=ino" separated by
	// spaces, directories with a "/" after the path ("d/=3"); the root is
	// added. Empty: no previous state (a level 0).
	old string
	// image holds the directories on the image: inode -> entries
	// "name=ino" ("name/=ino" for a directory).
	image map[uint32]string
	// dumped are the non-directories on the image.
	dumped []uint32
	// used are the inodes in use that the image neither holds nor names
	// (an unchanged directory); the image's are added.
	used []uint32
	// names is the name list; empty restores everything.
	names []RestoreName
	want  []string
}

// parseNames reads "path=ino" pairs; a "/" after the path marks a
// directory.
func parseNames(t *testing.T, s string) (paths map[string]uint32, dirs map[uint32]bool) {
	t.Helper()
	paths, dirs = map[string]uint32{}, map[uint32]bool{}
	for _, f := range strings.Fields(s) {
		name, num, ok := strings.Cut(f, "=")
		ino, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil {
			t.Fatalf("bad name %q", f)
		}
		if strings.HasSuffix(name, "/") {
			name = strings.TrimSuffix(name, "/")
			dirs[uint32(ino)] = true
		}
		paths[name] = uint32(ino)
	}
	return paths, dirs
}

// caseInputs turns a case into what the restore reads: the old state, the
// image's directories with their entries and its two inode maps.
func caseInputs(t *testing.T, c planCase) (old *symtab, dirs map[uint32]*meta, entries map[uint32][]dump.DirEntry, used, dumped *dump.Bitmap) {
	t.Helper()
	if c.old != "" {
		paths, odirs := parseNames(t, c.old)
		paths[""], odirs[dump.RootIno] = dump.RootIno, true
		old = &symtab{Level: c.level - 1, Paths: paths, Dirs: odirs}
	}
	used, dumped = dump.NewBitmap(1000), dump.NewBitmap(1000)
	dirs, entries = map[uint32]*meta{}, map[uint32][]dump.DirEntry{}
	for dino, ents := range c.image {
		dirs[dino] = &meta{in: dump.Inode{Ino: dino}}
		used.Set(dino)
		dumped.Set(dino)
		paths, edirs := parseNames(t, ents)
		for name, ino := range paths {
			typ := uint8(dump.DTReg)
			if edirs[ino] {
				typ = dump.DTDir
			}
			entries[dino] = append(entries[dino], dump.DirEntry{Ino: ino, Type: typ, Name: name})
			used.Set(ino)
		}
	}
	for _, ino := range c.dumped {
		used.Set(ino)
		dumped.Set(ino)
	}
	for _, ino := range c.used {
		used.Set(ino)
	}
	return old, dirs, entries, used, dumped
}

// planOf computes the plan of a case as the restore does, and the names
// refused on the way.
func planOf(t *testing.T, c planCase) (*restorePlan, []nameProblem) {
	t.Helper()
	old, dirs, entries, used, dumped := caseInputs(t, c)
	ns := buildNamespace(dirs, entries, used, dumped, old)
	targets, parents, refused := selectNames(ns, c.names)
	pl := planRestore(planInput{old: old, targets: targets, isDir: ns.isDir, dumped: dumped, parents: parents, level: c.level})
	return pl, append(ns.refused, refused...)
}

// renderPlan writes a plan one step a line: "op path ino [other]", then
// "write ino paths" for each inode the image holds, by inode.
func renderPlan(pl *restorePlan) []string {
	var out []string
	for _, steps := range [][]planStep{pl.remove, pl.dirs, pl.files} {
		for _, s := range steps {
			l := fmt.Sprintf("%s %s %d", s.op, s.path, s.ino)
			if s.other != "" {
				l += " " + s.other
			}
			if s.spare {
				l += " spare"
			}
			out = append(out, l)
		}
	}
	var inos []uint32
	for ino := range pl.write {
		inos = append(inos, ino)
	}
	sortInos(inos)
	for _, ino := range inos {
		out = append(out, fmt.Sprintf("write %d %s", ino, strings.Join(pl.write[ino], ",")))
	}
	return out
}

// TestRestorePlan (issue 12 item 4; D5, D8): what a restore removes, stages,
// makes, links and writes, for each kind of change between two levels.
func TestRestorePlan(t *testing.T) {
	cases := []planCase{{
		name:   "level 0 makes directories and writes files, hard links together",
		image:  map[uint32]string{2: "a/=3 f=10 g=10", 3: "h=11"},
		dumped: []uint32{10, 11},
		want:   []string{"mkdir a 3", "write 10 f,g", "write 11 a/h"},
	}, {
		name:  "level 0 with a name whose inode is not on the image: damaged",
		image: map[uint32]string{2: "f=10 g=11"}, dumped: []uint32{10},
		want: []string{"damaged g 11", "write 10 f"},
	}, {
		name: "nothing changed: every name is kept", level: 1,
		old: "a/=3 a/f=10 g=11", image: map[uint32]string{2: "a/=3 g=11"}, used: []uint32{10},
		want: nil,
	}, {
		name: "file renamed in its directory: staged and moved back", level: 1,
		old: "f=10 keep=11", image: map[uint32]string{2: "h=10 keep=11"},
		want: []string{"stage f 10 " + stg + "10", "unstage h 10 " + stg + "10"},
	}, {
		name: "changed file renamed: the old name goes, the image writes the new", level: 1,
		old: "f=10", image: map[uint32]string{2: "h=10"}, dumped: []uint32{10},
		want: []string{"remove f 10", "write 10 h"},
	}, {
		name: "file deleted", level: 1,
		old: "f=10 g=11", image: map[uint32]string{2: "f=10"},
		want: []string{"remove g 11"},
	}, {
		name: "directory deleted with its files, deepest first", level: 1,
		old: "d/=3 d/e/=4 d/e/f=10 d/g=11 k=12", image: map[uint32]string{2: "k=12"},
		want: []string{"remove d/e/f 10", "remove d/e 4", "remove d/g 11", "remove d 3"},
	}, {
		name: "swapped names", level: 1,
		old: "a=10 b=11", image: map[uint32]string{2: "a=11 b=10"},
		want: []string{"stage a 10 " + stg + "10", "stage b 11 " + stg + "11",
			"unstage a 11 " + stg + "11", "unstage b 10 " + stg + "10"},
	}, {
		name: "renamed directory on the image: its files stay, a deleted one goes first", level: 1,
		old: "d/=3 d/x=10 d/y=11", image: map[uint32]string{2: "e/=3", 3: "x=10"},
		want: []string{"remove d/y 11", "stage d 3 " + stg + "3", "unstage e 3 " + stg + "3"},
	}, {
		name: "renamed directory not on the image keeps its entries", level: 1,
		old: "d/=3 d/x=10 d/y=11", image: map[uint32]string{2: "e/=3"}, used: []uint32{10, 11},
		want: []string{"stage d 3 " + stg + "3", "unstage e 3 " + stg + "3"},
	}, {
		name: "directory moved into another, and a file moved out of it", level: 1,
		old: "a/=3 b/=4 a/f=10 a/g=11", image: map[uint32]string{2: "b/=4 g=11", 3: "f=10", 4: "a/=3"},
		want: []string{"stage a/g 11 " + stg + "11", "stage a 3 " + stg + "3",
			"unstage b/a 3 " + stg + "3", "unstage g 11 " + stg + "11"},
	}, {
		name: "deletion under a directory renamed at the next level", level: 2,
		old: "d/=3 d/s/=4 d/s/x=10 d/s/y=11", image: map[uint32]string{2: "e/=3", 4: "x=10"}, used: []uint32{3},
		want: []string{"remove d/s/y 11", "stage d 3 " + stg + "3", "unstage e 3 " + stg + "3"},
	}, {
		name: "file turned into a directory, the inode number reused", level: 1,
		old: "f=10", image: map[uint32]string{2: "f/=10", 10: "inside=20"}, dumped: []uint32{20},
		want: []string{"remove f 10", "mkdir f 10", "write 20 f/inside"},
	}, {
		name: "directory turned back into a file", level: 2,
		old: "f/=10 f/inside=20", image: map[uint32]string{2: "f=21"}, dumped: []uint32{21},
		want: []string{"remove f/inside 20", "remove f 10", "write 21 f"},
	}, {
		name: "directory turned into a file that takes its inode number (ext4 reuses it)", level: 2,
		old: "f/=10 f/inside=20", image: map[uint32]string{2: "f=10"}, dumped: []uint32{10},
		want: []string{"remove f/inside 20", "remove f 10", "write 10 f"},
	}, {
		name: "symbolic link replaced by another", level: 1,
		old: "l=12", image: map[uint32]string{2: "l=13"}, dumped: []uint32{13},
		want: []string{"remove l 12", "write 13 l"},
	}, {
		name: "symbolic link replaced by a directory", level: 1,
		old: "l=12", image: map[uint32]string{2: "l/=14", 14: ""},
		want: []string{"remove l 12", "mkdir l 14"},
	}, {
		name: "hard link added at the next level, in a new directory", level: 1,
		old: "a=10 b=10", image: map[uint32]string{2: "a=10 b=10 d/=3", 3: "c=10"},
		want: []string{"mkdir d 3", "link d/c 10 a"},
	}, {
		name: "one of two hard links removed", level: 1,
		old: "a=10 b=10", image: map[uint32]string{2: "b=10"},
		want: []string{"remove a 10"},
	}, {
		name: "every name of a hard-linked file renamed", level: 1,
		old: "a=10 b=10", image: map[uint32]string{2: "x=10 y=10"},
		want: []string{"stage a 10 " + stg + "10", "remove b 10 spare", "unstage x 10 " + stg + "10", "link y 10 x"},
	}, {
		name: "a hard link renamed, another kept", level: 1,
		old: "a=10 b=10", image: map[uint32]string{2: "a=10 z=10"},
		want: []string{"remove b 10", "link z 10 a"},
	}, {
		name: "changed hard-linked file: every name written, kept or not", level: 1,
		old: "a=10 s/=3 s/b=10", image: map[uint32]string{2: "a=10 c=10 s/=3"}, dumped: []uint32{10}, used: []uint32{3},
		want: []string{"write 10 a,c,s/b"},
	}, {
		name: "incremental names a file it neither holds nor had", level: 1,
		old: "a=10", image: map[uint32]string{2: "a=10 b=11"},
		want: []string{"missing b 11"},
	}, {
		name: "staging name taken by the old namespace", level: 1,
		old: ".tapestry-restore-staging=30 f=10", image: map[uint32]string{2: ".tapestry-restore-staging=30 g=10"},
		want: []string{"stage f 10 .tapestry-restore-staging.1/10", "unstage g 10 .tapestry-restore-staging.1/10"},
	}, {
		name: "name list: a directory to another name, with its parents", level: 0,
		image: map[uint32]string{2: "d/=3 f=11", 3: "x=10"}, dumped: []uint32{10, 11},
		names: []RestoreName{{Original: "d", Dest: "p/q"}},
		want:  []string{"mkdir p 0", "mkdir p/q 3", "write 10 p/q/x"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pl, refused := planOf(t, c)
			for _, r := range refused {
				t.Errorf("refused %s (%d): %v", r.path, r.ino, r.err)
			}
			got := renderPlan(pl)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

// TestRestorePlanChain (issue 12 item 4; D5): a level chain, each plan from
// the state the one before leaves: a file becomes a directory at level 1 and
// a file again at level 2, while a hard link made at level 1 to a file of
// level 0 survives its first name's removal at level 2.
func TestRestorePlanChain(t *testing.T) {
	levels := []planCase{{
		image: map[uint32]string{2: "f=10 h=11"}, dumped: []uint32{10, 11},
		want: []string{"write 10 f", "write 11 h"},
	}, {
		image: map[uint32]string{2: "f/=12 h=11 l=11", 12: "in=13"}, dumped: []uint32{13},
		want: []string{"remove f 10", "mkdir f 12", "link l 11 h", "write 13 f/in"},
	}, {
		image: map[uint32]string{2: "f=14 l=11"}, dumped: []uint32{14},
		want: []string{"remove f/in 13", "remove f 12", "remove h 11", "write 14 f"},
	}}
	var state string
	for level, c := range levels {
		c.level, c.old = level, state
		pl, refused := planOf(t, c)
		if len(refused) > 0 {
			t.Fatalf("level %d refused %v", level, refused)
		}
		if got := renderPlan(pl); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("level %d plan:\n  %s\nwant:\n  %s", level, strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
		}
		// The state saved is the new namespace.
		old, dirs, entries, used, dumped := caseInputs(t, c)
		ns := buildNamespace(dirs, entries, used, dumped, old)
		var names []string
		for p, ino := range ns.paths {
			if p == "" {
				continue
			}
			if ns.isDir[ino] {
				p += "/"
			}
			names = append(names, p+"="+strconv.Itoa(int(ino)))
		}
		sort.Strings(names)
		state = strings.Join(names, " ")
	}
	if state != "f=14 l=11" {
		t.Errorf("final state %q", state)
	}
}

// TestRestoreNamespaceRefuses (issue 11, issue 12 item 4): names of an image
// that are not restored, each reported with its path and inode, and the
// rest of the tree kept.
func TestRestoreNamespaceRefuses(t *testing.T) {
	c := planCase{
		image:  map[uint32]string{2: "d/=3 e/=3 ok=12", 3: "x=13"},
		dumped: []uint32{10, 11, 12, 13},
	}
	old, dirs, entries, used, dumped := caseInputs(t, c)
	long := strings.Repeat("n", 256)
	entries[2] = append(entries[2], dump.DirEntry{Ino: 10, Name: "a"}, dump.DirEntry{Ino: 11, Name: "a"},
		dump.DirEntry{Ino: 14, Name: long}, dump.DirEntry{Ino: 15, Name: "p/q"})
	ns := buildNamespace(dirs, entries, used, dumped, old)
	var got []string
	for _, r := range ns.refused {
		if !errors.Is(r.err, dump.ErrFormat) {
			t.Errorf("%s: %v is not ErrFormat", r.path, r.err)
		}
		got = append(got, fmt.Sprintf("%s %d", r.path, r.ino))
	}
	want := []string{"a 11", "e 3", long + " 14", "p/q 15"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("refused %v, want %v", got, want)
	}
	for p, ino := range map[string]uint32{"a": 10, "d": 3, "d/x": 13, "ok": 12} {
		if ns.paths[p] != ino {
			t.Errorf("%s -> %d, want %d", p, ns.paths[p], ino)
		}
	}
	if len(ns.paths) != 5 {
		t.Errorf("paths %v", ns.paths)
	}
	for _, ino := range []uint32{10, 11, 14, 15} {
		if !ns.named[ino] {
			t.Errorf("inode %d not named", ino)
		}
	}
}

// TestSelectNamesRefuses (D8): a name list entry that leaves the destination
// or is not on the image is refused; the others are selected.
func TestSelectNamesRefuses(t *testing.T) {
	c := planCase{image: map[uint32]string{2: "f=10"}, dumped: []uint32{10}}
	old, dirs, entries, used, dumped := caseInputs(t, c)
	ns := buildNamespace(dirs, entries, used, dumped, old)
	targets, parents, refused := selectNames(ns, []RestoreName{
		{Original: "../etc/passwd"}, {Original: "f", Dest: "../x"}, {Original: "nothere"}, {Original: "/f", Dest: "g/h"},
	})
	var got []string
	for _, r := range refused {
		got = append(got, r.path)
	}
	if strings.Join(got, ",") != "../etc/passwd,f,nothere" {
		t.Errorf("refused %v", got)
	}
	if len(targets) != 1 || targets["g/h"] != 10 || strings.Join(parents, ",") != "g" {
		t.Errorf("targets %v parents %v", targets, parents)
	}
}
