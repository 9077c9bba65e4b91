package timelinetest

import (
	"fmt"
	"math/rand"

	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/timeline"
)

// DriftClock is a host clock whose offset from the reference drifts
// linearly over a scenario: StartOffsetNs at its start, EndOffsetNs at its
// end (host clock minus reference, ns).
type DriftClock struct {
	Host                       string
	StartOffsetNs, EndOffsetNs int64
}

// Scenario is a ground truth and what the hosts recorded of it.
type Scenario struct {
	// Truth holds the events in true order; their LocalNs is the true
	// (reference) time and their Name "e<index in Truth>".
	Truth []ingest.Event
	// PerHost holds each host's events as it recorded them: in order, with
	// LocalNs on its own clock.
	PerHost map[string][]ingest.Event
	// Samples are every host's offsets, one per second of reference time
	// from a second before the first event to a second after the last.
	Samples []timeline.Sample
}

// Drift builds a scenario of n events, StartNs on, at true times at least
// minGapNs apart (plus up to minGapNs more at random), each on a random
// host of clocks. Everything is drawn from seed.
func Drift(seed int64, clocks []DriftClock, startNs int64, n int, minGapNs int64) Scenario {
	rng := rand.New(rand.NewSource(seed))
	sc := Scenario{PerHost: make(map[string][]ingest.Event)}
	t := startNs
	for i := range n {
		t += minGapNs + rng.Int63n(minGapNs+1)
		sc.Truth = append(sc.Truth, ingest.Event{
			Source: "app", LocalNs: t, Kind: ingest.KindLog, Name: fmt.Sprint("e", i),
			Host: clocks[rng.Intn(len(clocks))].Host,
		})
	}
	endNs := t
	offset := func(c DriftClock, refNs int64) int64 {
		f := float64(refNs-startNs) / float64(endNs-startNs)
		return c.StartOffsetNs + int64(f*float64(c.EndOffsetNs-c.StartOffsetNs))
	}
	byHost := make(map[string]DriftClock)
	for _, c := range clocks {
		byHost[c.Host] = c
	}
	seqs := make(map[string]uint64)
	for _, e := range sc.Truth {
		seqs[e.Host]++
		local := e
		local.LocalNs = e.LocalNs + offset(byHost[e.Host], e.LocalNs)
		local.SourceSeq = seqs[e.Host]
		sc.PerHost[e.Host] = append(sc.PerHost[e.Host], local)
	}
	for _, c := range clocks {
		for ref := startNs - 1e9; ref <= endNs+1e9; ref += 1e9 {
			sc.Samples = append(sc.Samples, timeline.Sample{Host: c.Host, RefNs: ref, OffsetNs: offset(c, ref), ErrNs: 50_000})
		}
	}
	return sc
}
