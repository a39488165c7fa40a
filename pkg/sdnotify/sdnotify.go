package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"

	"k8s.io/klog/v2"
)

type socketKey struct{}

// Detach takes NOTIFY_SOCKET out of the process environment and keeps it
// in the returned context for Ready. It must run before any component
// starts: the kubelet, which runs in this process, sends READY=1 as soon
// as it runs (before the network is up), and every child (containerd)
// would inherit the variable and have its own notifications refused.
func Detach(ctx context.Context) context.Context {
	socket := os.Getenv("NOTIFY_SOCKET")
	_ = os.Unsetenv("NOTIFY_SOCKET")
	return context.WithValue(ctx, socketKey{}, socket)
}

// Ready is the last component of a role's wiring list: the manager starts
// it only after every earlier component has started and passed its Ready
// gate, so READY=1 means the whole role serves. systemd holds
// `systemctl start` (and units ordered after regente) until then.
type Ready struct {
	// What names what is up, for the unit's status line.
	What string
}

func (r *Ready) Name() string { return "sd-notify" }
func (r *Ready) Start(ctx context.Context) error {
	r.notify(ctx, "READY=1\nSTATUS="+r.What+" is running")
	return nil
}

// Stop tells systemd the stop is deliberate, so `systemctl status` shows
// "deactivating" rather than a hang while components shut down.
func (r *Ready) Stop(ctx context.Context) error {
	r.notify(ctx, "STOPPING=1")
	return nil
}

func (r *Ready) notify(ctx context.Context, state string) {
	socket, _ := ctx.Value(socketKey{}).(string)
	if socket == "" {
		return // no service manager asked to be told
	}
	if err := send(socket, state); err != nil {
		// Not fatal: the service runs; only its start is reported late
		// (systemd then times the start out by its own rules).
		klog.FromContext(ctx).Error(err, "Cannot notify the service manager", "component", "sd-notify")
		return
	}
	klog.FromContext(ctx).V(1).Info("Notified the service manager", "component", "sd-notify", "state", state)
}

// send writes one notification datagram to socket, a path or, with a
// leading "@", an abstract socket name, as systemd's protocol has it.
func send(socket, state string) error {
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("dial the notify socket %s: %w", socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify %s: %w", socket, err)
	}
	return nil
}
