// Package snapshot is the `regente etcd-snapshot` verb (the name k3s users
// know): save, list, delete and prune snapshots of the server's datastore
// (embedded etcd or SQLite) while it runs. Restoring is `regente server --cluster-reset
// --cluster-reset-restore-path <file>`.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/datastore"
	"regente.io/regente/pkg/etcd"
	"regente.io/regente/pkg/join"
	"regente.io/regente/pkg/secretsencrypt"
	"regente.io/regente/pkg/snapshot"
)

const usage = `Usage:
  regente etcd-snapshot save [--name N]          snapshot the running server's datastore
  regente etcd-snapshot ls                       list snapshots
  regente etcd-snapshot delete <name> ...        delete snapshots
  regente etcd-snapshot prune [--snapshot-retention 5]   keep the newest on-demand snapshots
Restore: regente server --cluster-reset --cluster-reset-restore-path <dir>/<name>.db

Flags:
%s`

// save snapshots embedded etcd when the data dir holds a member, else the
// SQLite file, or its live copy in memory under the run dir with
// --datastore-in-memory.
func save(layout datadir.Layout, dir, name string) (*snapshot.Info, error) {
	paths := layout.Server
	keys := snapshot.Keys{TLSDir: paths.TLSDir, EncryptionConfig: secretsencrypt.Path(paths.CredDir),
		Secret: func() (string, error) { return join.ServerSecret(paths.TokenFile) }}
	if etcd.HasData(paths.EtcdDir) {
		cfg, err := etcd.ClientConfig(paths.TLSDir, etcd.LocalEndpoint)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		return snapshot.Sealed(keys, dir, func() (*snapshot.Info, error) { return snapshot.SaveEtcd(ctx, cfg, dir, name) })
	}
	if _, err := os.Stat(paths.SQLiteFile); err != nil {
		return nil, fmt.Errorf("no SQLite datastore at %s and no etcd member beside it (%v): run on the server, with its --data-dir; a Postgres or MySQL datastore is backed up with that database's own tools", paths.SQLiteFile, err)
	}
	return snapshot.Sealed(keys, dir, func() (*snapshot.Info, error) {
		return snapshot.SaveSQLite(datastore.LiveSQLiteFile(paths.SQLiteFile, layout.Run.DatastoreDir), dir, name)
	})
}

// Run runs `regente etcd-snapshot args...`.
func Run(args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("etcd-snapshot", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dirs := config.NewDirs()
	dirs.AddFlags(fs)
	dir := fs.String("etcd-snapshot-dir", "", "Snapshot directory (default: the server's --etcd-snapshot-dir, else <data-dir>/server/db/snapshots)")
	dirFlag := fs.String("dir", "", "Same as --etcd-snapshot-dir")
	host, _ := os.Hostname()
	name := fs.String("name", "on-demand-"+strings.ToLower(host)+"-"+strconv.FormatInt(time.Now().Unix(), 10), "Name of the saved snapshot")
	retention := fs.Int("snapshot-retention", 5, "How many on-demand snapshots prune keeps")
	if err := config.LoadVerb("etcd-snapshot", fs, dirs, args, os.LookupEnv, "etcd-snapshot-dir"); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(stdout, usage, fs.FlagUsages())
			return nil
		}
		return err
	}
	if *dirFlag != "" {
		*dir = *dirFlag
	}
	if fs.NArg() == 0 {
		return errors.New("missing subcommand: save, ls, delete or prune; run \"regente etcd-snapshot --help\"")
	}
	layout := dirs.Layout()
	paths := layout.Server
	if *dir == "" {
		*dir = paths.SnapshotDir
	}
	switch verb, rest := fs.Arg(0), fs.Args()[1:]; verb {
	case "save":
		begin := time.Now()
		info, err := save(layout, *dir, *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "saved %s (%d bytes, sha256 %s) in %s\n", filepath.Join(*dir, info.Name+".db"), info.Size, info.SHA256, time.Since(begin).Round(time.Millisecond))
		return nil
	case "ls", "list":
		list, err := snapshot.List(*dir)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tSIZE\tCREATED\tFILE")
		for _, s := range list {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", s.Name, s.Size, s.Created.Format(time.RFC3339), filepath.Join(*dir, s.Name+".db"))
		}
		return w.Flush()
	case "delete":
		if len(rest) == 0 {
			return errors.New("etcd-snapshot delete: name the snapshots to delete (see regente etcd-snapshot ls)")
		}
		for _, n := range rest {
			if err := snapshot.Delete(*dir, n); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted %s\n", n)
		}
		return nil
	case "prune":
		deleted, err := snapshot.Prune(*dir, "on-demand-", *retention)
		for _, n := range deleted {
			fmt.Fprintf(stdout, "deleted %s\n", n)
		}
		return err
	default:
		return fmt.Errorf("unknown subcommand %q: use save, ls, delete or prune", verb)
	}
}
