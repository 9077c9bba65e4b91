package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/vmclock"
)

// TestGenerate renders both figures and checks that they are PNGs of the
// intended size and that the series they plot show a correct migration.
func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	paths, ms, err := generate(dir, defaults)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"vm-migration-behind.png", "vm-migration-ahead.png"}
	if len(paths) != len(want) || len(ms) != len(want) {
		t.Fatalf("wrote %v", paths)
	}
	for i, name := range want {
		t.Run(name, func(t *testing.T) {
			if paths[i] != filepath.Join(dir, name) {
				t.Fatalf("wrote %s, want %s", paths[i], name)
			}
			f, err := os.Open(paths[i])
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatalf("decode %s: %v", name, err)
			}
			if b := img.Bounds(); b.Dx() != widthPx || b.Dy() != heightPx {
				t.Fatalf("%s is %v, want %dx%d", name, b, widthPx, heightPx)
			}
			checkMigration(t, ms[i])
			segs := rateSegments(ms[i])
			if len(segs) != 2 {
				t.Fatalf("%d rate segments, want one per host", len(segs))
			}
			rho := float64(ms[i].sc.policy.MaxSlewPPM)
			for _, seg := range segs {
				for _, xy := range seg {
					if xy.Y < -rho-1 || xy.Y > rho+1 {
						t.Fatalf("rate %.1f ppm at %.3f s, beyond ±%.0f ppm", xy.Y, xy.X, rho)
					}
				}
			}
		})
	}
	if ms[0].sc.offsetNs >= 0 || ms[1].sc.offsetNs <= 0 {
		t.Fatalf("offsets %d and %d: want the behind figure first, then the ahead one",
			ms[0].sc.offsetNs, ms[1].sc.offsetNs)
	}
}

// TestSimulate checks the model series over scenarios beyond the
// figures' defaults, including a floor far enough behind to step.
func TestSimulate(t *testing.T) {
	const msNs = int64(time.Millisecond)
	for _, c := range []struct {
		name                 string
		offsetNs, downtimeNs int64
		policy               ordering.VMPolicy
		stepped              bool
	}{
		{"behind, figure policy", -300 * msNs, 100 * msNs, ordering.VMPolicy{MaxSlewPPM: 5000, MaxLagNs: 1e9}, false},
		{"ahead, figure policy", 300 * msNs, 100 * msNs, ordering.VMPolicy{MaxSlewPPM: 5000, MaxLagNs: 1e9}, false},
		{"ahead by less than the downtime", 20 * msNs, 250 * msNs, vmclock.DefaultPolicy, false},
		{"behind, default policy", -50 * msNs, 30 * msNs, vmclock.DefaultPolicy, false},
		{"behind past max lag steps", -1500 * msNs, 200 * msNs, ordering.VMPolicy{MaxSlewPPM: 5000, MaxLagNs: 1e9}, true},
		{"already on the reference", 0, 100 * msNs, vmclock.DefaultPolicy, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := simulate(scenario{name: c.name, offsetNs: c.offsetNs, downtimeNs: c.downtimeNs, policy: c.policy,
				beforeNs: 5e9, afterNs: 5e9, stepNs: 250 * msNs})
			if err != nil {
				t.Fatal(err)
			}
			checkMigration(t, m)
			start := m.samples[m.firstOn(onDestination)]
			if stepped := start.vm.Time > m.floorNs; stepped != c.stepped {
				t.Fatalf("VM resumed at %d, floor %d: stepped %v, want %v", start.vm.Time, m.floorNs, stepped, c.stepped)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*config)
		ok   bool
	}{
		{"defaults", func(*config) {}, true},
		{"no offset", func(c *config) { c.offset = 0 }, false},
		{"no downtime", func(c *config) { c.downtime = 0 }, false},
		{"negative margin", func(c *config) { c.before = -time.Second }, false},
		{"zero slew", func(c *config) { c.slewPPM = 0 }, false},
		{"slew of 100%", func(c *config) { c.slewPPM = 1_000_000 }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := defaults
			c.edit(&cfg)
			if err := cfg.validate(); (err == nil) != c.ok {
				t.Fatalf("validate: %v, want ok %v", err, c.ok)
			}
		})
	}
}

// checkMigration asserts what the figure claims: the VM follows the
// source's reference, stands at its floor while paused, resumes at or
// above the floor, never goes back, stays within ρ_vm of the reference's
// rate, never overshoots the reference and ends converged on it.
func checkMigration(t *testing.T, m *migration) {
	t.Helper()
	rho := m.sc.policy.MaxSlewPPM
	startIdx := m.firstOn(onDestination)
	if startIdx < 0 {
		t.Fatal("no sample on the destination")
	}
	start := m.samples[startIdx]
	for i, s := range m.samples {
		if i > 0 && s.vm.Time < m.samples[i-1].vm.Time {
			t.Fatalf("VM clock went back at t=%d ns: %d after %d", s.tNs, s.vm.Time, m.samples[i-1].vm.Time)
		}
		switch s.phase {
		case onSource:
			if s.offsetNs() != 0 {
				t.Fatalf("on the source at t=%d ns: offset %d, want 0", s.tNs, s.offsetNs())
			}
		case frozen:
			if s.vm.Time != m.floorNs || s.vm.State != ordering.VMFrozen {
				t.Fatalf("paused at t=%d ns: %+v, want the floor %d, frozen", s.tNs, s.vm, m.floorNs)
			}
		case onDestination:
			checkOnDestination(t, m, start, s, rho)
		}
	}
	if start.vm.Time < m.floorNs {
		t.Fatalf("resumed at %d, below the floor %d", start.vm.Time, m.floorNs)
	}
	if start.vm.Time == m.floorNs && start.offsetNs() != m.sc.offsetNs {
		t.Fatalf("resumed %d ns from the reference, want %d", start.offsetNs(), m.sc.offsetNs)
	}
	last := m.samples[len(m.samples)-1]
	if !last.vm.Converged || last.offsetNs() != 0 {
		t.Fatalf("last sample %+v: not converged", last.vm)
	}
	// Converging takes |offset|/ρ_vm of reference time, rounded up to 1 ns.
	wantNs := (abs(start.offsetNs())*1_000_000 + rho - 1) / rho
	if got := m.convergedNs - m.resumeNs; got != wantNs {
		t.Fatalf("converged %v after resume, want %v", time.Duration(got), time.Duration(wantNs))
	}
}

func checkOnDestination(t *testing.T, m *migration, start, s sample, rho int64) {
	t.Helper()
	off0, off := start.offsetNs(), s.offsetNs()
	if s.vm.LagNs != -off {
		t.Fatalf("t=%d ns: LagNs %d, offset %d", s.tNs, s.vm.LagNs, off)
	}
	if off0 < 0 && off > 0 || off0 > 0 && off < 0 {
		t.Fatalf("t=%d ns: offset %d crossed the reference from %d", s.tNs, off, off0)
	}
	elapsed := s.ownerRef.Time - start.ownerRef.Time
	if d := abs(off - off0); d > elapsed*rho/1_000_000+1 {
		t.Fatalf("t=%d ns: offset moved %d ns in %d ns, more than %d ppm", s.tNs, d, elapsed, rho)
	}
	if s.vm.Converged != (s.tNs >= m.convergedNs) {
		t.Fatalf("t=%d ns: converged %v, convergence at %d", s.tNs, s.vm.Converged, m.convergedNs)
	}
	if s.vm.Converged && off != 0 {
		t.Fatalf("t=%d ns: converged %d ns off the reference", s.tNs, off)
	}
}
