package main

import (
	"github.com/clockd/clockd/bench/internal/benchmain"
	"os"
	"runtime"
	"strings"
)

// Machine describes where the numbers come from.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	OS       string `json:"os"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
	Clockd   string `json:"clockd_revision"`
	// LoadAvgStart and LoadAvgEnd are the 1-minute load averages when the
	// run began and ended: other work on the machine shows up here.
	LoadAvgStart string `json:"load_avg_start"`
	LoadAvgEnd   string `json:"load_avg_end"`
}

func machineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(),
		Clockd: benchmain.Revision(buildRevision), LoadAvgStart: loadAvg(), Kernel: benchmain.Kernel(),
		CPUModel: benchmain.CPUModel()}
	return m
}

// loadAvg is the 1-minute load average from /proc/loadavg, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// buildRevision is the clockd commit under test; the Makefile sets it with
// -ldflags "-X main.buildRevision=...".
var buildRevision string
