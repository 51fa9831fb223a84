package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
)

// NodeFile keeps the node's name in the data directory (one line). The first
// start writes it: the name given with Options.NodeName (tapestryd
// --node-name), else storage.DefaultNodeName. The node's name is local to
// the data directory, not a catalog value, because a cluster's nodes share
// one catalog but each has its own data directory.
//
// A node is never renamed: a later start with a different name is refused
// (ErrNodeRenamed), because the name is part of catalog keys (the node
// record, the home node of LIFs, the owner of volumes, the tape registry's
// aliases and the extra virtual libraries) that a rename would have to move
// together.
const NodeFile = "node-name"

// ErrNodeRenamed is returned by Open when Options.NodeName differs from the
// name the data directory keeps.
var ErrNodeRenamed = errors.New("node rename refused")

// readNodeFile returns the name kept in dir, "" when there is none yet.
func readNodeFile(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, NodeFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read node name: %w", err)
	}
	name := strings.TrimSpace(string(b))
	if err := storage.CheckNodeName(name); err != nil {
		return "", fmt.Errorf("node name in %s: %w", filepath.Join(dir, NodeFile), err)
	}
	return name, nil
}

// writeNodeFile keeps name in dir, replacing the file atomically.
func writeNodeFile(dir, name string) error {
	tmp := filepath.Join(dir, NodeFile+".tmp")
	if err := os.WriteFile(tmp, []byte(name+"\n"), 0o600); err != nil {
		return fmt.Errorf("keep node name: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, NodeFile)); err != nil {
		return fmt.Errorf("keep node name: %w", err)
	}
	return nil
}

// checkNodeName refuses a start whose wanted name (empty: whatever is kept)
// differs from the name kept in dir. It runs before anything is created.
func checkNodeName(dir, want string) error {
	if want != "" {
		if err := storage.CheckNodeName(want); err != nil {
			return fmt.Errorf("--node-name: %w", err)
		}
	}
	kept, err := readNodeFile(dir)
	if err != nil || kept == "" || want == "" || want == kept {
		return err
	}
	return fmt.Errorf("%w: the data directory %s belongs to node %q, not %q; a node keeps the name of its first start: start it with --node-name %s or without --node-name",
		ErrNodeRenamed, dir, kept, want, kept)
}

// nodeName decides the node's name before the cluster is initialised: the
// kept name, else (first start) the wanted one or the default. A data
// directory made before names were kept has a catalog but no NodeFile; its
// node is the wanted one if the catalog has it, else the catalog's only node.
func (d *Daemon) nodeName(ctx context.Context, firstStart bool) (string, error) {
	want := d.opts.NodeName
	kept, err := readNodeFile(d.opts.DataDir)
	switch {
	case err != nil:
		return "", err
	case kept != "":
		return kept, nil
	case firstStart && want != "":
		return want, nil
	case firstStart:
		return storage.DefaultNodeName, nil
	}
	nodes, err := d.storage.Nodes(ctx)
	if err != nil {
		return "", fmt.Errorf("read nodes: %w", err)
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	switch {
	case want != "" && slices.Contains(names, want):
		return want, nil
	case want == "" && len(names) == 1:
		return names[0], nil
	}
	return "", fmt.Errorf("the data directory %s keeps no node name and its catalog has the nodes %s: start it with --node-name and one of them",
		d.opts.DataDir, strings.Join(names, ", "))
}

// mgmtLIFName is the name of the node's node-management LIF.
func mgmtLIFName(node string) string { return node + "_mgmt1" }
