package secretsencrypt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/kubeconfig"
	"regente.io/regente/pkg/secretsencrypt"
)

const usage = `Usage: regente secrets-encrypt <subcommand> [flags]

  status       whether Secrets are encrypted, the rotation stage and the keys
  enable       encrypt Secrets written from now on (then: reencrypt)
  disable      store Secrets written from now on in plain text (then: reencrypt)
  prepare      add a new key that decrypts but does not encrypt yet
  rotate       make the prepared key the one that encrypts
  reencrypt    rewrite every Secret with the current key, then drop the old keys
  rotate-keys  prepare, rotate and reencrypt in one step

Run on a server, as root. While the server runs, each step returns once
its API server uses the new configuration; reencrypt needs it running.

Flags:
%s`

var verbs = []string{"status", "enable", "disable", "prepare", "rotate", "reencrypt", "rotate-keys"}

// applyTimeout bounds the wait for the API server to load a new file; it
// polls the file every few seconds.
const applyTimeout = 2 * time.Minute

// Run runs `regente secrets-encrypt args...`.
func Run(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := pflag.NewFlagSet("secrets-encrypt", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dirs := config.NewDirs()
	dirs.AddFlags(fs)
	provider := fs.String("secrets-encryption-provider", "aescbc", "enable: the kind of key to create when there is none yet: "+strings.Join(secretsencrypt.Providers, " or "))
	if err := config.LoadVerb("secrets-encrypt", fs, dirs, args, os.LookupEnv); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(stdout, usage, fs.FlagUsages())
			return nil
		}
		return err
	}
	paths := dirs.Layout().Server
	if fs.NArg() != 1 || !slices.Contains(verbs, fs.Arg(0)) {
		return fmt.Errorf("give one subcommand of %s; run \"regente secrets-encrypt --help\"", strings.Join(verbs, ", "))
	}
	if !slices.Contains(secretsencrypt.Providers, *provider) {
		return fmt.Errorf("--secrets-encryption-provider %q is not one of %s", *provider, strings.Join(secretsencrypt.Providers, ", "))
	}
	credDir := paths.CredDir
	// One run at a time: each reads, changes and writes the whole file,
	// and a run working from an older copy could drop the key another
	// just made the API server encrypt with.
	unlock, err := lockRun(filepath.Join(credDir, "encryption.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	cfg, err := secretsencrypt.Load(credDir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no encryption configuration in %s: run this on a server, with its --data-dir, after it started once", credDir)
	}
	if err != nil {
		return err
	}
	s := &session{cfg: cfg, out: stdout, ctx: ctx}
	if datadir.CheckNotLocked(paths.LockFile) != nil {
		_, client, err := kubeconfig.Client(paths.AdminKubeconfig)
		if err != nil {
			return err
		}
		s.client = client
	}
	if fs.Arg(0) == "status" {
		return s.status()
	}
	if err := s.single(); err != nil {
		return err
	}
	now := time.Now()
	switch fs.Arg(0) {
	case "enable":
		if cfg.Enabled() {
			fmt.Fprintln(stdout, "Secrets encryption is already enabled.")
			return nil
		}
		if err := cfg.Enable(*provider, now); err != nil {
			return err
		}
		if err := s.apply(); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "Secrets encryption is enabled: new and updated Secrets are encrypted. Run `regente secrets-encrypt reencrypt` to encrypt the others.")
	case "disable":
		if !cfg.Enabled() {
			fmt.Fprintln(stdout, "Secrets encryption is already disabled.")
			return nil
		}
		cfg.Disable()
		if err := s.apply(); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "Secrets encryption is disabled: new and updated Secrets are stored in plain text; the keys stay to read the others. Run `regente secrets-encrypt reencrypt` to decrypt them all.")
	case "prepare":
		if err := cfg.Prepare(now); err != nil {
			return err
		}
		if err := s.apply(); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "Prepared a new key; next: `regente secrets-encrypt rotate`.")
	case "rotate":
		if err := cfg.Rotate(); err != nil {
			return err
		}
		if err := s.apply(); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "The new key encrypts from now on; next: `regente secrets-encrypt reencrypt`.")
	case "reencrypt":
		return s.reencrypt()
	case "rotate-keys":
		if err := cfg.AddFirstKey(now); err != nil {
			return err
		}
		if s.client == nil {
			return errors.New("rotate-keys rewrites every Secret, so the server must run: start it, then run this again")
		}
		if err := s.apply(); err != nil {
			return err
		}
		return s.reencrypt()
	}
	return nil
}

