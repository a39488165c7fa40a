package certificate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/datadir"
)

const usage = `Usage:
  regente certificate check [--data-dir DIR]          list the certificates and when they expire
  regente certificate rotate [--service NAME,...]     new leaf certificates and keys at the next start
  regente certificate rotate-ca                       new cluster CAs, cross-signed by the old ones

rotate and rotate-ca change files regente reads at start: stop regente
first, run them, then start it. Old files are copied to a backup dir
beside the TLS dir. Leaf certificates are also renewed at every start
when fewer than 90 days remain.

Flags:
%s`

// Run runs `regente certificate args...`.
func Run(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := pflag.NewFlagSet("certificate", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dirs := config.NewDirs()
	dirs.AddFlags(fs)
	services := fs.StringSlice("service", nil, "rotate: only these certificates (file names without .crt, as check lists them); default all leaf certificates")
	if err := config.LoadVerb("certificate", fs, dirs, args, os.LookupEnv); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(stdout, usage, fs.FlagUsages())
			return nil
		}
		return err
	}
	layout := dirs.Layout()
	if fs.NArg() != 1 {
		return errors.New("give one subcommand: check, rotate or rotate-ca; run \"regente certificate --help\"")
	}
	serverTLS, agentTLS := layout.Server.TLSDir, layout.Agent.TLSDir
	now := time.Now()
	switch fs.Arg(0) {
	case "check":
		return check(stdout, now, serverTLS, agentTLS)
	case "rotate":
		if err := stopped(layout); err != nil {
			return err
		}
		rotated, err := certs.RotateNodeLeaves([]string{serverTLS, agentTLS}, *services, now)
		for _, r := range rotated {
			fmt.Fprintf(stdout, "moved %s from %s to %s\n", strings.Join(r.Names, ", "), r.Dir, r.Backup)
		}
		if err != nil {
			return err
		}
		if len(rotated) == 0 {
			return fmt.Errorf("no certificates under %s: give the --data-dir of a server or agent", layout.DataDir)
		}
		fmt.Fprintln(stdout, "Start regente: it issues new certificates and keys for them, and rewrites the kubeconfigs.")
		return nil
	case "rotate-ca":
		if err := stopped(layout); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(serverTLS, "server-ca.key")); err != nil {
			return fmt.Errorf("no cluster CA in %s (%v): rotate-ca runs on a server, with its --data-dir", serverTLS, err)
		}
		r, err := certs.RotateCA(serverTLS, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Replaced %s; the old files are in %s.\n", strings.Join(r.Rotated, ", "), r.Backup)
		if len(r.Expired) > 0 {
			fmt.Fprintf(stdout, "%s had expired: nothing trusts it any more, so every node must join again with the new token.\n", strings.Join(r.Expired, ", "))
		}
		fmt.Fprintln(stdout, "Start regente: it issues every certificate from the new CAs and rewrites the kubeconfigs and the join token.\n"+
			"Nodes that joined keep working (the old CAs stay trusted and the new ones are cross-signed by them);\n"+
			"new nodes join with the new token in "+layout.Server.TokenFile+".")
		return nil
	default:
		return fmt.Errorf("unknown subcommand %q: use check, rotate or rotate-ca", fs.Arg(0))
	}
}

// stopped refuses while a server or agent runs on the data dir: it would
// keep using the old files until restarted, and a CA changed under a
// running server leaves its leaves signed by a CA it no longer has.
func stopped(layout datadir.Layout) error {
	for _, lock := range []string{layout.Server.LockFile, layout.Agent.LockFile} {
		if err := datadir.CheckNotLocked(lock); err != nil {
			return fmt.Errorf("%w (systemctl stop regente), then run this again", err)
		}
	}
	return nil
}

func check(stdout io.Writer, now time.Time, dirs ...string) error {
	infos, err := certs.Inventory(dirs...)
	if err != nil {
		return err
	}
	if len(infos) == 0 {
		return fmt.Errorf("no certificates in %s: give the --data-dir of a server or agent", strings.Join(dirs, " or "))
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FILE\tSUBJECT\tISSUER\tEXPIRES\tDAYS LEFT\tSTATUS")
	expired := 0
	for _, c := range infos {
		status, gone := c.Status(now)
		if gone {
			expired++
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", c.File, c.Subject, c.Issuer, c.NotAfter.UTC().Format(time.RFC3339), int(c.NotAfter.Sub(now).Hours()/24), status)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if expired > 0 {
		return fmt.Errorf("%d certificates have expired: start regente to renew the leaf certificates, or run `regente certificate rotate-ca` for an expired CA", expired)
	}
	return nil
}
