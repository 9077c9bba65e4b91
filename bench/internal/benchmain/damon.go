package benchmain

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// damonAdmin is where the kernel's DAMON sysfs interface lives.
const damonAdmin = "/sys/kernel/mm/damon/admin"

// MemoryMonitors describes, one line each, the kernel's DAMON monitors
// (kdamonds) that are running, or returns nil when none is or the kernel
// has none. A kdamond samples memory on its own beat, and each pass
// takes CPU from everything else on the machine: where a benchmark's
// latencies jump at that beat, the monitor is the first suspect (see
// BENCHMARKS.md).
func MemoryMonitors() []string { return memoryMonitors(damonAdmin) }

func memoryMonitors(admin string) []string {
	read := func(path ...string) string {
		b, err := os.ReadFile(filepath.Join(append([]string{admin}, path...)...))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	n, err := strconv.Atoi(read("kdamonds", "nr_kdamonds"))
	if err != nil {
		return nil
	}
	var out []string
	for i := range n {
		k := filepath.Join("kdamonds", strconv.Itoa(i))
		if read(k, "state") != "on" {
			continue
		}
		var contexts []string
		nc, _ := strconv.Atoi(read(k, "contexts", "nr_contexts"))
		for j := range nc {
			c := filepath.Join(k, "contexts", strconv.Itoa(j))
			attrs := filepath.Join(c, "monitoring_attrs")
			desc := fmt.Sprintf("%s, a sampling pass every %s", read(c, "operations"),
				micros(read(attrs, "intervals", "sample_us")))
			if lo, hi := read(attrs, "nr_regions", "min"), read(attrs, "nr_regions", "max"); lo != "" && hi != "" {
				desc += fmt.Sprintf(", %s-%s regions", lo, hi)
			}
			ns, _ := strconv.Atoi(read(c, "schemes", "nr_schemes"))
			var actions []string
			for s := range ns {
				actions = append(actions, read(c, "schemes", strconv.Itoa(s), "action"))
			}
			if len(actions) > 0 {
				desc += ", schemes: " + strings.Join(actions, ", ")
			}
			contexts = append(contexts, desc)
		}
		line := fmt.Sprintf("DAMON kdamond %d", i)
		if len(contexts) > 0 {
			line += ": " + strings.Join(contexts, "; ")
		}
		out = append(out, line)
	}
	return out
}

// micros renders a count of microseconds as a duration; as is when it is
// not one.
func micros(s string) string {
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return s
	}
	return (time.Duration(us) * time.Microsecond).String()
}
