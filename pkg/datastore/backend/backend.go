package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"regente.io/regente/pkg/redact"
)

// Kind is where the cluster's state lives.
type Kind int

const (
	// SQLite is regente's own database file in the data dir, served by kine.
	SQLite Kind = iota
	// UserSQLite is an SQLite file the user names with sqlite://, served by
	// kine like regente's own but left to the user to back up.
	UserSQLite
	// ExternalSQL is a PostgreSQL or MySQL/MariaDB database, served by kine.
	ExternalSQL
	// ExternalEtcd is an etcd cluster regente does not run, which the API
	// server talks to directly (kine passes http/https/unix endpoints through).
	ExternalEtcd
	// EmbeddedEtcd is an etcd member that regente runs in its own process.
	EmbeddedEtcd
)

// EtcdStart is how an embedded etcd member comes up.
type EtcdStart int

const (
	// EtcdRestart runs the member the data dir already holds.
	EtcdRestart EtcdStart = iota
	// EtcdInit starts a new cluster (--cluster-init), moving SQLite data in.
	EtcdInit
	// EtcdJoin joins the cluster of --server.
	EtcdJoin
)

// Choice is the datastore of one server start.
type Choice struct {
	Kind Kind
	// Endpoint is --datastore-endpoint with its scheme lower-cased; empty
	// for SQLite and embedded etcd.
	Endpoint string
	// Etcd is how an EmbeddedEtcd member starts.
	Etcd EtcdStart
}

// Scheme is one --datastore-endpoint scheme and the kind it names.
type Scheme struct {
	Name string
	Kind Kind
}

// Schemes are the --datastore-endpoint schemes regente accepts: kine's SQL
// drivers, and its etcd passthrough. An sqlite:// endpoint names a file of
// the user's choosing.
var Schemes = []Scheme{
	{"sqlite", UserSQLite},
	{"postgres", ExternalSQL},
	{"postgresql", ExternalSQL},
	{"mysql", ExternalSQL},
	{"http", ExternalEtcd},
	{"https", ExternalEtcd},
	{"unix", ExternalEtcd},
	{"unixs", ExternalEtcd},
}

// SQLSchemes are the schemes kine serves through one of its SQL drivers,
// the ones regente wraps (see package datastore).
func SQLSchemes() []string {
	var names []string
	for _, s := range Schemes {
		if s.Kind == UserSQLite || s.Kind == ExternalSQL {
			names = append(names, s.Name)
		}
	}
	return names
}

// Flags are the flags Resolve reads, and the data dir's etcd directory,
// whose member (if any) means a restart of embedded etcd.
type Flags struct {
	Endpoint    string // --datastore-endpoint
	ClusterInit bool   // --cluster-init
	JoinServer  string // --server
	EtcdDir     string // <data-dir>/server/db/etcd
}

// Resolve decides the datastore. It works on the endpoint's text rather
// than net/url because valid DSNs such as mysql://u:p@tcp(host:3306)/db are
// not valid URLs; the endpoint appears in errors only through
// redact.Endpoint.
func Resolve(f Flags) (Choice, error) {
	if f.Endpoint != "" {
		scheme, rest, ok := strings.Cut(f.Endpoint, "://")
		if !ok {
			return Choice{}, fmt.Errorf("--datastore-endpoint %q is not a URL: write it as scheme://..., e.g. postgres://user:pass@host:5432/db, or leave it empty for SQLite", redact.Endpoint(f.Endpoint))
		}
		// URL schemes are case-insensitive, kine's driver names are not.
		scheme = strings.ToLower(scheme)
		i := slices.IndexFunc(Schemes, func(s Scheme) bool { return s.Name == scheme })
		if i < 0 {
			var names []string
			for _, s := range Schemes {
				names = append(names, s.Name)
			}
			return Choice{}, fmt.Errorf("--datastore-endpoint %q: unsupported scheme %q; use one of %s", redact.Endpoint(f.Endpoint), redact.Endpoint(scheme), strings.Join(names, ", "))
		}
		return Choice{Kind: Schemes[i].Kind, Endpoint: scheme + "://" + rest}, nil
	}
	switch {
	case f.ClusterInit:
		return Choice{Kind: EmbeddedEtcd, Etcd: EtcdInit}, nil
	case f.JoinServer != "":
		return Choice{Kind: EmbeddedEtcd, Etcd: EtcdJoin}, nil
	case hasEtcdMember(f.EtcdDir):
		return Choice{Kind: EmbeddedEtcd, Etcd: EtcdRestart}, nil
	}
	return Choice{Kind: SQLite}, nil
}

// hasEtcdMember reports whether dir holds an etcd member's write-ahead
// log: a server that started or joined a cluster once restarts into it
// with neither flag.
func hasEtcdMember(dir string) bool {
	if dir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, "member", "wal"))
	return err == nil
}

// OwnSQLite reports whether the state is regente's own SQLite file in the
// data dir, which snapshots, --cluster-reset and --datastore-in-memory
// work on.
func (c Choice) OwnSQLite() bool { return c.Kind == SQLite }

// Kine reports whether kine serves the API server's etcd API.
func (c Choice) Kine() bool { return c.Kind != EmbeddedEtcd }

// Shared reports whether other servers may use the same datastore, which
// is what makes leader election among control planes necessary.
// An SQLite file, regente's or the user's, belongs to one server.
func (c Choice) Shared() bool { return c.Kind != SQLite && c.Kind != UserSQLite }

// Snapshots reports whether regente snapshots this datastore itself; an
// external database is backed up with its own tools.
func (c Choice) Snapshots() bool { return c.Kind == SQLite || c.Kind == EmbeddedEtcd }

// String names the datastore for logs, without secrets.
func (c Choice) String() string {
	switch c.Kind {
	case SQLite:
		return "sqlite"
	case EmbeddedEtcd:
		return [...]string{"embedded etcd (restart)", "embedded etcd (new cluster)", "embedded etcd (joining)"}[c.Etcd]
	}
	return redact.Endpoint(c.Endpoint)
}
