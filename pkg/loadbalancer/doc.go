// Package loadbalancer is the agent's client-side load balancer: a TCP
// proxy on 127.0.0.1 that the kubelet, kube-proxy and flannel reach the API
// servers through, as k3s's agent load balancer does. It knows every server
// (from the kubernetes Service's EndpointSlices, kept current with a
// watch) and sends each new connection to the last server that answered,
// moving to the next one when a dial fails, so losing a server does not
// lose the node. TLS passes through untouched: the components verify the
// servers' certificate themselves.
package loadbalancer
