package benchmain

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// writeTree makes files under root from relative path to content.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for path, content := range files {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMemoryMonitorsDescribesRunningKdamonds(t *testing.T) {
	root := t.TempDir()
	ctx := "kdamonds/0/contexts/0/"
	writeTree(t, root, map[string]string{
		"kdamonds/nr_kdamonds":                       "2",
		"kdamonds/0/state":                           "on",
		"kdamonds/0/contexts/nr_contexts":            "1",
		ctx + "operations":                           "paddr",
		ctx + "monitoring_attrs/intervals/sample_us": "500000",
		ctx + "monitoring_attrs/nr_regions/min":      "1024",
		ctx + "monitoring_attrs/nr_regions/max":      "8192",
		ctx + "schemes/nr_schemes":                   "1",
		ctx + "schemes/0/action":                     "pageout",
		"kdamonds/1/state":                           "off",
		"kdamonds/1/contexts/nr_contexts":            "1",
		"kdamonds/1/contexts/0/operations":           "vaddr",
	})
	got := memoryMonitors(root)
	want := []string{"DAMON kdamond 0: paddr, a sampling pass every 500ms, 1024-8192 regions, schemes: pageout"}
	if !slices.Equal(got, want) {
		t.Errorf("memoryMonitors = %q, want %q", got, want)
	}
}

func TestMemoryMonitorsNoneWithoutDamon(t *testing.T) {
	if got := memoryMonitors(filepath.Join(t.TempDir(), "absent")); got != nil {
		t.Errorf("memoryMonitors without DAMON = %q, want nil", got)
	}
	root := t.TempDir()
	writeTree(t, root, map[string]string{"kdamonds/nr_kdamonds": "1", "kdamonds/0/state": "off"})
	if got := memoryMonitors(root); got != nil {
		t.Errorf("memoryMonitors with every kdamond off = %q, want nil", got)
	}
}

func TestMemoryMonitorsJoinsContexts(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"kdamonds/nr_kdamonds":                                       "1",
		"kdamonds/0/state":                                           "on",
		"kdamonds/0/contexts/nr_contexts":                            "2",
		"kdamonds/0/contexts/0/operations":                           "paddr",
		"kdamonds/0/contexts/0/monitoring_attrs/intervals/sample_us": "5000",
		"kdamonds/0/contexts/1/operations":                           "vaddr",
		"kdamonds/0/contexts/1/monitoring_attrs/intervals/sample_us": "100000",
	})
	want := []string{"DAMON kdamond 0: paddr, a sampling pass every 5ms; vaddr, a sampling pass every 100ms"}
	if got := memoryMonitors(root); !slices.Equal(got, want) {
		t.Errorf("memoryMonitors = %q, want %q", got, want)
	}
}
