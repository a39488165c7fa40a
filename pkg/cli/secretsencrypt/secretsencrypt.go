package secretsencrypt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
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
	var client kubernetes.Interface // nil: the server is stopped
	if datadir.CheckNotLocked(paths.LockFile) != nil {
		_, running, err := kubeconfig.Client(paths.AdminKubeconfig)
		if err != nil {
			return err
		}
		client = running
	}
	s, err := secretsencrypt.Open(paths.CredDir, client)
	if err != nil {
		return err
	}
	defer s.Close()
	cfg := s.Config
	if fs.Arg(0) == "status" {
		return status(ctx, stdout, s)
	}
	if err := s.CheckSingle(ctx); err != nil {
		return err
	}
	apply := func(done string) error {
		if err := s.Apply(ctx); err != nil {
			return err
		}
		if !s.Running() {
			fmt.Fprintln(stdout, "The server is not running: it uses the new configuration when it starts.")
		}
		fmt.Fprintln(stdout, done)
		return nil
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
		return apply("Secrets encryption is enabled: new and updated Secrets are encrypted. Run `regente secrets-encrypt reencrypt` to encrypt the others.")
	case "disable":
		if !cfg.Enabled() {
			fmt.Fprintln(stdout, "Secrets encryption is already disabled.")
			return nil
		}
		cfg.Disable()
		return apply("Secrets encryption is disabled: new and updated Secrets are stored in plain text; the keys stay to read the others. Run `regente secrets-encrypt reencrypt` to decrypt them all.")
	case "prepare":
		if err := cfg.Prepare(now); err != nil {
			return err
		}
		return apply("Prepared a new key; next: `regente secrets-encrypt rotate`.")
	case "rotate":
		if err := cfg.Rotate(); err != nil {
			return err
		}
		return apply("The new key encrypts from now on; next: `regente secrets-encrypt reencrypt`.")
	case "reencrypt":
		return reencrypt(ctx, stdout, s)
	case "rotate-keys":
		if !s.Running() {
			return errors.New("rotate-keys rewrites every Secret, so the server must run: start it, then run this again")
		}
		if err := cfg.AddFirstKey(now); err != nil {
			return err
		}
		if err := s.Apply(ctx); err != nil {
			return err
		}
		return reencrypt(ctx, stdout, s)
	}
	return nil
}

func reencrypt(ctx context.Context, stdout io.Writer, s *secretsencrypt.Session) error {
	begin := time.Now()
	n, err := s.Reencrypt(ctx, func(done, total int) { fmt.Fprintf(stdout, "rewrote %d of %d Secrets\n", done, total) })
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Rewrote %d Secrets in %s; keys in use: %s.\n", n, time.Since(begin).Round(time.Millisecond), strings.Join(s.Config.KeyNames(), ", "))
	return nil
}

func status(ctx context.Context, stdout io.Writer, s *secretsencrypt.Session) error {
	state := "Disabled"
	if s.Config.Enabled() {
		state = "Enabled"
	}
	fmt.Fprintf(stdout, "Encryption Status: %s\nCurrent Rotation Stage: %s\n", state, s.Config.Stage)
	fmt.Fprintf(stdout, "API Server: %s\n", s.APIServerState(ctx))
	fmt.Fprintln(stdout, "Active Key Type Names:")
	for _, k := range s.Config.KeyNames() {
		fmt.Fprintln(stdout, "  "+k)
	}
	return nil
}
