package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/vmclock"
)

// defaults are the flags' defaults. ρ_vm is ten times the cluster's so
// that a 300 ms offset converges in a minute.
var defaults = config{slewPPM: 5000, offset: 300 * time.Millisecond, downtime: 100 * time.Millisecond,
	before: 30 * time.Second, after: 20 * time.Second}

type config struct {
	slewPPM                         int64
	offset, downtime, before, after time.Duration
}

func (c config) validate() error {
	switch {
	case c.offset <= 0:
		return fmt.Errorf("--offset %v: want > 0", c.offset)
	case c.downtime <= 0:
		return fmt.Errorf("--downtime %v: want > 0", c.downtime)
	case c.before < 0 || c.after < 0:
		return fmt.Errorf("--before and --after: want >= 0")
	}
	if err := vmclock.Validate(c.policy()); err != nil {
		return fmt.Errorf("--slew-ppm: %w", err)
	}
	return nil
}

// policy is the cluster default with ρ_vm replaced.
func (c config) policy() ordering.VMPolicy {
	p := vmclock.DefaultPolicy
	p.MaxSlewPPM = c.slewPPM
	return p
}

// generate simulates both migrations and writes their figures into dir.
// It returns the files written and the migrations they show.
func generate(dir string, cfg config) ([]string, []*migration, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", dir, err)
	}
	pol := cfg.policy()
	var paths []string
	var ms []*migration
	for _, sign := range []int64{-1, 1} {
		sc := scenario{name: "ahead", offsetNs: sign * int64(cfg.offset), downtimeNs: int64(cfg.downtime), policy: pol,
			beforeNs: int64(cfg.before), afterNs: int64(cfg.after), stepNs: int64(50 * time.Millisecond)}
		if sign < 0 {
			sc.name = "behind"
		}
		m, err := simulate(sc)
		if err != nil {
			return nil, nil, err
		}
		path := filepath.Join(dir, "vm-migration-"+sc.name+".png")
		if err := render(m, path); err != nil {
			return nil, nil, err
		}
		paths, ms = append(paths, path), append(ms, m)
	}
	return paths, ms, nil
}
