package network

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureKernelSettings(t *testing.T) {
	root := t.TempDir()
	write := func(p, v string) {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(v), 0o644)
	}
	write("net/ipv4/ip_forward", "0\n")
	err := ensureKernelSettings(root)
	if err == nil || !strings.Contains(err.Error(), "net.bridge.bridge-nf-call-iptables") || !strings.Contains(err.Error(), "modprobe br_netfilter") {
		t.Fatalf("missing br_netfilter: %v", err)
	}
	write("net/bridge/bridge-nf-call-iptables", "0\n")
	if err := ensureKernelSettings(root); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"net/bridge/bridge-nf-call-iptables", "net/ipv4/ip_forward"} {
		if b, _ := os.ReadFile(filepath.Join(root, p)); strings.TrimSpace(string(b)) != "1" {
			t.Errorf("%s = %q, want 1", p, b)
		}
	}
}
