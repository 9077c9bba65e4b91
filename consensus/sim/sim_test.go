package sim

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
)

var (
	seedFlag  = flag.Uint64("seed", 0, "replay this one seed")
	seedsFlag = flag.Int("seeds", 2000, "number of seeds to run")
	traceFlag = flag.Uint64("trace-slot", 0, "with -seed: log events, and every message touching this slot")
)

// TestSimulation runs many seeded clusters under faults and checks every
// safety invariant at every step and liveness once the faults heal.
func TestSimulation(t *testing.T) {
	if *seedFlag != 0 {
		o := DefaultOptions(*seedFlag)
		if *traceFlag != 0 {
			o.TraceSlot, o.Trace = *traceFlag, t.Logf
		}
		res, err := Run(o)
		if err != nil {
			t.Fatalf("%v\nreplay: go test ./consensus/sim -run TestSimulation -seed %d", err, *seedFlag)
		}
		t.Logf("seed %d: %+v", *seedFlag, res)
		return
	}
	// Seeds are independent: spread them over the cores.
	shards := uint64(runtime.GOMAXPROCS(0))
	for shard := range shards {
		t.Run(fmt.Sprintf("shard-%d", shard), func(t *testing.T) {
			t.Parallel()
			for seed := 1 + shard; seed <= uint64(*seedsFlag); seed += shards {
				if _, err := Run(DefaultOptions(seed)); err != nil {
					t.Fatalf("%v\nreplay: go test ./consensus/sim -run TestSimulation -seed %d", err, seed)
				}
			}
		})
	}
}

// TestBrokenVariantsAreCaught proves the simulator has teeth: each
// deliberately broken protocol must break an invariant within the seeds CI
// runs.
func TestBrokenVariantsAreCaught(t *testing.T) {
	variants := []struct {
		name   string
		break_ func(*Options)
	}{
		{"reply-before-persist", func(o *Options) { o.ReplyBeforePersist = true }},
		{"persisted-before-durable", func(o *Options) { o.AsyncWrites, o.EarlyPersisted = true, true }},
		{"ignore-promised-values", func(o *Options) { o.Knobs.IgnorePromisedValues = true }},
		{"half-quorum", func(o *Options) { o.Knobs.HalfQuorum = true }},
		// These two need a fault to meet the bug at the right moment: the
		// leader cut off just as its lease runs out, a change activating
		// while leaders change. More of that fault, same invariants.
		{"lease-ignores-drift", func(o *Options) {
			o.Knobs.LeaseIgnoresDrift = true
			o.PartitionRate = 0.05
		}},
		{"single-config-phase1", func(o *Options) {
			o.Knobs.SingleConfigPhase1 = true
			o.MemberRate, o.PartitionRate = 0.1, 0.05
			o.AsyncWrites = false
		}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for seed := uint64(1); seed <= uint64(*seedsFlag); seed++ {
				o := DefaultOptions(seed)
				v.break_(&o)
				if _, err := Run(o); err != nil {
					t.Logf("caught after %d seeds: %v", seed, err)
					return
				}
			}
			t.Fatalf("%s passed %d seeds: the simulator cannot see this bug", v.name, *seedsFlag)
		})
	}
}
