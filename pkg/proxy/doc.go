// Package proxy runs the upstream kube-proxy (linked from
// k8s.io/kubernetes/cmd/kube-proxy/app) inside the regente process:
// iptables mode by default, nftables with --kube-proxy-arg=proxy-mode=nftables.
// It checks the host tools kube-proxy runs before anything starts.
package proxy
