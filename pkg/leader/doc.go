// Package leader runs a group of regente's own controllers (manifests,
// Helm charts, the service load balancer, node hosts) on one server at a
// time when several servers share a datastore, as k3s does, with
// client-go's Lease-based leader election. A server that loses the lease
// stops the group and campaigns again; a failure inside the group ends the
// process as it would without election. It must not know what the
// controllers do.
package leader
