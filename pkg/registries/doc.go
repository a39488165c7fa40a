// Package registries reads the node's private registry file
// (--private-registry, /etc/regente/registries.yaml by default) in the
// format k3s users know: "mirrors" (registry name → endpoint URLs, tried in
// order before the registry's own default endpoint, with "*" for every
// registry that has no entry of its own) and "configs" (host → auth and
// TLS). It turns the file into what containerd v2.4 reads: one hosts.toml
// per registry in a certs.d directory under the data dir, and the CRI
// plugin's registry table (config_path and credentials) for config.toml.
//
// Parsing is strict: an unknown key, a bad endpoint URL, a missing or
// unreadable CA or client certificate, or a setting containerd cannot honor
// (rewrite) is an error naming the file and the key, so that a typo never
// turns into pulls that silently bypass the mirror.
//
// It owns the certs.d directory it writes, and removes the host
// directories it wrote earlier that the file no longer names. It must not
// start containerd or write its config.toml: that is the runtime
// component's job.
package registries
