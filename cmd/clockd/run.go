package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"

	"github.com/clockd/clockd/daemon"
	"github.com/clockd/clockd/internal/sdnotify"
	"github.com/clockd/clockd/internal/yamlerr"
	"github.com/clockd/clockd/vclock"
)

// option binds one configuration key to its YAML name, its flag
// (--key-with-dashes) and its variable (CLOCKD_KEY).
type option struct {
	key, usage string
	ptr        any // into a daemon.Config
}

func options(c *daemon.Config) []option {
	return []option{
		{"id", "this node's id, a positive integer unique in the cluster", &c.ID},
		{"data_dir", "directory for the log, snapshots and the high-water mark", &c.DataDir},
		{"host_name", "this host's name as its traces carry it (default: the system host name)", &c.HostName},
		{"peer_listen", "HOST:PORT for the consensus peers", &c.PeerListen},
		{"peer_advertise", "HOST:PORT other members dial (default peer_listen)", &c.PeerAdvertise},
		{"api_listen", "HOST:PORT for gRPC TimeService and AdminService", &c.APIListen},
		{"ntp_listen", "HOST:PORT for the NTP server; empty disables it", &c.NTPListen},
		{"metrics_listen", "HOST:PORT for Prometheus /metrics; empty disables it", &c.MetricsListen},
		{"pprof", "serve /debug/pprof/ on metrics_listen (off by default)", &c.Pprof},
		{"api_rate_limit", "API calls a second per client (certificate, or address without one)", &c.APIRateLimit},
		{"api_burst", "API calls a client may make at once beyond api_rate_limit", &c.APIBurst},
		{"ntp_rate_limit", "NTP answers a second per source address; beyond, the RATE kiss code", &c.NTPRateLimit},
		{"ntp_burst", "NTP requests a source may send at once", &c.NTPBurst},
		{"shm_path", "shared page for local readers; empty disables it", &c.ShmPath},
		{"members", "bootstrap members, ID=HOST:PORT each, this node included", &c.Members},
		{"join", "join a running cluster through member ID=HOST:PORT instead", &c.Join},
		{"tls_ca", "cluster CA certificate (PEM)", &c.TLSCA},
		{"tls_cert", "this node's certificate (PEM), from clockd certs init", &c.TLSCert},
		{"tls_key", "this node's private key (PEM)", &c.TLSKey},
		{"insecure", "plaintext, no authentication: for trying clockd on one machine only", &c.Insecure},
		{"tick_interval", "how often the leader commits a tick", &c.TickInterval},
		{"wall_error", "bound on this host's wall clock when no upstream NTP answers", &c.WallError},
		{"ntp_servers", "upstream NTP servers to sample", &c.NTPServers},
		{"max_drift_ppm", "bound on any host's monotonic clock error, ppm", &c.MaxDriftPPM},
		{"slew_ppm", "the reference output's maximum slew rate, ppm", &c.SlewPPM},
		{"holdover_after", "anchor age after which the status is HOLDOVER", &c.HoldoverAfter},
		{"unsync_after", "anchor age after which the status is UNSYNCHRONIZED", &c.UnsyncAfter},
		{"hwm_window", "how far ahead of the output the persisted floor is kept", &c.HWMWindow},
		{"tso_window", "how far ahead the timestamp oracle's ceiling is committed", &c.TSOWindow},
		{"vm_max_slew_ppm", "default rate bound of a migrated VM's clock against the reference, ppm", &c.VMMaxSlewPPM},
		{"vm_max_lag", "default bound on a migrated VM's lag, one forward step at resume; 0 never steps", &c.VMMaxLag},
		{"event_retention_bytes", "bytes of the ordered event log this host keeps", &c.EventRetentionBytes},
		{"event_retention_age", "age beyond which event segments are removed; 0 keeps them", &c.EventRetentionAge},
		{"offset_retention_bytes", "bytes of the offset history (clockd offsets export) this host keeps", &c.OffsetRetentionBytes},
		{"offset_retention_age", "age beyond which offset history segments are removed; 0 keeps them", &c.OffsetRetentionAge},
		{"spool_max_bytes", "bytes of events kept on disk while the cluster is out of reach; beyond, events are dropped and counted", &c.SpoolMaxBytes},
		{"event_compression", "how this host's event batches travel and rest: s2 (compressed) or none, while any host runs a clockd without s2", &c.EventCompression},
		{"ingest_files", "trace files to tail into the log, PATH or PATH:FORMAT", &c.IngestFiles},
		{"ingest_socket", "Unix socket where local processes write JSON-lines events; empty disables it", &c.IngestSocket},
	}
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }
func envName(key string) string  { return "CLOCKD_" + strings.ToUpper(key) }

// configFlags makes one flag per option, showing the default.
func configFlags() []cli.Flag {
	def := daemon.Defaults()
	var out []cli.Flag
	for _, o := range options(&def) {
		name, env := flagName(o.key), []string{envName(o.key)}
		switch p := o.ptr.(type) {
		case *string:
			out = append(out, &cli.StringFlag{Name: name, Usage: o.usage, EnvVars: env, Value: *p})
		case *uint64:
			out = append(out, &cli.Uint64Flag{Name: name, Usage: o.usage, EnvVars: env, Value: *p})
		case *int64:
			out = append(out, &cli.Int64Flag{Name: name, Usage: o.usage, EnvVars: env, Value: *p})
		case *bool:
			out = append(out, &cli.BoolFlag{Name: name, Usage: o.usage, EnvVars: env, Value: *p})
		case *time.Duration:
			out = append(out, &cli.DurationFlag{Name: name, Usage: o.usage, EnvVars: env, Value: *p})
		case *[]string:
			out = append(out, &cli.StringSliceFlag{Name: name, Usage: o.usage, EnvVars: env})
		default:
			panic(fmt.Sprintf("option %s has type %T", o.key, p))
		}
	}
	return out
}

