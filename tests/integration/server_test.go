//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// TestServer runs one server through the whole user story of the issue:
// the API with the real kubectl, RBAC, anonymous access, file modes,
// the control loops, and a restart that keeps everything.
func TestServer(t *testing.T) {
	bin := requirements(t)
	s := newServer(t, bin)
	s.start()

	t.Run("readyz verbose", func(t *testing.T) {
		out := s.kubectl("get", "--raw", "/readyz?verbose")
		if !strings.Contains(out, "readyz check passed") || strings.Contains(out, "[-]") {
			t.Fatalf("readyz?verbose not all ok:\n%s", out)
		}
	})

	t.Run("api-resources has the upstream set", func(t *testing.T) {
		out := s.kubectl("api-resources", "-o", "name")
		for _, r := range []string{"pods", "deployments.apps", "customresourcedefinitions.apiextensions.k8s.io",
			"roles.rbac.authorization.k8s.io", "leases.coordination.k8s.io", "cronjobs.batch",
			"validatingadmissionpolicies.admissionregistration.k8s.io", "apiservices.apiregistration.k8s.io",
			"certificatesigningrequests.certificates.k8s.io", "storageclasses.storage.k8s.io"} {
			if !strings.Contains(out, r+"\n") {
				t.Errorf("api-resources lacks %s", r)
			}
		}
	})

	t.Run("kubectl version", func(t *testing.T) {
		out := s.kubectl("version", "-o", "json")
		if !strings.Contains(out, `"gitVersion": "v1.37.2"`) {
			t.Fatalf("kubectl version does not report v1.37.2 for client and server:\n%s", out)
		}
	})

	t.Run("CRUD with kubectl", func(t *testing.T) {
		s.kubectl("create", "namespace", "crud")
		s.kubectl("-n", "crud", "create", "configmap", "cm1", "--from-literal=k=v1")
		s.kubectl("-n", "crud", "patch", "configmap", "cm1", "-p", `{"data":{"k":"v2"}}`)
		if got := s.kubectl("-n", "crud", "get", "configmap", "cm1", "-o", "jsonpath={.data.k}"); got != "v2" {
			t.Fatalf("configmap after patch = %q", got)
		}
		s.kubectl("-n", "crud", "create", "secret", "generic", "s1", "--from-literal=password=hunter2")
		if got := s.kubectl("-n", "crud", "get", "secret", "s1", "-o", "jsonpath={.data.password}"); got != "aHVudGVyMg==" {
			t.Fatalf("secret data = %q", got)
		}
		s.kubectl("-n", "crud", "create", "deployment", "web", "--image=example.invalid/web:1", "--replicas=2")
		// The deployment and replicaset controllers run: two Pending pods appear.
		eventually(t, 60*time.Second, "deployment creates its pods", func() error {
			out, err := s.kubectlErr("-n", "crud", "get", "pods", "-l", "app=web", "-o", "name")
			if err != nil {
				return err
			}
			if n := len(strings.Fields(out)); n != 2 {
				return fmt.Errorf("%d pods", n)
			}
			return nil
		})
		s.kubectl("-n", "crud", "delete", "configmap", "cm1")
		if _, err := s.kubectlErr("-n", "crud", "get", "configmap", "cm1"); err == nil {
			t.Fatal("configmap still there after delete")
		}
	})

	t.Run("CRD and custom object", func(t *testing.T) {
		s.apply(crdManifest)
		s.kubectl("wait", "--for=condition=Established", "crd/widgets.example.regente.io", "--timeout=60s")
		s.apply(`apiVersion: example.regente.io/v1
kind: Widget
metadata: {name: w1, namespace: default}
spec: {size: 3}
`)
		if got := s.kubectl("get", "widget", "w1", "-o", "jsonpath={.spec.size}"); got != "3" {
			t.Fatalf("widget size = %q", got)
		}
	})

	t.Run("RBAC for a service account", func(t *testing.T) {
		s.kubectl("create", "namespace", "team-a")
		s.kubectl("create", "namespace", "team-b")
		s.kubectl("-n", "team-a", "create", "serviceaccount", "reader")
		s.kubectl("-n", "team-a", "create", "role", "cm-reader", "--verb=list,get", "--resource=configmaps")
		s.kubectl("-n", "team-a", "create", "rolebinding", "reader", "--role=cm-reader", "--serviceaccount=team-a:reader")
		as := "--as=system:serviceaccount:team-a:reader"
		if got := strings.TrimSpace(s.kubectl("auth", "can-i", "list", "configmaps", "-n", "team-a", as)); got != "yes" {
			t.Fatalf("can-i in team-a = %q", got)
		}
		if out, _ := s.kubectlErr("auth", "can-i", "list", "configmaps", "-n", "team-b", as); strings.TrimSpace(out) != "no" {
			t.Fatalf("can-i in team-b = %q", out)
		}
		token := strings.TrimSpace(s.kubectl("-n", "team-a", "create", "token", "reader"))
		if code := s.rawGet("/api/v1/namespaces/team-a/configmaps", token); code != 200 {
			t.Fatalf("token list in team-a: HTTP %d", code)
		}
		if code := s.rawGet("/api/v1/namespaces/team-b/configmaps", token); code != 403 {
			t.Fatalf("token list in team-b: HTTP %d, want 403", code)
		}
	})

	t.Run("anonymous gets 401 except health", func(t *testing.T) {
		for _, p := range []string{"/api/v1/namespaces", "/apis", "/version", "/metrics", "/"} {
			if code := s.rawGet(p, ""); code != 401 {
				t.Errorf("anonymous GET %s: HTTP %d, want 401", p, code)
			}
		}
		for _, p := range []string{"/readyz", "/livez", "/healthz"} {
			if code := s.rawGet(p, ""); code != 200 {
				t.Errorf("anonymous GET %s: HTTP %d, want 200", p, code)
			}
		}
	})

	t.Run("repeated wrong tokens are rate-limited and logged", func(t *testing.T) {
		cfg := rest.AnonymousClientConfig(s.restConfig())
		transport, err := rest.TransportFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
		var codes []int
		for range 12 {
			resp, err := client.Post(cfg.Host+"/v1-regente/join", "application/json", strings.NewReader(`{"token":"server:guess","nodeName":"n1"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			codes = append(codes, resp.StatusCode)
		}
		if codes[0] != 401 || codes[9] != 401 || codes[10] != 429 || codes[11] != 429 {
			t.Errorf("statuses of 12 wrong tokens: %v, want 401 ten times, then 429", codes)
		}
		if !strings.Contains(s.log.String(), "Too many refused tokens from one address") {
			t.Errorf("the lockout is not logged:\n%s", tail(s.log.String()))
		}
	})

	t.Run("controller-manager and scheduler run without leader election", func(t *testing.T) {
		c := s.client()
		// Alone on SQLite the scheduler elects no leader; that it runs shows
		// in its verdict on a pod, with no node to place it on.
		s.kubectl("run", "unplaceable", "--image=regente.invalid/none:1", "--restart=Never")
		eventually(t, 60*time.Second, "scheduler marks the pod unschedulable", func() error {
			p, err := c.CoreV1().Pods("default").Get(context.Background(), "unplaceable", metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == "PodScheduled" && cond.Reason == "Unschedulable" {
					return nil
				}
			}
			return fmt.Errorf("conditions %v", p.Status.Conditions)
		})
		if _, err := c.CoordinationV1().Leases("kube-system").Get(context.Background(), "kube-scheduler", metav1.GetOptions{}); err == nil {
			t.Errorf("kube-scheduler lease exists although a SQLite server has no peer to elect against")
		}
		// The root CA publisher and service-account token controller run.
		eventually(t, 30*time.Second, "kube-root-ca.crt in a new namespace", func() error {
			_, err := c.CoreV1().ConfigMaps("team-b").Get(context.Background(), "kube-root-ca.crt", metav1.GetOptions{})
			return err
		})
		// Each renewal of a lease is a row written to the SQLite file.
		if _, err := c.CoordinationV1().Leases("kube-system").Get(context.Background(), "kube-controller-manager", metav1.GetOptions{}); err == nil {
			t.Errorf("kube-controller-manager lease exists although a SQLite server has no peer to elect against")
		}
	})

	t.Run("file modes", func(t *testing.T) {
		checkMode(t, s.kubeconfig, 0o600)
		checkMode(t, s.dataDir, 0o700)
		checkMode(t, filepath.Join(s.dataDir, "server", "tls"), 0o700)
		keys, _ := filepath.Glob(filepath.Join(s.dataDir, "server", "tls", "*.key"))
		if len(keys) < 8 {
			t.Fatalf("only %d keys in tls dir", len(keys))
		}
		for _, k := range keys {
			checkMode(t, k, 0o600)
		}
		creds, _ := filepath.Glob(filepath.Join(s.dataDir, "server", "cred", "*"))
		for _, c := range creds {
			checkMode(t, c, 0o600)
		}
		if _, err := os.Stat(filepath.Join(s.dataDir, "server", "db", "state.db")); err != nil {
			t.Fatalf("SQLite file missing: %v", err)
		}
	})

	t.Run("restart keeps everything", func(t *testing.T) {
		caBefore, _ := os.ReadFile(filepath.Join(s.dataDir, "server", "tls", "server-ca.crt"))
		code, took := s.stop()
		if code != 0 {
			t.Fatalf("SIGTERM exit code %d:\n%s", code, tail(s.log.String()))
		}
		if took > 15*time.Second {
			t.Errorf("stop took %s, want ≤ 15s", took)
		}
		s.start()
		if got := s.kubectl("-n", "crud", "get", "secret", "s1", "-o", "jsonpath={.data.password}"); got != "aHVudGVyMg==" {
			t.Fatalf("secret after restart = %q", got)
		}
		if got := s.kubectl("get", "widget", "w1", "-o", "jsonpath={.spec.size}"); got != "3" {
			t.Fatalf("widget after restart = %q", got)
		}
		caAfter, _ := os.ReadFile(filepath.Join(s.dataDir, "server", "tls", "server-ca.crt"))
		if !bytes.Equal(caBefore, caAfter) {
			t.Fatal("CA changed across restart")
		}
	})

	t.Run("second server on the same data dir refuses", func(t *testing.T) {
		other := newServer(t, bin)
		other.dataDir = s.dataDir
		args := append([]string(nil), other.args...)
		for i, a := range args {
			if a == "--data-dir" {
				args[i+1] = s.dataDir
			}
		}
		code, out := runBinary(t, bin, args...)
		if code == 0 || !strings.Contains(out, "another regente is already running") {
			t.Fatalf("second server: exit %d, output:\n%s", code, out)
		}
	})
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %o, want %o", path, got, want)
	}
}

const crdManifest = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.regente.io}
spec:
  group: example.regente.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`
