package datastore

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/k3s-io/kine/pkg/drivers"
	"github.com/k3s-io/kine/pkg/server"

	"regente.io/regente/pkg/datastore/backend"
)

// The SQL drivers regente runs kine with (the table is backend's), and
// the prefix of the private schemes under which they are registered with
// deliveredRevision around their backend.
var wrappedSchemes = backend.SQLSchemes()

const wrappedSchemePrefix = "regente-"

// registerDrivers adds, once per process, a private scheme to kine's driver
// registry for each of wrappedSchemes. The registry is the library's
// extension point and global by its design; only our own endpoint strings
// name these schemes, so nothing else in the process sees a change.
var registerDrivers = sync.OnceFunc(func() {
	for _, scheme := range wrappedSchemes {
		inner, ok := drivers.Get(scheme)
		if !ok {
			continue
		}
		drivers.Register(wrappedSchemePrefix+scheme, func(ctx context.Context, wg *sync.WaitGroup, cfg *drivers.Config) (bool, server.Backend, error) {
			leaderElect, backend, err := inner(ctx, wg, cfg)
			if err != nil || backend == nil {
				return leaderElect, backend, err
			}
			return leaderElect, &deliveredRevision{Backend: backend}, nil
		})
	}
})

// wrapScheme points an endpoint of one of wrappedSchemes at its private
// scheme; other endpoints (etcd passthrough) are returned as they are.
func wrapScheme(endpoint string) string {
	for _, scheme := range wrappedSchemes {
		if strings.HasPrefix(endpoint, scheme+"://") {
			return wrappedSchemePrefix + endpoint
		}
	}
	return endpoint
}

// deliveredRevision is a kine backend whose CurrentRevision, the revision
// kine's watch server puts in progress notifications, is never behind the
// revision its poll loop has already delivered to watchers.
//
// kine's SQL log caches its current revision and moves the cache forward
// from the poll loop only by a compare-and-swap with the poll loop's own
// previous revision. When another server writes between the cache being
// filled at start (by the health key's create) and the poll loop's first
// query, the two never match again, and the cache stays behind until this
// server itself writes. A second API server on a shared database then
// hears a stale revision for every watch-progress request, its watch caches
// never catch up with a consistent read, its admission plugins' informers
// never sync, so it cannot write (its writes are what would heal the cache),
// and it ends itself a minute later in the service-IP repair hook.
//
// The poll loop's delivered revision is learned as any watcher learns it:
// from a watch of our own on the same broadcaster.
type deliveredRevision struct {
	server.Backend
	delivered atomic.Int64
}

// Start starts the backend, then follows its poll loop.
func (b *deliveredRevision) Start(ctx context.Context) error {
	if err := b.Backend.Start(ctx); err != nil {
		return err
	}
	watch := b.Backend.Watch(ctx, 0)
	go func() {
		// The channel closes when ctx (the backend's lifetime) ends.
		for batch := range watch.Eventc {
			if batch.CurrentRev > b.delivered.Load() {
				b.delivered.Store(batch.CurrentRev)
			}
		}
	}()
	return nil
}

// Watch starts a watch as the backend does, except that a watch from "now"
// (revision 0) while the backend's cached revision is behind the delivered
// one starts just after the delivered revision instead.
//
// kine answers a watch from now with its cached revision as the watch's
// starting point, and its watch server counts a watch as synced for
// progress only once that watch has been sent CurrentRevision. A watch
// started at the stale cached revision on a quiet key is therefore never
// synced until some event reaches it: progress requests go unanswered. An
// explicit start revision takes kine's other path, a read of the log after
// that revision whose header is the database's revision, and is exact: the
// poll loop has already delivered everything up to it.
func (b *deliveredRevision) Watch(ctx context.Context, revision int64) server.WatchResult {
	if revision == 0 {
		if delivered := b.delivered.Load(); delivered > 0 {
			if cached, err := b.Backend.CurrentRevision(ctx); err == nil && cached < delivered {
				revision = delivered + 1
			}
		}
	}
	return b.Backend.Watch(ctx, revision)
}

// CurrentRevision is the backend's own answer, or the delivered revision
// when that is ahead. kine's watch server still sends a progress
// notification only once every watch has been sent that revision.
func (b *deliveredRevision) CurrentRevision(ctx context.Context) (int64, error) {
	rev, err := b.Backend.CurrentRevision(ctx)
	if err != nil {
		return rev, err
	}
	return max(rev, b.delivered.Load()), nil
}
