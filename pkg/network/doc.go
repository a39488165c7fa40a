// Package network gives pods their network with flannel, linked as a
// library: its Kubernetes subnet manager takes the node's pod CIDR
// (allocated by the controller-manager) as the node's lease and publishes
// it in flannel's node annotations, and its vxlan or host-gw backend
// routes between nodes. flannel's CNI plugin ships only as a separate
// program, so the CNI config this package writes for containerd is the
// chain that plugin delegates to: a bridge with host-local IPAM on the
// lease, portmap and bandwidth.
package network
