// Package scheduler runs the upstream kube-scheduler (linked from
// k8s.io/kubernetes/cmd/kube-scheduler/app) inside the regente process.
package scheduler
