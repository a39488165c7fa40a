package serverstate

import (
	"context"
	"fmt"
	"os"

	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/datastore"
	"regente.io/regente/pkg/datastore/backend"
	"regente.io/regente/pkg/etcd"
	"regente.io/regente/pkg/join"
	"regente.io/regente/pkg/secretsencrypt"
	"regente.io/regente/pkg/snapshot"
)

// Save writes snapshot name into dir, sealed with the server's CAs and keys.
func Save(ctx context.Context, store backend.Choice, layout datadir.Layout, dir, name string) (*snapshot.Info, error) {
	paths := layout.Server
	switch store.Kind {
	case backend.EmbeddedEtcd:
		cfg, err := etcd.ClientConfig(paths.TLSDir, etcd.LocalEndpoint)
		if err != nil {
			return nil, err
		}
		return snapshot.Sealed(Keys(paths), dir, func() (*snapshot.Info, error) { return snapshot.SaveEtcd(ctx, cfg, dir, name) })
	case backend.SQLite:
		if _, err := os.Stat(paths.SQLiteFile); err != nil {
			return nil, fmt.Errorf("no SQLite datastore at %s and no etcd member beside it (%v): run on the server, with its --data-dir", paths.SQLiteFile, err)
		}
		return snapshot.Sealed(Keys(paths), dir, func() (*snapshot.Info, error) {
			return snapshot.SaveSQLite(datastore.LiveSQLiteFile(paths.SQLiteFile, layout.Run.DatastoreDir), dir, name)
		})
	}
	return nil, fmt.Errorf("the datastore is %s: back it up with that database's own tools", store)
}

// Keys are what a server's snapshots seal: its CAs and keys, under the
// secret of its server token.
func Keys(paths datadir.ServerPaths) snapshot.Keys {
	return snapshot.Keys{TLSDir: paths.TLSDir, EncryptionConfig: secretsencrypt.Path(paths.CredDir),
		Secret: func() (string, error) { return join.ServerSecret(paths.TokenFile) }}
}
