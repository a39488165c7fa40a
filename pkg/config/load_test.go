package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// mapEnv is a lookupEnv backed by a map, so tests never see the real
// environment.
func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// writeFiles creates files (paths relative to dir) with their contents.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// load writes files (plus an empty DIR/config.yaml, since an explicit
// --config must exist) into a temp dir and runs LoadServer. "DIR" in args and
// env values becomes that dir, which is returned; nil args mean
// --config DIR/config.yaml.
func load(t *testing.T, files, env map[string]string, args []string) (*Server, string, error) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"config.yaml": ""})
	writeFiles(t, dir, files)
	if args == nil {
		args = []string{"--config", "DIR/config.yaml"}
	}
	lookup := map[string]string{}
	for k, v := range env {
		lookup[k] = strings.ReplaceAll(v, "DIR", dir)
	}
	s, err := LoadServer(expand(dir, args), mapEnv(lookup))
	return s, dir, err
}

// expand replaces "DIR" in each arg or env value with the test's temp dir.
func expand(dir string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ReplaceAll(s, "DIR", dir)
	}
	return out
}

func TestLoadServer(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		env   map[string]string
		args  []string // nil means: --config DIR/config.yaml
		check func(t *testing.T, s *Server)
	}{
		{
			name: "defaults when nothing is set",
			check: func(t *testing.T, s *Server) {
				want := NewServer()
				want.ConfigFile = s.ConfigFile
				if !reflect.DeepEqual(s, want) {
					t.Errorf("got %+v, want %+v", s, want)
				}
			},
		},
		{
			name:  "file overrides default",
			files: map[string]string{"config.yaml": "data-dir: /file\n"},
			check: wantField(func(s *Server) any { return s.DataDir }, "/file"),
		},
		{
			name:  "env overrides file",
			files: map[string]string{"config.yaml": "data-dir: /file\n"},
			env:   map[string]string{"REGENTE_DATA_DIR": "/env"},
			check: wantField(func(s *Server) any { return s.DataDir }, "/env"),
		},
		{
			name:  "flag overrides env and file",
			files: map[string]string{"config.yaml": "data-dir: /file\n"},
			env:   map[string]string{"REGENTE_DATA_DIR": "/env"},
			args:  []string{"--config", "DIR/config.yaml", "--data-dir", "/flag"},
			check: wantField(func(s *Server) any { return s.DataDir }, "/flag"),
		},
		{
			name:  "empty env var counts as unset",
			files: map[string]string{"config.yaml": "data-dir: /file\n"},
			env:   map[string]string{"REGENTE_DATA_DIR": ""},
			check: wantField(func(s *Server) any { return s.DataDir }, "/file"),
		},
		{
			name:  "REGENTE_URL is the server to join, as K3S_URL is",
			env:   map[string]string{"REGENTE_URL": "https://10.0.0.1:6443"},
			check: wantField(func(s *Server) any { return s.Server }, "https://10.0.0.1:6443"),
		},
		{
			name:  "REGENTE_SERVER beats REGENTE_URL",
			env:   map[string]string{"REGENTE_URL": "https://a:6443", "REGENTE_SERVER": "https://b:6443"},
			check: wantField(func(s *Server) any { return s.Server }, "https://b:6443"),
		},
		{
			name:  "list: file",
			files: map[string]string{"config.yaml": "tls-san: [f1, f2]\n"},
			check: wantField(func(s *Server) any { return s.TLSSANs }, []string{"f1", "f2"}),
		},
		{
			name:  "list: env replaces file and is comma-split",
			files: map[string]string{"config.yaml": "tls-san: [f1, f2]\n"},
			env:   map[string]string{"REGENTE_TLS_SAN": "e1, e2"},
			check: wantField(func(s *Server) any { return s.TLSSANs }, []string{"e1", "e2"}),
		},
		{
			name:  "list: flags replace env and file",
			files: map[string]string{"config.yaml": "tls-san: [f1, f2]\n"},
			env:   map[string]string{"REGENTE_TLS_SAN": "e1"},
			args:  []string{"--config", "DIR/config.yaml", "--tls-san", "c1", "--tls-san", "c2,c3"},
			check: wantField(func(s *Server) any { return s.TLSSANs }, []string{"c1", "c2", "c3"}),
		},
		{
			name: "key+ appends across main file and drop-ins in name order",
			files: map[string]string{
				"config.yaml":             "tls-san: [a]\n",
				"config.yaml.d/20-b.yaml": "tls-san+: [c]\n",
				"config.yaml.d/10-a.yaml": "tls-san+: b\n",
				"config.yaml.d/30.yml":    "tls-san+: [ignored]\n",
				"config.yaml.d/README":    "not yaml at all: [\n",
			},
			check: wantField(func(s *Server) any { return s.TLSSANs }, []string{"a", "b", "c"}),
		},
		{
			name: "key without + in a drop-in replaces",
			files: map[string]string{
				"config.yaml":           "tls-san: [a, b]\n",
				"config.yaml.d/10.yaml": "tls-san: [z]\n",
			},
			check: wantField(func(s *Server) any { return s.TLSSANs }, []string{"z"}),
		},
		{
			name:  "replace and append in one file",
			files: map[string]string{"config.yaml": "tls-san+: [b]\ntls-san: [a]\n"},
			check: wantField(func(s *Server) any { return s.TLSSANs }, []string{"a", "b"}),
		},
		{
			name: "scalars of every YAML type",
			files: map[string]string{"config.yaml": `https-listen-port: 7443
disable-agent: true
debug: "true"
node-name: 123
write-kubeconfig-mode: "0644"
`},
			check: func(t *testing.T, s *Server) {
				got := []any{s.HTTPSListenPort, s.DisableAgent, s.Debug, s.NodeName, s.WriteKubeconfigMode}
				want := []any{7443, true, true, "123", "0644"}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got %v, want %v", got, want)
				}
			},
		},
		{
			name:  "env for a *-arg flag keeps commas",
			env:   map[string]string{"REGENTE_KUBE_APISERVER_ARG": "enable-admission-plugins=A,B"},
			check: wantField(func(s *Server) any { return s.KubeAPIServerArgs }, []string{"enable-admission-plugins=A,B"}),
		},
		{
			name:  "command-line *-arg flag keeps commas",
			args:  []string{"--config", "DIR/config.yaml", "--kube-scheduler-arg", "a=b,c", "--kube-scheduler-arg", "d"},
			check: wantField(func(s *Server) any { return s.KubeSchedulerArgs }, []string{"a=b,c", "d"}),
		},
		{
			name:  "REGENTE_CONFIG names the file",
			files: map[string]string{"other.yaml": "node-name: from-env-file\n"},
			env:   map[string]string{"REGENTE_CONFIG": "DIR/other.yaml"},
			args:  []string{},
			check: wantField(func(s *Server) any { return s.NodeName }, "from-env-file"),
		},
		{
			name:  "--config on the command line beats REGENTE_CONFIG",
			files: map[string]string{"config.yaml": "node-name: flag-file\n"},
			env:   map[string]string{"REGENTE_CONFIG": "DIR/missing.yaml"},
			check: wantField(func(s *Server) any { return s.NodeName }, "flag-file"),
		},
		{
			name:  "empty and comment-only files are fine",
			files: map[string]string{"config.yaml": "", "config.yaml.d/1.yaml": "# nothing\n"},
			check: wantField(func(s *Server) any { return s.DataDir }, "/var/lib/regente"),
		},
		{
			name:  "bad file value is ignored when the flag is on the command line",
			files: map[string]string{"config.yaml": "https-listen-port: abc\n"},
			args:  []string{"--config", "DIR/config.yaml", "--https-listen-port", "1"},
			check: wantField(func(s *Server) any { return s.HTTPSListenPort }, 1),
		},
		{
			name:  "key with no value clears a list",
			files: map[string]string{"config.yaml": "node-ip: [10.0.0.1]\n", "config.yaml.d/1.yaml": "node-ip:\n"},
			check: wantField(func(s *Server) any { return len(s.NodeIPs) }, 0),
		},
		{
			name:  "--config empty disables config files",
			files: map[string]string{"config.yaml": "data-dir: [not, a, scalar]\n"},
			args:  []string{"--config", ""},
			check: wantField(func(s *Server) any { return s.ConfigFile }, ""),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, err := load(t, tt.files, tt.env, tt.args)
			if err != nil {
				t.Fatalf("LoadServer: %v", err)
			}
			tt.check(t, s)
		})
	}
}