type session struct {
	ctx    context.Context
	cfg    *secretsencrypt.Config
	client kubernetes.Interface // nil when the server is stopped
	out    io.Writer
}

// apply saves the configuration and, when the server runs, waits until
// its API server uses it.
func (s *session) apply() error {
	hash, err := s.cfg.Save()
	if err != nil {
		return err
	}
	if s.client == nil {
		fmt.Fprintln(s.out, "The server is not running: it uses the new configuration when it starts.")
		return nil
	}
	return secretsencrypt.WaitLoaded(s.ctx, s.client, hash, applyTimeout)
}

func (s *session) reencrypt() error {
	if s.client == nil {
		return errors.New("reencrypt rewrites every Secret through the API server, so the server must run: start it, then run this again")
	}
	s.cfg.Stage = secretsencrypt.StageReencryptActive
	if err := s.apply(); err != nil {
		return err
	}
	begin := time.Now()
	n, err := secretsencrypt.Reencrypt(s.ctx, s.client, func(done, total int) {
		fmt.Fprintf(s.out, "rewrote %d of %d Secrets\n", done, total)
	})
	if err != nil {
		return fmt.Errorf("%w (run reencrypt again to finish: it is safe to repeat)", err)
	}
	// Every Secret is now written with the first provider: the others'
	// keys may go.
	s.cfg.DropOldKeys()
	s.cfg.Stage = secretsencrypt.StageReencryptFinished
	if err := s.apply(); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "Rewrote %d Secrets in %s; keys in use: %s.\n", n, time.Since(begin).Round(time.Millisecond), strings.Join(s.cfg.KeyNames(), ", "))
	return nil
}

// single refuses when other API servers share the cluster: each reads
// its own configuration file, and a key only this one holds would leave
// the others unable to read what it writes.
func (s *session) single() error {
	if s.client == nil {
		return nil
	}
	leases, err := s.client.CoordinationV1().Leases(metav1.NamespaceSystem).List(s.ctx, metav1.ListOptions{LabelSelector: "apiserver.kubernetes.io/identity=kube-apiserver"})
	if err != nil {
		return fmt.Errorf("count the API servers: %w", err)
	}
	if n := len(leases.Items); n > 1 {
		return fmt.Errorf("%d API servers share this cluster, and secrets-encrypt changes only this server's key file: with several servers it is not supported yet", n)
	}
	return nil
}

func (s *session) status() error {
	state := "Disabled"
	if s.cfg.Enabled() {
		state = "Enabled"
	}
	fmt.Fprintf(s.out, "Encryption Status: %s\nCurrent Rotation Stage: %s\n", state, s.cfg.Stage)
	b, err := s.cfg.Encode()
	if err != nil {
		return err
	}
	switch {
	case s.client == nil:
		fmt.Fprintln(s.out, "API Server: not running")
	default:
		loaded, err := secretsencrypt.LoadedHash(s.ctx, s.client)
		switch {
		case err != nil:
			fmt.Fprintf(s.out, "API Server: %v\n", err)
		case loaded == secretsencrypt.Hash(b):
			fmt.Fprintln(s.out, "API Server: uses the current configuration")
		default:
			fmt.Fprintf(s.out, "API Server: has not loaded the current configuration yet (it uses %s)\n", loaded)
		}
	}
	fmt.Fprintln(s.out, "Active Key Type Names:")
	for _, k := range s.cfg.KeyNames() {
		fmt.Fprintln(s.out, "  "+k)
	}
	return nil
}

// lockRun takes the exclusive lock at path, or says another run holds it.
func lockRun(path string) (func(), error) {
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
	return func() { f.Close() }, nil
}
