package filedump

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/tapestry-ndmp/tapestry/format/dump"
)

// The plan of a stream restore (D5, D8, issue 12): which names of the
// destination it removes, stages, creates, links and writes. Pure functions
// compute it from what the last restore left (its symbol table) and what the
// image's directory records and inode maps say, so that the rules of an
// incremental restore are tested without a file system
// (restoreplan_test.go); the restorer then carries it out (applyPlan).

// nameProblem is a name of the image or of the name list that is not
// restored, and why.
type nameProblem struct {
	path string
	ino  uint32
	err  error
}

// namespace is the tree an image describes, with, for an incremental, the
// names the last restore left in the directories the image does not carry.
type namespace struct {
	// paths maps every reachable path ("" is the root) to its inode.
	paths map[string]uint32
	// isDir holds the directory inodes: the image's and those of the last
	// restore that the image still uses.
	isDir map[uint32]bool
	// visited holds the directories some path reaches.
	visited map[uint32]bool
	// named holds every inode some reachable entry names (even a name
	// refused).
	named map[uint32]bool
	// refused lists the names not restored, in the order found.
	refused []nameProblem
}

// buildNamespace resolves the image's directories (dirs, with their entries
// without "." and "..") into paths. Directories of the old namespace that the
// image does not carry but that still exist (used, and not on the image as
// another type) keep their entries, as Linux dump's incrementals expect.
// entries is the namespace's afterwards: the old names are added to it and
// its lists are sorted in place.
func buildNamespace(dirs map[uint32]*meta, entries map[uint32][]dump.DirEntry, used, dumped *dump.Bitmap, old *symtab) *namespace {
	ns := &namespace{isDir: map[uint32]bool{}}
	for ino := range dirs {
		ns.isDir[ino] = true
	}
	if old != nil {
		addOldEntries(ns.isDir, dirs, entries, used, dumped, old)
	}
	ns.walk(entries)
	return ns
}

// addOldEntries adds to entries the names of old in the directories that the
// image does not carry and still uses, and marks the old directories the
// image still uses. An old directory that the image holds as a non-directory
// is gone: its inode number now belongs to a file (ext4 gives the number of
// a removed directory to the next file of its group).
func addOldEntries(isDir map[uint32]bool, dirs map[uint32]*meta, entries map[uint32][]dump.DirEntry, used, dumped *dump.Bitmap, old *symtab) {
	reused := func(ino uint32) bool {
		_, d := dirs[ino]
		return !d && dumped.Has(ino)
	}
	for p, ino := range old.Paths {
		parent := uint32(dump.RootIno)
		dir, base := path.Split(p)
		if dir != "" {
			parent = old.Paths[strings.TrimSuffix(dir, "/")]
		}
		if _, dumpedDir := dirs[parent]; dumpedDir || !used.Has(parent) || parent == 0 || reused(parent) {
			continue
		}
		t := uint8(dump.DTReg)
		if old.Dirs[ino] && !reused(ino) {
			t = dump.DTDir
			if _, d := dirs[ino]; !d {
				isDir[ino] = true
			}
		}
		entries[parent] = append(entries[parent], dump.DirEntry{Ino: ino, Type: t, Name: base})
	}
	for d := range old.Dirs {
		if used.Has(d) && !reused(d) {
			if _, ok := dirs[d]; !ok {
				isDir[d] = true
			}
		}
	}
}

// walk visits the tree from the root, breadth first and each directory's
// entries by name, and refuses duplicate and unsafe names and second names of
// directories.
func (ns *namespace) walk(entries map[uint32][]dump.DirEntry) {
	ns.paths = map[string]uint32{"": dump.RootIno}
	ns.visited = map[uint32]bool{dump.RootIno: true}
	ns.named = map[uint32]bool{dump.RootIno: true}
	queue := []string{""}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		ents := entries[ns.paths[p]]
		sort.SliceStable(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
		for i, e := range ents {
			ns.named[e.Ino] = true
			cp := joinRel(p, e.Name)
			if err := ns.refuse(p, ents, i); err != nil {
				ns.refused = append(ns.refused, nameProblem{cp, e.Ino, err})
				continue
			}
			if ns.isDir[e.Ino] {
				ns.visited[e.Ino] = true
				queue = append(queue, cp)
			} else if e.Ino == dump.RootIno || e.Ino == 0 {
				continue
			}
			ns.paths[cp] = e.Ino
		}
	}
}

