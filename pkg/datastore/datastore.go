package datastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/drivers/sqlite"
	"github.com/k3s-io/kine/pkg/endpoint"
	kinetls "github.com/k3s-io/kine/pkg/tls"
	_ "github.com/mattn/go-sqlite3" // kine's SQLite driver, registered as "sqlite3"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/config"
)

// Config is what the datastore needs to run.
type Config struct {
	// Endpoint is the user's --datastore-endpoint; empty means SQLite at SQLiteFile.
	Endpoint string
	// SQLiteFile is the SQLite database path used when Endpoint is empty.
	SQLiteFile string
	// Socket is the unix socket path kine listens on.
	Socket string
	// TLS secures the connection to an external database.
	TLS TLS
}

// TLS names the files of --datastore-cafile, -certfile and -keyfile.
type TLS struct{ CAFile, CertFile, KeyFile string }

// Kine is the datastore component.
type Kine struct {
	cfg    Config
	cancel context.CancelFunc
	wg     sync.WaitGroup
	etcd   endpoint.ETCDConfig
}

var _ component.Component = (*Kine)(nil)

// New returns the kine component.
func New(cfg Config) *Kine { return &Kine{cfg: cfg} }

// Name implements component.Component.
func (k *Kine) Name() string { return "datastore" }

// Init does nothing: the SQLite file is checked by the server's preflight
// (CheckSQLiteFile) and its directory created by Start, so that no Init
// writes to the data dir.
func (k *Kine) Init(context.Context) error { return nil }

// Start opens the backend and serves the etcd API on the socket. kine's
// Listen returns only once the backend is usable, so Start doubles as the
// readiness gate.
func (k *Kine) Start(ctx context.Context) error {
	if k.cfg.Endpoint == "" {
		if err := os.MkdirAll(filepath.Dir(k.cfg.SQLiteFile), 0o700); err != nil {
			return fmt.Errorf("create datastore directory: %w", err)
		}
		if err := createSQLite(k.cfg.SQLiteFile); err != nil {
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
	klog.FromContext(ctx).Info("Datastore ready", "component", "datastore", "backend", k.describe())
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
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for kine to stop: %w", ctx.Err())
	}
}

// EtcdServers is the apiserver's --etcd-servers value.
func (k *Kine) EtcdServers() string { return "unix://" + k.cfg.Socket }

func (k *Kine) endpoint() string {
	if k.cfg.Endpoint != "" {
		return k.cfg.Endpoint
	}
	return "sqlite://" + k.cfg.SQLiteFile + "?" + sqlite.DefaultParams
}

// describe names the backend for logs and errors without its password.
func (k *Kine) describe() string {
	if k.cfg.Endpoint == "" {
		return "sqlite " + k.cfg.SQLiteFile
	}
	return config.RedactEndpoint(k.cfg.Endpoint)
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
		return nil
	}
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		return fmt.Errorf("create datastore %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.Exec(fmt.Sprintf("PRAGMA page_size=%d; PRAGMA journal_mode=WAL", sqlitePageSize)); err != nil {
		return fmt.Errorf("create datastore %s: %w", path, err)
	}
	return db.Close()
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
		return fmt.Errorf("datastore file %s is not an SQLite database (%s): it was left untouched; "+
			"restore it from a snapshot, or move it away to start with an empty cluster", path, readErr(n, err))
	}
	return nil
}

func readErr(n int, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("wrong header in the first %d bytes", n)
}
