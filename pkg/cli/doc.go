// Package cli holds one package per regente verb. Each turns command-line
// arguments, config files and environment into typed options and calls the
// package that does the work; none of them holds logic of its own.
package cli
