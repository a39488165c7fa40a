//go:build integration

package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"regente.io/regente/pkg/datastore"
	"regente.io/regente/pkg/datastore/backend"
)

// TestSharedDatastoreProgress starts two regente datastores (kine) on one
// database while the first writes as fast as it can, then checks that the
// second, which writes nothing itself, reports watch progress up to the
// database's current revision. A second API server depends on that: with
// a stale progress revision its watch caches never look fresh and it cannot
// start, and ended itself a minute later.
func TestSharedDatastoreProgress(t *testing.T) {
	requirements(t)
	startPostgres(t, "127.0.0.1", 15433)
	startMariaDB(t, "127.0.0.1", 13307, "Maria-pw-2")
	for _, db := range []struct{ name, endpoint string }{
		{"postgres", "postgres://postgres@127.0.0.1:15433/regente?sslmode=disable"},
		{"mariadb", "mysql://regente:Maria-pw-2@tcp(127.0.0.1:13307)/regente"},
	} {
		t.Run(db.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dir := t.TempDir()
			first := startKine(t, ctx, db.endpoint, filepath.Join(dir, "first.sock"))

			// The first datastore keeps writing while the second starts: that
			// is what left the second's revision behind.
			writing, stopWriting := context.WithCancel(ctx)
			var writer sync.WaitGroup
			writer.Add(1)
			go func() {
				defer writer.Done()
				for i := 0; writing.Err() == nil; i++ {
					first.Put(writing, fmt.Sprintf("/regente-test/writes/%d", i), "v")
				}
			}()
			time.Sleep(time.Second)
			second := startKine(t, ctx, db.endpoint, filepath.Join(dir, "second.sock"))
			time.Sleep(time.Second)
			stopWriting()
			writer.Wait()

			// The database's revision, as a consistent read through the
			// second datastore reports it.
			got, err := second.Get(ctx, "/regente-test/quiet")
			if err != nil {
				t.Fatal(err)
			}
			current := got.Header.Revision

			// A watch on a key nobody writes, as a watch cache of a quiet
			// resource has, asking for progress as the API server does.
			watchCtx, stopWatch := context.WithTimeout(ctx, 15*time.Second)
			defer stopWatch()
			events := second.Watch(watchCtx, "/regente-test/quiet", clientv3.WithProgressNotify(), clientv3.WithCreatedNotify())
			var progress int64
			for resp := range events {
				if resp.Created || resp.IsProgressNotify() {
					progress = resp.Header.Revision
					if progress >= current {
						return
					}
					time.Sleep(100 * time.Millisecond)
					if err := second.RequestProgress(watchCtx); err != nil {
						break // the deadline passed
					}
				}
			}
			t.Fatalf("the second datastore reports watch progress up to revision %d only; the database is at %d", progress, current)
		})
	}
}

// startKine starts a datastore component on endpoint, serving on socket
// until ctx ends, and returns an etcd client of it.
func startKine(t *testing.T, ctx context.Context, endpoint, socket string) *clientv3.Client {
	t.Helper()
	choice, err := backend.Resolve(backend.Flags{Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	kine := datastore.New(datastore.Config{Backend: choice, Socket: socket})
	if err := kine.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		kine.Stop(stopCtx)
	})
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{kine.EtcdServers()},
		DialTimeout: 10 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}
