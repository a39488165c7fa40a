// Package datastore runs kine, the etcd API shim over SQLite (default) or an
// external Postgres/MySQL database, as a component the apiserver talks to
// over a unix socket that only root can open.
//
// It owns the SQLite file's safety checks (a file that is not a database is
// refused, never touched) and routes kine's logrus output into klog. It must
// not parse configuration: it receives a small Config.
package datastore
