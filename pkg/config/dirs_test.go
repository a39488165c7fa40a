package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// A day-2 verb finds the data and run dirs where the server does: flag,
// then REGENTE_*, then the config file and its drop-ins; the file's other
// keys (a server token, a typo) are not the verb's business.
func TestLoadVerb(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"config.yaml":          "data-dir: /from-file\ntoken: secret\netcd-snapshot-dir: /snaps\nfrobnicate: 1\n",
		"config.yaml.d/1.yaml": "run-dir: /run/from-drop-in\n",
	})
	cfgFile := filepath.Join(dir, "config.yaml")
	load := func(args []string, env map[string]string) (*Dirs, *pflag.FlagSet, string) {
		t.Helper()
		d := NewDirs()
		fs := pflag.NewFlagSet("etcd-snapshot", pflag.ContinueOnError)
		d.AddFlags(fs)
		snapDir := fs.String("etcd-snapshot-dir", "", "")
		fs.String("token", "", "")
		if err := LoadVerb("etcd-snapshot", fs, d, args, mapEnv(env), "etcd-snapshot-dir"); err != nil {
			t.Fatalf("LoadVerb(%q): %v", args, err)
		}
		return d, fs, *snapDir
	}

	d, fs, snaps := load([]string{"save", "x"}, map[string]string{"REGENTE_CONFIG": cfgFile})
	if d.DataDir != "/from-file" || d.RunDir != "/run/from-drop-in" || snaps != "/snaps" {
		t.Errorf("from the file: data dir %q, run dir %q, snapshot dir %q", d.DataDir, d.RunDir, snaps)
	}
	if tok, _ := fs.GetString("token"); tok != "" {
		t.Errorf("the server's token key reached the verb's --token: %q", tok)
	}
	if got := strings.Join(fs.Args(), " "); got != "save x" {
		t.Errorf("subcommand %q, want \"save x\"", got)
	}

	d, _, _ = load([]string{"--config", cfgFile}, map[string]string{"REGENTE_DATA_DIR": "/from-env"})
	if d.DataDir != "/from-env" {
		t.Errorf("env under file: data dir %q, want /from-env", d.DataDir)
	}
	d, _, _ = load([]string{"--config", cfgFile, "--data-dir", "/from-flag"}, map[string]string{"REGENTE_DATA_DIR": "/from-env"})
	if d.DataDir != "/from-flag" {
		t.Errorf("flag over env: data dir %q, want /from-flag", d.DataDir)
	}

	d2 := NewDirs()
	fs2 := pflag.NewFlagSet("killall", pflag.ContinueOnError)
	d2.AddFlags(fs2)
	if err := LoadVerb("killall", fs2, d2, []string{"--config", "", "--data-dir", "/"}, nil); err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("--data-dir /: got %v, want an error naming --data-dir", err)
	}
	if err := LoadVerb("killall", fs2, NewDirs(), []string{"--dta-dir", "/x"}, nil); err == nil || !strings.Contains(err.Error(), "did you mean --data-dir") {
		t.Errorf("a mistyped flag: got %v, want a suggestion", err)
	}
}

func TestLoadAgentSkipsServerKeys(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"config.yaml": "server: https://10.0.0.1:6443\ntoken: t\ncluster-cidr: 10.42.0.0/16\n"})
	a, err := LoadAgent([]string{"--config", filepath.Join(dir, "config.yaml")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Notes()) != 1 || !strings.Contains(a.Notes()[0], `"cluster-cidr" is an option of regente server`) {
		t.Errorf("notes %q, want one about cluster-cidr", a.Notes())
	}
}
