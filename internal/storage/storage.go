// Package storage is Tapestry's model of an ONTAP storage system on a Linux
// host: the cluster and its nodes, storage virtual machines (SVMs, also
// called Vservers), logical interfaces (LIFs), volumes, qtrees, LUNs and
// snapshot copies.
//
// A volume is a directory tree on a host file system registered under a
// name in an SVM. It has a type (RW, or DP for a read-only data protection
// volume), a state (online, restricted or offline) that changes as ONTAP's
// volume online, volume restrict and volume offline commands change it, a
// security style and the name of the snapshot provider that makes its
// snapshot copies (see package snapshot). A qtree is a top-level directory
// of a volume registered as a qtree. A LUN is a regular file flagged with an
// extended attribute.
//
// Everything is kept in a catalog.Store; a Service holds no state of its
// own besides per-volume locks that serialise snapshot operations, so
// several Services on one store see the same model. Every change is one
// catalog transaction: a refused request changes nothing.
//
// Refused requests return an *Error that wraps one of the sentinel errors
// (ErrNotFound, ErrExists, ErrInvalidState, ...) and whose message follows
// ONTAP's wording, for example
//
//	volume "vol1" in Vserver "vs1" already exists
//
// Backup paths of the form /svm/volume[/path] are resolved with Resolve.
package storage

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
)

// DefaultMaxSnapshots is the number of snapshot copies a volume may hold
// when Options.MaxSnapshots is zero.
const DefaultMaxSnapshots = 1023

// DefaultClusterName and DefaultNodeName are what Init uses for empty
// names.
const (
	DefaultClusterName = "cluster1"
	DefaultNodeName    = "node1"
)

// ProviderFunc returns the snapshot provider called name for the volume
// rooted at volumePath. The name "auto" (or "") asks for the best provider
// the volume's file system supports.
type ProviderFunc func(name, volumePath string) (snapshot.Provider, error)

// DefaultProviders is the ProviderFunc of package snapshot: snapshot.Auto
// for "auto" or "", snapshot.ByName for any other name.
func DefaultProviders(name, volumePath string) (snapshot.Provider, error) {
	if name == "" || name == "auto" {
		return snapshot.Auto(volumePath)
	}
	return snapshot.ByName(name)
}

