package snapmgmt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// env is a storage service with one SVM and the Manager over it.
type env struct {
	t   *testing.T
	ctx context.Context
	st  *storage.Service
	m   *Manager
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // hang guard
	t.Cleanup(cancel)
	st := storage.New(testutil.OpenCatalog(t, filepath.Join(t.TempDir(), "c.db")), storage.Options{})
	if _, err := st.Init(ctx, storage.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSVM(ctx, storage.SVMSpec{Name: "vs1"}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, st: st, m: New(st, 0)}
}

// volume registers dir as volume name with the given provider and type.
func (e *env) volume(name, dir, provider string, typ storage.VolumeType) {
	e.t.Helper()
	_, err := e.st.CreateVolume(e.ctx, storage.VolumeSpec{Name: name, SVM: "vs1", HostPath: dir, SnapshotProvider: provider, Type: typ})
	if err != nil {
		e.t.Fatal(err)
	}
}

// wantCode fails unless err carries the NDMP error code.
func wantCode(t *testing.T, what string, err error, code ndmp.Error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("%s: got %v (code %v), want %v", what, err, Code(err), code)
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
