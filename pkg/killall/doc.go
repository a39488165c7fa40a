// Package killall ends what a node leaves running by design when regente
// stops: pod processes and their shims, pod network namespaces, the pod
// bridge, the firewall rules, and the mounts under the run dir and the data
// dir. `regente killall` (which install.sh's regente-killall.sh runs), the
// tests and the benchmark call it. It does not touch the data itself.
package killall
