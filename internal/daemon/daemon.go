// Package daemon wires a Tapestry node together: it opens (and on first
// start creates) the data directory and its catalog, initialises the
// cluster, the node, the node-management LIF and the admin user, and serves
// the admin API on the unix socket DIR/admin.sock until it is told to stop.
//
// The layout of a data directory:
//
//	DIR/catalog.db     the catalog (package catalog, bbolt)
//	DIR/node-name      the node's name (NodeFile), kept from the first start
//	DIR/admin.sock     the admin API socket, mode 0600
//	DIR/mroot/etc/log/ the backup event log directory
//	DIR/vtl/           the default virtual tape library
//	DIR/vtls/NAME/     the libraries made with storage tape vtl create
package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/auth"
	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/eventlog"
	"github.com/tapestry-ndmp/tapestry/internal/metrics"
	"github.com/tapestry-ndmp/tapestry/internal/ndmpadmin"
	"github.com/tapestry-ndmp/tapestry/internal/server"
	"github.com/tapestry-ndmp/tapestry/internal/smtapesvc"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst"
	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
)

// File names inside the data directory.
const (
	CatalogFile = "catalog.db"
	SocketFile  = "admin.sock"
	LogDir      = "mroot/etc/log"
)

// ShutdownTimeout is how long Serve waits for running requests on stop.
const ShutdownTimeout = 10 * time.Second

// Options configures Open.
type Options struct {
	// DataDir is created on first start.
	DataDir string
	Config  Config
	// NodeName names the node on first start (empty: storage.DefaultNodeName).
	// On a later start it must be empty or the name the data directory
	// keeps (NodeFile); a different name is refused with ErrNodeRenamed.
	NodeName string
	// AdminPassword is the initial password of the cluster user admin on
	// first start; empty means a generated one, written to Out.
	AdminPassword string
	// Version is reported by the API.
	Version string
	// Logger receives the daemon's log; nil discards.
	Logger *slog.Logger
	// Out receives the generated admin password; nil means os.Stdout.
	Out io.Writer
	// TapeSys is the system call layer of real tape devices; nil means
	// the real one (linuxst.System). Tests pass a simulated host
	// (package linuxst/sim).
	TapeSys linuxst.Sys
}

// Daemon is one running node.
type Daemon struct {
	opts Options
	log  *slog.Logger
	// node is this node's name (NodeFile).
	node    string
	store   catalog.Store
	storage *storage.Service
	auth    *auth.Service
	ln      net.Listener
	srv     *http.Server
	// httpLn and httpSrv serve the web view and /metrics (web.go); nil
	// without Config.HTTPListen.
	httpLn  net.Listener
	httpSrv *http.Server
	vtl     *vtl.Library
	vtls    *vtlSet
	tapes   *tape.Registry
	scanner *linuxst.Scanner
	ndmp    *server.Server
	smtape  *smtapesvc.Manager
	events  *eventlog.Log
	metrics *metrics.Collector
	// anyPort is set when the configuration asked for port 0.
	anyPort bool
	// FirstStart is true when Open created the cluster.
	FirstStart bool
}

// Open prepares the node: data directory, catalog, cluster, node, LIF, admin
// user and the listening admin socket. Close undoes it when Serve is not
// used.
func Open(ctx context.Context, o Options) (d *Daemon, err error) {
	if o.DataDir == "" {
		return nil, errors.New("a data directory is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Config.NDMPListen == "" {
		o.Config.NDMPListen = DefaultNDMPListen
	}
	anyPort := isAnyPort(o.Config.NDMPListen)
	if o.Config.NDMPListen, err = resolvePort(o.Config.NDMPListen, o.Logger); err != nil {
		return nil, err
	}
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	// The initial password matters only on first start; check it before
	// anything is created.
	if _, err := os.Stat(filepath.Join(dir, CatalogFile)); errors.Is(err, os.ErrNotExist) && o.AdminPassword != "" {
		if err := auth.CheckPasswordRules(o.AdminPassword); err != nil {
			return nil, fmt.Errorf("initial admin password: %s", auth.Message(err))
		}
	}
	if err := checkNodeName(dir, o.NodeName); err != nil {
		return nil, err
	}
	o.DataDir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, LogDir), 0o755); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	st, err := catalog.OpenBolt(filepath.Join(dir, CatalogFile))
	if err != nil {
		return nil, inUseError(dir, filepath.Join(dir, CatalogFile), err)
	}
	d = &Daemon{opts: o, log: o.Logger, store: st, anyPort: anyPort}
	defer func() {
		if err != nil {
			d.Close()
			d = nil
		}
	}()
	d.storage = storage.New(st, storage.Options{MaxSnapshots: o.Config.MaxSnapshots})
	if err := d.initCluster(ctx); err != nil {
		return d, err
	}
	if err := d.recoverSnapshots(ctx); err != nil {
		return d, err
	}
	if err := d.openEventLog(ctx); err != nil {
		return d, err
	}
	if err := d.openNDMP(ctx); err != nil {
		return d, err
	}
	d.metrics = d.newMetrics()
	d.seedLastBackups()
	if err := d.listen(); err != nil {
		return d, err
	}
	return d, nil
}

