package secretsencrypt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// applyTimeout bounds the wait for the API server to load a new file; it
// polls the file every few seconds.
const applyTimeout = 2 * time.Minute

// Session is one change to a server's encryption configuration: it holds
// the configuration's lock, so that one run at a time reads, changes and
// writes the whole file (a run working from an older copy could drop the
// key another just made the API server encrypt with), and, when the
// server runs, waits for its API server to load each saved step.
type Session struct {
	Config *Config
	client kubernetes.Interface // nil when the server is stopped
	lock   *os.File
}

// Open locks and loads the configuration in dir. client reaches the
// running server's API; nil means the server is stopped, and each change
// takes effect when it starts.
func Open(dir string, client kubernetes.Interface) (*Session, error) {
	lock, err := lockRun(filepath.Join(dir, "encryption.lock"))
	if err != nil {
		return nil, err
	}
	cfg, err := Load(dir)
	if errors.Is(err, os.ErrNotExist) {
		err = fmt.Errorf("no encryption configuration in %s: run this on a server, with its --data-dir, after it started once", dir)
	}
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &Session{Config: cfg, client: client, lock: lock}, nil
}

// Close releases the lock.
func (s *Session) Close() error { return s.lock.Close() }

// Running reports whether the server runs, so that changes are applied live.
func (s *Session) Running() bool { return s.client != nil }

// Apply saves the configuration and, when the server runs, waits until
// its API server uses it.
func (s *Session) Apply(ctx context.Context) error {
	hash, err := s.Config.Save()
	if err != nil || s.client == nil {
		return err
	}
	return WaitLoaded(ctx, s.client, hash, applyTimeout)
}

// Reencrypt rewrites every Secret with the current key through the
// running API server, then drops the keys no Secret needs any more.
// progress hears each batch; it returns how many Secrets were rewritten.
func (s *Session) Reencrypt(ctx context.Context, progress func(done, total int)) (int, error) {
	if s.client == nil {
		return 0, errors.New("reencrypt rewrites every Secret through the API server, so the server must run: start it, then run this again")
	}
	s.Config.Stage = StageReencryptActive
	if err := s.Apply(ctx); err != nil {
		return 0, err
	}
	n, err := Reencrypt(ctx, s.client, progress)
	if err != nil {
		return n, fmt.Errorf("%w (run reencrypt again to finish: it is safe to repeat)", err)
	}
	// Every Secret is now written with the first provider: the others'
	// keys may go.
	s.Config.DropOldKeys()
	s.Config.Stage = StageReencryptFinished
	return n, s.Apply(ctx)
}

// CheckSingle refuses when other API servers share the cluster: each reads
// its own configuration file, and a key only this one holds would leave
// the others unable to read what it writes.
func (s *Session) CheckSingle(ctx context.Context) error {
	if s.client == nil {
		return nil
	}
	leases, err := s.client.CoordinationV1().Leases(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: "apiserver.kubernetes.io/identity=kube-apiserver"})
	if err != nil {
		return fmt.Errorf("count the API servers: %w", err)
	}
	if n := len(leases.Items); n > 1 {
		return fmt.Errorf("%d API servers share this cluster, and secrets-encrypt changes only this server's key file: with several servers it is not supported yet", n)
	}
	return nil
}

// APIServerState says whether the running API server uses the saved
// configuration.
func (s *Session) APIServerState(ctx context.Context) string {
	if s.client == nil {
		return "not running"
	}
	b, err := s.Config.Encode()
	if err != nil {
		return err.Error()
	}
	loaded, err := LoadedHash(ctx, s.client)
	switch {
	case err != nil:
		return err.Error()
	case loaded == Hash(b):
		return "uses the current configuration"
	}
	return fmt.Sprintf("has not loaded the current configuration yet (it uses %s)", loaded)
}

// lockRun takes the exclusive lock at path, or says another run holds it.
func lockRun(path string) (*os.File, error) {
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("no server data in %s (%v): run this on a server, with its --data-dir, after it started once", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another `regente secrets-encrypt` is running (it holds %s): wait for it to finish", path)
	}
	return f, nil
}
