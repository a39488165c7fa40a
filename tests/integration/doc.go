// Package integration starts the real regente binary on a temporary data
// dir and free ports, as root, and drives it with the real kubectl (the
// binary's own kubectl symlink) and client-go.
//
// The tests sit behind the `integration` build tag. They need root and a
// built binary (make build; REGENTE_BIN overrides the path). Without them
// they skip with a message, unless REGENTE_INTEGRATION_REQUIRED=1 (set by
// .ci/run), where a missing prerequisite fails the run instead.
package integration
