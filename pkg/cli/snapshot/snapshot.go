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
	"regente.io/regente/pkg/datastore/backend"
	"regente.io/regente/pkg/snapshot"
	"regente.io/regente/pkg/snapshot/s3"
	"regente.io/regente/pkg/snapshot/serverstate"
)

const usage = `Usage:
  regente etcd-snapshot save [--name N]          snapshot the running server's datastore
  regente etcd-snapshot ls                       list snapshots
  regente etcd-snapshot delete <name> ...        delete snapshots
  regente etcd-snapshot prune [--snapshot-retention 5]   keep the newest on-demand snapshots
With --etcd-s3 (or --s3) and its bucket flags, each verb works on S3 too:
save uploads, ls lists both, delete and prune remove from both.
Restore: regente server --cluster-reset --cluster-reset-restore-path <dir>/<name>.db
  (from S3: the same --etcd-s3* flags and --cluster-reset-restore-path <name>)

Flags:
%s`

// save snapshots the server's datastore: embedded etcd when the data dir
// holds a member, else the SQLite file, or its live copy in memory under
// the run dir with --datastore-in-memory.
func save(ctx context.Context, layout datadir.Layout, endpoint, dir, name string) (*snapshot.Info, error) {
	store, err := backend.Resolve(backend.Flags{Endpoint: endpoint, EtcdDir: layout.Server.EtcdDir})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return serverstate.Save(ctx, store, layout, dir, name)
}

// Run runs `regente etcd-snapshot args...`.
func Run(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := pflag.NewFlagSet("etcd-snapshot", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dirs := config.NewDirs()
	dirs.AddFlags(fs)
	dir := fs.String("etcd-snapshot-dir", "", "Snapshot directory (default: the server's --etcd-snapshot-dir, else <data-dir>/server/db/snapshots)")
	dirFlag := fs.String("dir", "", "Same as --etcd-snapshot-dir")
	endpoint := fs.String("datastore-endpoint", "", "The server's --datastore-endpoint (default: the config file's); an external database is backed up with its own tools")
	host, _ := os.Hostname()
	name := fs.String("name", "on-demand-"+strings.ToLower(host)+"-"+strconv.FormatInt(time.Now().Unix(), 10), "Name of the saved snapshot")
	retention := fs.Int("snapshot-retention", 5, "How many on-demand snapshots prune keeps")
	s3cfg := config.NewS3()
	s3cfg.AddFlags(fs, true)
	if err := config.LoadVerb("etcd-snapshot", fs, dirs, args, os.LookupEnv, append([]string{"etcd-snapshot-dir", "datastore-endpoint"}, config.S3Flags...)...); err != nil {
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
	var store *s3.Store
	if s3cfg.Enabled {
		var err error
		if store, err = s3.Open(ctx, s3cfg, paths.AdminKubeconfig); err != nil {
			return err
		}
	}
	switch verb, rest := fs.Arg(0), fs.Args()[1:]; verb {
	case "save":
		begin := time.Now()
		info, err := save(ctx, layout, *endpoint, *dir, *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "saved %s (%d bytes, sha256 %s) in %s\n", filepath.Join(*dir, info.Name+".db"), info.Size, info.SHA256, time.Since(begin).Round(time.Millisecond))
		if store != nil {
			begin = time.Now()
			if err := store.Upload(ctx, *dir, info.Name); err != nil {
				return fmt.Errorf("%w (the snapshot is kept on disk)", err)
			}
			fmt.Fprintf(stdout, "uploaded %s to %s in %s\n", info.Name, store.Where(), time.Since(begin).Round(time.Millisecond))
		}
		return nil
	case "ls", "list":
		return list(ctx, stdout, *dir, store)
	case "delete":
		if len(rest) == 0 {
			return errors.New("etcd-snapshot delete: name the snapshots to delete (see regente etcd-snapshot ls)")
		}
		for _, n := range rest {
			if err := remove(ctx, stdout, *dir, store, n); err != nil {
				return err
			}
		}
		return nil
	case "prune":
		deleted, err := snapshot.Prune(*dir, "on-demand-", *retention)
		for _, n := range deleted {
			fmt.Fprintf(stdout, "deleted %s\n", n)
		}
		if err != nil || store == nil {
			return err
		}
		deleted, err = store.Prune(ctx, "on-demand-", *retention)
		for _, n := range deleted {
			fmt.Fprintf(stdout, "deleted %s from %s\n", n, store.Where())
		}
		return err
	default:
		return fmt.Errorf("unknown subcommand %q: use save, ls, delete or prune", verb)
	}
}

// list prints the snapshots on disk, then those in S3 when store is set.
func list(ctx context.Context, stdout io.Writer, dir string, store *s3.Store) error {
	local, err := snapshot.List(dir)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSIZE\tCREATED\tLOCATION")
	for _, s := range local {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", s.Name, s.Size, s.Created.Format(time.RFC3339), filepath.Join(dir, s.Name+".db"))
	}
	if store != nil {
		remote, err := store.List(ctx)
		if err != nil {
			return err
		}
		for _, s := range remote {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", s.Name, s.Size, s.Created.Format(time.RFC3339), store.Where()+"/"+s.Name+".db")
		}
	}
	return w.Flush()
}

// remove deletes the snapshot name from disk and from S3, wherever it is.
func remove(ctx context.Context, stdout io.Writer, dir string, store *s3.Store, name string) error {
	found := false
	if _, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(name, ".db")+".db")); err == nil || store == nil {
		if err := snapshot.Delete(dir, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %s\n", name)
		found = true
	}
	if store != nil {
		ok, err := store.Has(ctx, strings.TrimSuffix(name, ".db"))
		if err != nil {
			return err
		}
		if ok {
			if err := store.Delete(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted %s from %s\n", name, store.Where())
			found = true
		}
	}
	if !found {
		return fmt.Errorf("no snapshot %q in %s or %s (see regente etcd-snapshot ls)", name, dir, store.Where())
	}
	return nil
}
