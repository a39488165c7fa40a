// Package manifests holds regente's add-on manifests, embedded in the
// binary. Each <name>.yaml is a text/template rendered with the cluster's
// settings (see pkg/deploy.Values) and staged into the server's manifests
// dir, where the deploy controller applies it; <name> is what --disable
// takes.
package manifests