func wantField(get func(*Server) any, want any) func(*testing.T, *Server) {
	return func(t *testing.T, s *Server) {
		t.Helper()
		if got := get(s); !reflect.DeepEqual(got, want) {
			t.Errorf("got %#v, want %#v", got, want)
		}
	}
}

func TestLoadServerErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		env     map[string]string
		args    []string // nil means: --config DIR/config.yaml
		want    []string // substrings; DIR is the temp dir
		notWant []string
	}{
		{
			name:  "malformed YAML names the file and line",
			files: map[string]string{"config.yaml": "data-dir: /x\ntls-san: [a\n"},
			want:  []string{"DIR/config.yaml", "not valid YAML", "line"},
		},
		{
			name:  "duplicate key",
			files: map[string]string{"config.yaml": "data-dir: /x\ndata-dir: /y\n"},
			want:  []string{"DIR/config.yaml", "data-dir"},
		},
		{
			name:  "top level is a list",
			files: map[string]string{"config.yaml": "- data-dir\n"},
			want:  []string{"DIR/config.yaml", "mapping", "list"},
		},
		{
			name:  "top level is a scalar",
			files: map[string]string{"config.yaml": "hello\n"},
			want:  []string{"DIR/config.yaml", "mapping"},
		},
		{
			name:  "config key in a file",
			files: map[string]string{"config.yaml": "config: /other.yaml\n"},
			want:  []string{"DIR/config.yaml", `"config"`, "--config or REGENTE_CONFIG"},
		},
		{
			name:  "+ on a scalar flag",
			files: map[string]string{"config.yaml": "data-dir+: /x\n"},
			want:  []string{"DIR/config.yaml", `"data-dir+"`, "list flags only", `"data-dir:"`},
		},
		{
			name:  "list for a scalar flag",
			files: map[string]string{"config.yaml": "data-dir: [/a, /b]\n"},
			want:  []string{"DIR/config.yaml", `"data-dir"`, "list", "single value"},
		},
		{
			name:  "mapping inside a list",
			files: map[string]string{"config.yaml": "tls-san: [{a: b}]\n"},
			want:  []string{"DIR/config.yaml", `"tls-san"`, "item 1 is a mapping"},
		},
		{
			name:  "bad int in file names file and key",
			files: map[string]string{"config.yaml": "https-listen-port: abc\n"},
			want:  []string{"DIR/config.yaml", `"https-listen-port"`, `"abc"`, "integer"},
		},
		{
			name: "bad bool in env names the variable",
			env:  map[string]string{"REGENTE_DEBUG": "maybe"},
			want: []string{"REGENTE_DEBUG", `"maybe"`, "true or false"},
		},
		{
			name: "several problems are reported together",
			files: map[string]string{
				"config.yaml":          "data-dir: [/x]\n",
				"config.yaml.d/1.yaml": "https-listen-port: abc\n",
			},
			want: []string{`"data-dir"`, "DIR/config.yaml.d/1.yaml"},
		},
		{
			name: "explicit --config that does not exist",
			args: []string{"--config", "DIR/nope.yaml"},
			want: []string{"DIR/nope.yaml", "does not exist", "--config"},
		},
		{
			name: "REGENTE_CONFIG that does not exist",
			env:  map[string]string{"REGENTE_CONFIG": "DIR/nope.yaml"},
			args: []string{},
			want: []string{"DIR/nope.yaml", "does not exist"},
		},
		{
			name:    "positional argument, with a password redacted",
			args:    []string{"--config", "DIR/config.yaml", "postgres://u:secret@h/db"},
			want:    []string{"unexpected argument", "postgres://u:***@h/db", "takes only flags"},
			notWant: []string{"secret"},
		},
		{
			name: "unknown flag",
			args: []string{"--foo"},
			want: []string{`unknown flag --foo: run "regente server --help" for the list of flags`},
		},
		{
			name: "unknown flag with suggestion",
			args: []string{"--data-dri=/x"},
			want: []string{"unknown flag --data-dri", "did you mean --data-dir?"},
		},
		{
			name: "unknown shorthand",
			args: []string{"-x"},
			want: []string{"unknown flag -x"},
		},
		{
			name: "bad int on the command line",
			args: []string{"--https-listen-port", "abc"},
			want: []string{"--https-listen-port", `"abc"`, "integer"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dir, err := load(t, tt.files, tt.env, tt.args)
			if err == nil {
				t.Fatal("LoadServer succeeded, want an error")
			}
			t.Log(err)
			for _, w := range expand(dir, tt.want) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q contains %q", err, w)
				}
			}
		})
	}
}

