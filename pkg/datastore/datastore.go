package datastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/drivers/sqlite"
	"github.com/k3s-io/kine/pkg/endpoint"
	kinetls "github.com/k3s-io/kine/pkg/tls"
	_ "github.com/mattn/go-sqlite3" // kine's SQLite driver, registered as "sqlite3"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/datastore/backend"
)

// Config is what the datastore needs to run.
type Config struct {
	// Backend is the server's datastore choice: regente's own SQLite at
	// SQLiteFile (the zero value), or the endpoint of an external one.
	Backend backend.Choice
	// SQLiteFile is regente's own SQLite database.
	SQLiteFile string
	// Socket is the unix socket path kine listens on.
	Socket string
	// TLS secures the connection to an external database.
	TLS TLS
	// MemoryDir is where --datastore-in-memory keeps the live SQLite
	// database, on a tmpfs: <run-dir>/datastore. InMemory turns it on;
	// without it, a copy a killed run left there is saved first.
	MemoryDir string
	InMemory  bool
	// SaveInterval is how often the in-memory database is saved to
	// SQLiteFile, when more than heartbeats and events changed.
	SaveInterval time.Duration
}

// TLS names the files of --datastore-cafile, -certfile and -keyfile.
type TLS struct{ CAFile, CertFile, KeyFile string }

// Kine is the datastore component.
type Kine struct {
	cfg    Config
	cancel context.CancelFunc
	wg     sync.WaitGroup
	etcd   endpoint.ETCDConfig
	// saver runs the in-memory database's periodic saves; saved is the
	// lastChange the disk file holds.
	stopSaver context.CancelFunc
	saverDone chan struct{}
	saved     int64
}

var _ component.Component = (*Kine)(nil)

// New returns the kine component.
func New(cfg Config) *Kine { return &Kine{cfg: cfg} }

// Name implements component.Component.
func (k *Kine) Name() string { return "datastore" }

// Start opens the backend and serves the etcd API on the socket. kine's
// Listen returns only once the backend is usable, so Start doubles as the
// readiness gate.
func (k *Kine) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("component", "datastore")
	if k.cfg.Backend.OwnSQLite() {
		if err := k.prepareSQLite(logger); err != nil {
			return err
		}
	}
	forwardLogrus(klog.FromContext(ctx).WithValues("component", "kine"))
	// kine's gRPC server stops when this context ends; it is our own so that
	// Stop, not the process context, decides when the apiserver loses it.
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k.cancel = cancel
	registerDrivers()
	etcd, err := endpoint.Listen(kctx, endpoint.Config{
		Listener:            "unix://" + k.cfg.Socket,
		Endpoint:            wrapScheme(k.endpoint()),
		BackendTLSConfig:    kinetls.Config{CAFile: k.cfg.TLS.CAFile, CertFile: k.cfg.TLS.CertFile, KeyFile: k.cfg.TLS.KeyFile},
		WaitGroup:           &k.wg,
		NotifyInterval:      5 * time.Second,
		EmulatedETCDVersion: "3.6.11",
		CompactTimeout:      5 * time.Second,
		CompactMinRetain:    1000,
		CompactBatchSize:    1000,
		PollBatchSize:       500,
		PollInterval:        time.Second,
	})
	if err != nil {
		cancel()
		return fmt.Errorf("start kine on %s: %w", k.describe(), err)
	}
	k.etcd = etcd
	if k.cfg.InMemory {
		k.startSaver(logger)
	}
	logger.Info("Datastore ready", "backend", k.describe())
	return nil
}

