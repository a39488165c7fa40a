package killall

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"regente.io/regente/pkg/killall"
)

// Run parses args and cleans up the node.
func Run(args []string, stderr io.Writer) error {
	fs := pflag.NewFlagSet("killall", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "/var/lib/regente", "the node's --data-dir")
	runDir := fs.String("run-dir", "/run/regente", "the node's run dir")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: regente killall [--data-dir DIR] [--run-dir DIR]\n\n"+
			"Stops every pod and shim of the node, deletes pod network namespaces, the pod bridge\n"+
			"and flannel's device, removes the CNI, kube-proxy, flannel and network-policy\n"+
			"firewall rules, and unmounts below the data and run dirs. Stop regente first.\n"+
			"The data is kept.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: killall takes only flags (see regente killall --help)", fs.Arg(0))
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("killall must run as root: it kills pods and changes the network; try sudo regente killall")
	}
	for _, d := range []*string{dataDir, runDir} {
		abs, err := filepath.Abs(*d)
		if err != nil || abs == "/" {
			return fmt.Errorf("--data-dir and --run-dir must name a node's directory, not %q", *d)
		}
		*d = abs
	}
	killall.Node(*dataDir, *runDir)
	return nil
}
