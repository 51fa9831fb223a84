package filedump

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/tapestry-ndmp/tapestry/format/dump"
)

// Checks that a restore got every name and inode its image promises
// (issue 11): a directory whose data is damaged, a name whose inode never
// comes, an inode on the image that no name reaches. Each is reported as an
// error for its name, and the restore then ends with an error (ErrFormat),
// so that the CLI, the NDMP halt and LOG_FILE all say it failed.

// damage reports p (or inode ino) as lost to damage of the image: an
// error for that name, and the restore ends failed (issue 11).
func (rs *restorer) damage(p string, ino uint32, err error) {
	if p == "" && ino != dump.RootIno {
		p = fmt.Sprintf("(inode %d)", ino)
	}
	rs.mu.Lock()
	rs.damaged++
	rs.mu.Unlock()
	rs.nameResult(p, ino, err)
}

// damageError is how a restore that lost names to a damaged image ends.
func (rs *restorer) damageError() error {
	if rs.damaged == 0 {
		return nil
	}
	return fmt.Errorf("restore: %w: the image is damaged: %d names or inodes on it were not restored (each is reported)", dump.ErrFormat, rs.damaged)
}

// dirDamage is a directory of the image whose data is damaged.
type dirDamage struct {
	ino uint32
	err error
}

// reportDirDamage reports the damaged directories of stage 1 by path.
func (rs *restorer) reportDirDamage(damage []dirDamage, paths map[string]uint32) {
	if len(damage) == 0 {
		return
	}
	where := map[uint32]string{}
	for p, ino := range paths {
		where[ino] = p
	}
	for _, d := range damage {
		p, ok := where[d.ino]
		switch {
		case !ok:
			p = ""
		case p == "":
			p = "/"
		}
		rs.damage(p, d.ino, d.err)
	}
}

// checkDelivered reports, after stage 3, every path whose inode the image
// promised (in its dumped map) and did not hold, and every inode on the
// image (read in stage 3, or a directory) that no reachable name names.
func (rs *restorer) checkDelivered(writeList map[uint32][]string, targets map[string]uint32, seen, named map[uint32]bool,
	dirs map[uint32]*meta, visited map[uint32]bool) {
	var missing []uint32
	for ino := range writeList {
		if !seen[ino] {
			missing = append(missing, ino)
		}
	}
	sortInos(missing)
	for _, ino := range missing {
		for _, p := range writeList[ino] {
			rs.damage(p, ino, fmt.Errorf("%w: (inode %d) not found on the image", dump.ErrFormat, ino))
			// Not restored: the state must not say it was.
			delete(targets, p)
		}
	}
	var lost []uint32
	for ino := range seen {
		if !named[ino] {
			lost = append(lost, ino)
		}
	}
	for ino := range dirs {
		if !visited[ino] && !named[ino] {
			lost = append(lost, ino)
		}
	}
	sortInos(lost)
	for _, ino := range lost {
		what := "inode"
		if dirs[ino] != nil {
			what = "directory inode"
		}
		rs.damage("", ino, fmt.Errorf("%w: %s %d is on the image but no directory names it", dump.ErrFormat, what, ino))
	}
}

func sortInos(s []uint32) { sort.Slice(s, func(i, j int) bool { return s[i] < s[j] }) }

// dropPartial removes the file at p whose data could not all be written
// (no space left, an I/O error): a file cut short, or empty, must not be
// left looking restored (issue 11). The error says what became of it.
func (rs *restorer) dropPartial(fs *destFS, p string, err error) error {
	if rerr := fs.remove(p); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return fmt.Errorf("%w; the partly written file could not be removed: %v", err, rerr)
	}
	return fmt.Errorf("%w (the partly written file was removed)", err)
}

// lose records that the file at p was not restored.
func (rs *restorer) lose(p string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.lost == nil {
		rs.lost = map[string]bool{}
	}
	rs.lost[p] = true
}
