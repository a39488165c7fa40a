// Package apiserver runs the upstream kube-apiserver (linked from
// k8s.io/kubernetes/cmd/kube-apiserver/app) inside the regente process.
//
// It owns the flags regente gives the apiserver (TLS from our PKI, RBAC and
// Node authorization, NodeRestriction, anonymous access only to health
// endpoints) and the readiness gate on /readyz. It must not re-implement
// anything the upstream server does.
package apiserver
