package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"ndmp-listen": "[::1]:10000", "log-level": "debug", "max-snapshots-per-volume": 255}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.NDMPListen != "[::1]:10000" || c.LogLevel != "debug" || c.MaxSnapshots != 255 {
		t.Fatalf("%+v", c)
	}
	if c, err := ParseConfig([]byte(`{}`)); err != nil || c != (Config{}) {
		t.Fatalf("empty object: %+v %v", c, err)
	}
	bad := map[string]string{
		`{"ndmp-listen": "localhost"}`:        "not ADDR:PORT",
		`{"ndmp-listen": "127.0.0.1:0"}`:      "port must not be 0",
		`{"log-level": "loud"}`:               "log level",
		`{"max-snapshots-per-volume": -1}`:    "outside",
		`{"max-snapshots-per-volume": 99999}`: "outside",
		`{"ndmp_listen": "127.0.0.1:1"}`:      "unknown field",
		`{} {}`:                               "trailing data",
		`not json`:                            "invalid JSON",
		``:                                    "invalid JSON",
		strings.Repeat(" ", MaxConfigBytes+1): "larger than",
	}
	for in, want := range bad {
		if _, err := ParseConfig([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseConfig(%.40q) = %v, want error containing %q", in, err, want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tapestry.json")
	if err := os.WriteFile(p, []byte(`{"log-level":"warn"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(p)
	if err != nil || c.LogLevel != "warn" {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := LoadConfig(p + ".missing"); err == nil || !strings.Contains(err.Error(), "read config") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "": slog.LevelInfo, "warning": slog.LevelWarn, "error": slog.LevelError} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v", in, got, err)
		}
	}
}

// FuzzParseConfig: any input gives a config or an error, never a panic, and
// an accepted config validates.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"ndmp-listen": "127.0.0.1:10000", "log-level": "info", "max-snapshots-per-volume": 10}`))
	f.Add([]byte(`{"ndmp-listen": "[fe80::1%eth0]:10000"}`))
	f.Add([]byte(`{"log-level": 5}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config %+v does not validate: %v", c, err)
		}
	})
}
