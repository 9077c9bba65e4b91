// Package buildinfo names the version of the clockd binary: what
// `clockd --version` prints, what AdminService.Status reports, and what
// run-book version gates compare.
//
// A release build sets the version at link time:
//
//	go build -ldflags "-X github.com/clockd/clockd/internal/buildinfo.version=v1.4.0" ./cmd/clockd
//
// Without it, a binary built by `go install module@version` reports that
// module version; any other build reports "devel", with the commit it was
// built from when the Go toolchain recorded one (devel+1a2b3c4d5e6f, and
// +dirty for uncommitted changes). A devel version is not a release
// (semantic) version, so it passes no version gate.
package buildinfo

import (
	"runtime/debug"

	"golang.org/x/mod/semver"
)

// version is set with -ldflags -X; see the package doc.
var version string

// Version is this binary's version.
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return fromBuild(bi)
}

func fromBuild(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	v, dirty := "devel", false
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			v += "+" + s.Value[:12]
		case s.Key == "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		v += "+dirty"
	}
	return v
}

// AtLeast reports whether version v is a release (semantic) version, as
// in v1.4.0, no lower than min. A devel version never is.
func AtLeast(v, min string) bool {
	return semver.IsValid(v) && semver.Compare(v, min) >= 0
}

// Valid reports whether v is a semantic version, as version gates take.
func Valid(v string) bool { return semver.IsValid(v) }
