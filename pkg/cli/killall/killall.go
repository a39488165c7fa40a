package killall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/datastore"
	"regente.io/regente/pkg/killall"
)

// Run parses args and cleans up the node.
func Run(_ context.Context, args []string, _, stderr io.Writer) error {
	fs := pflag.NewFlagSet("killall", pflag.ContinueOnError)
	dirs := config.NewDirs()
	dirs.AddFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: regente killall [--data-dir DIR] [--run-dir DIR]\n\n"+
			"Stops every pod and shim of the node, deletes pod network namespaces, the pod bridge\n"+
			"and flannel's device, removes the CNI, kube-proxy, flannel and network-policy\n"+
			"firewall rules, and unmounts below the data and run dirs. Stop regente first.\n"+
			"The data is kept.")
		fmt.Fprint(stderr, fs.FlagUsages())
	}
	if err := config.LoadVerb("killall", fs, dirs, args, os.LookupEnv); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fs.Usage()
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: killall takes only flags (see regente killall --help)", fs.Arg(0))
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("killall must run as root: it kills pods and changes the network; try sudo regente killall")
	}
	dataDir, _ := filepath.Abs(dirs.DataDir) // LoadVerb checked both
	runDir, _ := filepath.Abs(dirs.RunDir)
	// The unmounts below would end a --datastore-in-memory copy that a
	// killed server left on its tmpfs: it is saved to the data dir first.
	layout := datadir.New(dataDir, runDir)
	if live := datastore.LiveSQLiteFile(layout.Server.SQLiteFile, layout.Run.DatastoreDir); live != layout.Server.SQLiteFile {
		if err := datadir.CheckNotLocked(layout.Server.LockFile); err != nil {
			return fmt.Errorf("a server keeps its datastore in memory (%s) and still runs: stop it first, it saves the datastore as it stops (%w)", live, err)
		}
	}
	saved, err := datastore.SaveLeftoverMemory(layout.Run.DatastoreDir, layout.Server.SQLiteFile)
	if err != nil {
		return fmt.Errorf("%w; nothing was stopped: stop regente, then run killall again", err)
	}
	if saved {
		fmt.Fprintf(stderr, "saved the in-memory datastore a killed server left into %s\n", layout.Server.SQLiteFile)
	}
	killall.Node(dataDir, runDir)
	return nil
}
