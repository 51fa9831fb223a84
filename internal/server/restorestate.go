package server

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"

	"github.com/tapestry-ndmp/tapestry/internal/engine/filedump"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// RestoreStateDir is the directory below Options.DataDir where restores
// keep the state an incremental restore needs (restore_symboltable), one
// directory per destination.
const RestoreStateDir = "restore-state"

// restoreStateDir returns where a restore into dest (/svm/volume[/path])
// keeps its state: below DataDir, by SVM, volume UUID and path, outside the
// volume, so that no name in an image can collide with it and no user of
// the volume can change it (issue 11). "" (the destination itself) when the
// server has no DataDir.
func (s *Server) restoreStateDir(ctx context.Context, dest string) (string, error) {
	if s.o.DataDir == "" {
		return "", nil
	}
	loc, err := s.o.Storage.Resolve(ctx, dest)
	if err != nil {
		return "", fmt.Errorf("restore state of %s: %w", dest, err)
	}
	key := "root"
	if loc.RelPath != "" {
		key = "path-" + url.PathEscape(loc.RelPath)
	}
	return filepath.Join(s.o.DataDir, RestoreStateDir, url.PathEscape(loc.Volume.SVM), loc.Volume.UUID, key), nil
}

// outsideRoot reports whether the destination directory of nlist entry n
// lies outside the restore's root (the volume or path restored into).
func outsideRoot(root string, n ndmp.Name) bool {
	if n.DestinationDir == "" {
		return false
	}
	d := path.Clean("/" + n.DestinationDir)
	r := path.Clean("/" + root)
	return r != "/" && d != r && !strings.HasPrefix(d, r+"/")
}

// refuseOutside fails the names of the list whose destination lies outside
// root (issue 11): they used to be restored into the root and reported
// SUCCESSFUL. Each gets a LOG_MESSAGE now and a failed LOG_FILE when the
// restore ends; the names left are returned.
func (lf *logFiles) refuseOutside(root string, nlist []ndmp.Name, names []filedump.RestoreName) []filedump.RestoreName {
	var kept []filedump.RestoreName
	for i, n := range nlist {
		if !outsideRoot(root, n) {
			kept = append(kept, names[i])
			continue
		}
		lf.mu.Lock()
		lf.entries[i].status = ndmp.RecoveryFailedPermission
		lf.mu.Unlock()
		lf.ss.logMessage(ndmp.LogError, fmt.Sprintf("%s: not restored: its destination %s is outside %s, the volume or path this restore writes to",
			n.OriginalPath, n.DestinationDir, root))
	}
	return kept
}
