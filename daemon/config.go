package daemon

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/consensus"
	"github.com/clockd/clockd/vclock"
)

// Config is everything `clockd run` reads from its YAML file, flags and
// CLOCKD_* variables. The yaml names are the keys of
// deploy/systemd/clockd.yaml.
type Config struct {
	ID      uint64 `yaml:"id"`
	DataDir string `yaml:"data_dir"`
	// HostName is this host's name as its traces carry it; it labels the
	// host in the offset history. Default: the system host name.
	HostName string `yaml:"host_name"`

	PeerListen string `yaml:"peer_listen"`
	// PeerAdvertise is the address other members dial; default
	// peer_listen (which must then name a host, not 0.0.0.0, to join).
	PeerAdvertise string `yaml:"peer_advertise"`
	APIListen     string `yaml:"api_listen"`
	NTPListen     string `yaml:"ntp_listen"`     // empty: no NTP server
	MetricsListen string `yaml:"metrics_listen"` // empty: no /metrics
	ShmPath       string `yaml:"shm_path"`       // empty: no shared page
	// Pprof serves the Go profiler's /debug/pprof/ next to /metrics.
	Pprof bool `yaml:"pprof"`
	// Per-client rate limits: API calls a second and their burst, per
	// client certificate (or address, without one); NTP answers a second
	// and their burst, per source address.
	APIRateLimit int64 `yaml:"api_rate_limit"`
	APIBurst     int64 `yaml:"api_burst"`
	NTPRateLimit int64 `yaml:"ntp_rate_limit"`
	NTPBurst     int64 `yaml:"ntp_burst"`

	// Members bootstraps a cluster: "ID=HOST:PORT" for every member,
	// this one included. Join instead joins a running cluster through any
	// member: "ID=HOST:PORT", or "HOST:PORT" when Insecure.
	Members []string `yaml:"members"`
	Join    string   `yaml:"join"`

	TLSCA    string `yaml:"tls_ca"`
	TLSCert  string `yaml:"tls_cert"`
	TLSKey   string `yaml:"tls_key"`
	Insecure bool   `yaml:"insecure"`

	TickInterval  time.Duration `yaml:"tick_interval"`
	WallError     time.Duration `yaml:"wall_error"`
	NTPServers    []string      `yaml:"ntp_servers"`
	MaxDriftPPM   int64         `yaml:"max_drift_ppm"`
	SlewPPM       int64         `yaml:"slew_ppm"`
	HoldoverAfter time.Duration `yaml:"holdover_after"`
	UnsyncAfter   time.Duration `yaml:"unsync_after"`
	HWMWindow     time.Duration `yaml:"hwm_window"`
	TSOWindow     time.Duration `yaml:"tso_window"`
	// The cluster's default VM policy (package vmclock), for resumes that
	// name none.
	VMMaxSlewPPM int64         `yaml:"vm_max_slew_ppm"`
	VMMaxLag     time.Duration `yaml:"vm_max_lag"`

	// The ordered event log: how much of it this host keeps, and how much
	// may wait on disk while the cluster is out of reach.
	EventRetentionBytes int64         `yaml:"event_retention_bytes"`
	EventRetentionAge   time.Duration `yaml:"event_retention_age"` // 0: no age limit
	SpoolMaxBytes       int64         `yaml:"spool_max_bytes"`
	// EventCompression is how this host's event batches travel in the log
	// and rest in every host's event store: "s2" (compressed, package
	// github.com/klauspost/compress/s2) or "none". A clockd from before
	// s2 batches cannot apply them: while the cluster runs one, every host
	// must set "none".
	EventCompression string `yaml:"event_compression"`
	// The offset history (package offsetlog): how much of it this host
	// keeps. Each host and tick takes about 100 bytes: 1 GiB is about 40
	// days of 3 hosts at one tick a second.
	OffsetRetentionBytes int64         `yaml:"offset_retention_bytes"`
	OffsetRetentionAge   time.Duration `yaml:"offset_retention_age"` // 0: no age limit
	// IngestFiles are trace files this host tails into the log, each
	// "PATH" (format detected) or "PATH:FORMAT" (jsonl, journal, syslog,
	// ftrace, otlp, chrome). IngestSocket is a Unix socket where local
	// processes write JSON lines; empty disables it.
	IngestFiles  []string `yaml:"ingest_files"`
	IngestSocket string   `yaml:"ingest_socket"`

	// Not configuration: set by the program.
	Clock  vclock.Clock `yaml:"-"` // default vclock.SystemClock
	Logger *zap.Logger  `yaml:"-"`
	// OnReady is called once, when the node has joined and caught up
	// (sd_notify READY=1). OnStatus receives progress lines.
	OnReady  func()       `yaml:"-"`
	OnStatus func(string) `yaml:"-"`
}

