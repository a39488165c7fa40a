// Package payload owns the archive of helper binaries that upstream ships
// only as `package main` (runc, containerd-shim-runc-v2, CNI plugins): WriteTar
// writes it at build time (hack/payloadpack compresses it), Ensure unpacks it at run time
// into a content-addressed folder <data-dir>/data/<sha256>/bin, under a
// lock, verifying every file's checksum, and keeps `current` and
// `previous` links. Nothing is downloaded at run time.
//
// It must not know which binaries are inside: the archive's SHA256SUMS
// manifest is the list.
package payload
