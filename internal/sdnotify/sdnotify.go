package sdnotify

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// Notifier sends notifications to systemd. It is safe for concurrent use.
type Notifier struct {
	log *zap.Logger
}

// New returns a Notifier that logs to log; nil means no logs.
func New(log *zap.Logger) *Notifier {
	if log == nil {
		log = zap.NewNop()
	}
	return &Notifier{log: log}
}

// Ready reports that start-up is done and the daemon serves.
func (n *Notifier) Ready() { n.send(daemon.SdNotifyReady) }

// Stopping reports that shutdown has begun.
func (n *Notifier) Stopping() { n.send(daemon.SdNotifyStopping) }

// Status sets the line `systemctl status` shows. Line breaks become
// spaces, since each line of a notification is an assignment of its own.
func (n *Notifier) Status(s string) {
	n.send("STATUS=" + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}

func (n *Notifier) send(state string) {
	if err := notify(state); err != nil {
		n.log.Warn("systemd notification failed", zap.String("state", state), zap.Error(err))
	}
}

func notify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}

// Watchdog pings systemd's watchdog at half of WATCHDOG_USEC while
// healthy returns nil (nil healthy counts as healthy), until ctx ends. It
// returns at once when systemd runs no watchdog for this process.
func (n *Notifier) Watchdog(ctx context.Context, healthy func() error) {
	interval, err := daemon.SdWatchdogEnabled(false)
	switch {
	case err != nil:
		n.log.Warn("watchdog disabled: bad environment", zap.Error(err))
		return
	case interval <= 0 || os.Getenv("NOTIFY_SOCKET") == "":
		return
	}
	// WATCHDOG_USEC is at least 1, so every is positive.
	every := interval / 2
	n.log.Info("watchdog enabled", zap.Duration("timeout", interval), zap.Duration("ping-every", every))
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	n.watchdog(ctx, ticker.C, healthy)
}

// watchdog checks health on each tick and pings after each pass.
func (n *Notifier) watchdog(ctx context.Context, ticks <-chan time.Time, healthy func() error) {
	withheld, sendFailed := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		if healthy != nil {
			if err := healthy(); err != nil {
				if !withheld {
					n.log.Error("watchdog pings withheld: health check failed", zap.Error(err))
				}
				withheld = true
				continue
			}
		}
		if withheld {
			n.log.Info("watchdog pings resumed: health check passed")
			withheld = false
		}
		err := notify(daemon.SdNotifyWatchdog)
		if err != nil && !sendFailed {
			n.log.Warn("watchdog ping failed", zap.Error(err))
		}
		sendFailed = err != nil
	}
}
