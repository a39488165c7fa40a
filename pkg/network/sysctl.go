package network

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// kernelSettings are the /proc/sys switches pod networking depends on,
// with the command that makes each one available when it is missing.
var kernelSettings = []struct{ path, fix string }{
	// Without it, a pod reaching a Service whose endpoint sits on the same
	// bridge gets replies that skip the Service's NAT and are dropped.
	{"net/bridge/bridge-nf-call-iptables", "modprobe br_netfilter (and add br_netfilter to /etc/modules-load.d/ to keep it)"},
	{"net/ipv4/ip_forward", "enable IPv4 forwarding in the kernel (CONFIG_INET)"},
}

// ensureKernelSettings turns every setting on under procSys (/proc/sys),
// or names the fix for the first one the kernel lacks.
func ensureKernelSettings(procSys string) error {
	for _, s := range kernelSettings {
		p := filepath.Join(procSys, s.path)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("kernel setting %s is missing: %s", strings.ReplaceAll(s.path, "/", "."), s.fix)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		if strings.TrimSpace(string(b)) == "1" {
			continue
		}
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("set %s to 1 (sysctl -w %s=1): %w", p, strings.ReplaceAll(s.path, "/", "."), err)
		}
	}
	return nil
}
