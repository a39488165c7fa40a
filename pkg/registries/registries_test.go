package registries

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI writes a self-signed CA (ca.pem) and a client pair it signed
// (client.pem, client-key.pem) into dir.
func testPKI(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, data := range map[string][]byte{
		"ca.pem":         cert,
		"client.pem":     cert,
		"client-key.pem": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"not-a-cert.pem": []byte("hello"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	testPKI(t, dir)
	file := filepath.Join(dir, "registries.yaml")
	for _, tc := range []struct {
		name, yaml string
		want       []string // each must appear in the error
	}{
		{"unknown top-level key", "mirror:\n  a.test: {}\n",
			[]string{file, `unknown key mirror: did you mean "mirrors"?`}},
		{"unknown mirror key", "mirrors:\n  registry.test:\n    endpoints: [\"https://m.test\"]\n",
			[]string{file, `unknown key mirrors."registry.test".endpoints: did you mean "endpoint"?`}},
		{"unknown auth key names the known ones", "configs:\n  m.test:\n    auth: {username: u, password: p, token: t}\n",
			[]string{`unknown key configs."m.test".auth.token`, "username, password, auth, identitytoken"}},
		{"unknown tls key", "configs:\n  m.test:\n    tls: {insecure: true}\n",
			[]string{`unknown key configs."m.test".tls.insecure`}},
		{"endpoint not a URL", "mirrors:\n  registry.test:\n    endpoint: [\"m.test:5000\"]\n",
			[]string{`key mirrors."registry.test".endpoint: item 1 "m.test:5000"`}},
		{"endpoint bad scheme", "mirrors:\n  registry.test:\n    endpoint: [\"https://ok.test\", \"ftp://m.test\"]\n",
			[]string{`item 2 "ftp://m.test" has the scheme "ftp"`}},
		{"endpoint as a string", "mirrors:\n  registry.test:\n    endpoint: https://m.test\n",
			[]string{"must be a list of URLs"}},
		{"registry key with scheme", "mirrors:\n  https://registry.test:\n    endpoint: [\"https://m.test\"]\n",
			[]string{`key mirrors."https://registry.test"`, "without scheme or path"}},
		{"rewrite is refused", "mirrors:\n  registry.test:\n    endpoint: [\"https://m.test\"]\n    rewrite: {\"^a/(.*)\": \"b/$1\"}\n",
			[]string{`key mirrors."registry.test".rewrite`, "cannot rewrite repository names"}},
		{"missing ca_file", "configs:\n  m.test:\n    tls: {ca_file: /nonexistent/ca.pem}\n",
			[]string{`key configs."m.test".tls.ca_file`, "/nonexistent/ca.pem", "no such file"}},
		{"ca_file not PEM", "configs:\n  m.test:\n    tls: {ca_file: not-a-cert.pem}\n",
			[]string{filepath.Join(dir, "not-a-cert.pem") + " holds no PEM certificate"}},
		{"cert without key", "configs:\n  m.test:\n    tls: {cert_file: client.pem}\n",
			[]string{"cert_file and key_file go together"}},
		{"username without password", "configs:\n  m.test:\n    auth: {username: u}\n",
			[]string{"username and password go together"}},
		{"two auth methods", "configs:\n  m.test:\n    auth: {username: u, password: p, identitytoken: t}\n",
			[]string{"give only one of"}},
		{"auth not base64 user:pass", "configs:\n  m.test:\n    auth: {auth: bm9jb2xvbg==}\n",
			[]string{`configs."m.test".auth.auth: must be the base64 of "username:password"`}},
		{"wildcard credentials", "configs:\n  \"*\":\n    auth: {username: u, password: p}\n",
			[]string{`configs."*".auth: credentials cannot apply to every registry`}},
		{"numeric password", "configs:\n  m.test:\n    auth: {username: u, password: 1234}\n",
			[]string{`configs."m.test".auth.password: must be a string, not a number (quote it)`}},
		{"skip verify not bool", "configs:\n  m.test:\n    tls: {insecure_skip_verify: \"yes\"}\n",
			[]string{"insecure_skip_verify: must be true or false"}},
		{"every problem at once", "mirrors:\n  a.test: {bad: 1}\nconfigs:\n  b.test: {worse: 2}\n",
			[]string{`mirrors."a.test".bad`, `configs."b.test".worse`}},
		{"duplicate keys", "mirrors: {}\nmirrors: {}\n", []string{file, "not valid YAML"}},
		{"not a mapping", "- a\n", []string{"the top level must be a mapping"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(file, []byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registries.yaml")
	if r, err := Load(path, true); err != nil || len(r.HostsFiles()) != 0 {
		t.Errorf("missing default file: %v %v, want an empty configuration", r, err)
	}
	if _, err := Load(path, false); err == nil || !strings.Contains(err.Error(), "--private-registry "+path+" does not exist") {
		t.Errorf("missing explicit file: %v", err)
	}
}

func TestRender(t *testing.T) {
	dir := t.TempDir()
	testPKI(t, dir)
	file := filepath.Join(dir, "registries.yaml")
	header := "# Generated by regente from " + file + " at every start; edits are overwritten.\n"
	for _, tc := range []struct {
		name  string
		yaml  string
		hosts map[string]string
		cri   string
	}{
		{
			name:  "empty file",
			yaml:  "# nothing yet\n",
			hosts: map[string]string{},
			cri:   "[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = \"/certs.d\"\n",
		},
		{
			name: "mirror with TLS and auth on its endpoint",
			yaml: `mirrors:
  registry.test:
    endpoint:
      - https://mirror.test:5000
      - http://plain.test:8080/prefix
      - https://registry.test/v2
configs:
  mirror.test:5000:
    auth: {username: user, password: "p\"w"}
    tls: {ca_file: ca.pem, cert_file: client.pem, key_file: client-key.pem}
`,
			hosts: map[string]string{
				"registry.test": header + `
[host."https://mirror.test:5000"]
  capabilities = ["pull", "resolve"]
  ca = "` + dir + `/ca.pem"
  client = [["` + dir + `/client.pem", "` + dir + `/client-key.pem"]]

[host."http://plain.test:8080/prefix"]
  capabilities = ["pull", "resolve"]
`,
				"mirror.test:5000": header + `ca = "` + dir + `/ca.pem"
client = [["` + dir + `/client.pem", "` + dir + `/client-key.pem"]]
`,
			},
			cri: `[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = "/certs.d"
  [plugins.'io.containerd.cri.v1.images'.registry.configs."mirror.test:5000".auth]
    username = "user"
    password = "p\"w"
`,
		},
		{
			name: "wildcard mirror and config apply where no entry is",
			yaml: `mirrors:
  "*":
    endpoint: ["https://cache.test"]
configs:
  "*":
    tls: {insecure_skip_verify: true}
  own.test:
  token.test:
    auth: {identitytoken: abc}
`,
			hosts: map[string]string{
				"_default": header + `skip_verify = true

[host."https://cache.test"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
`,
				// An entry of its own, even an empty one, overrides the wildcard.
				"own.test":   header,
				"token.test": header,
			},
			cri: `[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = "/certs.d"
  [plugins.'io.containerd.cri.v1.images'.registry.configs."token.test".auth]
    identitytoken = "abc"
`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(file, []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			got := r.HostsFiles()
			if len(got) != len(tc.hosts) {
				t.Errorf("got host dirs %v, want %d", keys(got), len(tc.hosts))
			}
			for name, want := range tc.hosts {
				if got[name] != want {
					t.Errorf("%s/hosts.toml:\n%s\nwant:\n%s", name, got[name], want)
				}
			}
			if cri := r.CRIConfig("/certs.d"); cri != tc.cri {
				t.Errorf("CRI config:\n%s\nwant:\n%s", cri, tc.cri)
			}
		})
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestWriteHostsDirRemovesOnlyItsStaleDirs(t *testing.T) {
	dir := t.TempDir()
	first := map[string]string{"old.test": generatedBy + "x\n", "kept.test": generatedBy + "x\n"}
	if _, err := WriteHostsDir(dir, first); err != nil {
		t.Fatal(err)
	}
	// A directory someone else put there stays.
	if err := os.MkdirAll(filepath.Join(dir, "manual.test"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manual.test", "hosts.toml"), []byte("server = \"https://manual.test\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	removed, err := WriteHostsDir(dir, map[string]string{"kept.test": generatedBy + "y\n"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(removed, ",") != "old.test" {
		t.Errorf("removed %v, want [old.test]", removed)
	}
	for name, want := range map[string]bool{"old.test": false, "kept.test": true, "manual.test": true} {
		if _, err := os.Stat(filepath.Join(dir, name, "hosts.toml")); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", name, err == nil, want)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "kept.test", "hosts.toml"))
	if string(b) != generatedBy+"y\n" {
		t.Errorf("kept.test not rewritten: %q", b)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "kept.test", "hosts.toml")); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestTOMLString(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:     `"plain"`,
		`a"b\c`:     `"a\"b\\c"`,
		"tab\tnl\n": `"tab\tnl\n"`,
		"bell\x07":  `"bell\u0007"`,
		"unicode é": `"unicode é"`,
	} {
		if got := tomlString(in); got != want {
			t.Errorf("tomlString(%q) = %s, want %s", in, got, want)
		}
	}
}
