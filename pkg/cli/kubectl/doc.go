// Package kubectl is the `regente kubectl` verb (and the `kubectl` symlink):
// upstream kubectl, linked, with KUBECONFIG defaulting to the admin
// kubeconfig when the user has not set one and the file is readable.
package kubectl