func (d *Daemon) initCluster(ctx context.Context) error {
	_, err := d.storage.Cluster(ctx)
	d.FirstStart = errors.Is(err, storage.ErrNotInitialized)
	if err != nil && !d.FirstStart {
		return fmt.Errorf("read cluster: %w", err)
	}
	if d.node, err = d.nodeName(ctx, d.FirstStart); err != nil {
		return err
	}
	c, err := d.storage.Init(ctx, storage.InitOptions{NodeName: d.node})
	if err != nil {
		return err
	}
	if _, err := d.storage.GetNode(ctx, d.node); err != nil {
		return fmt.Errorf("node %s: %w", d.node, err)
	}
	if err := writeNodeFile(d.opts.DataDir, d.node); err != nil {
		return err
	}
	adminSVM, err := d.storage.AdminSVM(ctx)
	if err != nil {
		return err
	}
	d.auth = auth.New(d.store, auth.Options{
		AdminSVM: adminSVM,
		CheckSVM: func(ctx context.Context, svm string) error {
			_, err := d.storage.GetSVM(ctx, svm)
			return err
		},
	})
	if err := d.ensureLIF(ctx, adminSVM); err != nil {
		return err
	}
	if d.FirstStart {
		d.log.Info("initialised new cluster", "cluster", c.Name, "node", d.node, "data-dir", d.opts.DataDir)
	}
	users, err := d.auth.ListUsers(ctx, "")
	if err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	if len(users) > 0 {
		// Not the first start: the admin password is whatever it was
		// set to.
		return nil
	}
	pw, generated := d.opts.AdminPassword, false
	if pw == "" {
		pw, generated = generatePassword(), true
	}
	created, err := d.auth.Bootstrap(ctx, pw)
	if err != nil {
		return fmt.Errorf("create admin user: %w", err)
	}
	if created {
		d.log.Info("created cluster user admin", "cluster", c.Name)
		if generated {
			fmt.Fprintf(d.opts.Out, "Initial password of cluster user admin: %s\n", pw)
		}
	}
	return nil
}

// ensureLIF creates the node-management LIF, or moves it when the configured
// address changed.
func (d *Daemon) ensureLIF(ctx context.Context, adminSVM string) error {
	ap, err := ParseListen(d.opts.Config.NDMPListen)
	if err != nil {
		return err
	}
	name := d.MgmtLIFName()
	l, err := d.storage.GetLIF(ctx, adminSVM, name)
	switch {
	case err == nil && l.AddrPort() == ap:
		return nil
	case err == nil && d.anyPort && l.AddrPort().Addr() == ap.Addr():
		// Port 0 keeps the port chosen on an earlier start.
		d.opts.Config.NDMPListen = l.AddrPort().String()
		return nil
	case err == nil:
		d.log.Info("moving node-management LIF", "lif", name, "from", l.AddrPort(), "to", ap)
		if err := d.storage.DeleteLIF(ctx, adminSVM, name); err != nil {
			return fmt.Errorf("move LIF %s: %w", name, err)
		}
	case !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("read LIF %s: %w", name, err)
	}
	_, err = d.storage.CreateLIF(ctx, storage.LIFSpec{
		Name: name, SVM: adminSVM, Role: storage.RoleNodeMgmt,
		Address: ap.Addr().String(), Port: int(ap.Port()), HomeNode: d.node,
	})
	if err != nil {
		return fmt.Errorf("create LIF %s: %w", name, err)
	}
	return nil
}

// maxSocketPath is the longest path a unix socket address holds on Linux.
const maxSocketPath = 107

func (d *Daemon) listen() error {
	path := d.SocketPath()
	if len(path) > maxSocketPath {
		return fmt.Errorf("admin socket path %s is %d bytes long, more than unix sockets allow (%d): use a shorter --data-dir", path, len(path), maxSocketPath)
	}
	// The catalog's file lock is held, so no other daemon uses this
	// directory: a socket file left here is stale.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	ln, err := listenUnix(path)
	if err != nil {
		return err
	}
	d.ln = ln
	cfg := admin.ServerConfig{
		Store: d.store, Storage: d.storage, Auth: d.auth, Logger: d.log, Version: d.opts.Version,
		Tapes: d.tapes, VTL: d.vtl, TapeRescan: d.RescanTapes,
		Node: d.node, EventLog: d.events, Metrics: d.metrics.Handler(),
	}
	if d.vtls != nil {
		cfg.VTLs = d.vtls
	}
	if d.ndmp != nil {
		cfg.NDMP = ndmpadmin.New(d.ndmp, d.store)
	}
	if d.smtape != nil {
		cfg.SMTape = smtapeAPI{d.smtape}
	}
	api := admin.NewServer(cfg)
	if err := d.listenHTTP(api); err != nil {
		return err
	}
	d.srv = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
	}
	return nil
}

