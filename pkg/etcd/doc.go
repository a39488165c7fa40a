// Package etcd runs embedded etcd (go.etcd.io/etcd/server/v3/embed) as the
// datastore of servers that form a highly available control plane:
// --cluster-init starts a new cluster, --server joins one (as a learner,
// promoted once it has caught up), and a server whose Node is deleted is
// removed from the membership.
//
// It owns the member's data dir (<data-dir>/server/db/etcd), its name and
// config files there, the etcd client other packages use (snapshots,
// migration) and the membership changes. It never deletes a data dir: one
// that no longer belongs to the cluster is moved aside. It must not parse
// regente's configuration: it receives a small Config.
package etcd