// prepareSQLite readies the database kine opens: the in-memory copy with
// --datastore-in-memory, else the disk file, into which a copy that a
// killed run left in memory is saved first.
func (k *Kine) prepareSQLite(logger klog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(k.cfg.SQLiteFile), 0o700); err != nil {
		return fmt.Errorf("create datastore directory: %w", err)
	}
	if k.cfg.InMemory {
		unsaved, err := loadMemory(logger, k.cfg.MemoryDir, k.cfg.SQLiteFile)
		if err != nil || unsaved {
			k.saved = -1 // the first interval saves it
			return err
		}
		k.saved, err = lastChange(k.liveFile())
		return err
	}
	if k.cfg.MemoryDir != "" {
		found, err := SaveLeftoverMemory(k.cfg.MemoryDir, k.cfg.SQLiteFile)
		if err != nil {
			return err
		}
		if found {
			logger.Info("Saved the in-memory datastore that a killed run with --datastore-in-memory left", "into", k.cfg.SQLiteFile)
		}
	}
	return createSQLite(k.cfg.SQLiteFile)
}

// liveFile is the SQLite file kine opens.
func (k *Kine) liveFile() string {
	if k.cfg.InMemory {
		return filepath.Join(k.cfg.MemoryDir, memoryFileName)
	}
	return k.cfg.SQLiteFile
}

// startSaver saves the in-memory database every SaveInterval.
func (k *Kine) startSaver(logger klog.Logger) {
	ctx, stop := context.WithCancel(context.Background())
	k.stopSaver, k.saverDone = stop, make(chan struct{})
	go func() {
		defer close(k.saverDone)
		ticker := time.NewTicker(k.cfg.SaveInterval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				if err := k.save(logger, false); err != nil {
					logger.Error(err, "Cannot save the in-memory datastore; trying again at the next interval", "into", k.cfg.SQLiteFile)
				}
			}
		}
	}()
}

// save writes the in-memory database to the disk file; unless forced,
// only when more than heartbeats and events changed since the last save.
func (k *Kine) save(logger klog.Logger, force bool) error {
	mem := k.liveFile()
	last, err := lastChange(mem)
	if err != nil {
		return err
	}
	if !force && last == k.saved {
		return nil
	}
	begin := time.Now()
	if err := saveCopy(mem, k.cfg.SQLiteFile); err != nil {
		return fmt.Errorf("save the in-memory datastore into %s: %w", k.cfg.SQLiteFile, err)
	}
	k.saved = last
	var size int64
	if fi, err := os.Stat(k.cfg.SQLiteFile); err == nil {
		size = fi.Size()
	}
	logger.V(1).Info("Saved the in-memory datastore", "into", k.cfg.SQLiteFile, "bytes", size, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// Stop ends kine's gRPC server and waits for its backend to close.
func (k *Kine) Stop(ctx context.Context) error {
	if k.cancel == nil {
		return nil
	}
	k.cancel()
	done := make(chan struct{})
	go func() { k.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("wait for kine to stop: %w", ctx.Err())
	}
	if k.stopSaver == nil {
		return nil // on disk, or kine never started: the memory copy stays for the next start
	}
	k.stopSaver()
	<-k.saverDone
	// The last save, of everything, leaves the disk file current: the
	// next start may go without --datastore-in-memory.
	logger := klog.FromContext(ctx).WithValues("component", "datastore")
	if err := k.save(logger, true); err != nil {
		return fmt.Errorf("%w; the in-memory copy is kept in %s for the next start", err, k.cfg.MemoryDir)
	}
	logger.Info("Saved the in-memory datastore", "into", k.cfg.SQLiteFile)
	return dropMemory(k.cfg.MemoryDir)
}

// EtcdServers is the apiserver's --etcd-servers value.
func (k *Kine) EtcdServers() string { return "unix://" + k.cfg.Socket }

func (k *Kine) endpoint() string {
	if !k.cfg.Backend.OwnSQLite() {
		return k.cfg.Backend.Endpoint
	}
	return "sqlite://" + k.liveFile() + "?" + sqlite.DefaultParams
}

// describe names the backend for logs and errors without its password.
func (k *Kine) describe() string {
	if k.cfg.InMemory {
		return fmt.Sprintf("sqlite in memory (%s), saved to %s every %s when more than heartbeats changed, and at stop", k.liveFile(), k.cfg.SQLiteFile, k.cfg.SaveInterval)
	}
	if k.cfg.Backend.OwnSQLite() {
		return "sqlite " + k.cfg.SQLiteFile
	}
	return k.cfg.Backend.String()
}

// sqliteHeader starts every SQLite 3 database file.
const sqliteHeader = "SQLite format 3\x00"

// sqlitePageSize is the page size of a new SQLite datastore. kine writes
// a row for every change (each lease renewal is one), and the WAL takes
// every page a transaction touches whole: about ten a row (the table, its
// six indexes, the sequence). At 1 KiB instead of SQLite's 4 KiB, an idle
// node writes a quarter of the bytes to its disk; values larger than a
// page spill into overflow pages either way (hack/bench.sh -only writes,
// -only datastores).
const sqlitePageSize = 1024

// createSQLite makes a new, empty datastore file with sqlitePageSize
// pages, which SQLite fixes when the file gets its header (here, from
// the switch to WAL); an existing database keeps the page size it has.
func createSQLite(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return restrictSQLiteFiles(path)
	}
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		return fmt.Errorf("create datastore %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.Exec(fmt.Sprintf("PRAGMA page_size=%d; PRAGMA journal_mode=WAL", sqlitePageSize)); err != nil {
		return fmt.Errorf("create datastore %s: %w", path, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("create datastore %s: %w", path, err)
	}
	return restrictSQLiteFiles(path)
}

// restrictSQLiteFiles makes the database and its WAL owner-only: they hold
// every Secret. SQLite creates them with the umask's mode (0644 as a
// rule) and later gives the WAL and shm the mode of the database, so a
// file an older release left readable is fixed here too.
func restrictSQLiteFiles(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("restrict datastore file %s to its owner: %w", p, err)
		}
	}
	return nil
}

