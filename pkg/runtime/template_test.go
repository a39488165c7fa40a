package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
)

func testData() TemplateData {
	return TemplateData{Root: "/d/agent/containerd", State: "/run/r/containerd", Socket: "/run/r/containerd/containerd.sock",
		Snapshotter: "overlayfs", SandboxImage: "regente.invalid/pause:1", Runc: "/d/data/x/bin/runc", BinDir: "/d/data/x/bin",
		CNIConfDir: "/d/agent/etc/cni", Runtimes: []Runtime{{Name: "crun", Type: "io.containerd.runc.v2", Binary: "/usr/bin/crun"},
			{Name: "runsc", Type: "io.containerd.runsc.v1"}},
		Registries: "[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = \"/d/certs.d\"\n"}
}

// runtimesOf reads the CRI runtime handlers out of a rendered config.
func runtimesOf(t *testing.T, config []byte) map[string]map[string]any {
	t.Helper()
	var doc struct {
		Plugins map[string]struct {
			Containerd struct {
				Runtimes map[string]map[string]any `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"plugins"`
	}
	if err := toml.Unmarshal(config, &doc); err != nil {
		t.Fatalf("%v\n%s", err, config)
	}
	return doc.Plugins["io.containerd.cri.v1.runtime"].Containerd.Runtimes
}

func TestRenderConfigBuiltIn(t *testing.T) {
	out, used, err := renderConfig(t.TempDir(), testData())
	if err != nil || used != "" {
		t.Fatalf("renderConfig = %q, %v", used, err)
	}
	rt := runtimesOf(t, out)
	if rt["crun"]["options"].(map[string]any)["BinaryName"] != "/usr/bin/crun" || rt["runsc"]["runtime_type"] != "io.containerd.runsc.v1" || rt["runsc"]["options"] != nil {
		t.Errorf("runtimes = %v", rt)
	}
	if !strings.Contains(string(out), `config_path = "/d/certs.d"`) {
		t.Errorf("the registries table is missing:\n%s", out)
	}
}

func TestRenderConfigTemplate(t *testing.T) {
	dir := t.TempDir()
	// config-v3.toml.tmpl wins over config.toml.tmpl.
	os.WriteFile(filepath.Join(dir, "config.toml.tmpl"), []byte("version = 2\n"), 0o600)
	tmpl := filepath.Join(dir, "config-v3.toml.tmpl")
	os.WriteFile(tmpl, []byte(`{{ template "base" . }}
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.custom]
  runtime_type = "io.containerd.runc.v2"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.custom.options]
    BinaryName = "{{ .BinDir }}/runc-custom"
`), 0o600)
	out, used, err := renderConfig(dir, testData())
	if err != nil || used != tmpl {
		t.Fatalf("renderConfig = %q, %v", used, err)
	}
	rt := runtimesOf(t, out)
	if rt["custom"]["options"].(map[string]any)["BinaryName"] != "/d/data/x/bin/runc-custom" || rt["runc"] == nil {
		t.Errorf("runtimes = %v", rt)
	}

	for _, tc := range []struct{ src, want string }{
		{"{{ template \"base\" . }", "config-v3.toml.tmpl"},
		{"{{ .NoSuchField }}", "NoSuchField"},
		{"{{ template \"base\" . }}\n[grpc]\n", "not TOML"},
	} {
		os.WriteFile(tmpl, []byte(tc.src), 0o600)
		_, _, err := renderConfig(dir, testData())
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "move it away") {
			t.Errorf("template %q: %v, want an error with %q and the fix", tc.src, err, tc.want)
		}
	}
}

func TestFindRuntimes(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for dir, names := range map[string][]string{a: {"crun", "runsc"}, b: {"nvidia-container-runtime", "containerd-shim-runsc-v1"}} {
		for _, n := range names {
			os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755)
		}
	}
	os.WriteFile(filepath.Join(a, "nvidia-container-runtime-experimental"), nil, 0o644) // not executable
	got := FindRuntimes(a + ":" + b)
	if RuntimeNames(got) != "nvidia, crun, runsc" || got[1].Binary != filepath.Join(a, "crun") || got[2].Type != "io.containerd.runsc.v1" {
		t.Errorf("FindRuntimes = %+v", got)
	}
	if got := FindRuntimes(a); RuntimeNames(got) != "crun" {
		t.Errorf("runsc without its shim: %+v", got)
	}
}
