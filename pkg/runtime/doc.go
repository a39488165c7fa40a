// Package runtime runs the node's container runtime: containerd, as a
// child process re-executed from the regente binary, with a generated
// config (CRI plugin, runc from the embedded payload, overlayfs or the
// native snapshotter) and its socket under /run/regente/containerd.
//
// It must not import images or configure networking: those belong to the
// images and network components.
package runtime
