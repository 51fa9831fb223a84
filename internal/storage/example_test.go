package storage_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// A daemon's first start: initialise the cluster, make an SVM with a
// volume over a host directory, and resolve a backup path.
func Example() {
	dir, err := os.MkdirTemp("", "tapestry-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := catalog.OpenBolt(filepath.Join(dir, "catalog.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	svc := storage.New(store, storage.Options{})
	c, err := svc.Init(ctx, storage.InitOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := svc.CreateSVM(ctx, storage.SVMSpec{Name: "vs1"}); err != nil {
		log.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(filepath.Join(data, "projects"), 0o755); err != nil {
		log.Fatal(err)
	}
	if _, err := svc.CreateVolume(ctx, storage.VolumeSpec{Name: "vol1", SVM: "vs1", HostPath: data, SnapshotProvider: "copy"}); err != nil {
		log.Fatal(err)
	}
	_, err = svc.CreateVolume(ctx, storage.VolumeSpec{Name: "vol1", SVM: "vs1", HostPath: filepath.Join(data, "projects")})
	fmt.Println("Error: command failed:", storage.Message(err))

	loc, err := svc.Resolve(ctx, "/vs1/vol1/projects")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Name, loc.SVM.Name, loc.Volume.Name, loc.RelPath, loc.HostPath == filepath.Join(data, "projects"))
	// Output:
	// Error: command failed: volume "vol1" in Vserver "vs1" already exists
	// cluster1 vs1 vol1 projects true
}
