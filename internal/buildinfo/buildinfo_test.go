package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuild(t *testing.T) {
	for _, c := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"go install module@version", debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"a build in the tree", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "1a2b3c4d5e6f7a8b9c0d"}, {Key: "vcs.modified", Value: "false"}}}, "devel+1a2b3c4d5e6f"},
		{"with changes", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.modified", Value: "true"}, {Key: "vcs.revision", Value: "1a2b3c4d5e6f7a8b9c0d"}}}, "devel+1a2b3c4d5e6f+dirty"},
		{"no version control", debug.BuildInfo{}, "devel"},
	} {
		if got := fromBuild(&c.bi); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestAtLeast(t *testing.T) {
	for _, c := range []struct {
		v, min string
		want   bool
	}{
		{"v1.4.0", "v1.4.0", true},
		{"v1.4.1", "v1.4.0", true},
		{"v1.10.0", "v1.9.0", true}, // numeric, not lexical
		{"v1.4.0-rc.1", "v1.4.0", false},
		{"v1.3.9", "v1.4.0", false},
		{"devel+1a2b3c4d5e6f", "v0.0.1", false},
		{"devel", "v0.0.0", false},
	} {
		if got := AtLeast(c.v, c.min); got != c.want {
			t.Errorf("AtLeast(%q, %q) = %v, want %v", c.v, c.min, got, c.want)
		}
	}
}
