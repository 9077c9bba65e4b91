package main

import (
	"context"
	"fmt"
	"time"

	"github.com/clockd/clockd/vclock"
	"github.com/clockd/clockd/vclock/shm"
)

// Read functions of the shm row.
const (
	readShm     = "shm.Reader.Now"
	readTimeNow = "time.Now"
	// readMono is the CLOCK_MONOTONIC read that shm.Reader.Now makes,
	// timed alone to show how much of its cost it is.
	readMono = "vclock.MonoNow"
)

// shmBatch is how many calls run between two looks at the clock.
const shmBatch = 1024

// Sinks keep the compiler from dropping the timed calls.
var (
	sinkReading vclock.Reading
	sinkTime    time.Time
	sinkMono    int64
)

// shmSlice is how long one function runs before the next takes over.
// Short slices put all of them under the same background load.
const shmSlice = 50 * time.Millisecond

// shmRow times a read of the leader's shared page against time.Now() and
// the CLOCK_MONOTONIC read inside it. After a warm-up of each, every round
// runs the three in turn, in slices of shmSlice, until each has run for
// Duration.
func (b *bench) shmRow(ctx context.Context) (ShmRow, error) {
	r, err := shm.Open(b.leader.ShmPath)
	if err != nil {
		return ShmRow{}, err
	}
	defer r.Close()
	rd, err := r.Now()
	if err != nil {
		return ShmRow{}, err
	}
	if rd.Status != vclock.StatusSynchronized {
		return ShmRow{}, fmt.Errorf("%s reads %v, want SYNCHRONIZED", b.leader.ShmPath, rd.Status)
	}
	fns := []func(){
		func() { sinkTime = time.Now() },
		func() { sinkReading, _ = r.Now() },
		func() { sinkMono = vclock.MonoNow() },
	}
	names := []string{readTimeNow, readShm, readMono}
	for _, f := range fns {
		timeCalls(f, b.cfg.Warmup)
	}
	runs := make([][]float64, len(fns))
	for round := range b.cfg.Repeat {
		calls, spent := make([]int, len(fns)), make([]time.Duration, len(fns))
		slice := min(shmSlice, b.cfg.Duration)
		for spent[len(fns)-1] < b.cfg.Duration {
			if err := ctx.Err(); err != nil {
				return ShmRow{}, err
			}
			for j, f := range fns {
				n, d := timeCalls(f, slice)
				calls[j] += n
				spent[j] += d
			}
		}
		for j := range fns {
			ns := float64(spent[j].Nanoseconds()) / float64(calls[j])
			runs[j] = append(runs[j], ns)
			b.progress("%s (round %d of %d): %.1f ns per call", names[j], round+1, b.cfg.Repeat, ns)
		}
	}
	if _, err := r.Now(); err != nil {
		return ShmRow{}, err
	}
	return newShmRow(b.leader.ShmPath, runs[1], runs[0], runs[2]), nil
}

// timeCalls calls f in batches of shmBatch for at least d and returns
// the number of calls and the time they took.
func timeCalls(f func(), d time.Duration) (int, time.Duration) {
	n := 0
	begin := time.Now()
	for {
		for range shmBatch {
			f()
		}
		n += shmBatch
		if el := time.Since(begin); el >= d {
			return n, el
		}
	}
}
