// Package version reports what this binary is: regente's own version (set
// by the build), and the versions of the upstream modules it links, read
// from the binary's build information so they can never disagree with
// go.mod.
package version