func TestLoadServerHelp(t *testing.T) {
	_, err := LoadServer([]string{"--help"}, mapEnv(nil))
	if !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("got %v, want pflag.ErrHelp", err)
	}
}

func TestMissingDefaultConfigIsFine(t *testing.T) {
	// The default file is only optional; mergeFile must skip it when absent.
	missing := filepath.Join(t.TempDir(), "config.yaml")
	if err := mergeFile(loadRules{verb: "server"}, pflag.NewFlagSet("", pflag.ContinueOnError), map[string]*setting{}, missing, true, func(string) {}); err != nil {
		t.Fatalf("missing optional config file: %v", err)
	}
	// End to end with the real default path, where the test box allows it.
	if _, err := os.Stat(DefaultConfigFile); err == nil {
		t.Skipf("%s exists on this machine", DefaultConfigFile)
	}
	s, err := LoadServer(nil, mapEnv(nil))
	if err != nil {
		t.Fatalf("LoadServer without config: %v", err)
	}
	if s.ConfigFile != DefaultConfigFile {
		t.Errorf("ConfigFile = %q, want %q", s.ConfigFile, DefaultConfigFile)
	}
}

func TestSuggest(t *testing.T) {
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	NewServer().AddFlags(fs)
	for in, want := range map[string]string{
		"data_dir":            "data-dir",
		"tls-sans":            "tls-san",
		"kube-apiserver-args": "kube-apiserver-arg",
		"cluster":             "", // prefix of three flags: no single answer
		"write":               "", // prefix of two
		"disable-agen":        "disable-agent",
		"":                    "",
		"zzzzzz":              "",
	} {
		if got := didYouMean(fs, in); got != want {
			t.Errorf("didYouMean(%q) = %q, want %q", in, got, want)
		}
	}
}

