// Package sysimages names the system images the build makes (from our own
// Go code, or upstream Go programs linked into a small main under
// hack/images) and the payload carries, so the add-ons run with no image
// pull. hack/imagebuild and the add-on manifests both take names from
// here, which keeps the two in step.
package sysimages
