// Package deploy keeps the cluster in step with the server's manifests
// directory, as k3s users know it: every *.yaml, *.yml or *.json file there
// is applied with server-side apply; a changed file is re-applied and the
// objects it no longer holds are deleted; a deleted file's objects are
// deleted. What each file applied is recorded in a ConfigMap in
// kube-system, so pruning survives restarts.
//
// It also stages regente's own add-on manifests into that directory,
// rendered with the cluster's settings, unless disabled or marked with a
// <name>.yaml.skip file, which keeps a user-edited copy.
//
// It must not interpret what the manifests contain: any kind the API
// server knows, CRDs and custom objects included, goes through the same
// path.
package deploy
