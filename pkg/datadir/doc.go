// Package datadir owns a node's directory layout and guards it: Layout is
// the one place that says where each piece of server, agent and run-time
// state lives below the data dir and the run dir, and Lock keeps one
// regente process per data dir, with its dirs readable by root only.
//
// It is a leaf: it knows paths, not options, so every verb (server,
// agent and the day-2 ones) builds the same Layout from the data and run
// dirs that pkg/config resolved.
package datadir
