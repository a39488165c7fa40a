package apiserver

import (
	"slices"
	"testing"

	psaload "k8s.io/pod-security-admission/admission/api/load"
	"sigs.k8s.io/yaml"

	"regente.io/regente/pkg/certs"
)

// TestAdmissionConfigLoads reads the PodSecurity configuration the way
// the admission plugin does, so a typo fails here rather than at start.
func TestAdmissionConfigLoads(t *testing.T) {
	h := &Hardening{PodSecurityLevel: "restricted", PodSecurityExempt: []string{"kube-system"}}
	var admission struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Plugins    []struct {
			Name          string         `json:"name"`
			Configuration map[string]any `json:"configuration"`
		} `json:"plugins"`
	}
	if err := yaml.UnmarshalStrict([]byte(h.admissionConfig()), &admission); err != nil {
		t.Fatalf("admission config: %v\n%s", err, h.admissionConfig())
	}
	if len(admission.Plugins) != 1 || admission.Plugins[0].Name != "PodSecurity" {
		t.Fatalf("plugins: %+v", admission.Plugins)
	}
	data, err := yaml.Marshal(admission.Plugins[0].Configuration)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := psaload.LoadFromData(data)
	if err != nil {
		t.Fatalf("PodSecurity configuration: %v\n%s", err, data)
	}
	if cfg.Defaults.Enforce != "restricted" || cfg.Defaults.Warn != "restricted" || !slices.Equal(cfg.Exemptions.Namespaces, []string{"kube-system"}) {
		t.Errorf("loaded %+v", cfg)
	}
}

func TestHardeningArgsParse(t *testing.T) {
	a := New(Config{ConfigDir: t.TempDir(), PKI: certs.Layout(t.TempDir()), Hardening: &Hardening{AuditLog: "/var/lib/regente/server/logs/audit.log", PodSecurityLevel: "restricted"}})
	if err := a.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := a.opts.Audit.LogOptions.Path; got != "/var/lib/regente/server/logs/audit.log" {
		t.Errorf("audit log path %q", got)
	}
	if a.opts.Audit.LogOptions.MaxAge != 30 || a.opts.Audit.LogOptions.MaxBackups != 10 || a.opts.Audit.LogOptions.MaxSize != 100 {
		t.Errorf("audit log rotation %+v", a.opts.Audit.LogOptions)
	}
}
