package snapshot

import (
	"context"
	"io/fs"
	"path/filepath"
)

// WalkFunc is called by Walk for every file and directory, as
// fs.WalkDirFunc is by filepath.WalkDir: returning fs.SkipDir skips a
// directory (or the rest of the current one), fs.SkipAll ends the walk, any
// other error ends it with that error.
type WalkFunc = fs.WalkDirFunc

// Walk walks the tree rooted at root like filepath.WalkDir (lexical order,
// symbolic links not followed) but never visits root's .snapshot directory
// nor anything in it. A .snapshot directory deeper in the tree is an
// ordinary directory. Walk stops with ctx's error when ctx is done.
func Walk(ctx context.Context, root string, fn WalkFunc) error {
	snap := filepath.Join(root, Dir)
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if path == snap {
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		return fn(path, d, err)
	})
}
