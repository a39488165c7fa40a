// Package servicelb gives Services of type LoadBalancer the node's address,
// as k3s's service load balancer does: for each such Service without a
// loadBalancerClass it runs a DaemonSet in kube-system of svclb pods (our
// own relay program, images/svclb) that take the Service's ports as
// hostPorts on every node, and it writes the InternalIPs of the nodes whose
// pod is Ready into the Service's status. --disable servicelb leaves
// LoadBalancers pending for another implementation.
package servicelb
