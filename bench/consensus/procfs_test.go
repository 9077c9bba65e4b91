package main

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name, stat   string
		utime, stime uint64
		wantErr      bool
	}{
		{name: "plain",
			stat:  "11480 (cat) R 11414 11414 4585 0 -1 4194304 97 0 0 0 12 34 0 0 20 0 1 0 307597 3133440 358",
			utime: 12, stime: 34},
		{name: "name with spaces and parens",
			stat:  "7 (a (b) c) S 1 1 1 0 -1 0 0 0 0 0 500 7 0 0 20 0 1 0 1 1 1",
			utime: 500, stime: 7},
		{name: "no name", stat: "7 S 1 1", wantErr: true},
		{name: "truncated", stat: "7 (x) S 1 1 1 0", wantErr: true},
		{name: "not a number", stat: "7 (x) S 1 1 1 0 -1 0 0 0 0 0 u 7 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, s, err := parseStatCPU(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %t", err, tt.wantErr)
			}
			if !tt.wantErr && (u != tt.utime || s != tt.stime) {
				t.Fatalf("got utime %d stime %d, want %d %d", u, s, tt.utime, tt.stime)
			}
		})
	}
}

func TestParseStatusMem(t *testing.T) {
	tests := []struct {
		name, status string
		want         memKB
		wantErr      bool
	}{
		{name: "both", status: "Name:\tx\nVmPeak:\t  9 kB\nVmHWM:\t    1956 kB\nVmRSS:\t    1900 kB\nThreads:\t1\n",
			want: memKB{HWM: 1956, RSS: 1900}},
		{name: "missing", status: "Name:\tx\nVmRSS:\t 1 kB\n", wantErr: true},
		{name: "bad unit", status: "VmHWM:\t 1 MB\nVmRSS:\t 1 kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatusMem(tt.status)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %t", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestProcSelf reads this process's own counters.
func TestProcSelf(t *testing.T) {
	m, err := procMem(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS == 0 || m.HWM < m.RSS {
		t.Fatalf("implausible memory %+v", m)
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}