// CheckSQLiteFile refuses a file that exists, is not empty and is not an
// SQLite database: kine would otherwise fail deep inside its schema setup.
func CheckSQLiteFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open datastore file %s: %w", path, err)
	}
	defer f.Close()
	header := make([]byte, len(sqliteHeader))
	n, err := f.Read(header)
	if n == 0 {
		return nil // an empty file is what sqlite itself creates first
	}
	if n < len(header) || string(header) != sqliteHeader {
		return fmt.Errorf("datastore file %s is not an SQLite database (%s): %s", path, readErr(n, err), damagedFileFix)
	}
	f.Close()
	return checkSQLiteIntegrity(path)
}

// damagedFileFix is what to do with a datastore file that cannot be used.
const damagedFileFix = "it was left untouched; restore a snapshot with " +
	"`regente server --cluster-reset --cluster-reset-restore-path <snapshot>` " +
	"(the scheduled ones are in <data-dir>/server/db/snapshots), or move the file away to start an empty cluster"

// checkSQLiteIntegrity runs SQLite's quick_check, which reads every page
// (kine's startup VACUUM reads them all again, so it costs little more):
// a truncated or damaged file is refused by name before kine, which would
// otherwise retry "database disk image is malformed" for ever, opens it.
// Opening it replays a WAL a killed run left, as kine would.
func checkSQLiteIntegrity(path string) error {
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		return fmt.Errorf("open datastore %s to check it: %w", path, err)
	}
	defer db.Close()
	rows, err := db.Query("PRAGMA quick_check(5)")
	if err != nil {
		return fmt.Errorf("datastore file %s is damaged (%v): %s", path, err, damagedFileFix)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("check datastore %s: %w", path, err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return fmt.Errorf("datastore file %s is damaged (SQLite's quick_check: %s): %s", path, strings.Join(problems, "; "), damagedFileFix)
	}
	return nil
}

func readErr(n int, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("wrong header in the first %d bytes", n)
}
