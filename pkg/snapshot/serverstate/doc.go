// Package serverstate takes a sealed snapshot of one server's datastore,
// its own SQLite file (or the live copy in memory) or its embedded etcd
// member, as the server's schedule and `regente etcd-snapshot save` both
// do: one function, switched on the server's datastore choice.
//
// It must not decide the datastore itself: the caller passes the Choice.
package serverstate
