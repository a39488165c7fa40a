// Package images loads images into the node's containerd with no
// registry: the system images the binary carries (pause, ...) and every
// image archive in <data-dir>/agent/images (*.tar, *.tar.gz, *.tar.zst;
// docker-archive or OCI layout). Imported images are labelled as CRI
// images and pinned, so the kubelet's image GC never removes them.
//
// A bad archive is reported by file name and skipped; the rest still load.
package images
