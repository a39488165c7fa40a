// Package ociarchive writes single-platform OCI image archives (an OCI
// image layout in a tar, as `ctr images import` and containerd's Import
// read them) from plain files, so regente's own images (pause, system
// images, test images) are built by our code with no registry and no
// container builder.
package ociarchive