// listenUnix listens on a socket at a temporary name and renames it to path
// once it listens with mode 0600, so that the socket file appears only when
// connections to it are accepted: a script that waits for the file to exist
// (README quick start: until [ -S DIR/admin.sock ]) then connects without a
// window in which it would be refused. Closing the listener removes path.
func listenUnix(path string) (net.Listener, error) {
	tmp := path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on admin socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("admin socket permissions: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return &unixListener{UnixListener: ln, path: path}, nil
}

// unixListener removes its socket file when it is closed.
type unixListener struct {
	*net.UnixListener
	path string
	once sync.Once
}

// Close stops listening and removes the socket file.
func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { os.Remove(l.path) })
	return err
}

// Serve answers API requests until ctx is cancelled, then stops accepting,
// waits up to ShutdownTimeout for running requests and closes the catalog.
func (d *Daemon) Serve(ctx context.Context) error {
	d.log.Info("admin API listening", "socket", d.SocketPath())
	errc := make(chan error, 1)
	go func() { errc <- d.srv.Serve(d.ln) }()
	httpErr := d.serveHTTP()
	nctx, stopNDMP := context.WithCancel(ctx)
	ndmpDone := d.serveNDMP(nctx)
	pollDone := d.runBackground(nctx)
	tapeDone := d.runTapeRescan(nctx)
	var serveErr error
	select {
	case <-ctx.Done():
		d.log.Info("shutting down")
	case serveErr = <-errc:
	case serveErr = <-httpErr:
	}
	stopNDMP()
	<-ndmpDone
	<-pollDone
	<-tapeDone
	d.closeVTL()
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := d.srv.Shutdown(sctx); err != nil {
		d.log.Warn("requests still running at shutdown", "err", err)
	}
	if d.httpSrv != nil {
		if err := d.httpSrv.Shutdown(sctx); err != nil {
			d.log.Warn("web requests still running at shutdown", "err", err)
		}
	}
	d.closeEventLog()
	cerr := d.closeStore()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("admin API: %w", serveErr)
	}
	return cerr
}

// Close releases the socket and the catalog without serving.
func (d *Daemon) Close() error {
	if d.ln != nil {
		d.ln.Close()
	}
	if d.httpLn != nil {
		d.httpLn.Close()
	}
	d.closeVTL()
	d.closeEventLog()
	return d.closeStore()
}

func (d *Daemon) closeStore() error {
	if d.store == nil {
		return nil
	}
	err := d.store.Close()
	d.store = nil
	if err != nil {
		return fmt.Errorf("close catalog: %w", err)
	}
	return nil
}

// SocketPath is the path of the admin API socket.
func (d *Daemon) SocketPath() string { return filepath.Join(d.opts.DataDir, SocketFile) }

// DataDir is the absolute data directory.
func (d *Daemon) DataDir() string { return d.opts.DataDir }

// NodeName is the node's name (kept in NodeFile).
func (d *Daemon) NodeName() string { return d.node }

// MgmtLIFName is the name of the node-management LIF, NODE_mgmt1.
func (d *Daemon) MgmtLIFName() string { return mgmtLIFName(d.node) }

// Store is the node's catalog.
func (d *Daemon) Store() catalog.Store { return d.store }

// Storage is the node's storage model.
func (d *Daemon) Storage() *storage.Service { return d.storage }

// Auth is the node's user and role store.
func (d *Daemon) Auth() *auth.Service { return d.auth }

// generatePassword returns 16 random letters and digits with at least one
// of each, which satisfies auth.CheckPasswordRules.
func generatePassword() string {
	const letters = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
	const digits = "23456789"
	const all = letters + digits
	for {
		b := make([]byte, 16)
		hasL, hasD := false, false
		for i := range b {
			n, err := rand.Int(rand.Reader, big.NewInt(int64(len(all))))
			if err != nil {
				panic(fmt.Sprintf("crypto/rand failed: %v", err))
			}
			b[i] = all[n.Int64()]
			if n.Int64() < int64(len(letters)) {
				hasL = true
			} else {
				hasD = true
			}
		}
		if hasL && hasD {
			return string(b)
		}
	}
}
