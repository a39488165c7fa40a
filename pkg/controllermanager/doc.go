// Package controllermanager runs the upstream kube-controller-manager
// (linked from k8s.io/kubernetes/cmd/kube-controller-manager/app) inside the
// regente process, with the signing CAs and service-account key of our PKI.
package controllermanager
