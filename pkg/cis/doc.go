// Package cis checks a running regente server against the controls of the
// CIS Kubernetes Benchmark that apply to a single-binary distribution, as
// k3s's CIS self-assessment guide maps them: file modes on this host, and
// the behaviour of the running API server, kubelets, controller-manager,
// scheduler and etcd, probed live (an anonymous request, a dry-run pod,
// the kubelet's /configz) rather than read from flags, so that what is
// reported is what runs. `regente check-config --cis` prints the result;
// `--profile cis` is what turns every failure into a pass.
package cis
