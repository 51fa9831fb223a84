package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// copyProvider is a small but real snapshot provider for the tests: it
// copies the volume's directories and regular files into
// .snapshot/<name>. It can be told to fail.
type copyProvider struct {
	mu      sync.Mutex
	fail    error
	deleted []string
}

func (p *copyProvider) Name() string { return "testcopy" }

func (p *copyProvider) Supported(volumePath string) error {
	st, err := os.Stat(volumePath)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", volumePath)
	}
	return nil
}

func (p *copyProvider) Create(ctx context.Context, volumePath, name string) (*snapshot.Info, error) {
	p.mu.Lock()
	fail := p.fail
	p.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	dst := filepath.Join(volumePath, snapshot.Dir, name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return nil, err
	}
	info := &snapshot.Info{Name: name, Path: dst, Provider: p.Name()}
	err := filepath.WalkDir(volumePath, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(volumePath, path)
		if rel == "." {
			return nil
		}
		if rel == snapshot.Dir {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(target, 0o755)
		case d.Type().IsRegular():
			in, err := os.Open(path)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.Create(target)
			if err != nil {
				return err
			}
			n, err := io.Copy(out, in)
			info.Files++
			info.Bytes += n
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			return err
		}
		return nil
	})
	if err != nil {
		os.RemoveAll(dst)
		return nil, err
	}
	return info, nil
}

func (p *copyProvider) Delete(ctx context.Context, volumePath, name string) error {
	dst := filepath.Join(volumePath, snapshot.Dir, name)
	if _, err := os.Lstat(dst); err != nil {
		return fmt.Errorf("%w: %s", snapshot.ErrNotFound, name)
	}
	p.mu.Lock()
	p.deleted = append(p.deleted, name)
	p.mu.Unlock()
	return os.RemoveAll(dst)
}

func (p *copyProvider) Identity(volumePath, name string) (snapshot.IdentityMap, error) {
	return nil, errors.New("testcopy keeps no identity map")
}

type env struct {
	t     testing.TB
	ctx   context.Context
	path  string
	store catalog.Store
	svc   *Service
	prov  *copyProvider
	opts  Options
}

// newEnv opens a bbolt catalog in a temporary directory and initialises
// the cluster.
func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), "catalog.db"), prov: &copyProvider{}}
	if opts.Providers == nil {
		opts.Providers = func(name, volumePath string) (snapshot.Provider, error) {
			switch name {
			case "", "auto", "testcopy":
				return e.prov, nil
			}
			return nil, fmt.Errorf("unknown provider %q", name)
		}
	}
	e.opts = opts
	e.open()
	if _, err := e.svc.Init(e.ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) open() {
	e.t.Helper()
	e.store = testutil.OpenCatalog(e.t, e.path)
	e.svc = New(e.store, e.opts)
}

// reopen closes the catalog and opens it again with a new Service.
func (e *env) reopen() {
	e.t.Helper()
	if err := e.store.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

// dump returns every key and value of the catalog.
func (e *env) dump() map[string]string {
	e.t.Helper()
	return testutil.DumpCatalog(e.t, e.store)
}

// unchanged runs fn, which must fail with an error wrapping kind (and
// containing msg when msg is set), and checks that the catalog did not
// change.
func (e *env) unchanged(name string, kind error, msg string, fn func() error) {
	e.t.Helper()
	testutil.RefusedUnchanged(e.t, e.store, name, kind, msg, fn)
}

func (e *env) svm(name string) SVM {
	e.t.Helper()
	v, err := e.svc.CreateSVM(e.ctx, SVMSpec{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// volume makes a host directory and registers it.
func (e *env) volume(svm, name string) Volume {
	e.t.Helper()
	dir := filepath.Join(e.t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	v, err := e.svc.CreateVolume(e.ctx, VolumeSpec{Name: name, SVM: svm, HostPath: dir})
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func fixedClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance() {
	c.mu.Lock()
	c.t = c.t.Add(time.Hour)
	c.mu.Unlock()
}
