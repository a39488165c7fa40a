// Package ctr is the `regente ctr` verb: upstream containerd's ctr,
// linked, pointed at the node's containerd socket and the k8s.io namespace
// unless the user says otherwise.
package ctr
