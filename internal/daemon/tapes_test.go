package daemon

import (
	"strings"
	"testing"
	"time"
)

// Issue 15 item 1: the configuration keys of real-device discovery.
func TestTapeDiscoveryConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"tape-discovery": false, "tape-sysfs-root": "/x/sys", "tape-dev-root": "/x/dev", "tape-rescan-interval": "30s"}`))
	if err != nil {
		t.Fatal(err)
	}
	on, sys, dev, every, err := c.tapeDiscovery()
	if err != nil || on || sys != "/x/sys" || dev != "/x/dev" || every != 30*time.Second {
		t.Fatalf("got %v %q %q %v %v", on, sys, dev, every, err)
	}
	on, sys, dev, every, err = Config{}.tapeDiscovery()
	if err != nil || !on || sys != "/sys" || dev != "/dev" || every != time.Minute {
		t.Fatalf("defaults: %v %q %q %v %v", on, sys, dev, every, err)
	}
	for _, bad := range []string{`"soon"`, `"-1s"`} {
		_, err := ParseConfig([]byte(`{"tape-rescan-interval": ` + bad + `}`))
		if err == nil || !strings.Contains(err.Error(), "tape-rescan-interval") {
			t.Errorf("interval %s: %v", bad, err)
		}
	}
}
