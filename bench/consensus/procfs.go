package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHz is the unit of utime and stime in /proc/<pid>/stat. Linux fixes
// it at 100 for user space whatever the kernel's internal tick rate.
const userHz = 100

// cpuTime is the CPU a process has used, split as the kernel accounts it.
type cpuTime struct {
	User, Sys time.Duration
}

func (c cpuTime) Total() time.Duration { return c.User + c.Sys }

func (c cpuTime) Add(d cpuTime) cpuTime { return cpuTime{c.User + d.User, c.Sys + d.Sys} }

func (c cpuTime) Sub(d cpuTime) cpuTime { return cpuTime{c.User - d.User, c.Sys - d.Sys} }

// procCPU returns the CPU time process pid has used (utime and stime).
func procCPU(pid int) (cpuTime, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTime{}, err
	}
	utime, stime, err := parseStatCPU(string(b))
	if err != nil {
		return cpuTime{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	tick := time.Second / userHz
	return cpuTime{User: time.Duration(utime) * tick, Sys: time.Duration(stime) * tick}, nil
}

// parseStatCPU returns utime and stime, in clock ticks, from the text of
// /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// itself hold spaces and parentheses, so fields are counted from the last
// ')'.
func parseStatCPU(stat string) (utime, stime uint64, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("no ')' in stat line")
	}
	// After ')' come fields 3 (state) onwards; utime and stime are fields
	// 14 and 15.
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("stat line has %d fields after the name, want at least 13", len(f))
	}
	if utime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("utime: %w", err)
	}
	if stime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stime: %w", err)
	}
	return utime, stime, nil
}

// memKB is a process's memory as /proc/<pid>/status reports it, in KiB.
type memKB struct {
	HWM uint64 // VmHWM: peak resident set
	RSS uint64 // VmRSS: resident set now
}

// procMem reads VmHWM and VmRSS of process pid.
func procMem(pid int) (memKB, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memKB{}, err
	}
	m, err := parseStatusMem(string(b))
	if err != nil {
		return memKB{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return m, nil
}

// parseStatusMem extracts VmHWM and VmRSS from the text of
// /proc/<pid>/status, where they read "VmHWM:\t   12345 kB".
func parseStatusMem(status string) (memKB, error) {
	var m memKB
	found := 0
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		var dst *uint64
		switch {
		case !ok:
			continue
		case key == "VmHWM":
			dst = &m.HWM
		case key == "VmRSS":
			dst = &m.RSS
		default:
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("%s: unexpected value %q", key, val)
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("%s: %w", key, err)
		}
		*dst = v
		found++
	}
	if found != 2 {
		return m, fmt.Errorf("VmHWM or VmRSS missing")
	}
	return m, nil
}
