// Package cloudprovider is regente's cloud provider, as k3s has one: the
// kubelets run with --cloud-provider=external, so a node joins tainted
// node.cloudprovider.kubernetes.io/uninitialized, and upstream's cloud
// node controller, run in the server with this provider, sets the node's
// addresses from what the node announced in its annotations (InternalIP
// from --node-ip, ExternalIP from --node-external-ip) and removes the
// taint. Without it a kubelet can report no ExternalIP at all.
package cloudprovider
