package dump

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	f, err := os.OpenFile(filepath.Join(dir, SymtabName), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", SymtabName, err)
	}
	defer f.Close()
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
	return os.Rename(tmp, filepath.Join(dir, SymtabName))
}