// Options configures a Service.
type Options struct {
	// Providers finds snapshot providers; nil means DefaultProviders.
	Providers ProviderFunc
	// MaxSnapshots is the most snapshot copies one volume may hold;
	// 0 means DefaultMaxSnapshots.
	MaxSnapshots int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Service is the storage model over one catalog. It is safe for concurrent
// use.
type Service struct {
	store catalog.Store
	opts  Options

	mu      sync.Mutex
	volLock map[string]*sync.Mutex
	// inc is the daemon incarnation the locks taken now belong to (set by
	// StartIncarnation; empty: locks are not tied to a process).
	inc atomic.Pointer[string]
}

// New returns a Service over store.
func New(store catalog.Store, opts Options) *Service {
	if opts.MaxSnapshots <= 0 {
		opts.MaxSnapshots = DefaultMaxSnapshots
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Providers == nil {
		opts.Providers = DefaultProviders
	}
	return &Service{store: store, opts: opts, volLock: make(map[string]*sync.Mutex)}
}

// lockVolume serialises snapshot create and delete on one volume, because
// the provider works on the host outside any catalog transaction.
func (s *Service) lockVolume(svm, vol string) func() {
	k := catalog.Key(svm, vol)
	s.mu.Lock()
	m, ok := s.volLock[k]
	if !ok {
		m = new(sync.Mutex)
		s.volLock[k] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// clusterKey is the key of the cluster record.
func clusterKey() string { return catalog.Key(ns, "cluster") }

// Catalog key layout: everything lives below "storage/", for example
// "storage/volume/<svm>/<volume>" (parts escaped by catalog.Key).
const (
	ns           = "storage"
	prefixNode   = "node"
	prefixSVM    = "svm"
	prefixLIF    = "lif"
	prefixVolume = "volume"
	prefixQtree  = "qtree"
	prefixSnap   = "snapshot"
	prefixNFS    = "nfs"
)

// Cluster is the cluster record.
type Cluster struct {
	Name      string    `json:"cluster-name"`
	UUID      string    `json:"cluster-uuid"`
	CreatedAt time.Time `json:"create-time"`
}

// Node is one tapestryd node of the cluster.
type Node struct {
	Name      string    `json:"node"`
	UUID      string    `json:"node-uuid"`
	CreatedAt time.Time `json:"create-time"`
}

// InitOptions names the cluster and the first node; empty names mean
// DefaultClusterName and DefaultNodeName.
type InitOptions struct {
	ClusterName string
	NodeName    string
}

// Init creates, on an empty catalog, the cluster, its first node and the
// admin SVM (which carries the cluster's name). On a catalog that already
// has a cluster it changes nothing and returns the existing cluster, so the
// daemon calls it on every start.
func (s *Service) Init(ctx context.Context, o InitOptions) (Cluster, error) {
	if o.ClusterName == "" {
		o.ClusterName = DefaultClusterName
	}
	if o.NodeName == "" {
		o.NodeName = DefaultNodeName
	}
	if err := validSVMName(o.ClusterName); err != nil {
		return Cluster{}, err
	}
	if err := validNodeName(o.NodeName); err != nil {
		return Cluster{}, err
	}
	var c Cluster
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		old, err := catalog.GetJSON[Cluster](tx, clusterKey())
		if err == nil {
			c = old
			return nil
		}
		if !errors.Is(err, catalog.ErrNotFound) {
			return err
		}
		now := s.now()
		c = Cluster{Name: o.ClusterName, UUID: newUUID(), CreatedAt: now}
		if err := catalog.PutJSON(tx, clusterKey(), c); err != nil {
			return err
		}
		n := Node{Name: o.NodeName, UUID: newUUID(), CreatedAt: now}
		if err := catalog.PutJSON(tx, catalog.Key(ns, prefixNode, n.Name), n); err != nil {
			return err
		}
		admin := SVM{
			Name: o.ClusterName, UUID: newUUID(), Type: SVMAdmin, State: SVMRunning,
			AllowedProtocols: Protocols(), DisallowedProtocols: []string{},
			CreatedAt: now,
		}
		return catalog.PutJSON(tx, catalog.Key(ns, prefixSVM, admin.Name), admin)
	})
	if err != nil {
		return Cluster{}, fmt.Errorf("init cluster: %w", err)
	}
	return c, nil
}

// Cluster returns the cluster record, or ErrNotInitialized.
func (s *Service) Cluster(ctx context.Context) (Cluster, error) {
	return catalog.Read(ctx, s.store, func(tx catalog.Tx) (Cluster, error) {
		return getCluster(tx)
	})
}

// AdminSVM returns the name of the cluster's admin SVM (the cluster name).
func (s *Service) AdminSVM(ctx context.Context) (string, error) {
	c, err := s.Cluster(ctx)
	return c.Name, err
}

func getCluster(tx catalog.Tx) (Cluster, error) {
	c, err := catalog.GetJSON[Cluster](tx, clusterKey())
	if errors.Is(err, catalog.ErrNotFound) {
		return c, errf(ErrNotInitialized, "the cluster has not been initialized")
	}
	return c, err
}

// AddNode adds a node to the cluster.
func (s *Service) AddNode(ctx context.Context, name string) (Node, error) {
	if err := validNodeName(name); err != nil {
		return Node{}, err
	}
	n := Node{Name: name, UUID: newUUID(), CreatedAt: s.now()}
	err := s.store.Update(ctx, func(tx catalog.Tx) error {
		if _, err := getCluster(tx); err != nil {
			return err
		}
		k := catalog.Key(ns, prefixNode, name)
		if ok, err := catalog.Exists(tx, k); err != nil || ok {
			if err != nil {
				return err
			}
			return errf(ErrExists, "node %q already exists", name)
		}
		return catalog.PutJSON(tx, k, n)
	})
	if err != nil {
		return Node{}, fmt.Errorf("add node: %w", err)
	}
	return n, nil
}

// Nodes lists the nodes in name order.
func (s *Service) Nodes(ctx context.Context) ([]Node, error) {
	return catalog.Read(ctx, s.store, func(tx catalog.Tx) ([]Node, error) {
		return catalog.ListJSON[Node](tx, catalog.Prefix(ns, prefixNode))
	})
}

// GetNode returns one node.
func (s *Service) GetNode(ctx context.Context, name string) (Node, error) {
	return catalog.Read(ctx, s.store, func(tx catalog.Tx) (Node, error) {
		return getNode(tx, name)
	})
}

func getNode(tx catalog.Tx, name string) (Node, error) {
	n, err := catalog.GetJSON[Node](tx, catalog.Key(ns, prefixNode, name))
	if errors.Is(err, catalog.ErrNotFound) {
		return n, errf(ErrNotFound, "node %q does not exist", name)
	}
	return n, err
}

// defaultNode returns name when it is set (checking that it exists), else
// the only node of the cluster.
func defaultNode(tx catalog.Tx, name string) (string, error) {
	if name != "" {
		_, err := getNode(tx, name)
		return name, err
	}
	nodes, err := catalog.ListJSON[Node](tx, catalog.Prefix(ns, prefixNode))
	if err != nil {
		return "", err
	}
	switch len(nodes) {
	case 0:
		return "", errf(ErrNotInitialized, "the cluster has no nodes")
	case 1:
		return nodes[0].Name, nil
	}
	return "", errf(ErrInvalidArgument, "the cluster has %d nodes: name the node", len(nodes))
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
