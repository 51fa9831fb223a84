package filedump

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// SymtabName is the file in which a restore keeps the state an incremental
// restore needs (which inode each restored path holds).
const SymtabName = "restore_symboltable"

// symtab is the restored namespace after a restore: path -> inode.
type symtab struct {
	Version int
	Level   int
	Date    time.Time // dump date of the last image applied
	Paths   map[string]uint32
	Dirs    map[uint32]bool
}

func loadSymtab(dir string) (*symtab, error) {
	f, err := os.OpenFile(filepath.Join(dir, SymtabName), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", SymtabName, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in %s is not the restore's state file (it is not a regular file): rename or remove it, or restore a level 0 image first", SymtabName, dir)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<30))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", SymtabName, err)
	}
	var s symtab
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&s); err != nil || s.Version != 1 {
		return nil, fmt.Errorf("%s in %s is damaged: %v", SymtabName, dir, err)
	}
	return &s, nil
}

func saveSymtab(dir string, s *symtab) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", SymtabName, err)
	}
	var buf bytes.Buffer
	s.Version = 1
	if err := gob.NewEncoder(&buf).Encode(s); err != nil {
		return err
	}
	// Never follow or write through a link planted in dir.
	tmp := filepath.Join(dir, SymtabName+".tmp")
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", SymtabName, err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", SymtabName, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", SymtabName, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, SymtabName)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", SymtabName, err)
	}
	return nil
}

// reserveStateNames keeps the names of the restore's own state file out of
// the restore when the state is kept in the destination (issue 11): an
// image entry of that name (a regular file would be overwritten by the
// state, a directory would stop this and every later restore) is not
// restored, with an error that names it. The NDMP server keeps the state
// outside the volume, where no name of an image can reach it.
func (rs *restorer) reserveStateNames(targets map[string]uint32, stateDir string) {
	if filepath.Clean(stateDir) != filepath.Clean(rs.dest) {
		return
	}
	for _, n := range []string{SymtabName, SymtabName + ".tmp"} {
		ino, ok := targets[n]
		if !ok {
			continue
		}
		rs.nameResult(n, ino, fmt.Errorf("not restored: the restore keeps its own state under this name in %s; restore it under another name (EXTRACT=E or a name list)", rs.dest))
		for p := range targets {
			if p == n || strings.HasPrefix(p, n+"/") {
				delete(targets, p)
			}
		}
	}
}
