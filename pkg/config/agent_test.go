package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadAgentEnvironment(t *testing.T) {
	env := map[string]string{"REGENTE_URL": "https://10.0.0.1:6443", "REGENTE_TOKEN": "K10abc::server:x"}
	a, err := LoadAgent([]string{"--config", ""}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if a.Server != "https://10.0.0.1:6443" || a.Token != "K10abc::server:x" {
		t.Errorf("REGENTE_URL/REGENTE_TOKEN: got server %q token %q", a.Server, a.Token)
	}
	// REGENTE_SERVER, the flag's own variable, wins over the alias.
	env["REGENTE_SERVER"] = "https://10.0.0.2:6443"
	if a, _ = LoadAgent([]string{"--config", ""}, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); a.Server != "https://10.0.0.2:6443" {
		t.Errorf("REGENTE_SERVER: got %q", a.Server)
	}
}

func TestAgentValidateNamesTheFix(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--token", "x"}, "--server is not set"},
		{[]string{"--server", "http://10.0.0.1:6443", "--token", "x"}, "must be an https:// URL"},
		{[]string{"--server", "https://10.0.0.1:6443"}, "no join token"},
		{[]string{"--server", "https://10.0.0.1:6443", "--token", "x", "--node-ip", "nope"}, "--node-ip \"nope\" is not an IP"},
		{[]string{"--server", "https://10.0.0.1:6443", "--token", "x", "--data-dir", "rel"}, "not an absolute path"},
		{[]string{"--server", "https://10.0.0.1:6443", "--token", "x", "--kubelet-arg", "=1"}, "missing the flag name"},
	} {
		a, err := LoadAgent(append([]string{"--config", ""}, tc.args...), nil)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if err := a.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, err := LoadAgent([]string{"--config", "", "--tokn", "x"}, nil); err == nil || !strings.Contains(err.Error(), "did you mean --token") ||
		!strings.Contains(err.Error(), "regente agent --help") {
		t.Errorf("unknown flag error: %v", err)
	}
}

func TestPrivateRegistryFlagAndConfigKey(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte("private-registry: /srv/registries.yaml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadServer([]string{"--config", ""}, nil)
	if err != nil || s.PrivateRegistry != DefaultPrivateRegistry {
		t.Errorf("server default: %q %v", s.PrivateRegistry, err)
	}
	if s, err = LoadServer([]string{"--config", cfgFile}, nil); err != nil || s.PrivateRegistry != "/srv/registries.yaml" {
		t.Errorf("server config key: %q %v", s.PrivateRegistry, err)
	}
	a, err := LoadAgent([]string{"--config", cfgFile, "--private-registry", "/x.yaml"}, nil)
	if err != nil || a.PrivateRegistry != "/x.yaml" {
		t.Errorf("agent flag over config key: %q %v", a.PrivateRegistry, err)
	}
	if a, err = LoadAgent([]string{"--config", ""}, nil); err != nil || a.PrivateRegistry != DefaultPrivateRegistry {
		t.Errorf("agent default: %q %v", a.PrivateRegistry, err)
	}
}
