package registries

import (
	"path/filepath"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
)

// FuzzParse feeds Parse any registries.yaml. What it accepts must render
// into hosts.toml files that containerd's TOML parser reads back with the
// same endpoints, each in a certs.d directory of its own: a key or an
// endpoint must never inject TOML or reach outside certs.d.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"mirrors:\n  docker.io:\n    endpoint: [\"https://mirror.example.com:5000\"]\n",
		"mirrors:\n  \"*\":\n    endpoint: [\"http://10.0.0.1:5000/v2\"]\nconfigs:\n  \"*\":\n    tls:\n      insecure_skip_verify: true\n",
		"configs:\n  registry.example.com:\n    auth:\n      username: u\n      password: p\n    tls:\n      ca_file: ca.pem\n",
		"mirrors:\n  ..:\n    endpoint: [\"https://a\"]\n",
		"mirrors:\n  a:\n    endpoint: [\"https://x/\\\"]\"]\n",
		"mirrors: []\n",
		"configs:\n  a:\n    auth:\n      auth: dTpw\n",
		"- 1\n",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data string) {
		file := filepath.Join(t.TempDir(), "registries.yaml")
		r, err := Parse(file, []byte(data))
		if err != nil {
			if !strings.Contains(err.Error(), file) {
				t.Errorf("Parse's error does not name the file: %v", err)
			}
			return
		}
		for dir, content := range r.HostsFiles() {
			if dir == "" || dir == "." || dir == ".." || strings.ContainsAny(dir, `/\`) {
				t.Errorf("registry directory %q is not one path element under certs.d", dir)
			}
			var doc struct {
				Host map[string]map[string]any `toml:"host"`
			}
			if err := toml.Unmarshal([]byte(content), &doc); err != nil {
				t.Fatalf("hosts.toml for %q is not valid TOML: %v\n%s", dir, err, content)
			}
			name := dir
			if dir == defaultDir {
				name = Wildcard
			}
			want := 0
			for _, e := range r.Mirrors[name].Endpoints {
				if isDefaultEndpoint(name, e) {
					continue
				}
				want++
				if _, ok := doc.Host[e]; !ok {
					t.Errorf("hosts.toml for %q lost the endpoint %q:\n%s", dir, e, content)
				}
			}
			if len(doc.Host) != want {
				t.Errorf("hosts.toml for %q has %d hosts, want %d:\n%s", dir, len(doc.Host), want, content)
			}
		}
		cri := r.CRIConfig(t.TempDir())
		var doc struct {
			Plugins map[string]struct {
				Registry struct {
					Configs map[string]struct {
						Auth map[string]string `toml:"auth"`
					} `toml:"configs"`
				} `toml:"registry"`
			} `toml:"plugins"`
		}
		if err := toml.Unmarshal([]byte(cri), &doc); err != nil {
			t.Fatalf("the CRI registry config is not valid TOML: %v\n%s", err, cri)
		}
		got := doc.Plugins["io.containerd.cri.v1.images"].Registry.Configs
		for host, c := range r.Configs {
			if c.Auth == nil {
				continue
			}
			auth := got[host].Auth
			if auth["username"] != c.Auth.Username || auth["password"] != c.Auth.Password ||
				auth["auth"] != c.Auth.Auth || auth["identitytoken"] != c.Auth.IdentityToken {
				t.Errorf("the credentials of %q read back as %v from:\n%s", host, auth, cri)
			}
		}
	})
}
