package config

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"regente.io/regente/pkg/datadir"
)

// Dirs are the options that say where a node keeps its state. Every day-2
// verb (etcd-snapshot, token, certificate, secrets-encrypt, killall,
// crictl, ctr) resolves them as server and agent do, so a data dir set
// only in /etc/regente/config.yaml or REGENTE_DATA_DIR is found.
type Dirs struct {
	ConfigFile string // --config
	DataDir    string // --data-dir
	RunDir     string // --run-dir
}

// NewDirs returns Dirs holding the defaults.
func NewDirs() *Dirs {
	return &Dirs{ConfigFile: DefaultConfigFile, DataDir: datadir.DefaultDataDir, RunDir: datadir.DefaultRunDir}
}

// AddFlags registers --config, --data-dir and --run-dir on fs.
func (d *Dirs) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&d.ConfigFile, "config", d.ConfigFile, "The node's config file, for its data-dir and run-dir (env REGENTE_CONFIG)")
	fs.StringVar(&d.DataDir, "data-dir", d.DataDir, "The node's data dir (default: the config file's, or REGENTE_DATA_DIR)")
	fs.StringVar(&d.RunDir, "run-dir", d.RunDir, "The node's run dir (default: the config file's, or REGENTE_RUN_DIR)")
}

// Layout returns the node's directory layout.
func (d *Dirs) Layout() datadir.Layout { return datadir.New(d.DataDir, d.RunDir) }

// LoadVerb parses a day-2 verb's args into fs, which holds the verb's own
// flags and those of d.AddFlags. The flags the command line leaves unset
// among --data-dir, --run-dir and shared (flags of the verb named as
// server options, such as etcd-snapshot-dir) then come from the config
// files and REGENTE_* variables, as for server and agent; the files' other
// keys are the server's or the agent's and are skipped. Positional
// arguments (subcommands) stay in fs.Args().
func LoadVerb(verb string, fs *pflag.FlagSet, d *Dirs, args []string, lookupEnv func(string) (string, bool), shared ...string) error {
	r := loadRules{verb: verb, only: append([]string{"data-dir", "run-dir"}, shared...), positional: true}
	if _, err := loadFlags(r, fs, &d.ConfigFile, args, lookupEnv); err != nil {
		return err
	}
	for _, dir := range []struct{ flag, path string }{{"data-dir", d.DataDir}, {"run-dir", d.RunDir}} {
		abs, err := filepath.Abs(dir.path)
		if err != nil || abs == "/" {
			return fmt.Errorf("--%s %q must name a node's directory, e.g. %s", dir.flag, dir.path, datadir.DefaultDataDir)
		}
	}
	return nil
}

// LoadDirs resolves the node's dirs from the config files and the
// environment alone, for verbs that hand their whole command line to an
// upstream tool (crictl, ctr).
func LoadDirs(verb string, lookupEnv func(string) (string, bool)) (*Dirs, error) {
	d := NewDirs()
	fs := pflag.NewFlagSet(verb, pflag.ContinueOnError)
	d.AddFlags(fs)
	return d, LoadVerb(verb, fs, d, nil, lookupEnv)
}
