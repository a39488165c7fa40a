// Package killall ends what a node leaves running by design when regente
// stops: pod processes and their shims, pod network namespaces, the pod
// bridge, and the mounts under the run dir and the data dir. Tests and the
// benchmark use it between runs; the killall script of the install issue
// is meant to call it. It does not touch the data itself.
package killall
