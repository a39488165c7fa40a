// Package snapshot saves, lists, prunes, verifies and restores snapshots of
// the SQLite datastore. A snapshot is an online, consistent copy made with
// SQLite's backup API (one read transaction, so writers go on and the copy
// is one point in time), never a file copy of a live WAL database. Each
// snapshot has a sidecar <file>.json with its SHA-256 and size; a restore
// refuses a file whose checksum, SQLite header, integrity check or kine
// schema is wrong, and keeps the database it replaces.
package snapshot
