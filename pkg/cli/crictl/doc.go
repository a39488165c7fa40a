// Package crictl is the `regente crictl` verb: upstream crictl, built from
// its pinned module into the payload, run against the node's containerd.
// The payload is unpacked first if this binary's version never was.
package crictl
