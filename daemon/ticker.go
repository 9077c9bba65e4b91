package daemon

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering"
	"github.com/clockd/clockd/vclock"
)

func appendSample(s vclock.Sample) []byte { return vclock.AppendSample(nil, s) }

// runTicker commits a tick every TickInterval while this node leads.
func (d *Daemon) runTicker(ctx context.Context) {
	t := time.NewTicker(d.cfg.TickInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !d.replica.LeaseValid() {
			continue
		}
		err := d.tickOnce(ctx)
		switch {
		case err != nil && !failing:
			d.log.Warn("no tick committed", zap.Error(err))
			failing = true
		case err == nil && failing:
			d.log.Info("ticks committed again")
			failing = false
		}
		d.metrics.tickResult(err)
	}
}

// tickOnce samples every member, intersects and commits one tick.
func (d *Daemon) tickOnce(ctx context.Context) error {
	mctx, cancel := context.WithTimeout(ctx, d.cfg.TickInterval)
	defer cancel()
	cur, _, err := d.replica.Members(mctx)
	if err != nil {
		return err
	}
	ex, voters := d.sampleAll(mctx, cur)
	at := d.clock.Mono()
	prior, hasPrior := d.host.Prior(at)
	tick, agr, err := vclock.BuildTick(vclock.TickInput{Leader: d.id, AtNs: at, Exchanges: ex, Voters: voters,
		DriftPPM: d.cfg.MaxDriftPPM, Prior: prior, HasPrior: hasPrior,
		MaxStepNs: int64(d.cfg.TickInterval) * vclock.RefSlewPPM / 1_000_000})
	if err != nil {
		return err
	}
	if len(agr.Falsetickers) > 0 {
		d.log.Debug("falsetickers outvoted", zap.Any("hosts", agr.Falsetickers))
	}
	start := time.Now()
	if _, err = d.replica.Propose(mctx, ordering.EncodeTick(&tick)); err != nil {
		return err
	}
	d.metrics.commitLatency.Observe(time.Since(start).Seconds())
	return nil
}

// sampleAll asks every member for its time, concurrently, within half a
// tick interval; members that do not answer are left out.
func (d *Daemon) sampleAll(ctx context.Context, m consensus.Membership) ([]vclock.Exchange, int) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.TickInterval/2)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	voters := 0
	var ex []vclock.Exchange
	for _, mem := range m.Members {
		if !mem.Learner {
			voters++
		}
		if mem.ID == d.id {
			s := d.host.Sample()
			ex = append(ex, vclock.Exchange{Host: d.id, SentNs: s.MonoNs, RecvNs: s.MonoNs, Sample: s, Voter: !mem.Learner})
			continue
		}
		wg.Add(1)
		go func(mem consensus.Member) {
			defer wg.Done()
			sent := d.clock.Mono()
			out, err := d.tr.Call(ctx, mem.ID, callSample, nil)
			recv := d.clock.Mono()
			if err != nil {
				d.log.Debug("sample failed", zap.Uint64("peer-id", uint64(mem.ID)), zap.Error(err))
				return
			}
			s, err := vclock.DecodeSample(out)
			if err != nil {
				d.log.Warn("malformed sample", zap.Uint64("peer-id", uint64(mem.ID)), zap.Error(err))
				return
			}
			mu.Lock()
			ex = append(ex, vclock.Exchange{Host: mem.ID, SentNs: sent, RecvNs: recv, Sample: s, Voter: !mem.Learner})
			mu.Unlock()
		}(mem)
	}
	wg.Wait()
	return ex, voters
}
