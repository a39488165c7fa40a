// Package kubelet runs the upstream kubelet (linked from
// k8s.io/kubernetes/cmd/kubelet/app) inside the regente process, configured
// by a generated KubeletConfiguration file: TLS from the node's
// credentials, anonymous access off, webhook authentication and
// authorization, cgroups v1 or v2 with the cgroupfs driver (systemd when
// PID 1 is systemd), and data-dir-relative paths so several nodes can
// share one host in tests.
package kubelet
