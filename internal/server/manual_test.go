package server

import (
	"os"
	"testing"
	"time"
)

func TestManualServe(t *testing.T) {
	if os.Getenv("MANUAL_SERVE") == "" {
		t.Skip("manual")
	}
	f := newFixture(t, fixtureOpts{before: func(f *fixture) {
		enableText(f)
		withVolumes(f)
		populate(t, f.dir+"/vols/vol1")
		os.WriteFile("/tmp/manual-dir", []byte(f.dir), 0o600)
		ModifySVMSettings(f.ctx, f.store, f.adminSVM, func(s *SVMSettings) error { s.DebugEnable = true; return nil })
	}})
	os.WriteFile("/tmp/manual-agent", []byte(f.agent("m")), 0o600)
	time.Sleep(25 * time.Second)
	os.WriteFile("/tmp/manual-log", []byte(f.logs.String()), 0o600)
}
