package killall

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"regente.io/regente/pkg/config"

	"regente.io/regente/pkg/killall"
)

// Run parses args and cleans up the node.
func Run(args []string, stderr io.Writer) error {
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
	killall.Node(dataDir, runDir)
	return nil
}
