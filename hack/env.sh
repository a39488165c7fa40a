# shellcheck shell=bash
# Sourced by every hack/ script and .ci/run: ONE set of Go build settings,
# because changing any of them (cgo, tags, trimpath) throws the whole build
# cache away and costs a cold build (~12 minutes on 2 cores).
#
# cgo is on for SQLite (mattn/go-sqlite3, kine's default driver); netgo and
# osusergo keep the binary static without glibc's NSS, and
# sqlite_omit_load_extension drops SQLite's dlopen; no_btrfs, no_devmapper
# and no_zfs leave out containerd snapshotters that need C libraries we do
# not ship (overlayfs and native remain). A script that needs more
# tags (the integration tests) passes "-tags=${GO_TAGS},<more>": a -tags on
# the command line replaces the one in GOFLAGS.
export CGO_ENABLED=1
# go.mod's toolchain line names the Go release regente is built with (a
# patch release with the standard library's security fixes, which
# govulncheck checks); the go command fetches it from the module proxy
# once. The machine's Go may be older and set GOTOOLCHAIN=local.
export GOTOOLCHAIN=auto
export GO_TAGS="netgo,osusergo,sqlite_omit_load_extension,no_btrfs,no_devmapper,no_zfs"
export GOFLAGS="-trimpath -tags=${GO_TAGS}"
