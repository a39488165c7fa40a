// Package netpol enforces NetworkPolicy on a node with SIG Network's
// kube-network-policies controller, linked: nftables rules send the first
// packet of each new connection to or from a local pod to an nfqueue, the
// controller evaluates the policies that select the pod and returns a
// verdict, and conntrack lets the rest of an accepted flow through. The
// rules live in their own nftables table, so they do not depend on
// kube-proxy's or flannel's mode.
package netpol