// refuse says why entry i of the directory at p is not restored, or nil.
func (ns *namespace) refuse(p string, ents []dump.DirEntry, i int) error {
	e := ents[i]
	switch {
	case i > 0 && ents[i-1].Name == e.Name:
		return fmt.Errorf("%w: directory inode %d holds the name %q twice (inodes %d and %d); only the first is restored",
			dump.ErrFormat, ns.paths[p], e.Name, ents[i-1].Ino, e.Ino)
	case !validName(e.Name):
		return fmt.Errorf("%w: unsafe name %q in directory inode %d", dump.ErrFormat, e.Name, ns.paths[p])
	case ns.isDir[e.Ino] && ns.visited[e.Ino]:
		return fmt.Errorf("%w: directory inode %d has more than one name", dump.ErrFormat, e.Ino)
	}
	return nil
}

// selectNames applies the name list (EXTRACT, nlist) to the namespace: the
// paths to restore (the namespace's own map when names is empty), the
// parent directories of the destinations, which are made when the image
// does not hold them, and the names that cannot be restored.
func selectNames(ns *namespace, names []RestoreName) (targets map[string]uint32, parents []string, refused []nameProblem) {
	if len(names) == 0 {
		return ns.paths, nil, nil
	}
	targets = map[string]uint32{}
	for _, n := range names {
		orig, ok1 := cleanRel(n.Original)
		dst, ok2 := cleanRel(n.Dest)
		if n.Dest == "" {
			dst = orig
		}
		if !ok1 || !ok2 {
			refused = append(refused, nameProblem{n.Original, 0, fmt.Errorf("restore: %q -> %q leaves the destination", n.Original, n.Dest)})
			continue
		}
		ino, found := ns.paths[orig]
		if !found {
			refused = append(refused, nameProblem{n.Original, 0, fmt.Errorf("restore: %q is not on the image", n.Original)})
			continue
		}
		if ns.isDir[ino] {
			selectTree(targets, ns.paths, orig, dst)
		} else {
			targets[dst] = ino
		}
		for d := path.Dir(dst); d != "." && d != "/" && dst != ""; d = path.Dir(d) {
			parents = append(parents, d)
		}
	}
	return targets, parents, refused
}

// selectTree adds to targets the tree at orig of paths, renamed to dst.
func selectTree(targets, paths map[string]uint32, orig, dst string) {
	for p, i := range paths {
		if p == orig || orig == "" || strings.HasPrefix(p, orig+"/") {
			rest := strings.TrimPrefix(strings.TrimPrefix(p, orig), "/")
			if rest == "" {
				targets[dst] = i
			} else {
				targets[joinRel(dst, rest)] = i
			}
		}
	}
}

// planOp is one kind of step of a restore plan.
type planOp uint8

const (
	// opRemove removes an old name (a directory with what is left in it).
	opRemove planOp = iota
	// opStage moves an old name whose inode lives on into the staging
	// directory (other), from where opUnstage moves it to its new name.
	opStage
	// opMkdir makes a directory.
	opMkdir
	// opUnstage moves the inode staged at other to its new name; the
	// directory is made anew when the staging failed.
	opUnstage
	// opLink makes another name for the inode restored at other.
	opLink
	// opMissing reports a name whose inode is neither on the image nor
	// restored before: an incremental image holds only what changed.
	opMissing
	// opDamaged reports a name of a level 0 image whose inode the image
	// does not hold: the image is damaged.
	opDamaged
)

var planOpNames = [...]string{"remove", "stage", "mkdir", "unstage", "link", "missing", "damaged"}

// String implements fmt.Stringer.
func (o planOp) String() string { return planOpNames[o] }

// planStep is one step of a restore plan.
type planStep struct {
	op   planOp
	path string // the name the step removes, stages or makes
	ino  uint32 // its inode (0 for a parent directory of the name list)
	// other is the staging path (opStage, opUnstage) or the name to link
	// to (opLink).
	other string
	// spare marks an opRemove of another old name of a staged file: the
	// restorer stages this one instead when the first staging failed.
	spare bool
}