// Defaults returns the documented defaults.
func Defaults() Config {
	return Config{
		DataDir:       "/var/lib/clockd",
		PeerListen:    "0.0.0.0:7400",
		APIListen:     "0.0.0.0:7401",
		NTPListen:     "0.0.0.0:123",
		MetricsListen: "127.0.0.1:7402",
		ShmPath:       "/run/clockd/clock",
		APIRateLimit:  2000,
		APIBurst:      200,
		NTPRateLimit:  8,
		NTPBurst:      16,
		TickInterval:  time.Second,
		WallError:     50 * time.Millisecond,
		MaxDriftPPM:   100,
		SlewPPM:       500,
		HoldoverAfter: 3 * time.Second,
		UnsyncAfter:   15 * time.Minute,
		HWMWindow:     time.Second,
		TSOWindow:     3 * time.Second,
		VMMaxSlewPPM:  500,
		VMMaxLag:      time.Second,

		EventRetentionBytes: 4 << 30,
		SpoolMaxBytes:       1 << 30,
		EventCompression:    "s2",
		IngestSocket:        "/run/clockd/ingest.sock",

		OffsetRetentionBytes: 1 << 30,
	}
}

// Member is a parsed "ID=HOST:PORT".
type Member struct {
	ID   consensus.NodeID
	Addr string
}

// PeerName is the DNS name a member's certificate carries (clockd certs).
func PeerName(id consensus.NodeID) string { return fmt.Sprintf("node-%d", id) }

// ParseMember parses "ID=HOST:PORT".
func ParseMember(s string) (Member, error) {
	idText, addr, ok := strings.Cut(s, "=")
	if !ok {
		return Member{}, fmt.Errorf("member %q: want ID=HOST:PORT", s)
	}
	id, err := strconv.ParseUint(idText, 10, 64)
	if err != nil || id == 0 {
		return Member{}, fmt.Errorf("member %q: id %q is not a positive integer", s, idText)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return Member{}, fmt.Errorf("member %q: address %q is not HOST:PORT", s, addr)
	}
	return Member{ID: consensus.NodeID(id), Addr: addr}, nil
}

