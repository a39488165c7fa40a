// Package network gives pods their network. On a single node it waits for
// the node's pod CIDR (allocated by the controller-manager) and writes the
// CNI config containerd reads: a bridge with host-local IPAM, portmap and
// bandwidth, the same chain flannel's CNI plugin delegates to. Flannel
// across nodes (vxlan, host-gw) belongs here too and is not built yet.
package network