// restorePlan is what a stream restore does to the destination, in order.
type restorePlan struct {
	// staging is the directory, made at the first opStage and removed at
	// the end, that holds the inodes moving to new names.
	staging string
	// remove are the opRemove and opStage steps, deepest names first.
	remove []planStep
	// dirs are the opMkdir and opUnstage steps of directories, parents
	// first, so that every name kept or staged is in its final place
	// before files are linked to it.
	dirs []planStep
	// files are the opUnstage, opLink, opMissing and opDamaged steps of
	// the non-directories the image does not hold, parents first.
	files []planStep
	// write maps each inode the image holds to the names it is written
	// to (sorted) when its data is read (stage 3).
	write map[uint32][]string
}

// planInput is what a restore plan is computed from.
type planInput struct {
	// old is the state the last restore left; nil for a level 0 or a
	// selective restore (nothing is removed or moved then).
	old *symtab
	// targets is the new namespace: path -> inode.
	targets map[string]uint32
	// isDir holds the directory inodes (namespace.isDir).
	isDir map[uint32]bool
	// dumped is the image's map of the inodes it holds.
	dumped *dump.Bitmap
	// parents are directories to make for the name list (selectNames).
	parents []string
	// level is the image's dump level.
	level int
}

// planner holds the state of planRestore: the plan so far and where each
// inode is once the steps before have run.
type planner struct {
	in      planInput
	oldPath map[string]uint32
	oldDirs map[uint32]bool
	keptNew map[string]bool   // new paths of kept entries
	keptIno map[uint32]string // inode -> the first new path that holds it
	staged  map[uint32]string // inode -> its staging path
	plan    restorePlan
}

// planRestore computes the plan of a stream restore (D5, D8). An entry
// (directory, name, inode) found in both the old and the new namespace stays
// where it is, or moves along with its directory; the other old names are
// removed, or staged when their inode lives on under another name (a rename,
// a move to another directory), and the other new names made, moved from the
// staging directory, linked to a name of their inode, or written from the
// image. The plan assumes that each step succeeds.
func planRestore(in planInput) *restorePlan {
	pl := &planner{in: in, oldDirs: map[uint32]bool{}, keptNew: map[string]bool{},
		keptIno: map[uint32]string{}, staged: map[uint32]string{}}
	if in.old != nil {
		pl.oldPath, pl.oldDirs = in.old.Paths, in.old.Dirs
	}
	kept := pl.keep()
	pl.plan.staging = pl.stagingName()
	pl.planRemovals(kept)
	addDirs, addFiles := pl.additions()
	pl.planDirs(addDirs)
	pl.planFiles(addFiles)
	pl.plan.write = map[uint32][]string{}
	for p, ino := range in.targets {
		if pl.onImage(ino) {
			pl.plan.write[ino] = append(pl.plan.write[ino], p)
		}
	}
	for _, ps := range pl.plan.write {
		sort.Strings(ps)
	}
	return &pl.plan
}

// onImage reports whether the image holds the non-directory ino (its data
// is written in stage 3).
func (pl *planner) onImage(ino uint32) bool { return pl.in.dumped.Has(ino) && !pl.in.isDir[ino] }

// keep finds the entries of the old namespace that the new one has under the
// same name in the same directory (wherever that directory now is), and
// returns their old paths.
func (pl *planner) keep() map[string]bool {
	oldDirPath := map[uint32]string{dump.RootIno: ""}
	for p, ino := range pl.oldPath {
		if pl.oldDirs[ino] {
			oldDirPath[ino] = p
		}
	}
	newDirPath := map[uint32]string{dump.RootIno: ""}
	for p, ino := range pl.in.targets {
		if pl.in.isDir[ino] {
			newDirPath[ino] = p
		}
	}
	kept := map[string]bool{}
	for p, ino := range pl.oldPath {
		if p == "" {
			continue
		}
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		pino := uint32(dump.RootIno)
		if dir != "" {
			pino = pl.oldPath[dir]
		}
		np, ok := newDirPath[pino]
		if !ok || !pl.oldDirs[pino] && pino != dump.RootIno {
			continue
		}
		q := joinRel(np, base)
		if t, ok := pl.in.targets[q]; ok && t == ino && pl.oldDirs[ino] == pl.in.isDir[ino] {
			kept[p] = true
			pl.keptNew[q] = true
			if cur, ok := pl.keptIno[ino]; !ok || q < cur {
				pl.keptIno[ino] = q
			}
		}
	}
	return kept
}

