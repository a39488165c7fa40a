// Package runtime runs the node's container runtime: containerd, as a
// child process from the embedded payload (built from its pinned module:
// a re-exec of regente itself would carry all of Kubernetes' memory into a
// second long-lived process), with a generated
// config (CRI plugin, runc from the embedded payload, overlayfs or the
// native snapshotter, registries from --private-registry rendered by
// pkg/registries into a certs.d under the data dir, a handler for each
// NVIDIA, crun or gVisor runtime found on the host), rendered from the
// user's config-v3.toml.tmpl or config.toml.tmpl beside it when there is
// one, and its socket under <run-dir>/containerd.
//
// It must not import images or configure networking: those belong to the
// images and network components.
package runtime
