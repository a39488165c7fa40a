package proxy

import (
	"context"
	"testing"
)

func TestNFTablesFollowsProxyMode(t *testing.T) {
	for args, want := range map[string]bool{"": false, "--proxy-mode=nftables": true, "--proxy-mode=iptables": false} {
		var extra []string
		if args != "" {
			extra = []string{args}
		}
		p := New(Config{NodeName: "n", Kubeconfig: "/k", ClusterCIDR: "10.42.0.0/16", ExtraArgs: extra})
		// Init may fail on a host without the mode's tools; the flags are
		// parsed before that check.
		_ = p.Init(context.Background())
		if got := p.NFTables(); got != want {
			t.Errorf("NFTables() with %q = %t, want %t", args, got, want)
		}
	}
}
