// Package buildinfo says which build of Tapestry is running, for the
// --version of its commands (issue 17 item 4).
package buildinfo

import "runtime/debug"

// Version returns the version of the running binary: stamped, when the
// build set one with -ldflags "-X main.version=..." (make build stamps git
// describe); else the module version of a "go install ...@version"; else
// the VCS revision Go recorded ("devel-<12 hex digits>", "-dirty" when the
// tree had changes); else "devel".
func Version(stamped string) string {
	if stamped != "" {
		return stamped
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return fromBuildInfo(info)
}

func fromBuildInfo(info *debug.BuildInfo) string {
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return "devel-" + rev
}
