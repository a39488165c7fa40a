package kubelet

import (
	"testing"

	"sigs.k8s.io/yaml"

	"regente.io/regente/pkg/certs"
)

func TestRenderedConfigParses(t *testing.T) {
	k := New(Config{PKI: &certs.NodePKI{}, RuntimeEndpoint: "unix:///run/regente/containerd/containerd.sock"})
	var cfg map[string]any
	if err := yaml.UnmarshalStrict([]byte(k.renderConfig()), &cfg); err != nil {
		t.Fatalf("rendered kubelet config is not valid YAML: %v\n%s", err, k.renderConfig())
	}
	if cfg["kind"] != "KubeletConfiguration" || cfg["failSwapOn"] != false {
		t.Errorf("unexpected config: %v", cfg)
	}
}

func TestGracefulShutdownOnlyWithLogind(t *testing.T) {
	if got := gracefulShutdown(false); got != "" {
		t.Errorf("without logind: got %q, want nothing", got)
	}
	var cfg map[string]string
	if err := yaml.UnmarshalStrict([]byte(gracefulShutdown(true)), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["shutdownGracePeriod"] != "30s" || cfg["shutdownGracePeriodCriticalPods"] != "10s" {
		t.Errorf("with logind: got %v", cfg)
	}
}
