package agent

import (
	"slices"
	"testing"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/datadir"
)

func names(cs []component.Component) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name())
	}
	return out
}

func TestComponentsWithoutKubeProxy(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dirs: datadir.New(dir, dir), NodeName: "n1"}
	if got := names(Components(cfg)); !slices.Contains(got, "kube-proxy") {
		t.Fatalf("components %v lack kube-proxy", got)
	}
	cfg.DisableKubeProxy = true
	got := names(Components(cfg))
	if slices.Contains(got, "kube-proxy") || !slices.Contains(got, "kube-proxy-disabled") {
		t.Fatalf("with DisableKubeProxy, components are %v", got)
	}
}
