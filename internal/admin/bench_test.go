package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
)

// BenchmarkGetCluster measures one authenticated API round trip over the
// unix socket (login served from the cache).
func BenchmarkGetCluster(b *testing.B) {
	e := newEnv(b)
	c := e.client("admin", adminPW)
	defer c.Close()
	ctx := context.Background()
	for b.Loop() {
		if err := c.Do(ctx, http.MethodGet, "/api/cluster", nil, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateSVM measures a write through the API: one synced catalog
// transaction per request.
func BenchmarkCreateSVM(b *testing.B) {
	e := newEnv(b)
	c := e.client("admin", adminPW)
	defer c.Close()
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if err := c.Do(ctx, http.MethodPost, "/api/svm/svms", nil, admin.SVMCreate{Name: fmt.Sprintf("vs%d", i)}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
