package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// FuzzLoad feeds the server's and the agent's one parse path any config
// file, drop-in and REGENTE_* environment (env holds KEY=VALUE lines).
// Whatever they hold, loading, completing and validating return an error
// or a config and never panic.
func FuzzLoad(f *testing.F) {
	for _, seed := range [][3]string{
		{"data-dir: /srv/x\nwrite-kubeconfig-mode: 644\n", "", ""},
		{"tls-san: [a.example.org]\nnode-label+: [a=b]\n", "node-label: [c=d]\n", "REGENTE_NODE_NAME=n1"},
		{"disable: traefik\nkubelet-arg:\n  - max-pods=120\n", "", "REGENTE_KUBECONFIG_MODE=600"},
		{"datastore-endpoint: POSTGRES://u:p@h/db\n", "", ""},
		{"cluster-cidr: 10.42.0.0/16\nservice-cidr: 10.42.0.0/24\n", "", "REGENTE_DISABLE=servicelb,metrics-server"},
		{"server: https://10.0.0.1:6443\ntoken: abc\n", "bogus-key: 1\n", "REGENTE_TOKEN_FILE=/nonexistent"},
		{"- a\n- b\n", "", ""},
		{"write-kubeconfig-mode: 0o7777\n", "", ""},
		{"node-taint: {a: b}\n", "", ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, file, dropIn, env string) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"config.yaml": file, "config.yaml.d/10-fuzz.yaml": dropIn})
		lookup := map[string]string{}
		for _, line := range strings.Split(env, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "REGENTE_") {
				lookup[k] = v
			}
		}
		args := []string{"--config", filepath.Join(dir, "config.yaml")}
		s, err := LoadServer(args, mapEnv(lookup))
		if err == nil {
			if s.Complete() == nil {
				_ = s.Validate()
			}
		} else if errors.Is(err, pflag.ErrHelp) || err.Error() == "" {
			t.Errorf("LoadServer: %v", err)
		}
		a, err := LoadAgent(args, mapEnv(lookup))
		if err == nil {
			_ = a.Validate()
		} else if err.Error() == "" {
			t.Errorf("LoadAgent returned an empty error")
		}
	})
}
