package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/server"
	"github.com/tapestry-ndmp/tapestry/internal/web"
)

// listenHTTP opens the HTTP listener of the web view and /metrics when
// Config.HTTPListen is set (issue 17): TLS with the given certificate or
// the node's own, unless HTTPPlaintext.
func (d *Daemon) listenHTTP(api http.Handler) error {
	c := d.opts.Config
	if c.HTTPListen == "" {
		return nil
	}
	wh, err := web.New(web.Config{
		API: api, Auth: d.auth, Node: d.node, Metrics: d.metrics.Handler(), MetricsNoAuth: c.MetricsNoAuth,
		Secure: !c.HTTPPlaintext, Logger: d.log,
	})
	if err != nil {
		return fmt.Errorf("web view: %w", err)
	}
	ln, err := net.Listen("tcp", c.HTTPListen)
	if err != nil {
		return fmt.Errorf("http-listen %s: %w", c.HTTPListen, err)
	}
	if !c.HTTPPlaintext {
		tc, err := d.httpTLS()
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, tc)
	}
	d.httpLn = ln
	d.httpSrv = &http.Server{
		Handler:           wh,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
	}
	return nil
}

// httpTLS returns the TLS configuration of the HTTP listener.
func (d *Daemon) httpTLS() (*tls.Config, error) {
	c := d.opts.Config
	if c.HTTPCert != "" {
		cert, err := tls.LoadX509KeyPair(c.HTTPCert, c.HTTPKey)
		if err != nil {
			return nil, fmt.Errorf("http-cert: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, CipherSuites: server.TLSCipherSuites}, nil
	}
	if d.ndmp == nil {
		return nil, errors.New("http-listen: the node has no certificate; give http-cert and http-key")
	}
	tc, err := d.ndmp.TLSConfig()
	if err != nil {
		return nil, fmt.Errorf("http-listen: %w", err)
	}
	return tc, nil
}

// serveHTTP serves the HTTP listener, if any, until shutdownHTTP.
func (d *Daemon) serveHTTP() <-chan error {
	errc := make(chan error, 1)
	if d.httpSrv == nil {
		return errc
	}
	scheme := "https"
	if d.opts.Config.HTTPPlaintext {
		scheme = "http"
	}
	d.log.Info("web view listening", "url", scheme+"://"+d.httpLn.Addr().String()+"/")
	go func() { errc <- d.httpSrv.Serve(d.httpLn) }()
	return errc
}

// HTTPAddr is the address the HTTP listener listens on ("" without one),
// with the port chosen when the configuration asked for port 0.
func (d *Daemon) HTTPAddr() string {
	if d.httpLn == nil {
		return ""
	}
	return d.httpLn.Addr().String()
}
