package daemon

import (
	"strings"
	"testing"
)

// TestValidateNamesTheKey: every bad value is refused with the key it
// came from.
func TestValidateNamesTheKey(t *testing.T) {
	good := func() Config {
		c := Defaults()
		c.ID, c.Insecure, c.Members = 1, true, []string{"1=127.0.0.1:7400"}
		return c
	}
	if c := good(); c.Validate() != nil {
		t.Fatalf("defaults: %v", c.Validate())
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.ID = 0 }, "id: must be a positive integer"},
		{func(c *Config) { c.APIRateLimit = 0 }, "api_rate_limit: 0 must be positive"},
		{func(c *Config) { c.APIBurst = -1 }, "api_burst: -1 must be positive"},
		{func(c *Config) { c.NTPRateLimit = 0 }, "ntp_rate_limit: 0 must be positive"},
		{func(c *Config) { c.NTPBurst = -5 }, "ntp_burst: -5 must be positive"},
		{func(c *Config) { c.TickInterval = 0 }, "tick_interval: 0s must be positive"},
		{func(c *Config) { c.APIListen = "nowhere" }, `api_listen: "nowhere" is not HOST:PORT`},
		{func(c *Config) { c.EventCompression = "zstd" }, `event_compression: "zstd": want s2 or none`},
	} {
		c := good()
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
}
