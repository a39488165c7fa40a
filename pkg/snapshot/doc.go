// Package snapshot saves, lists, prunes, verifies and restores snapshots of
// the datastore: SQLite and embedded etcd. An SQLite snapshot is an online,
// consistent copy made with SQLite's backup API (one read transaction, so
// writers go on and the copy is one point in time), never a file copy of a
// live WAL database; an etcd snapshot is etcd's own (client/v3/snapshot),
// restored with etcdutl. Each snapshot has a sidecar <file>.json with its
// kind, SHA-256 and size; a restore refuses a file of the other kind, or
// whose checksum, header, integrity check or schema is wrong, and keeps the
// data it replaces.
package snapshot
