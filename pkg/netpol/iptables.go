package netpol

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
)

// queueChain is the mangle chain of the iptables fallback.
const queueChain = "REGENTE-NETPOL"

// queueWithIPTables is the fallback for kernels whose nftables cannot
// queue packets (no nft_queue) but whose iptables can (xt_NFQUEUE): it
// sends the first packet of every new connection from or to a pod, in
// POSTROUTING before source NAT as the library's own nftables rules do, to
// the controller's queue. Unlike those rules it cannot narrow the traffic
// to pods that policies select, so more connections wait for a verdict;
// the verdicts, and so the policies, are the library's alone.
func queueWithIPTables(clusterCIDR string) error {
	prefix, err := netip.ParsePrefix(clusterCIDR)
	if err != nil || !prefix.Addr().Is4() {
		return fmt.Errorf("the iptables fallback covers an IPv4 cluster CIDR, not %q", clusterCIDR)
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("iptables is not installed (Debian/Ubuntu package iptables)")
	}
	queue := []string{"-j", "NFQUEUE", "--queue-num", strconv.Itoa(queueID), "--queue-bypass"}
	steps := [][]string{
		{"-N", queueChain},
		{"-F", queueChain},
		// The node's own root processes (the kubelet's probes) pass, as
		// with the library's rules.
		{"-A", queueChain, "-m", "owner", "--uid-owner", "0", "-j", "RETURN"},
		{"-A", queueChain, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"},
		append([]string{"-A", queueChain, "-s", clusterCIDR}, queue...),
		append([]string{"-A", queueChain, "-d", clusterCIDR}, queue...),
	}
	for i, step := range steps {
		out, err := iptables(step...)
		if err != nil && !(i == 0 && strings.Contains(out, "exists")) {
			return fmt.Errorf("iptables %s: %v: %s", strings.Join(step, " "), err, out)
		}
	}
	if _, err := iptables("-C", "POSTROUTING", "-j", queueChain); err != nil {
		if out, err := iptables("-I", "POSTROUTING", "1", "-j", queueChain); err != nil {
			return fmt.Errorf("hook %s into POSTROUTING: %v: %s", queueChain, err, out)
		}
	}
	return nil
}

// removeIPTablesQueue undoes queueWithIPTables.
func removeIPTablesQueue() {
	for _, step := range [][]string{{"-D", "POSTROUTING", "-j", queueChain}, {"-F", queueChain}, {"-X", queueChain}} {
		_, _ = iptables(step...)
	}
}

func iptables(args ...string) (string, error) {
	out, err := exec.Command("iptables", append([]string{"-w", "5", "-t", "mangle"}, args...)...).CombinedOutput()
	return string(out), err
}