// An unknown key in a config file is skipped with a note naming the file,
// the key and the closest flag, as k3s skips it with a warning; only the
// command line is strict.
func TestLoadServerNotes(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    []string // substrings of the one note; DIR is the temp dir
		notWant []string
	}{
		{
			name:  "unknown key with suggestion",
			files: map[string]string{"config.yaml": "data-dri: /x\n"},
			want:  []string{"DIR/config.yaml", `"data-dri"`, "ignored", `did you mean "data-dir"?`, "regente server --help"},
		},
		{
			name:  "unknown key suggested by prefix, keeping +",
			files: map[string]string{"config.yaml.d/5.yaml": "tls+: [a]\n"},
			want:  []string{"DIR/config.yaml.d/5.yaml", `"tls+"`, `did you mean "tls-san+"?`},
		},
		{
			name:    "unknown key without suggestion",
			files:   map[string]string{"config.yaml": "frobnicate: 1\n"},
			want:    []string{"DIR/config.yaml", `"frobnicate"`, "unknown key"},
			notWant: []string{"did you mean"},
		},
		{
			name:  "an agent's key in a shared file",
			files: map[string]string{"config.yaml": "lb-server-port: 7000\n"},
			want:  []string{"DIR/config.yaml", `"lb-server-port"`, "regente agent", "ignores it"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir, err := load(t, tt.files, nil, nil)
			if err != nil {
				t.Fatalf("LoadServer: %v", err)
			}
			if len(s.Notes()) != 1 {
				t.Fatalf("notes %q, want one", s.Notes())
			}
			note := s.Notes()[0]
			for _, w := range expand(dir, tt.want) {
				if !strings.Contains(note, w) {
					t.Errorf("note %q does not contain %q", note, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(note, w) {
					t.Errorf("note %q contains %q", note, w)
				}
			}
		})
	}
}

// write-kubeconfig-mode means the digits the user typed, quoted or not:
// YAML 1.1 would read 0644 as 420 and 0600 as 384.
func TestLoadServerKubeconfigMode(t *testing.T) {
	for in, want := range map[string]os.FileMode{"644": 0o644, "0644": 0o644, "0600": 0o600, `"0640"`: 0o640, "600": 0o600} {
		s, _, err := load(t, map[string]string{"config.yaml": "write-kubeconfig-mode: " + in + "\n"}, nil, nil)
		if err != nil {
			t.Fatalf("write-kubeconfig-mode: %s: %v", in, err)
		}
		if got := s.KubeconfigMode(); got != want {
			t.Errorf("write-kubeconfig-mode: %s gave %o, want %o", in, got, want)
		}
	}
}

// k3s's environment names, with our prefix, set the same flags.
func TestLoadServerEnvAliases(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"other.yaml": "node-name: from-file\n"})
	s, err := LoadServer(nil, mapEnv(map[string]string{
		"REGENTE_KUBECONFIG_MODE":   "644",
		"REGENTE_KUBECONFIG_OUTPUT": "/k.yaml",
		"REGENTE_CONFIG_FILE":       filepath.Join(dir, "other.yaml"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.KubeconfigMode() != 0o644 || s.WriteKubeconfig != "/k.yaml" || s.NodeName != "from-file" {
		t.Errorf("got mode %o, kubeconfig %q, node name %q; want 644, /k.yaml, from-file", s.KubeconfigMode(), s.WriteKubeconfig, s.NodeName)
	}
	// The flag's own name wins over the alias.
	s, err = LoadServer([]string{"--config", ""}, mapEnv(map[string]string{"REGENTE_WRITE_KUBECONFIG": "/a", "REGENTE_KUBECONFIG_OUTPUT": "/b"}))
	if err != nil || s.WriteKubeconfig != "/a" {
		t.Errorf("got %q, %v; want /a", s.WriteKubeconfig, err)
	}
}

// The S3 options come from the config file, REGENTE_* or AWS's own
// variables, as in k3s; --etcd-s3 without a bucket is refused.
func TestLoadServerS3(t *testing.T) {
	s, _, err := load(t, map[string]string{"config.yaml": "etcd-s3: true\netcd-s3-bucket: snaps\netcd-s3-folder: a/b\netcd-s3-timeout: 30s\n"},
		map[string]string{"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (S3{Enabled: true, Endpoint: "s3.amazonaws.com", Region: "us-east-1", Bucket: "snaps", Folder: "a/b",
		Timeout: 30 * time.Second, AccessKey: "ak", SecretKey: "sk"}); !reflect.DeepEqual(s.S3, want) {
		t.Errorf("got %+v, want %+v", s.S3, want)
	}
	s, _, err = load(t, nil, nil, []string{"--config", "", "--etcd-s3", "--etcd-s3-endpoint", "http://minio:9000", "--etcd-s3-access-key", "ak"})
	if err == nil {
		err = s.Validate()
	}
	for _, want := range []string{"needs --etcd-s3-bucket", "without a scheme", "go together"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error saying %q, got %v", want, err)
		}
	}
}