// Validate checks the configuration and names the first bad key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if c.ID == 0 {
		bad("id", "must be a positive integer")
	}
	if c.DataDir == "" {
		bad("data_dir", "is required")
	}
	for key, addr := range map[string]string{"peer_listen": c.PeerListen, "api_listen": c.APIListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "%q is not HOST:PORT", addr)
		}
	}
	for key, addr := range map[string]string{"ntp_listen": c.NTPListen, "metrics_listen": c.MetricsListen} {
		if addr != "" {
			if _, _, err := net.SplitHostPort(addr); err != nil {
				bad(key, "%q is not HOST:PORT (empty disables it)", addr)
			}
		}
	}
	switch {
	case len(c.Members) == 0 && c.Join == "":
		bad("members", "give the bootstrap members, or join")
	case len(c.Members) > 0 && c.Join != "":
		bad("join", "exclusive with members")
	}
	seen := map[consensus.NodeID]bool{}
	for _, s := range c.Members {
		m, err := ParseMember(s)
		if err != nil {
			bad("members", "%v", err)
			continue
		}
		if seen[m.ID] {
			bad("members", "id %d appears twice", m.ID)
		}
		seen[m.ID] = true
	}
	if len(c.Members) > 0 && !seen[consensus.NodeID(c.ID)] {
		bad("members", "this node's id %d is not among them", c.ID)
	}
	if c.Join != "" {
		if _, err := c.joinTarget(); err != nil {
			bad("join", "%v", err)
		}
	}
	tlsSet := c.TLSCA != "" || c.TLSCert != "" || c.TLSKey != ""
	switch {
	case c.Insecure && tlsSet:
		bad("insecure", "exclusive with tls_ca, tls_cert and tls_key")
	case !c.Insecure && (c.TLSCA == "" || c.TLSCert == "" || c.TLSKey == ""):
		bad("tls_ca", "tls_ca, tls_cert and tls_key are required unless insecure (see clockd certs init)")
	}
	positive := map[string]time.Duration{"tick_interval": c.TickInterval, "holdover_after": c.HoldoverAfter,
		"unsync_after": c.UnsyncAfter, "hwm_window": c.HWMWindow, "tso_window": c.TSOWindow}
	for key, d := range positive {
		if d <= 0 {
			bad(key, "%v must be positive", d)
		}
	}
	for key, v := range map[string]int64{"api_rate_limit": c.APIRateLimit, "api_burst": c.APIBurst,
		"ntp_rate_limit": c.NTPRateLimit, "ntp_burst": c.NTPBurst} {
		if v <= 0 {
			bad(key, "%d must be positive", v)
		}
	}
	if c.TickInterval > 0 && c.TickInterval < 10*time.Millisecond {
		bad("tick_interval", "%v is below 10ms", c.TickInterval)
	}
	if c.Join != "" && c.PeerAdvertise == "" {
		if host, _, err := net.SplitHostPort(c.PeerListen); err == nil {
			if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
				bad("peer_advertise", "required to join when peer_listen %q names no host", c.PeerListen)
			}
		}
	}
	if c.PeerAdvertise != "" {
		if _, _, err := net.SplitHostPort(c.PeerAdvertise); err != nil {
			bad("peer_advertise", "%q is not HOST:PORT", c.PeerAdvertise)
		}
	}
	if c.WallError < 0 {
		bad("wall_error", "%v is negative", c.WallError)
	}
	if c.UnsyncAfter < c.HoldoverAfter {
		bad("unsync_after", "%v is shorter than holdover_after %v", c.UnsyncAfter, c.HoldoverAfter)
	}
	if c.MaxDriftPPM <= 0 || c.MaxDriftPPM >= 100_000 {
		bad("max_drift_ppm", "%d: want 1..99999", c.MaxDriftPPM)
	}
	if c.SlewPPM <= 0 || c.SlewPPM >= 100_000 {
		bad("slew_ppm", "%d: want 1..99999", c.SlewPPM)
	}
	if c.VMMaxSlewPPM <= 0 || c.VMMaxSlewPPM >= 1_000_000 {
		bad("vm_max_slew_ppm", "%d: want 1..999999", c.VMMaxSlewPPM)
	}
	if c.VMMaxLag < 0 {
		bad("vm_max_lag", "%v is negative (0 disables the step)", c.VMMaxLag)
	}
	if c.EventRetentionBytes <= 0 {
		bad("event_retention_bytes", "%d must be positive", c.EventRetentionBytes)
	}
	if c.EventRetentionAge < 0 {
		bad("event_retention_age", "%v is negative (0 keeps events regardless of age)", c.EventRetentionAge)
	}
	if c.SpoolMaxBytes <= 0 {
		bad("spool_max_bytes", "%d must be positive", c.SpoolMaxBytes)
	}
	if c.EventCompression != "s2" && c.EventCompression != "none" {
		bad("event_compression", "%q: want s2 or none", c.EventCompression)
	}
	if c.OffsetRetentionBytes <= 0 {
		bad("offset_retention_bytes", "%d must be positive", c.OffsetRetentionBytes)
	}
	if c.OffsetRetentionAge < 0 {
		bad("offset_retention_age", "%v is negative (0 keeps offsets regardless of age)", c.OffsetRetentionAge)
	}
	for _, s := range c.NTPServers {
		if s == "" {
			bad("ntp_servers", "empty server name")
		}
	}
	return errors.Join(errs...)
}

// joinTarget parses Join: "ID=HOST:PORT", or a bare address when insecure.
func (c *Config) joinTarget() (Member, error) {
	if strings.Contains(c.Join, "=") {
		return ParseMember(c.Join)
	}
	if _, _, err := net.SplitHostPort(c.Join); err != nil {
		return Member{}, fmt.Errorf("%q is neither ID=HOST:PORT nor HOST:PORT", c.Join)
	}
	if !c.Insecure {
		return Member{}, fmt.Errorf("%q: with TLS, name the member as ID=HOST:PORT so its certificate can be checked", c.Join)
	}
	return Member{Addr: c.Join}, nil
}
