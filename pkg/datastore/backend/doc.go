// Package backend answers, once per server start, which datastore the
// server runs on: regente's own SQLite file, an external SQL database or
// etcd cluster (both through kine's endpoint), or an embedded etcd member
// that starts a cluster, joins one or restarts. It owns the table of
// --datastore-endpoint schemes that kine is run with.
//
// Everything that depends on the answer (validation, preflight, the
// datastore wiring, snapshots, leader election, role labels) switches on
// the Choice that Resolve returns instead of asking the flags or the disk
// again. It must not import the datastore itself: config reads it.
package backend
