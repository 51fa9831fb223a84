package buildinfo

import (
	"runtime/debug"
	"testing"
)

// TestVersion checks where the version comes from (issue 17 item 4).
func TestVersion(t *testing.T) {
	if got := Version("1.2.3"); got != "1.2.3" {
		t.Errorf("stamped: %q", got)
	}
	for _, c := range []struct {
		info debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}}, "v0.4.0"},
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, "devel-0123456789ab-dirty"},
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}}, "devel-0123456789ab"},
		{debug.BuildInfo{}, "devel"},
	} {
		if got := fromBuildInfo(&c.info); got != c.want {
			t.Errorf("fromBuildInfo(%+v) = %q, want %q", c.info, got, c.want)
		}
	}
}
