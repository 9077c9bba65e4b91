package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/ordering"
)

// metrics are the daemon's Prometheus series, on a registry of its own.
type metrics struct {
	reg           *prometheus.Registry
	commitLatency prometheus.Histogram
	leaderChanges prometheus.Counter
	ticks         *prometheus.CounterVec
	offsets       *prometheus.GaugeVec
	falsetickers  *prometheus.GaugeVec

	eventsCommitted      prometheus.Counter
	eventsDropped        prometheus.Counter
	eventsBackfilled     prometheus.Counter
	eventsUnrecoverable  prometheus.Counter
	offsetsBackfilled    prometheus.Counter
	offsetsUnrecoverable prometheus.Counter
	runbookSteps         *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.commitLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "clockd_commit_latency_seconds", Help: "Time from proposing a tick or ceiling to applying it here.",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14)})
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "clockd_leader_changes_total", Help: "Times this node saw the leader change."})
	m.ticks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clockd_ticks_total", Help: "Ticks this node tried to commit as leader, by result."}, []string{"result"})
	m.offsets = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "clockd_host_offset_seconds", Help: "Each host's wall clock minus the reference, at the last tick."},
		[]string{"host"})
	m.falsetickers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "clockd_falseticker", Help: "1 if the last tick named the host a falseticker."}, []string{"host"})
	m.eventsCommitted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "clockd_events_committed_total", Help: "Trace events this host's sources got committed."})
	m.eventsDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "clockd_events_dropped_total", Help: "Trace events dropped because the spool was full."})
	m.eventsBackfilled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "clockd_events_backfilled_total",
		Help: "Trace events this host's store missed while it was behind, fetched from other members."})
	m.eventsUnrecoverable = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "clockd_events_unrecoverable_total",
		Help: "Trace events this host's store missed that no member held any more."})
	m.offsetsBackfilled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "clockd_offset_ticks_backfilled_total",
		Help: "Ticks of offset samples this host's history missed while it was behind, fetched from other members."})
	m.offsetsUnrecoverable = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "clockd_offset_ticks_unrecoverable_total",
		Help: "Ticks of offset samples this host's history missed that no member held any more."})
	m.runbookSteps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clockd_runbook_steps_total",
		Help: "Run-book steps this host ran or abandoned, by how they ended: " +
			"succeeded, failed (a non-zero exit), killed (its timeout or a signal), unstartable, abandoned (unknown after a restart)."},
		[]string{"result"})
	m.reg.MustRegister(m.eventsCommitted, m.eventsDropped, m.eventsBackfilled, m.eventsUnrecoverable,
		m.offsetsBackfilled, m.offsetsUnrecoverable, m.runbookSteps)
	m.reg.MustRegister(m.commitLatency, m.leaderChanges, m.ticks, m.offsets, m.falsetickers,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// gauges registers the series read at scrape time.
func (m *metrics) gauges(d *Daemon) {
	g := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	g("clockd_tick_age_seconds", "Age of the last anchor this host applied (-1 before the first).", func() float64 {
		in := d.host.Info()
		if !in.Anchored {
			return -1
		}
		return in.AnchorAge.Seconds()
	})
	g("clockd_uncertainty_seconds", "Half-width of the reference reading's interval (-1 when unbounded).", func() float64 {
		u := d.host.Now().Uncertainty()
		if u < 0 {
			return -1
		}
		return float64(u) / 1e9
	})
	g("clockd_status", "Reference clock status: 1 initializing, 2 synchronized, 3 holdover, 4 unsynchronized.",
		func() float64 { return float64(d.host.Now().Status) })
	g("clockd_slew_in_progress", "1 while the output is slewing toward the reference.", func() float64 {
		s := d.host.Segment()
		if s.ConvergedAt() > d.clock.Mono() {
			return 1
		}
		return 0
	})
	g("clockd_slew_remaining_seconds", "Output minus target now: positive while ahead.", func() float64 {
		s := d.host.Segment()
		m := d.clock.Mono()
		return float64(s.At(m).Time-(s.TargetNs+(m-s.MonoNs))) / 1e9
	})
	g("clockd_wall_offset_seconds", "This host's wall clock minus the reference output.",
		func() float64 { return float64(d.host.Info().WallOffsetNs) / 1e9 })
	g("clockd_events_spooled", "Trace events waiting in the spool for the cluster.",
		func() float64 { return float64(d.events.spool.Len()) })
	g("clockd_event_log_last_gsn", "The last GSN in this host's event store.",
		func() float64 { return float64(d.events.store.Last()) })
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "clockd_events_refused_total",
		Help: "Trace events from this host's files and ingest socket refused for a control character in host, source or kind."},
		func() float64 { return float64(d.events.refused.Load()) }))
	g("clockd_is_leader", "1 while this node leads.", func() float64 {
		if d.replica.Status().Role == consensus.Leader {
			return 1
		}
		return 0
	})
}

func (m *metrics) tickResult(err error) {
	if err != nil {
		m.ticks.WithLabelValues("failed").Inc()
		return
	}
	m.ticks.WithLabelValues("committed").Inc()
}

func (m *metrics) tickApplied(_ consensus.NodeID, t ordering.Tick) {
	m.offsets.Reset()
	m.falsetickers.Reset()
	for _, a := range t.Anchors {
		h := strconv.FormatUint(uint64(a.Host), 10)
		m.offsets.WithLabelValues(h).Set(float64(a.WallOffsetNs) / 1e9)
		v := 0.0
		if a.Falseticker {
			v = 1
		}
		m.falsetickers.WithLabelValues(h).Set(v)
	}
}

// metricsService serves /metrics, and counts leader changes.
type metricsService struct {
	d    *Daemon
	addr string
	lis  net.Listener
}

func (s *metricsService) Name() string { return "metrics" }

func (s *metricsService) Serve(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.d.metrics.reg, promhttp.HandlerOpts{}))
	if s.d.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.d.watchLeader(ctx)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(s.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// watchLeader counts leader changes as this node sees them.
func (d *Daemon) watchLeader(ctx context.Context) {
	t := time.NewTicker(protocolTick)
	defer t.Stop()
	var last consensus.NodeID
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if l := d.replica.Status().Leader; l != last {
			if last != 0 || l != 0 {
				d.metrics.leaderChanges.Inc()
			}
			last = l
		}
	}
}
