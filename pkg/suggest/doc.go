// Package suggest finds the "did you mean" for a mistyped name: the
// known name within a small edit distance of it. The config loader and
// registries.yaml name the closest key when they meet an unknown one.
package suggest