// stagingName returns a name for the staging directory that neither
// namespace uses.
func (pl *planner) stagingName() string {
	staging := ".tapestry-restore-staging"
	for i := 1; ; i++ {
		_, inNew := pl.in.targets[staging]
		_, inOld := pl.oldPath[staging]
		if !inNew && !inOld {
			return staging
		}
		staging = ".tapestry-restore-staging." + strconv.Itoa(i)
	}
}

// planRemovals plans the old names that are not kept, deepest first: an
// inode that lives on in the new namespace with the same type and is not on
// the image is staged (a directory always, a file unless another of its
// names is kept or staged); the other names are removed.
func (pl *planner) planRemovals(kept map[string]bool) {
	live := map[uint32]bool{}
	for _, ino := range pl.in.targets {
		live[ino] = true
	}
	var removed []string
	for p := range pl.oldPath {
		if !kept[p] && p != "" {
			removed = append(removed, p)
		}
	}
	sort.Slice(removed, func(i, j int) bool {
		return depth(removed[i]) > depth(removed[j]) || depth(removed[i]) == depth(removed[j]) && removed[i] < removed[j]
	})
	for _, p := range removed {
		ino := pl.oldPath[p]
		survives := live[ino] && pl.oldDirs[ino] == pl.in.isDir[ino] && !pl.onImage(ino)
		if survives && (pl.oldDirs[ino] || pl.keptIno[ino] == "" && pl.staged[ino] == "") {
			sp := pl.plan.staging + "/" + strconv.FormatUint(uint64(ino), 10)
			pl.staged[ino] = sp
			pl.plan.remove = append(pl.plan.remove, planStep{op: opStage, path: p, ino: ino, other: sp})
			continue
		}
		spare := survives && !pl.oldDirs[ino] && pl.keptIno[ino] == ""
		pl.plan.remove = append(pl.plan.remove, planStep{op: opRemove, path: p, ino: ino, spare: spare})
	}
}

// additions returns the new names that are not kept, directories (with the
// parents of the name list) and the non-directories the image does not
// hold, each sorted parents first.
func (pl *planner) additions() (addDirs, addFiles []string) {
	for p, ino := range pl.in.targets {
		if p == "" || pl.keptNew[p] {
			continue
		}
		switch {
		case pl.in.isDir[ino]:
			addDirs = append(addDirs, p)
		case !pl.onImage(ino):
			addFiles = append(addFiles, p)
		}
	}
	for _, d := range pl.in.parents {
		if _, ok := pl.in.targets[d]; !ok {
			addDirs = append(addDirs, d)
		}
	}
	byDepth := func(s []string) {
		sort.Slice(s, func(i, j int) bool {
			return depth(s[i]) < depth(s[j]) || depth(s[i]) == depth(s[j]) && s[i] < s[j]
		})
	}
	byDepth(addDirs)
	byDepth(addFiles)
	return addDirs, addFiles
}

// planDirs plans the new directories: moved back from the staging directory
// when staged, made otherwise.
func (pl *planner) planDirs(addDirs []string) {
	for i, p := range addDirs {
		if i > 0 && addDirs[i-1] == p {
			continue
		}
		ino, inImage := pl.in.targets[p]
		if sp := pl.staged[ino]; inImage && sp != "" {
			pl.plan.dirs = append(pl.plan.dirs, planStep{op: opUnstage, path: p, ino: ino, other: sp})
			delete(pl.staged, ino)
			continue
		}
		pl.plan.dirs = append(pl.plan.dirs, planStep{op: opMkdir, path: p, ino: ino})
	}
}

// planFiles plans the new names of the non-directories the image does not
// hold: the first moved back from the staging directory, the others linked
// to a name their inode has; a name whose inode is nowhere is reported.
func (pl *planner) planFiles(addFiles []string) {
	for _, p := range addFiles {
		ino := pl.in.targets[p]
		s := planStep{path: p, ino: ino}
		switch {
		case pl.staged[ino] != "":
			s.op, s.other = opUnstage, pl.staged[ino]
			delete(pl.staged, ino)
			pl.keptIno[ino] = p
		case pl.keptIno[ino] != "":
			s.op, s.other = opLink, pl.keptIno[ino]
		case pl.in.level == 0:
			// A level 0 holds every file it names.
			s.op = opDamaged
		default:
			s.op = opMissing
		}
		pl.plan.files = append(pl.plan.files, s)
	}
}
