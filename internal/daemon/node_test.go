package daemon

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// testNodeName is the node name the node tests start with.
const testNodeName = "n2"

func openNode(dir, node string) (*Daemon, error) {
	return Open(context.Background(), Options{DataDir: dir, AdminPassword: "Admin1234", Out: &bytes.Buffer{},
		NodeName: node, Config: Config{NDMPListen: "127.0.0.1:0"}})
}

// checkNode fails unless d is node name in its catalog, its
// node-management LIF, its tape registry and its data directory.
func checkNode(t *testing.T, d *Daemon, name string) {
	t.Helper()
	ctx := context.Background()
	if d.NodeName() != name {
		t.Fatalf("NodeName %q, want %q", d.NodeName(), name)
	}
	nodes, err := d.Storage().Nodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].Name != name {
		t.Fatalf("nodes %+v %v", nodes, err)
	}
	lifs, err := d.Storage().ListLIFs(ctx, "")
	if err != nil || len(lifs) != 1 || lifs[0].Name != name+"_mgmt1" || lifs[0].HomeNode != name {
		t.Fatalf("LIFs %+v %v", lifs, err)
	}
	devs, err := d.Tapes().Devices(ctx)
	if err != nil || len(devs) == 0 || d.Tapes().Node() != name {
		t.Fatalf("tape devices %+v %v", devs, err)
	}
	for _, dev := range devs {
		if dev.Node != name {
			t.Fatalf("tape device %+v on node %q", dev, dev.Node)
		}
	}
	b, err := os.ReadFile(filepath.Join(d.DataDir(), NodeFile))
	if err != nil || string(b) != name+"\n" {
		t.Fatalf("%s: %q %v", NodeFile, b, err)
	}
}

// TestNodeName: --node-name names the node on first start and is kept in
// the data directory; a later start without it keeps the name, one with
// another name is refused and changes nothing (issue 12 item 6).
func TestNodeName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := openNode(dir, "2bad"); err == nil || !errors.Is(err, storage.ErrInvalidArgument) {
		t.Fatalf("invalid node name: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an invalid node name created the data directory: %v", err)
	}
	d, err := openNode(dir, testNodeName)
	if err != nil {
		t.Fatal(err)
	}
	checkNode(t, d, testNodeName)
	d.Close()

	d, err = openNode(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	checkNode(t, d, testNodeName)
	d.Close()

	_, err = openNode(dir, "n3")
	if !errors.Is(err, ErrNodeRenamed) || !strings.Contains(err.Error(), `belongs to node "n2", not "n3"`) ||
		!strings.Contains(err.Error(), "--node-name n2") {
		t.Fatalf("start with another name: %v", err)
	}
	d, err = openNode(dir, testNodeName)
	if err != nil {
		t.Fatal(err)
	}
	checkNode(t, d, testNodeName)
	d.Close()
}

// TestNodeNameUpgrade: a data directory from before node names were kept
// (a catalog, no NodeFile) keeps the node its catalog has.
func TestNodeNameUpgrade(t *testing.T) {
	dir := t.TempDir()
	d, err := openNode(dir, testNodeName)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := os.Remove(filepath.Join(dir, NodeFile)); err != nil {
		t.Fatal(err)
	}
	d, err = openNode(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	checkNode(t, d, testNodeName)
	d.Close()

	os.Remove(filepath.Join(dir, NodeFile))
	if _, err := openNode(dir, "n3"); err == nil || !strings.Contains(err.Error(), "has the nodes n2") {
		t.Fatalf("upgrade with a node the catalog does not have: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, NodeFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused start kept a node name: %v", err)
	}
}
