package kubelet

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"regente.io/regente/pkg/certs"
)

func writeTunables(t *testing.T, values map[string]int) string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range KernelDefaults() {
		v, ok := values[k.Name]
		if !ok {
			v = k.Value
		}
		path := filepath.Join(dir, k.Name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(strconv.Itoa(v)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCheckKernelDefaults(t *testing.T) {
	if err := CheckKernelDefaults(writeTunables(t, nil)); err != nil {
		t.Errorf("upstream's values: %v", err)
	}
	err := CheckKernelDefaults(writeTunables(t, map[string]int{"vm/overcommit_memory": 0, "kernel/panic": 0}))
	if err == nil {
		t.Fatal("two tunables differ, and no error")
	}
	for _, want := range []string{"vm.overcommit_memory is 0, the kubelet needs 1", "kernel.panic is 0, the kubelet needs 10", SysctlFile, "sysctl --system", "kernel.keys.root_maxbytes=25000000"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "vm.panic_on_oom is") {
		t.Errorf("error %q names a tunable that is right", err)
	}
}

func TestRenderedConfigProtectsKernelDefaults(t *testing.T) {
	k := New(Config{PKI: &certs.NodePKI{}, ProtectKernelDefaults: true})
	if !strings.Contains(k.renderConfig(), "\nprotectKernelDefaults: true\n") {
		t.Errorf("config does not protect kernel defaults:\n%s", k.renderConfig())
	}
}
