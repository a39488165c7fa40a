// Package atomicfile writes files so that a crash or power loss leaves
// either the old or the new content, never a torn file: every file is
// staged and synced in a temp file beside its target, then renamed, then
// the directory is synced. Keys, certificates and kubeconfigs use it.
package atomicfile