// fileConfig is the YAML file: the daemon's keys and the logging keys.
type fileConfig struct {
	daemon.Config `yaml:",inline"`
	LogFormat     string `yaml:"log_format"`
	LogLevel      string `yaml:"log_level"`
}

// loadConfig layers defaults, the YAML file, then flags and variables.
func loadConfig(c *cli.Context) (fileConfig, error) {
	cfg := fileConfig{Config: daemon.Defaults(), LogFormat: c.String("log-format"), LogLevel: c.String("log-level")}
	if path := c.String("config"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // EOF: an empty file
			return cfg, fmt.Errorf("config %s: %w", path, yamlerr.Clean(err))
		}
	}
	if c.IsSet("log-format") {
		cfg.LogFormat = c.String("log-format")
	}
	if c.IsSet("log-level") {
		cfg.LogLevel = c.String("log-level")
	}
	for _, o := range options(&cfg.Config) {
		name := flagName(o.key)
		if !c.IsSet(name) {
			continue
		}
		switch p := o.ptr.(type) {
		case *string:
			*p = c.String(name)
		case *uint64:
			*p = c.Uint64(name)
		case *int64:
			*p = c.Int64(name)
		case *bool:
			*p = c.Bool(name)
		case *time.Duration:
			*p = c.Duration(name)
		case *[]string:
			*p = splitList(c.StringSlice(name))
		}
	}
	return cfg, nil
}

// splitList accepts repeated flags and comma-separated values alike.
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

func runCommand() *cli.Command {
	flags := append([]cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "YAML configuration file; flags and CLOCKD_* variables override it", EnvVars: []string{"CLOCKD_CONFIG"}},
		&cli.StringFlag{Name: "log-format", Value: "auto", Usage: "auto (JSON under systemd, console otherwise), json or console", EnvVars: []string{"CLOCKD_LOG_FORMAT"}},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"CLOCKD_LOG_LEVEL"}},
		// For tests and demos of broken clocks: shift and skew this node's
		// wall clock as clockd sees it.
		&cli.DurationFlag{Name: "test-wall-offset", Hidden: true, EnvVars: []string{"CLOCKD_TEST_WALL_OFFSET"}},
		&cli.Int64Flag{Name: "test-wall-drift-ppm", Hidden: true, EnvVars: []string{"CLOCKD_TEST_WALL_DRIFT_PPM"}},
	}, configFlags()...)
	return &cli.Command{
		Name:  "run",
		Usage: "run a clockd node (what systemd starts)",
		Description: "Every configuration key can be set in the YAML file (--config), as a flag\n" +
			"(--key-with-dashes) or as a variable (CLOCKD_KEY); flags and variables win.\n" +
			"Under systemd it reports READY once it has joined and caught up, and pings\n" +
			"the watchdog while consensus runs and the floor is being persisted.",
		Flags:  flags,
		Action: runNode,
	}
}

func runNode(c *cli.Context) error {
	fc, err := loadConfig(c)
	if err != nil {
		return cli.Exit(err, 2)
	}
	log, err := newLogger(fc.LogFormat, fc.LogLevel)
	if err != nil {
		return cli.Exit(err, 2)
	}
	cfg := fc.Config
	defer log.Sync()
	notify := sdnotify.New(log)
	cfg.Logger = log
	if off, drift := c.Duration("test-wall-offset"), c.Int64("test-wall-drift-ppm"); off != 0 || drift != 0 {
		cfg.Clock = vclock.NewSkewedClock(off, drift)
		log.Warn("wall clock skewed for testing", zap.Duration("offset", off), zap.Int64("drift-ppm", drift))
	}
	cfg.OnReady = func() { notify.Ready() }
	cfg.OnStatus = func(s string) { notify.Status(s) }
	d, err := daemon.New(cfg)
	if err != nil {
		return cli.Exit(err, 2)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go notify.Watchdog(ctx, d.Healthy)
	log.Info("clockd starting", zap.Uint64("id", cfg.ID), zap.String("api-addr", d.APIAddr()),
		zap.String("peer-addr", cfg.PeerListen))
	err = d.Run(ctx)
	notify.Stopping()
	if err != nil {
		return cli.Exit(err, 1)
	}
	return nil
}

// newLogger builds the zap logger: JSON for journald, console for people.
func newLogger(format, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	if format == "auto" {
		format = "console"
		if os.Getenv("INVOCATION_ID") != "" || os.Getenv("JOURNAL_STREAM") != "" {
			format = "json"
		}
	}
	var zc zap.Config
	switch format {
	case "json":
		zc = zap.NewProductionConfig()
	case "console":
		zc = zap.NewDevelopmentConfig()
		zc.DisableStacktrace = true
	default:
		return nil, fmt.Errorf("--log-format %q: want auto, json or console", format)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	return zc.Build()
}
