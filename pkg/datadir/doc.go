// Package datadir guards a data directory: one regente process per data
// dir, and its dirs readable by root only.
package datadir
