package sdnotify

import (
	"context"

	"github.com/coreos/go-systemd/v22/daemon"
	"k8s.io/klog/v2"
)

// Ready is the last component of a role's wiring list: the manager starts
// it only after every earlier component has started and passed its Ready
// gate, so READY=1 means the whole role serves. systemd holds
// `systemctl start` (and units ordered after regente) until then.
type Ready struct {
	// What names what is up, for the unit's status line.
	What string
}

func (r *Ready) Name() string               { return "sd-notify" }
func (r *Ready) Init(context.Context) error { return nil }

func (r *Ready) Start(ctx context.Context) error {
	r.notify(ctx, daemon.SdNotifyReady+"\nSTATUS="+r.What+" is running")
	return nil
}

// Stop tells systemd the stop is deliberate, so `systemctl status` shows
// "deactivating" rather than a hang while components shut down.
func (r *Ready) Stop(ctx context.Context) error {
	r.notify(ctx, daemon.SdNotifyStopping)
	return nil
}

func (r *Ready) notify(ctx context.Context, state string) {
	sent, err := daemon.SdNotify(false, state)
	if err != nil {
		// Not fatal: the service runs; only its start is reported late
		// (systemd then times the start out by its own rules).
		klog.FromContext(ctx).Error(err, "Cannot notify the service manager", "component", "sd-notify")
		return
	}
	if sent {
		klog.FromContext(ctx).V(1).Info("Notified the service manager", "component", "sd-notify", "state", state)
	}
}
