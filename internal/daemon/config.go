package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
)

// DefaultNDMPListen is the address of the node-management LIF created on
// first start when none is configured.
const DefaultNDMPListen = "127.0.0.1:10000"

// Config is the content of the daemon's configuration file, a JSON object:
//
//	{
//	  "ndmp-listen": "127.0.0.1:10000",
//	  "log-level": "info",
//	  "log-format": "text",
//	  "max-snapshots-per-volume": 255,
//	  "http-listen": "127.0.0.1:8443",
//	  "http-cert": "/etc/tapestry/web.pem",
//	  "http-key": "/etc/tapestry/web-key.pem",
//	  "http-plaintext": false,
//	  "metrics-no-auth": false
//	}
//
// Every key is optional; command line flags override the file.
type Config struct {
	// NDMPListen is the address and port of the node-management LIF.
	NDMPListen string `json:"ndmp-listen,omitempty"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"log-level,omitempty"`
	// LogFormat is text (the default) or json: one JSON object a line,
	// for log collectors (issue 17 item 4).
	LogFormat string `json:"log-format,omitempty"`
	// MaxSnapshots is the most snapshot copies one volume may hold; 0
	// means the storage default.
	MaxSnapshots int `json:"max-snapshots-per-volume,omitempty"`
	// TapeDiscovery turns the discovery of real tape drives and medium
	// changers on (the default) or off.
	TapeDiscovery *bool `json:"tape-discovery,omitempty"`
	// TapeSysfsRoot and TapeDevRoot are where discovery looks for the
	// sysfs tree and the device nodes (default /sys and /dev).
	TapeSysfsRoot string `json:"tape-sysfs-root,omitempty"`
	TapeDevRoot   string `json:"tape-dev-root,omitempty"`
	// TapeRescanInterval is how often discovery looks for added and
	// removed devices, a Go duration (default 1m; 0 turns it off).
	TapeRescanInterval string `json:"tape-rescan-interval,omitempty"`
	// HTTPListen is the address of the web view and of /metrics (issue
	// 17); empty means no HTTP listener. Port 0 picks a free port.
	HTTPListen string `json:"http-listen,omitempty"`
	// HTTPCert and HTTPKey are the PEM files of the listener's TLS
	// certificate; empty means the node's own (DIR/tls/ndmp-cert.pem).
	HTTPCert string `json:"http-cert,omitempty"`
	HTTPKey  string `json:"http-key,omitempty"`
	// HTTPPlaintext serves HTTP without TLS (behind a TLS proxy only).
	HTTPPlaintext bool `json:"http-plaintext,omitempty"`
	// MetricsNoAuth serves /metrics without authentication.
	MetricsNoAuth bool `json:"metrics-no-auth,omitempty"`
}

// MaxConfigBytes bounds the size of a configuration file.
const MaxConfigBytes = 64 << 10

// LoadConfig reads and checks a configuration file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes and checks the JSON text of a configuration file.
// Unknown keys are refused so that a misspelt key is not silently ignored.
func ParseConfig(b []byte) (Config, error) {
	if len(b) > MaxConfigBytes {
		return Config{}, fmt.Errorf("file is larger than %d bytes", MaxConfigBytes)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return Config{}, fmt.Errorf("invalid JSON: trailing data after the object")
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks every set field.
func (c Config) Validate() error {
	if c.NDMPListen != "" {
		if _, err := ParseListen(c.NDMPListen); err != nil {
			return err
		}
	}
	if c.LogLevel != "" {
		if _, err := ParseLevel(c.LogLevel); err != nil {
			return err
		}
	}
	if _, err := NewLogger(io.Discard, c.LogFormat, c.LogLevel); err != nil {
		return err
	}
	if _, _, _, _, err := c.tapeDiscovery(); err != nil {
		return err
	}
	if err := c.validateHTTP(); err != nil {
		return err
	}
	if c.MaxSnapshots < 0 || c.MaxSnapshots > 1023 {
		return fmt.Errorf("max-snapshots-per-volume %d is outside 0-1023", c.MaxSnapshots)
	}
	return nil
}

// ParseListen parses an ADDR:PORT listen address (IPv6 addresses in
// brackets). Port 0 is refused: a LIF needs a fixed port.
func ParseListen(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("ndmp-listen %q is not ADDR:PORT: %w", s, err)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("ndmp-listen %q: port must not be 0", s)
	}
	if ap.Addr().Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("ndmp-listen %q: zoned addresses are not supported", s)
	}
	return ap, nil
}

// NewLogger returns the daemon's logger writing to w in format (text or
// json; "" is text) at level (see ParseLevel).
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	o := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("log format %q is not text or json", format)
}

// ParseLevel parses a log level name.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q is not one of debug, info, warn, error", s)
}

// validateHTTP checks the HTTP listener's settings.
func (c Config) validateHTTP() error {
	if c.HTTPListen != "" {
		if _, err := netip.ParseAddrPort(c.HTTPListen); err != nil {
			return fmt.Errorf("http-listen %q is not ADDR:PORT: %w", c.HTTPListen, err)
		}
	}
	if (c.HTTPCert == "") != (c.HTTPKey == "") {
		return fmt.Errorf("http-cert and http-key go together: give both or neither")
	}
	if c.HTTPPlaintext && c.HTTPCert != "" {
		return fmt.Errorf("http-plaintext and http-cert exclude each other")
	}
	return nil
}
