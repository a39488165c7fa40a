//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHelmChart drives the Helm chart controller with HelmChart and
// HelmChartConfig objects, through kubectl, on a control-plane-only server:
// Helm runs in the server, so no node is needed.
func TestHelmChart(t *testing.T) {
	bin := requirements(t)
	s := newServer(t, bin)
	s.start()
	chart := chartArchive(t, "demo", "0.1.0")

	cmValue := func(namespace, name, key string) string {
		out, _ := s.kubectlErr("-n", namespace, "get", "configmap", name, "-o", "jsonpath={.data."+key+"}")
		return out
	}
	waitValue := func(t *testing.T, namespace, name, key, want string) {
		t.Helper()
		eventually(t, 60*time.Second, fmt.Sprintf("configmap %s/%s %s=%q", namespace, name, key, want), func() error {
			if got := cmValue(namespace, name, key); got != want {
				return fmt.Errorf("got %q\n%s", got, s.kubectlErr2("get", "helmcharts", "-A", "-o", "yaml"))
			}
			return nil
		})
	}
	releaseSecrets := func(namespace, name string) string {
		out, _ := s.kubectlErr("-n", namespace, "get", "secrets", "-l", "owner=helm,name="+name, "-o", "jsonpath={.items[*].metadata.name}")
		return out
	}
	failed := func(name string) (status, message string) {
		status, _ = s.kubectlErr("-n", "kube-system", "get", "helmchart", name, "-o", `jsonpath={.status.conditions[?(@.type=="Failed")].status}`)
		message, _ = s.kubectlErr("-n", "kube-system", "get", "helmchart", name, "-o", `jsonpath={.status.conditions[?(@.type=="Failed")].message}`)
		return status, message
	}
	helmChart := func(name, spec string) string {
		return fmt.Sprintf("apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: %s, namespace: kube-system}\nspec:\n%s", name, spec)
	}
	inline := base64.StdEncoding.EncodeToString(chart)
	// The Helm controller installs its CRDs after the API answers /readyz.
	eventually(t, time.Minute, "the HelmChart CRD established", func() error {
		_, err := s.kubectlErr("wait", "--for=condition=established", "--timeout=5s", "crd/helmcharts.helm.cattle.io", "crd/helmchartconfigs.helm.cattle.io")
		return err
	})

	t.Run("chartContent installs, upgrades on change and uninstalls on delete", func(t *testing.T) {
		s.apply(helmChart("demo", fmt.Sprintf(`  targetNamespace: apps
  createNamespace: true
  chartContent: %s
  valuesContent: |
    greeting: one
  set:
    replicas: 3
`, inline)))
		waitValue(t, "apps", "demo-cm", "greeting", "one")
		if got := cmValue("apps", "demo-cm", "replicas"); got != "3" {
			t.Errorf("spec.set replicas: got %q, want 3", got)
		}
		if status, msg := failed("demo"); status != "False" {
			t.Errorf("Failed condition = %q (%s), want False", status, msg)
		}
		if got := s.kubectl("get", "helmcharts", "-n", "kube-system", "demo", "--no-headers"); !strings.Contains(got, "apps") {
			t.Errorf("kubectl get helmcharts does not show the target namespace: %q", got)
		}

		s.kubectl("-n", "kube-system", "patch", "helmchart", "demo", "--type=merge", "-p", `{"spec":{"valuesContent":"greeting: two\n"}}`)
		waitValue(t, "apps", "demo-cm", "greeting", "two")

		s.apply("apiVersion: helm.cattle.io/v1\nkind: HelmChartConfig\nmetadata: {name: demo, namespace: kube-system}\nspec:\n  valuesContent: |\n    greeting: three\n")
		waitValue(t, "apps", "demo-cm", "greeting", "three")
		// Up to date releases are left alone: no fourth revision appears.
		time.Sleep(3 * time.Second)
		if got := releaseSecrets("apps", "demo"); strings.Contains(got, ".v4") || !strings.Contains(got, ".v3") {
			t.Errorf("release revisions after three changes: %q, want v1..v3", got)
		}

		s.kubectl("-n", "kube-system", "delete", "helmchart", "demo", "--timeout=60s")
		eventually(t, 30*time.Second, "release uninstalled", func() error {
			if _, err := s.kubectlErr("-n", "apps", "get", "configmap", "demo-cm"); err == nil {
				return fmt.Errorf("configmap apps/demo-cm still exists")
			}
			if got := releaseSecrets("apps", "demo"); got != "" {
				return fmt.Errorf("release secrets remain: %s", got)
			}
			return nil
		})
		s.kubectl("-n", "kube-system", "delete", "helmchartconfig", "demo")
	})

	t.Run("chart from the static dir through the manifests dir", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(s.dataDir, "server", "static", "charts", "static-demo.tgz"), chartArchive(t, "static-demo", "1.0.0"), 0o600); err != nil {
			t.Fatal(err)
		}
		manifest := filepath.Join(s.dataDir, "server", "manifests", "static-demo.yaml")
		body := helmChart("static-demo", "  chart: https://%{KUBERNETES_API}%/static/charts/static-demo.tgz\n  targetNamespace: default\n")
		if err := os.WriteFile(manifest, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		waitValue(t, "default", "static-demo-cm", "greeting", "hello")
		if err := os.Remove(manifest); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, "removed manifest uninstalls the chart", func() error {
			if _, err := s.kubectlErr("get", "configmap", "static-demo-cm"); err == nil {
				return fmt.Errorf("configmap default/static-demo-cm still exists")
			}
			return nil
		})
	})

	t.Run("chart from a repository", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		repo := "http://" + ln.Addr().String()
		index := fmt.Sprintf(`apiVersion: v1
entries:
  repo-demo:
  - apiVersion: v2
    name: repo-demo
    version: 2.0.0
    urls: [%s/repo-demo-2.0.0.tgz]
`, repo)
		archive := chartArchive(t, "repo-demo", "2.0.0")
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/index.yaml":
				w.Write([]byte(index))
			case "/repo-demo-2.0.0.tgz":
				w.Write(archive)
			default:
				http.NotFound(w, r)
			}
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		s.apply(helmChart("repo-demo", fmt.Sprintf("  repo: %s\n  chart: repo-demo\n  version: 2.0.0\n  targetNamespace: default\n  valuesContent: 'greeting: from-repo'\n", repo)))
		waitValue(t, "default", "repo-demo-cm", "greeting", "from-repo")
		if got := cmValue("default", "repo-demo-cm", "chart"); got != "repo-demo-2.0.0" {
			t.Errorf("installed chart %q, want repo-demo-2.0.0", got)
		}
	})

	t.Run("bad HelmCharts are reported on their status", func(t *testing.T) {
		s.apply(helmChart("bad-base64", "  chartContent: 'not base64!'\n") + "---\n" +
			helmChart("bad-archive", "  chartContent: "+base64.StdEncoding.EncodeToString([]byte("not a tarball"))+"\n") + "---\n" +
			helmChart("no-chart", "  targetNamespace: default\n") + "---\n" +
			helmChart("bad-values", "  chartContent: "+inline+"\n  valuesContent: 'greeting: [unclosed'\n"))
		for name, want := range map[string]string{
			"bad-base64":  "not base64",
			"bad-archive": "not a chart archive",
			"no-chart":    "neither spec.chart nor spec.chartContent",
			"bad-values":  "spec.valuesContent is not valid YAML",
		} {
			eventually(t, 30*time.Second, "HelmChart "+name+" reports its error", func() error {
				status, msg := failed(name)
				if status != "True" || !strings.Contains(msg, want) {
					return fmt.Errorf("Failed=%q message %q, want True and %q", status, msg, want)
				}
				return nil
			})
		}
		// A bad chart is deleted without a release to uninstall.
		s.kubectl("-n", "kube-system", "delete", "helmchart", "bad-base64", "bad-archive", "no-chart", "bad-values", "--timeout=30s")
	})
}

// kubectlErr2 returns kubectl's output, or its error, for diagnostics.
func (s *server) kubectlErr2(args ...string) string {
	out, err := s.kubectlErr(args...)
	if err != nil {
		return err.Error()
	}
	return out
}

// chartArchive packs a one-ConfigMap chart, as `helm package` would: a
// .tgz with <name>/Chart.yaml, values.yaml and a template.
func chartArchive(t *testing.T, name, version string) []byte {
	t.Helper()
	files := map[string]string{
		"Chart.yaml":  fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\n", name, version),
		"values.yaml": "greeting: hello\nreplicas: 1\n",
		"templates/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cm
data:
  greeting: {{ .Values.greeting | quote }}
  replicas: {{ .Values.replicas | quote }}
  chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
`,
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, file := range []string{"Chart.yaml", "values.yaml", "templates/configmap.yaml"} {
		body := files[file]
		if err := tw.WriteHeader(&tar.Header{Name: name + "/" + file, Mode: 0o644, Size: int64(len(body)), ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
