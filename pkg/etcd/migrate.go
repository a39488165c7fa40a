package etcd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/datastore"
)

// MigrateSQLite copies every key of the SQLite datastore at sqliteFile into
// the member's cluster, once: the file is then renamed with a ".migrated"
// suffix (kept, never deleted) so a restart does not copy it again. It
// reads through kine, the same code that wrote it.
func (e *Etcd) MigrateSQLite(ctx context.Context, sqliteFile string) error {
	if _, err := os.Stat(sqliteFile); err != nil {
		return nil
	}
	logger := klog.FromContext(ctx).WithValues("component", "etcd")
	logger.Info("Moving the SQLite datastore into etcd (once)", "from", sqliteFile)
	begin := time.Now()
	socket := filepath.Join(filepath.Dir(sqliteFile), "migrate-kine.sock")
	kine := datastore.New(datastore.Config{SQLiteFile: sqliteFile, Socket: socket})
	if err := kine.Start(ctx); err != nil {
		return fmt.Errorf("open %s to migrate it: %w", sqliteFile, err)
	}
	defer kine.Stop(context.WithoutCancel(ctx))
	src, err := clientv3.New(clientv3.Config{Endpoints: []string{kine.EtcdServers()}, DialTimeout: 10 * time.Second, Logger: quietLogger()})
	if err != nil {
		return fmt.Errorf("connect to the SQLite datastore: %w", err)
	}
	defer src.Close()
	dst, err := NewClient(e.cfg.TLSDir, LocalEndpoint)
	if err != nil {
		return err
	}
	defer dst.Close()
	resp, err := src.Get(ctx, "/", clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read %s: %w", sqliteFile, err)
	}
	copied := 0
	for _, kv := range resp.Kvs {
		if kv.Lease != 0 {
			continue // events and leases expire anyway
		}
		// Only keys etcd does not hold yet: a migration interrupted by a
		// crash resumes without overwriting newer writes.
		txn := dst.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(string(kv.Key)), "=", 0)).
			Then(clientv3.OpPut(string(kv.Key), string(kv.Value)))
		if _, err := txn.Commit(); err != nil {
			return fmt.Errorf("copy %s into etcd: %w", kv.Key, err)
		}
		copied++
	}
	if err := kine.Stop(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(sqliteFile+suffix, sqliteFile+suffix+".migrated"); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("mark %s as migrated: %w", sqliteFile, err)
		}
	}
	logger.Info("Moved the SQLite datastore into etcd", "keys", copied, "took", time.Since(begin).Round(time.Millisecond), "kept", sqliteFile+".migrated")
	return nil
}
